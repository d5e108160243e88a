/**
 * Turns a model specification into a scoring backend, so that the command line and the editor never
 * need to know which kind of model they score with:
 *   <folder>                       a local model folder (tokenizer.json, config.json, ONNX graph)
 *   hf:<owner>/<name>[@revision]   a hub model, downloaded and verified into the cache, then run locally
 *   http(s)://host:port[/v1][,...] one or more OpenAI-compatible serving endpoints (vLLM) that return
 *                                  prompt log-probabilities; several are used round-robin
 *   sglang+http://host:port[,...]  SGLang servers, asked through their native /generate, which reuses the candidate's tokens
 *   <file>.gguf                    a GGUF model (llama.cpp, LM Studio), imported once into a model folder in the cache
 *   ollama:<name>[:<tag>]          a model Ollama has pulled: its GGUF blob, imported the same way
 *   hf:<owner>/<name>/<file>.gguf  one GGUF file of a hub repository, downloaded and verified, then imported
 */
import { basename, join } from 'node:path';
import { defaultCacheDir } from '../io/files';
import { NuggetsError } from '../io/errors';
import { assertScoredVariant } from '../model/folder';
import { ggufWeights, importGguf, isGgufPath, type GgufImportProgress } from '../model/gguf/import';
import { isOllamaSpec, resolveOllama } from '../model/gguf/ollama';
import { fetchHubModel, fetchHubTokenizer, hubSpecText, parseHubSpec, type DownloadProgress } from '../model/hub';
import type { ScoringBackend } from './backend';
import { LocalBackend, type LocalModelSettings } from './local';
import { ServingBackend, type ServingSettings } from './serving';
import { isSglangSpec, SglangBackend, sglangEndpoints } from './sglang';

export interface BackendSettings extends LocalModelSettings, Omit<ServingSettings, 'endpoints' | 'signal'> {
  /** The cache root: hub downloads go to its hub/ folder (the extension passes its global storage). */
  cacheDir?: string;
  /** Hub address; default $HF_ENDPOINT or https://huggingface.co. */
  hubEndpoint?: string;
  /** Hub token; default $HF_TOKEN. The extension passes it from SecretStorage. */
  hubToken?: string;
  /** Use only the hub cache, never the network. */
  offline?: boolean;
  onDownload?: (progress: DownloadProgress) => void;
  /** A GGUF model's one-time import into the cache (hashing, then writing the graph). */
  onImport?: (model: string, progress: GgufImportProgress) => void;
  /** More serving endpoints besides the ones in the model specification. */
  endpoints?: string[];
  /** Cancels opening: a download, or a serving backend's first requests (model list, tokenizer check). Scoring calls take their own. */
  signal?: AbortSignal;
}

export function isServingSpec(model: string): boolean {
  return /^https?:\/\//i.test(model.trim());
}

export async function openBackend(model: string, settings: BackendSettings = {}): Promise<ScoringBackend> {
  if (isSglangSpec(model)) {
    const endpoints = [...sglangEndpoints(model), ...(settings.endpoints ?? [])];
    return SglangBackend.open({ ...settings, ...(await servedTokenizer(settings)), endpoints, ...(settings.signal ? { signal: settings.signal } : {}) });
  }
  if (isServingSpec(model)) {
    const endpoints = [...model.split(','), ...(settings.endpoints ?? [])].map((e) => e.trim()).filter((e) => e !== '');
    return ServingBackend.open({ ...settings, ...(await servedTokenizer(settings)), endpoints, ...(settings.signal ? { signal: settings.signal } : {}) });
  }
  if (settings.endpoints?.length) {
    throw new NuggetsError(`Serving endpoints were given, but the model "${model}" is not a serving endpoint (http://…).`, 'Give the endpoints as the model: --model http://host:8000/v1,http://other:8000/v1.');
  }
  if (isOllamaSpec(model)) {
    const found = resolveOllama(model);
    return openGguf(found.blob, `ollama:${found.name}`, settings, found.sha256);
  }
  if (isGgufPath(model) && !parseHubSpec(model)) return openGguf(model, basename(model.trim()), settings);
  const hub = parseHubSpec(model);
  if (hub?.file !== undefined) {
    ggufWeights(settings.variant, hubSpecText(hub)); // a variant the file cannot have is refused before the download
    const downloaded = await fetchHubModel(hub, hubSettings(settings));
    return openGguf(join(downloaded.folder, hub.file), hubSpecText(hub), settings);
  }
  if (hub) {
    assertScoredVariant(settings.variant ?? 'fp32', hubSpecText(hub));
    const downloaded = await fetchHubModel(hub, { ...hubSettings(settings), ...(settings.variant ? { variant: settings.variant } : {}) });
    return LocalBackend.open(downloaded.folder, { ...settings, displayName: hubSpecText(hub) });
  }
  return LocalBackend.open(model, settings);
}

/**
 * A served model's --tokenizer given as hf:owner/name[@revision]: its tokenizer files (and chat template) downloaded and
 * verified into the hub cache, and that folder used as a named folder is. A path is left as it is.
 */
async function servedTokenizer(settings: BackendSettings): Promise<{ tokenizer?: string }> {
  const hub = settings.tokenizer !== undefined ? parseHubSpec(settings.tokenizer) : undefined;
  if (!hub) return {};
  if (hub.file !== undefined) throw new NuggetsError(`--tokenizer ${settings.tokenizer}: a tokenizer is a repository (hf:owner/name), not one of its files.`);
  return { tokenizer: (await fetchHubTokenizer(hub, hubSettings(settings))).folder };
}

function hubSettings(settings: BackendSettings): Parameters<typeof fetchHubModel>[1] {
  return {
    ...(settings.cacheDir ? { cacheDir: join(settings.cacheDir, 'hub') } : {}),
    ...(settings.hubEndpoint ? { endpoint: settings.hubEndpoint } : {}),
    ...(settings.hubToken ? { token: settings.hubToken } : {}),
    ...(settings.offline !== undefined ? { offline: settings.offline } : {}),
    ...(settings.timeoutMs ? { timeoutMs: settings.timeoutMs } : {}),
    ...(settings.onDownload ? { onProgress: settings.onDownload } : {}),
    ...(settings.signal ? { signal: settings.signal } : {}),
  };
}

/**
 * A GGUF file imported (once) into a model folder and opened like any other. Without a variant the
 * file's weights run as stored; `fp32` runs them dequantized to float32.
 */
async function openGguf(path: string, name: string, settings: BackendSettings, expectedSha256?: string): Promise<ScoringBackend> {
  const weights = ggufWeights(settings.variant, name);
  const imported = importGguf(path, {
    cacheDir: settings.cacheDir ?? defaultCacheDir(), weights, displayName: name,
    ...(expectedSha256 ? { expectedSha256 } : {}),
    ...(settings.onImport ? { onProgress: (progress: GgufImportProgress) => settings.onImport!(name, progress) } : {}),
  });
  const { variant: _variant, ...rest } = settings;
  return LocalBackend.open(imported.folder, { ...rest, displayName: weights === 'float32' ? `${name} (fp32)` : name });
}
