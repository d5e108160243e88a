/**
 * Which model scores, as the scoring worker identifies it (name and fingerprint): the model part of every
 * score's key. A lookup is kept while the model folder and settings stay as they were; a hub model is
 * looked up in the cache, and downloaded only for a Score Dataset run.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkDoneProgressReporter } from 'vscode-languageserver/node';
import { untilAborted } from '../abort';
import type { DownloadProgress } from '../model/hub';
import type { ServerSettings } from '../protocol';
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

/** How the worker opens the model: the settings' variant, threads and credentials, and the cache in extension storage. */
export function modelOptions(settings: ServerSettings, storagePath: string): ModelOptions {
  const { threads, variant, secrets } = settings;
  // An API key without its origins goes nowhere (never to where $NUGGETS_API_KEY_ORIGINS would send it).
  return { threads, cacheDir: join(storagePath, 'cache'), ...(variant ? { variant } : {}), ...secrets, ...(secrets?.apiKey ? { apiKeyOrigins: secrets.apiKeyOrigins ?? [] } : {}) };
}

export class ModelIdentity {
  private lookup: { stamp: string; result: Promise<Identified> } | undefined;
  /** Why the model cannot be used, after the last lookup failed; undefined after one succeeded. */
  error: string | undefined;

  constructor(private readonly worker: ScoringWorker, private readonly log: (message: string) => void) {}

  /**
   * The model's identity under `settings`. A hub model is looked up in the cache only, unless `download` is
   * given (Score Dataset): then a model missing from the cache, or one whose lookup failed, is fetched.
   */
  async of(settings: ServerSettings, options: ModelOptions, download?: DownloadRun): Promise<Identity | undefined> {
    const { model } = settings;
    if (!settings.scoringAllowed && !existsSync(model)) {
      // Untrusted: a model folder is only read and hashed; anything else (hub, endpoint) would be opened.
      this.error = 'Scoring is disabled in untrusted workspaces.';
      return undefined;
    }
    const stamp = [model, options.variant ?? 'fp32', mtimeOf(model), ...['config.json', 'tokenizer.json', 'model.onnx', 'onnx'].map((f) => mtimeOf(join(model, f)))].join('|');
    const identify = (fetch?: DownloadRun): Promise<Identified> => this.worker.identify(model, options, fetch && {
      signal: fetch.signal,
      onProgress: (progress) => fetch.reporter?.report(downloadText(model, progress)),
    }).then(
      (found) => ('notDownloaded' in found ? { failure: `${model} is not downloaded yet: Nuggets: Score Dataset downloads it.`, retry: true } : { identity: found }),
      (err: unknown) => {
        this.log(`cannot use the model: ${(err as Error).message}`);
        return { failure: (err as Error).message, retry: !existsSync(model) };
      },
    );
    if (this.lookup?.stamp !== stamp) this.lookup = { stamp, result: identify() };
    // A run's Cancel stops its wait at once, even for a lookup that hangs (a serving endpoint that does not answer).
    let found = await untilAborted(this.lookup.result, download?.signal);
    if (found && 'failure' in found && found.retry && download && !download.signal.aborted && this.lookup.stamp === stamp) {
      // Not in the cache, or the hub or endpoint failed earlier: try again, now allowed to download.
      this.lookup = { stamp, result: identify(download) };
      found = await untilAborted(this.lookup.result, download.signal);
    }
    if (!found) return undefined; // cancelled
    if ('identity' in found) {
      this.error = undefined;
      return found.identity;
    }
    this.error = found.failure;
    return undefined;
  }
}

/** "downloading hf:o/n: onnx/model.onnx 3.1 of 11.0 MB" */
export function downloadText(model: string, p: DownloadProgress): string {
  const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
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

/** A file's modification time, 0 when it does not exist: part of the stamps that say when to read again. */
export function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}
