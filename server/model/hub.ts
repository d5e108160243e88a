/**
 * Models from the Hugging Face hub: `hf:owner/name[@revision]` -> a verified local model folder.
 *
 * Files come through the hub's `resolve` URLs (`{endpoint}/{owner}/{name}/resolve/{revision}/{path}`,
 * endpoint from HF_ENDPOINT for mirrors). A HEAD request without following redirects tells each file's
 * size and checksum: for files stored in LFS (the ONNX graphs) the hub's X-Linked-Etag / ETag is the
 * file's sha256 and X-Linked-Size its size; for small files kept in git, the ETag is the git blob sha1.
 * A download goes to `<file>.part`, resumes with a Range request after an interruption, and is moved
 * into place only after its size and checksum match; a file that does not match is deleted and
 * fetched once more, never used. A file is called verified only when its sha256 or git blob id was
 * checked; a hub (or mirror) that announces neither gets a size check and a warning, every time the
 * file is used. Requests go through the engine's HTTP layer (server/io/http.ts): each has a timeout, for
 * the answer and then between chunks of the body. When the hub cannot be reached, a folder completed
 * earlier is used as is.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { sleep } from '../io/abort';
import { NuggetsError } from '../io/errors';
import { defaultCacheDir, hashFile } from '../io/files';
import { RequestCancelled, send, throwIfBusy, TransientHttpError, withRetries, type HttpAnswer, type RetryPolicy } from '../io/http';
import type { OnnxVariant } from './folder';

export interface HubModelSpec {
  owner: string;
  name: string;
  revision: string;
  /** One GGUF file of the repository (hf:owner/name/path/model.gguf), imported instead of an ONNX export. */
  file?: string;
}

/**
 * `hf:owner/name` or `hf:owner/name@revision`; undefined for anything that does not start with `hf:`.
 * Each part must be a plain name (a revision may be a path of plain names, as refs/pr/3), because the
 * parts become folders of the cache: `..`, absolute paths and odd characters are refused.
 */
export function parseHubSpec(spec: string): HubModelSpec | undefined {
  const text = spec.trim();
  if (!text.startsWith('hf:')) return undefined;
  const m = /^hf:([^/@]+)\/([^/@]+)(?:\/([^@]+\.gguf))?(?:@(.+))?$/i.exec(text);
  const revision = m?.[4] ?? 'main';
  const file = m?.[3];
  if (!m || !isPlainName(m[1]!) || !isPlainName(m[2]!) || !revision.split('/').every(isPlainName) || (file !== undefined && !file.split('/').every(isPlainName))) {
    throw new NuggetsError(
      `"${text}" is not a hub model: owner, name, file and revision must be plain names (letters, digits, '-', '_', '.'; no "..").`,
      'Give hf:owner/name or hf:owner/name@revision, for example hf:HuggingFaceTB/SmolLM2-135M-Instruct, or one GGUF file: hf:owner/name/model.Q4_K_M.gguf.',
    );
  }
  return { owner: m[1]!, name: m[2]!, revision, ...(file !== undefined ? { file } : {}) };
}

/** A name that is one path component and nothing else: no separators, no "." or "..", no leading dot. */
export function isPlainName(part: string): boolean {
  return /^[A-Za-z0-9_][\w.-]*$/.test(part) && !part.includes('..') && part.length <= 96;
}

export function hubSpecText(spec: HubModelSpec): string {
  return `hf:${spec.owner}/${spec.name}${spec.file !== undefined ? `/${spec.file}` : ''}@${spec.revision}`;
}

/**
 * Small hub models with ONNX exports this engine runs (float32 key/values), for the editor's picker.
 * fp16 exports are left out: their key/values are float16. File layouts as listed on the hub.
 */
export const SUGGESTED_HUB_MODELS: readonly { spec: string; variants: readonly OnnxVariant[]; description: string }[] = [
  { spec: 'hf:HuggingFaceTB/SmolLM2-135M-Instruct', variants: ['quantized', 'q4', 'fp32'], description: 'SmolLM2 135M Instruct (Llama architecture): int8 (quantized) or 4-bit (q4) weights; fp32 is about 650 MB' },
  { spec: 'hf:onnx-community/Qwen2.5-0.5B-Instruct', variants: ['quantized', 'q4', 'fp32'], description: 'Qwen2.5 0.5B Instruct: int8 (quantized) or 4-bit weights; fp32 is about 2 GB' },
];

export interface DownloadProgress {
  /** Path of the file in the repository. */
  file: string;
  phase: 'checking' | 'downloading' | 'verifying' | 'cached' | 'retrying' | 'offline' | 'done';
  received: number;
  total: number | undefined;
  /** Why a retry happens, why the cache is used offline, or (with `unverified`) what was not checked. */
  message?: string;
  /** With 'done', 'cached' and 'offline': the file (or, offline, some file) was checked by its size only. */
  unverified?: boolean;
}

export interface HubSettings {
  /** Where models are kept: the extension passes its global storage; the CLI uses ~/.cache/nuggets/hub. */
  cacheDir?: string;
  /** Hub address (a mirror); default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Access token for gated or private repositories; default $HF_TOKEN. */
  token?: string;
  variant?: OnnxVariant;
  /** Never touch the network: use the cache or fail. Also set by HF_HUB_OFFLINE=1. */
  offline?: boolean;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Tries per file before giving up (default 4). */
  attempts?: number;
  /** Milliseconds before the first retry; doubled after each (default 500). */
  retryDelayMs?: number;
  /** Milliseconds a request may wait for the hub's answer, and then for each chunk of a download (default 60000). */
  timeoutMs?: number;
}

export interface HubModel {
  folder: string;
  spec: HubModelSpec;
  /** The commit the hub resolved the revision to, when it said. */
  commit: string | undefined;
  /** True when the hub could not be reached and the cached folder was used. */
  offline: boolean;
}

export function defaultHubCacheDir(): string {
  return join(defaultCacheDir(), 'hub');
}

/** The folder a model's files are kept in: <cache>/<owner>/<name>/<revision> (revision made file-safe). */
export function hubModelFolder(spec: HubModelSpec, cacheDir: string): string {
  const folder = join(cacheDir, spec.owner, spec.name, encodeURIComponent(spec.revision));
  if (![spec.owner, spec.name, ...spec.revision.split('/')].every(isPlainName) || !resolve(folder).startsWith(resolve(cacheDir) + sep)) {
    throw new NuggetsError(`${hubSpecText(spec)} would be kept outside the cache ${cacheDir}; refused.`, 'Give hf:owner/name[@revision] with plain names.');
  }
  return folder;
}

/** The ONNX files to look for, in order, for a variant (transformers.js layout first, then the root). */
export function onnxCandidates(variant: OnnxVariant): string[] {
  const suffix = variant === 'fp32' ? '' : `_${variant}`;
  return [`onnx/model${suffix}.onnx`, `model${suffix}.onnx`];
}

const MANIFEST = 'nuggets-download.json';

interface Manifest {
  repo: string;
  revision: string;
  commit?: string;
  /** Per variant, the ONNX file chosen for it. */
  onnx: Record<string, string>;
  files: Record<string, { size: number; etag: string }>;
}

interface RemoteFile {
  path: string;
  size: number;
  etag: string;
  commit: string | undefined;
  /** The URL to GET (after the hub's own redirects), and whether the token may go with it. */
  url: string;
}


/** Downloads (or finds in the cache) the files of `spec` and returns the folder that holds them. */
export async function fetchHubModel(spec: HubModelSpec, settings: HubSettings = {}): Promise<HubModel> {
  const cacheDir = settings.cacheDir ?? defaultHubCacheDir();
  const folder = hubModelFolder(spec, cacheDir);
  const variant = settings.variant ?? 'fp32';
  if (!/^[A-Za-z0-9][\w-]*$/.test(variant)) {
    throw new NuggetsError(`The variant "${variant}" is not a plain name; it names the file onnx/model_<variant>.onnx.`, 'Choose fp32, quantized, int8, fp16 or q4.');
  }
  const offline = settings.offline ?? ['1', 'true', 'yes'].includes((process.env['HF_HUB_OFFLINE'] ?? '').toLowerCase());
  if (spec.file !== undefined) return fetchHubFile(spec, spec.file, folder, offline, settings);
  if (offline) {
    const cached = cachedOnnx(folder, variant);
    if (cached) {
      settings.onProgress?.(offlineUse(folder, cached, 'offline mode: using the cache'));
      return { folder, spec, commit: readManifest(folder)?.commit, offline: true };
    }
    throw new NuggetsError(
      `${hubSpecText(spec)} (variant ${variant}) is not in the cache ${cacheDir}, and offline mode is on.`,
      'Run once with network access (unset HF_HUB_OFFLINE) to download it.',
    );
  }
  const hub = new HubClient(spec, settings);
  try {
    return await hub.download(folder, variant);
  } catch (err) {
    if (settings.signal?.aborted || err instanceof RequestCancelled) throw new RequestCancelled(`Download of ${hubSpecText(spec)}`, 'it resumes where it stopped next time');
    if (err instanceof TransientHttpError) {
      const cached = cachedOnnx(folder, variant);
      if (cached) {
        settings.onProgress?.(offlineUse(folder, cached, `hub unreachable (${err.message}): using the cache`));
        return { folder, spec, commit: readManifest(folder)?.commit, offline: true };
      }
      throw new NuggetsError(
        `Cannot reach the hub at ${hub.endpoint} to download ${hubSpecText(spec)} (${err.message}), and it is not in the cache ${cacheDir}.`,
        'Check the network, or set HF_ENDPOINT to a reachable mirror.',
      );
    }
    throw err;
  }
}

/**
 * A repository's tokenizer files, for a served model (--tokenizer hf:owner/name): tokenizer.json, and tokenizer_config.json
 * and chat_template.jinja where the repository has them (the chat template is read from them), verified into the
 * repository's cache folder as a model's files are; offline, or with the hub unreachable, from that folder.
 */
export async function fetchHubTokenizer(spec: HubModelSpec, settings: HubSettings = {}): Promise<HubModel> {
  const cacheDir = settings.cacheDir ?? defaultHubCacheDir();
  const folder = hubModelFolder(spec, cacheDir);
  const offline = settings.offline ?? ['1', 'true', 'yes'].includes((process.env['HF_HUB_OFFLINE'] ?? '').toLowerCase());
  const cached = (): boolean => {
    const known = readManifest(folder)?.files['tokenizer.json'];
    return known !== undefined && existsSync(join(folder, 'tokenizer.json')) && statSync(join(folder, 'tokenizer.json')).size === known.size;
  };
  if (offline) {
    if (cached()) return { folder, spec, commit: readManifest(folder)?.commit, offline: true };
    throw new NuggetsError(`The tokenizer of ${hubSpecText(spec)} is not in the cache ${cacheDir}, and offline mode is on.`, 'Run once with network access (unset HF_HUB_OFFLINE) to download it.');
  }
  const hub = new HubClient(spec, settings);
  try {
    return await hub.downloadTokenizer(folder);
  } catch (err) {
    if (settings.signal?.aborted || err instanceof RequestCancelled) throw new RequestCancelled(`Download of ${hubSpecText(spec)}'s tokenizer`, 'it resumes where it stopped next time');
    if (err instanceof TransientHttpError && cached()) return { folder, spec, commit: readManifest(folder)?.commit, offline: true };
    if (err instanceof TransientHttpError) throw new NuggetsError(`Cannot reach the hub at ${hub.endpoint} to download the tokenizer of ${hubSpecText(spec)} (${err.message}), and it is not in the cache.`, 'Check the network, or set HF_ENDPOINT to a reachable mirror.');
    throw err;
  }
}

/** One file of a repository (a GGUF model), verified into the repository's cache folder like an ONNX export's files. */
async function fetchHubFile(spec: HubModelSpec, file: string, folder: string, offline: boolean, settings: HubSettings): Promise<HubModel> {
  const cached = (): boolean => {
    const known = readManifest(folder)?.files[file];
    return known !== undefined && existsSync(join(folder, file)) && statSync(join(folder, file)).size === known.size;
  };
  if (offline) {
    if (cached()) {
      settings.onProgress?.(offlineUse(folder, file, 'offline mode: using the cache'));
      return { folder, spec, commit: readManifest(folder)?.commit, offline: true };
    }
    throw new NuggetsError(`${hubSpecText(spec)} is not in the cache ${dirname(dirname(dirname(folder)))}, and offline mode is on.`, 'Run once with network access (unset HF_HUB_OFFLINE) to download it.');
  }
  const hub = new HubClient(spec, settings);
  try {
    return await hub.downloadFile(folder, file);
  } catch (err) {
    if (settings.signal?.aborted || err instanceof RequestCancelled) throw new RequestCancelled(`Download of ${hubSpecText(spec)}`, 'it resumes where it stopped next time');
    if (err instanceof TransientHttpError && cached()) {
      settings.onProgress?.(offlineUse(folder, file, `hub unreachable (${err.message}): using the cache`));
      return { folder, spec, commit: readManifest(folder)?.commit, offline: true };
    }
    if (err instanceof TransientHttpError) throw new NuggetsError(`Cannot reach the hub at ${hub.endpoint} to download ${hubSpecText(spec)} (${err.message}), and it is not in the cache.`, 'Check the network, or set HF_ENDPOINT to a reachable mirror.');
    throw err;
  }
}

/** The ONNX file a complete cached download holds for `variant`, or undefined. */
function cachedOnnx(folder: string, variant: OnnxVariant): string | undefined {
  const manifest = readManifest(folder);
  const onnx = manifest?.onnx[variant];
  if (!manifest || !onnx) return undefined;
  const needed = ['tokenizer.json', 'config.json', onnx];
  const complete = needed.every((f) => manifest.files[f] && existsSync(join(folder, f)) && statSync(join(folder, f)).size === manifest.files[f]!.size);
  return complete ? onnx : undefined;
}

/** The progress event for using a cached download without the hub, warning of files that were checked by size only. */
function offlineUse(folder: string, onnx: string, message: string): DownloadProgress {
  const files = readManifest(folder)?.files ?? {};
  const unverified = Object.keys(files).filter((f) => checksumKind(files[f]!.etag) === undefined);
  return {
    file: onnx, phase: 'offline', received: 0, total: undefined,
    ...(unverified.length > 0
      ? { unverified: true, message: `${message}; UNVERIFIED: ${unverified.join(', ')} were checked by size only when downloaded (the hub gave no sha256 or git blob id)` }
      : { message }),
  };
}

function readManifest(folder: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(join(folder, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

class HubClient {
  readonly endpoint: string;
  private readonly token: string | undefined;
  private readonly attempts: number;
  private readonly policy: RetryPolicy;

  constructor(private readonly spec: HubModelSpec, private readonly settings: HubSettings) {
    this.endpoint = (settings.endpoint ?? process.env['HF_ENDPOINT'] ?? 'https://huggingface.co').replace(/\/+$/, '');
    this.token = settings.token ?? (process.env['HF_TOKEN'] || undefined);
    this.attempts = Math.max(1, settings.attempts ?? 4);
    this.policy = {
      timeoutMs: settings.timeoutMs ?? 60_000, retries: this.attempts - 1, retryDelayMs: settings.retryDelayMs ?? 500,
      ...(settings.signal ? { signal: settings.signal } : {}),
    };
  }

  async download(folder: string, variant: OnnxVariant): Promise<HubModel> {
    const previous = readManifest(folder);
    const manifest: Manifest = {
      repo: `${this.spec.owner}/${this.spec.name}`, revision: this.spec.revision,
      onnx: { ...(previous?.onnx ?? {}) }, files: { ...(previous?.files ?? {}) },
    };
    const tokenizer = await this.describe('tokenizer.json', true);
    const config = await this.describe('config.json', true);
    const tokenizerConfig = await this.describe('tokenizer_config.json', false);
    let onnx: RemoteFile | undefined;
    const tried = onnxCandidates(variant);
    for (const path of tried) {
      onnx = await this.describe(path, false);
      if (onnx) break;
    }
    if (!onnx) {
      throw new NuggetsError(
        `${hubSpecText(this.spec)} has no ONNX graph for variant "${variant}" (looked for ${tried.join(', ')}).`,
        'Choose another variant (fp32, quantized, int8, fp16, q4) or a repository with an ONNX export (for example from onnx-community).',
      );
    }
    // Graphs over 2 GB keep their weights beside them in <file>_data.
    const external = await this.describe(`${onnx.path}_data`, false);
    const files = [tokenizer!, config!, tokenizerConfig, onnx, external].filter((f): f is RemoteFile => f !== undefined);
    for (const file of files) {
      await this.fetchVerified(file, folder, manifest);
    }
    manifest.commit = onnx.commit ?? tokenizer!.commit;
    manifest.onnx[variant] = onnx.path;
    writeFileSync(join(folder, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    return { folder, spec: this.spec, commit: manifest.commit, offline: false };
  }

  async downloadTokenizer(folder: string): Promise<HubModel> {
    const previous = readManifest(folder);
    const manifest: Manifest = {
      repo: `${this.spec.owner}/${this.spec.name}`, revision: this.spec.revision,
      onnx: { ...(previous?.onnx ?? {}) }, files: { ...(previous?.files ?? {}) },
    };
    const tokenizer = (await this.describe('tokenizer.json', true))!;
    const optional = [await this.describe('tokenizer_config.json', false), await this.describe('chat_template.jinja', false)];
    for (const file of [tokenizer, ...optional]) if (file) await this.fetchVerified(file, folder, manifest);
    manifest.commit = previous?.commit ?? tokenizer.commit;
    writeFileSync(join(folder, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    return { folder, spec: this.spec, commit: tokenizer.commit, offline: false };
  }

  async downloadFile(folder: string, path: string): Promise<HubModel> {
    const previous = readManifest(folder);
    const manifest: Manifest = {
      repo: `${this.spec.owner}/${this.spec.name}`, revision: this.spec.revision,
      onnx: { ...(previous?.onnx ?? {}) }, files: { ...(previous?.files ?? {}) },
    };
    const file = (await this.describe(path, true))!;
    await this.fetchVerified(file, folder, manifest);
    manifest.commit = file.commit;
    writeFileSync(join(folder, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    return { folder, spec: this.spec, commit: manifest.commit, offline: false };
  }

  private url(path: string): string {
    const { owner, name, revision } = this.spec;
    return `${this.endpoint}/${owner}/${name}/resolve/${encodeURIComponent(revision)}/${path.split('/').map(encodeURIComponent).join('/')}`;
  }

  private headers(url: string, extra: Record<string, string> = {}): Record<string, string> {
    // The token goes to the hub only, never to the storage host a download is redirected to.
    const sameHost = new URL(url).origin === new URL(this.endpoint).origin;
    return { 'user-agent': 'nuggets', ...(this.token && sameHost ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  /** Size, checksum and download URL of a file; undefined when the repository has no such file. */
  private async describe(path: string, required: boolean): Promise<RemoteFile | undefined> {
    this.settings.onProgress?.({ file: path, phase: 'checking', received: 0, total: undefined });
    return withRetries(this.policy, async () => {
      let url = this.url(path);
      for (let hop = 0; hop < 6; hop++) {
        const res = await send(url, { method: 'HEAD', redirect: 'manual', headers: this.headers(url) }, this.policy);
        await res.discard();
        const linkedEtag = res.headers.get('x-linked-etag');
        const etag = cleanEtag(linkedEtag ?? res.headers.get('etag'));
        const sizeHeader = res.headers.get('x-linked-size') ?? (res.status === 200 ? res.headers.get('content-length') : null);
        const size = sizeHeader === null ? NaN : Number(sizeHeader);
        const commit = res.headers.get('x-repo-commit') ?? undefined;
        const location = res.headers.get('location');
        if (res.status >= 300 && res.status < 400 && location) {
          const next = new URL(location, url).toString();
          // An LFS file answers with a redirect to its storage, carrying the file's own size and sha256.
          if (linkedEtag && Number.isFinite(size)) return { path, size, etag, commit, url: next };
          url = next;
          continue;
        }
        if (res.status === 404) {
          if (!required) return undefined;
          throw new NuggetsError(`${hubSpecText(this.spec)} has no ${path} (${url} answered 404).`, path.endsWith('.gguf') ? 'Check the repository, revision and file name as the hub lists them.' : 'Check the repository name and revision; the model needs tokenizer.json, config.json and an ONNX graph.');
        }
        if (res.status === 401 || res.status === 403) {
          throw new NuggetsError(
            `${hubSpecText(this.spec)}: the hub refused ${path} (HTTP ${res.status}): the repository is gated, private or missing.`,
            this.token ? 'The token in HF_TOKEN has no access to it; accept the model\'s terms on the hub or use another token.' : 'Set HF_TOKEN to a token with access (in VS Code: "Nuggets: Set Hugging Face token").',
          );
        }
        throwIfBusy(res);
        if (res.status !== 200) throw new NuggetsError(`${hubSpecText(this.spec)}: ${path}: ${url} answered ${res.status}.`);
        if (!etag || !Number.isFinite(size) || size < 0) {
          throw new NuggetsError(`${url} gave no ETag or size: it does not look like a Hugging Face hub; the download cannot be checked.`);
        }
        return { path, size, etag, commit, url };
      }
      throw new NuggetsError(`${this.url(path)}: too many redirects.`);
    }, (problem) => this.settings.onProgress?.({ file: path, phase: 'retrying', received: 0, total: undefined, message: problem }));
  }

  /**
   * The file in place and checked: from the cache when its checksum is the hub's, else downloaded.
   * A file whose checksum does not match is deleted and fetched once more; a second mismatch fails.
   */
  private async fetchVerified(file: RemoteFile, folder: string, manifest: Manifest): Promise<void> {
    const target = join(folder, file.path);
    const kind = checksumKind(file.etag);
    const warning = kind ? undefined : `${file.path} is UNVERIFIED: ${this.endpoint} gave no sha256 or git blob id for it (ETag "${file.etag.slice(0, 40)}"), only its size (${file.size} bytes) was checked`;
    const known = manifest.files[file.path];
    if (known && known.etag === file.etag && known.size === file.size && existsSync(target) && statSync(target).size === file.size) {
      this.settings.onProgress?.({ file: file.path, phase: 'cached', received: file.size, total: file.size, ...(warning ? { unverified: true, message: warning } : {}) });
      return;
    }
    mkdirSync(dirname(target), { recursive: true });
    const part = `${target}.part`;
    let lastProblem = '';
    let retryAfter: number | undefined;
    let mismatches = 0;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      if (attempt > 1) {
        this.settings.onProgress?.({ file: file.path, phase: 'retrying', received: 0, total: file.size, message: lastProblem });
        await sleep(retryAfter ?? this.policy.retryDelayMs * 2 ** (attempt - 2), this.settings.signal, () => new RequestCancelled());
      }
      retryAfter = undefined;
      try {
        await this.fetchInto(file, part);
      } catch (err) {
        if (err instanceof TransientHttpError) {
          lastProblem = err.message;
          retryAfter = err.retryAfterMs;
          continue; // the part stays: the next attempt resumes it
        }
        throw err;
      }
      const have = existsSync(part) ? statSync(part).size : 0;
      if (have < file.size) {
        lastProblem = `the response ended after ${have} of ${file.size} bytes`;
        continue;
      }
      this.settings.onProgress?.({ file: file.path, phase: 'verifying', received: have, total: file.size });
      const problem = have > file.size ? `${have} bytes instead of ${file.size}` : checksumProblem(part, file);
      if (problem) {
        rmSync(part, { force: true }); // never used, never resumed: start over
        lastProblem = `${file.path} failed verification (${problem})`;
        if (++mismatches >= 2) {
          throw new NuggetsError(
            `${file.path} of ${hubSpecText(this.spec)} failed verification twice (${problem}): ${this.endpoint} serves bytes that are not the file it announces. The download was deleted; nothing unverified is used.`,
            'Try again later, or another mirror (HF_ENDPOINT); if it persists, report it to the hub or the mirror.',
          );
        }
        continue;
      }
      renameSync(part, target);
      manifest.files[file.path] = { size: file.size, etag: file.etag };
      this.settings.onProgress?.({ file: file.path, phase: 'done', received: file.size, total: file.size, message: warning ?? `checked by its ${kind}`, ...(warning ? { unverified: true } : {}) });
      return;
    }
    throw new NuggetsError(
      `Could not download ${file.path} of ${hubSpecText(this.spec)} after ${this.attempts} attempts: ${lastProblem}.`,
      'Nothing unverified was kept in place; run again to retry (a partial download resumes).',
    );
  }

  /** GETs the rest of the file after what `part` already holds, appending to it. */
  private async fetchInto(file: RemoteFile, part: string): Promise<void> {
    let have = existsSync(part) ? statSync(part).size : 0;
    if (have >= file.size) return;
    let url = file.url;
    let res: HttpAnswer | undefined;
    for (let hop = 0; hop < 6; hop++) {
      const range: Record<string, string> = have > 0 ? { range: `bytes=${have}-` } : {};
      res = await send(url, { redirect: 'manual', headers: this.headers(url, range) }, this.policy);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.discard();
        url = new URL(location, url).toString();
        continue;
      }
      break;
    }
    if (!res || (res.status >= 300 && res.status < 400)) {
      await res?.discard();
      throw new NuggetsError(`${file.url}: too many redirects.`);
    }
    if (res.status === 416) {
      await res.discard();
      rmSync(part, { force: true });
      throw new TransientHttpError('the server refused to resume the partial download; starting over');
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.discard();
      throwIfBusy(res);
      throw new NuggetsError(`${hubSpecText(this.spec)}: ${file.path}: ${url} answered ${res.status}.`);
    }
    if (res.status === 206 && !(res.headers.get('content-range') ?? '').startsWith(`bytes ${have}-`)) {
      await res.discard();
      rmSync(part, { force: true });
      throw new TransientHttpError(`the server resumed at another offset (${res.headers.get('content-range')}); starting over`);
    }
    if (res.status === 200) have = 0; // the server ignored the range: the whole file follows
    const fd = openSync(part, have > 0 ? 'a' : 'w');
    try {
      let received = have;
      this.settings.onProgress?.({ file: file.path, phase: 'downloading', received, total: file.size });
      for await (const chunk of res.chunks()) {
        // A server that sends more than it announced is not read on without end.
        if (received + chunk.length > file.size) throw new TransientHttpError(`${url} sent more than the ${file.size} bytes announced`);
        writeSync(fd, chunk);
        received += chunk.length;
        this.settings.onProgress?.({ file: file.path, phase: 'downloading', received, total: file.size });
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** Hub ETags come quoted, sometimes weak: `W/"abc"` -> `abc`. */
function cleanEtag(value: string | null): string {
  return (value ?? '').replace(/^W\//, '').replace(/"/g, '').trim();
}

/** Which checksum an ETag is: the sha256 of an LFS file, the git blob id of a file kept in git, or neither. */
function checksumKind(etag: string): 'sha256' | 'git blob id' | undefined {
  if (/^[0-9a-f]{64}$/i.test(etag)) return 'sha256';
  if (/^[0-9a-f]{40}$/i.test(etag)) return 'git blob id';
  return undefined;
}

/** Undefined when `path` has the checksum the hub announced (or none was announced); else what is wrong. */
function checksumProblem(path: string, file: RemoteFile): string | undefined {
  const kind = checksumKind(file.etag);
  if (kind === 'sha256') {
    const actual = hashFile(createHash('sha256'), path).digest('hex');
    return actual === file.etag.toLowerCase() ? undefined : `sha256 ${actual.slice(0, 12)}… instead of ${file.etag.slice(0, 12)}…`;
  }
  if (kind === 'git blob id') {
    // A file kept in git: its ETag is the blob id, sha1("blob <size>\0" + content).
    const actual = hashFile(createHash('sha1').update(`blob ${file.size}\0`), path).digest('hex');
    return actual === file.etag.toLowerCase() ? undefined : `git blob id ${actual.slice(0, 12)}… instead of ${file.etag.slice(0, 12)}…`;
  }
  return undefined; // size only: the caller warns that the file is unverified
}
