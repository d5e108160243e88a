/**
 * Which model scores, as the scoring worker identifies it (name and fingerprint): the model part of every
 * score's key. A lookup is kept while the model folder and settings stay as they were; a hub model is
 * looked up in the cache, and downloaded only for a Score Dataset run; a GGUF model is imported into the
 * cache by its first lookup.
 *
 * The last identity found under each stamp is remembered in storage (models.json), so that stored scores
 * are shown at once while a lookup is under way (a serving endpoint that does not answer, a model being
 * opened): only for showing them. A run waits for the lookup; one that finds another identity, or none,
 * has the documents shown again (onChanged).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkDoneProgressReporter } from 'vscode-languageserver/node';
import { untilAborted } from '../io/abort';
import { isGgufPath, type GgufImportProgress } from '../model/gguf/import';
import type { DownloadProgress } from '../model/hub';
import { writeFileAtomic } from '../io/files';
import { formatDuration, type ServerSettings } from '../protocol';
import type { ModelOptions } from './worker-messages';
import type { ScoringWorker } from './worker';

export interface Identity {
  name: string;
  fingerprint: string;
}

/** A Score Dataset run that may download the model: its progress and cancellation. */
export interface DownloadRun {
  signal: AbortSignal;
  reporter?: WorkDoneProgressReporter;
}

type Identified = { identity: Identity } | { failure: string; retry: boolean };

/** One identification of the model under one stamp (settings and file times), kept until the stamp changes. */
interface Lookup {
  stamp: string;
  result: Promise<Identified>;
  /** Whether `result` has resolved. */
  settled: boolean;
  /** The remembered identity handed out while the lookup was under way, if any. */
  provisional?: Identity;
}

/** Remembered identities kept in models.json (the most recent stamps). */
const REMEMBERED_KEPT = 32;

/** How the worker opens the model: the settings' variant, threads and credentials, and the cache in extension storage. */
export function modelOptions(settings: ServerSettings, storagePath: string): ModelOptions {
  const { threads, variant, secrets } = settings;
  // An API key without its origins goes nowhere (never to where $NUGGETS_API_KEY_ORIGINS would send it).
  return { threads, cacheDir: join(storagePath, 'cache'), ...(variant ? { variant } : {}), ...secrets, ...(secrets?.apiKey ? { apiKeyOrigins: secrets.apiKeyOrigins ?? [] } : {}) };
}

export class ModelIdentity {
  private lookup: Lookup | undefined;
  private readonly imports: GgufImports;
  /** Why the model cannot be used, after the last lookup failed; undefined after one succeeded. */
  error: string | undefined;

  /** The last identity found under each stamp, oldest first; persisted in `rememberedFile` when given. */
  private readonly remembered: Map<string, Identity>;
  /** Told when a lookup ends unlike the remembered identity handed out while it was under way. */
  onChanged: () => void = () => undefined;

  constructor(private readonly worker: ScoringWorker, private readonly log: (message: string) => void, private readonly rememberedFile?: string) {
    this.imports = new GgufImports(log);
    this.remembered = readRemembered(rememberedFile);
  }

  private remember(stamp: string, identity: Identity): void {
    const known = this.remembered.get(stamp);
    if (known && sameIdentity(known, identity)) return;
    this.remembered.delete(stamp);
    this.remembered.set(stamp, identity);
    for (const oldest of this.remembered.keys()) if (this.remembered.size > REMEMBERED_KEPT) this.remembered.delete(oldest);
    if (!this.rememberedFile) return;
    try {
      writeFileAtomic(this.rememberedFile, JSON.stringify(Object.fromEntries(this.remembered), null, 1) + '\n');
    } catch (err) {
      this.log(`cannot remember the model's identity in ${this.rememberedFile}: ${(err as Error).message}`);
    }
  }

  /**
   * Shows a Score Dataset run the GGUF import of the model while one is under way (it may have begun when the
   * document opened), from where it is now, until the returned function is called.
   */
  showImports(reporter: WorkDoneProgressReporter): () => void {
    return this.imports.show(reporter);
  }

  /**
   * The model's identity under `settings`. A hub model is looked up in the cache only, unless `download` is
   * given (Score Dataset): then a model missing from the cache, or one whose lookup failed, is fetched.
   * A GGUF model is imported into the cache by the first lookup, whichever asked; a run waiting for it is
   * shown the import's progress.
   */
  async of(settings: ServerSettings, options: ModelOptions, download?: DownloadRun): Promise<Identity | undefined> {
    const { model } = settings;
    if (!settings.scoringAllowed && (!existsSync(model) || isGgufPath(model))) {
      // Untrusted: a model folder is only read and hashed; anything else (a GGUF file to import, a hub model, an endpoint) would be opened.
      this.error = 'Scoring is disabled in untrusted workspaces.';
      return undefined;
    }
    const stamp = [model, options.variant ?? 'fp32', mtimeOf(model), ...['config.json', 'tokenizer.json', 'model.onnx', 'onnx'].map((f) => mtimeOf(join(model, f)))].join('|');
    const identify = (fetch?: DownloadRun): Lookup => {
      const imported = this.imports.track();
      const result = this.worker.identify(model, options, fetch && {
        signal: fetch.signal,
        onProgress: (progress) => fetch.reporter?.report(downloadText(model, progress)),
      }, imported.report).then(
        (found): Identified => ('notDownloaded' in found ? { failure: `${model} is not downloaded yet: Nuggets: Score Dataset downloads it.`, retry: true } : { identity: found }),
        (err: unknown): Identified => {
          this.log(`cannot use the model: ${(err as Error).message}`);
          return { failure: (err as Error).message, retry: !existsSync(model) };
        },
      ).then((found) => {
        imported.end('identity' in found);
        lookup.settled = true;
        if ('identity' in found) this.remember(stamp, found.identity);
        const shown = lookup.provisional;
        if (shown && !('identity' in found && sameIdentity(shown, found.identity)) && this.lookup === lookup) this.onChanged();
        return found;
      });
      const lookup: Lookup = { stamp, result, settled: false };
      return lookup;
    };
    const shown = download?.reporter ? this.imports.show(download.reporter) : undefined;
    try {
      if (this.lookup?.stamp !== stamp) this.lookup = identify();
      const known = this.remembered.get(stamp);
      if (!download && !this.lookup.settled && known) {
        // Only for showing stored scores: a run (download given) waits for the lookup itself.
        this.lookup.provisional = known;
        return known;
      }
      // A run's Cancel stops its wait at once, even for a lookup that hangs (a serving endpoint that does not answer).
      let found = await untilAborted(this.lookup.result, download?.signal);
      if (found && 'failure' in found && found.retry && download && !download.signal.aborted && this.lookup.stamp === stamp) {
        // Not in the cache, or the hub or endpoint failed earlier: try again, now allowed to download.
        this.lookup = identify(download);
        found = await untilAborted(this.lookup.result, download.signal);
      }
      if (!found) return undefined; // cancelled
      if ('identity' in found) {
        this.error = undefined;
        return found.identity;
      }
      this.error = found.failure;
      return undefined;
    } finally {
      shown?.();
    }
  }
}

/**
 * The GGUF imports of model lookups: each lookup's import is logged once per phase and shown to the runs
 * waiting for the model. A lookup may start without a run to report to (a document opening, a settings
 * change); a run that comes later is shown where the import is at once, then each step after.
 */
class GgufImports {
  /** What the import under way last reported ("importing X.gguf: 40%"); undefined when none is under way. */
  private current: { text: string } | undefined;
  private readonly reporters = new Set<WorkDoneProgressReporter>();

  constructor(private readonly log: (message: string) => void) {}

  /** One lookup's import: `report` as the worker tells it, `end` when the lookup is over (`opened`: the model with it). */
  track(): { report: (model: string, progress: GgufImportProgress) => void; end: (opened: boolean) => void } {
    let own: { text: string } | undefined;
    let phase: GgufImportProgress['phase'] | undefined;
    let started = 0;
    let name = '';
    return {
      report: (model, progress) => {
        own = { text: importText(model, progress) };
        this.current = own;
        if (progress.phase !== phase) {
          if (phase === undefined) [name, started] = [model, Date.now()];
          phase = progress.phase;
          this.log(own.text);
        }
        for (const reporter of this.reporters) reporter.report(own.text);
      },
      end: (opened) => {
        if (phase === 'importing' && opened) this.log(`${name}: imported into the cache in ${formatDuration((Date.now() - started) / 1000)}`);
        if (this.current === own) this.current = undefined;
      },
    };
  }

  /** Reports imports to `reporter` (starting with the one under way, if any) until the returned function is called. */
  show(reporter: WorkDoneProgressReporter): () => void {
    if (this.reporters.has(reporter)) return () => undefined; // shown already, by a caller that removes it
    if (this.current) reporter.report(this.current.text);
    this.reporters.add(reporter);
    return () => this.reporters.delete(reporter);
  }
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/** "downloading hf:o/n: onnx/model.onnx 3.1 of 11.0 MB" */
export function downloadText(model: string, p: DownloadProgress): string {
  const size = p.total !== undefined ? ` (${mb(p.total)} MB)` : '';
  switch (p.phase) {
    case 'checking': return `${model}: checking ${p.file}…`;
    case 'downloading': return `downloading ${model}: ${p.file} ${mb(p.received)}${p.total !== undefined ? ` of ${mb(p.total)}` : ''} MB`;
    case 'verifying': return `${model}: verifying ${p.file}${size}…`;
    case 'cached': return `${model}: ${p.file} already downloaded${p.unverified ? ` (${p.message})` : ''}`;
    case 'retrying': return `${model}: retrying ${p.file}${p.message ? ` (${p.message})` : ''}…`;
    case 'offline': return `${model}: ${p.message ?? 'using the cache'}`;
    case 'done': return `${model}: ${p.file} downloaded${size}${p.unverified ? `, ${p.message}` : ', verified'}`;
  }
}

/** "importing SmolLM2-135M-Instruct.Q4_1.gguf: 40%": a GGUF model's one-time import into the cache. */
export function importText(model: string, p: GgufImportProgress): string {
  switch (p.phase) {
    case 'hashing': return `hashing ${model} (${mb(p.total)} MB)…`;
    case 'importing': return `importing ${model}: ${p.total > 0 ? Math.floor((100 * p.done) / p.total) : 0}%`;
    case 'cached': return `${model}: already imported`;
  }
}

function sameIdentity(a: Identity, b: Identity): boolean {
  return a.name === b.name && a.fingerprint === b.fingerprint;
}

function readRemembered(file: string | undefined): Map<string, Identity> {
  if (!file || !existsSync(file)) return new Map();
  try {
    const entries = Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Record<string, Identity>);
    return new Map(entries.filter(([, v]) => typeof v?.name === 'string' && typeof v?.fingerprint === 'string').map(([k, v]) => [k, { name: v.name, fingerprint: v.fingerprint }]));
  } catch {
    return new Map(); // unreadable: lookups fill it again
  }
}

/** A file's modification time, 0 when it does not exist: part of the stamps that say when to read again. */
export function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}
