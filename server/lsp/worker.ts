/**
 * The main thread's side of the scoring worker: typed calls that resolve with the worker's replies.
 * A worker that dies (native crash, out of memory) fails the calls in flight and is started again
 * on the next call.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Agreement } from '../selection/agree';
import type { Example } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import type { ScoringOptions } from '../scoring/backend';
import { ChatTemplate } from '../scoring/chat-template';
import type { ProbeRecord } from '../scoring/cost-estimate';
import type { CandidateScore } from '../scoring/golden';
import type { GgufImportProgress } from '../model/gguf/import';
import type { DownloadProgress } from '../model/hub';
import type { Candidate, ModelOptions, WorkerReply, WorkerRequest } from './worker-messages';

/** Two models compared: the figures, the report, the models' names, and whether each scored every record alike. */
export interface AgreeReply {
  agreement: Agreement;
  report: string;
  names: [string, string];
  constant: [boolean, boolean];
}

type Listener = (reply: WorkerReply) => void;
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export interface ScoreJob {
  model: string;
  modelOptions: ModelOptions;
  anchorsHash: string;
  anchors: Example[];
  /** Without its chatTemplate: the worker resolves `template` itself. */
  options: Omit<ScoringOptions, 'chatTemplate'>;
  records: Candidate[];
  /** The chat template to score through ('chat', 'chatml', a .jinja path); absent: the paper's template. */
  template?: string;
  /** Time each record's passes (a run's probe): onScore gets them. */
  probe?: boolean;
}

export interface ScoreCallbacks {
  /** `excluded`: anchors left without a response token, which golden scores do not count. */
  onPrepared?(excluded: number[]): void;
  onScore(score: CandidateScore, probe?: ProbeRecord): void;
  /** A step before the first record (opening the model, scoring the anchors alone). */
  onStage?(stage: string): void;
}

export class ScoringWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly listeners = new Map<number, Listener>();

  constructor(
    /** Told what the user should know when the worker opens a model (an API key withheld from an endpoint). */
    private readonly onWarning: (message: string) => void,
    private readonly scriptPath: string = join(__dirname, 'scoring-worker.js'),
  ) {}

  private start(): Worker {
    if (this.worker) return this.worker;
    // The worker's stdout is piped here and sent to stderr: with --stdio, stdout is the LSP stream.
    const worker = new Worker(this.scriptPath, { stdout: true });
    worker.stdout.pipe(process.stderr);
    worker.on('message', (reply: WorkerReply) => (reply.kind === 'warning' ? this.onWarning(reply.message) : this.listeners.get(reply.id)?.(reply)));
    const fail = (message: string): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const [id, listener] of [...this.listeners]) listener({ id, kind: 'error', message, userError: false });
    };
    worker.on('error', (err) => fail(`The scoring worker failed: ${err.message}`));
    worker.on('exit', (code) => fail(`The scoring worker exited (code ${code}).`));
    this.worker = worker;
    return worker;
  }

  private call<T>(request: WithoutId<WorkerRequest>, onReply: (reply: WorkerReply, finish: (value: T) => void) => void): { id: number; result: Promise<T> } {
    const id = this.nextId++;
    const result = new Promise<T>((resolve, reject) => {
      this.listeners.set(id, (reply) => {
        if (reply.kind === 'error') {
          this.listeners.delete(id);
          reject(reply.userError ? new NuggetsError(reply.message) : new Error(reply.message));
          return;
        }
        try {
          onReply(reply, (value) => {
            this.listeners.delete(id);
            resolve(value);
          });
        } catch (err) {
          // The caller could not take a reply (a score that cannot be stored: a full disk): the job stops with its error.
          this.listeners.delete(id);
          this.cancel(id);
          reject(err);
        }
      });
    });
    this.start().postMessage({ ...request, id });
    return { id, result };
  }

  /**
   * The model's name and fingerprint (part of every score's key). A hub model is looked up in the cache
   * only, unless `download` is given: then it is fetched, reporting progress, until `signal` aborts.
   * Resolves with `notDownloaded` when a cache-only lookup found nothing usable. A GGUF model is imported
   * into the cache the first time, download or not, telling `onImport` how far it got.
   */
  identify(
    model: string, options: ModelOptions, download?: { onProgress(progress: DownloadProgress): void; signal: AbortSignal },
    onImport?: (model: string, progress: GgufImportProgress) => void,
  ): Promise<{ name: string; fingerprint: string } | { notDownloaded: string }> {
    const { id, result } = this.call<{ name: string; fingerprint: string } | { notDownloaded: string }>(
      { kind: 'identify', model, options, download: download !== undefined },
      (reply, finish) => {
        if (reply.kind === 'identity') finish({ name: reply.name, fingerprint: reply.fingerprint });
        else if (reply.kind === 'notDownloaded') finish({ notDownloaded: reply.message });
        else if (reply.kind === 'download') download?.onProgress(reply.progress);
        else if (reply.kind === 'import') onImport?.(reply.model, reply.progress);
      },
    );
    return this.cancelledBy(download?.signal, id, result);
  }

  /** The chat template `name` resolves to for the model (chat-template.ts resolveChatTemplate); `noChatTemplate` when the model has none of its own. */
  chatTemplate(model: string, options: ModelOptions, name: string): Promise<ChatTemplate | { noChatTemplate: string }> {
    return this.call<ChatTemplate | { noChatTemplate: string }>({ kind: 'chatTemplate', model, options, name }, (reply, finish) => {
      if (reply.kind === 'chatTemplate') finish(new ChatTemplate(reply.text, reply.source, reply.key, reply.specialTokens));
      else if (reply.kind === 'noChatTemplate') finish({ noChatTemplate: reply.message });
    }).result;
  }

  chooseAnchors(method: 'random' | 'kmeans', count: number, seed: number, records: Candidate[]): Promise<number[]> {
    return this.call<number[]>({ kind: 'chooseAnchors', method, count, seed, records }, (reply, finish) => {
      if (reply.kind === 'anchors') finish(reply.indices);
    }).result;
  }

  /** Two models' scores of the same records compared (queued after any running score); rejects once `signal` aborts. */
  agree(request: Omit<Extract<WorkerRequest, { kind: 'agree' }>, 'id' | 'kind'>, signal: AbortSignal): Promise<AgreeReply> {
    const { id, result } = this.call<AgreeReply>({ kind: 'agree', ...request }, (reply, finish) => {
      if (reply.kind === 'agreement') finish({ agreement: reply.agreement, report: reply.report, names: reply.names, constant: reply.constant });
    });
    return this.cancelledBy(signal, id, result);
  }

  /** Scores the job's records in order; resolves with whether it was cancelled (via `signal`). */
  score(job: ScoreJob, callbacks: ScoreCallbacks, signal: AbortSignal): Promise<{ cancelled: boolean }> {
    const { id, result } = this.call<{ cancelled: boolean }>({ kind: 'score', ...job }, (reply, finish) => {
      if (reply.kind === 'prepared') callbacks.onPrepared?.(reply.excluded);
      else if (reply.kind === 'score') callbacks.onScore(reply.score, reply.probe);
      else if (reply.kind === 'stage') callbacks.onStage?.(reply.stage);
      else if (reply.kind === 'done') finish({ cancelled: reply.cancelled });
    });
    return this.cancelledBy(signal, id, result);
  }

  /** Tells the worker to stop request `id`. */
  private cancel(id: number): void {
    this.worker?.postMessage({ id: this.nextId++, kind: 'cancel', target: id } satisfies WorkerRequest);
  }

  /** The worker is told to stop request `id` when `signal` aborts (at once if it has). */
  private cancelledBy<T>(signal: AbortSignal | undefined, id: number, result: Promise<T>): Promise<T> {
    if (!signal) return result;
    const cancel = (): void => this.cancel(id);
    if (signal.aborted) cancel();
    else signal.addEventListener('abort', cancel, { once: true });
    return result.finally(() => signal.removeEventListener('abort', cancel));
  }

  /**
   * Ends the worker thread: it is asked to close (its jobs cancelled, the pass under way ended, its sessions
   * released) and waited for. `terminate()` while ONNX Runtime holds a session, or runs a pass, aborts the whole
   * process in the runtime's teardown (a Napi::Error thrown at exit); it is the fallback only for a worker that
   * has not ended after `waitMs` (a pass that does not end).
   */
  async dispose(waitMs = 20_000): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ id: this.nextId++, kind: 'close' } satisfies WorkerRequest);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), waitMs)));
    const ended = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (ended === 'late') await worker.terminate();
  }
}
