/**
 * The scoring worker (bundled as dist/scoring-worker.js): runs the engine off the language server's
 * message loop. Score requests run one at a time in arrival order and stream one message per record, in dataset
 * order (against a serving engine several records are in flight at once; a local model scores one at a time);
 * a cancel aborts a serving backend's requests in flight at once (a local model stops after its current
 * batch of anchors), and the records scored before it are kept. Model identification and anchor choice
 * are answered at once, between the records of a running score. The model and the prepared anchors (zero-shot scores) are
 * kept between requests, so a one-record rescore after an edit costs one prefix pass.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { chooseKMeans, chooseRandom } from '../records/anchors';
import type { DatasetRecord } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import { readModelFolder } from '../model/folder';
import { DEFAULT_RECORDS_IN_FLIGHT, type PreparedAnchors, type ScoringBackend } from '../scoring/backend';
import { LocalBackend } from '../scoring/local';
import { agreement, formatAgreement, modelLabel } from '../selection/agree';
import { excludedAnchors, scoreCandidate, scoreRecords, type CandidateScore } from '../scoring/golden';
import { isGgufPath, type GgufImportProgress } from '../model/gguf/import';
import { parseHubSpec, type DownloadProgress } from '../model/hub';
import { openBackend } from '../scoring/open';
import { chatTemplateFor as templateForBackend } from '../scoring/template-choice';
import { NoChatTemplateError, resolveChatTemplate, type ChatTemplate } from '../scoring/chat-template';
import { CostProbe } from '../scoring/cost-estimate';
import type { Candidate, ModelOptions, WorkerReply, WorkerRequest } from './worker-messages';

const port = parentPort;
if (!port) throw new Error('scoring-worker.js must run as a worker thread of the Nuggets server');

let backend: { key: string; backend: ScoringBackend } | undefined;
let prepared: { key: string; anchors: PreparedAnchors } | undefined;
/**
 * Requests a cancel stops, by id: an identify in flight (it may be downloading), and a score run or a model
 * comparison, queued or running (its requests to a serving endpoint are aborted).
 */
const cancellable = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();
/** Short jobs under way (a model lookup may be opening a session): a close waits for them. */
const running = new Set<Promise<void>>();

function reply(message: WorkerReply): void {
  port!.postMessage(message);
}

port.on('message', (request: WorkerRequest) => {
  if (request.kind === 'cancel') {
    cancellable.get(request.target)?.abort();
    return;
  }
  if (request.kind === 'close') {
    void close();
    return;
  }
  const fail = (err: unknown): void => {
    reply({ id: request.id, kind: 'error', message: err instanceof NuggetsError ? err.describe() : String((err as Error)?.stack ?? err), userError: err instanceof NuggetsError });
  };
  if (request.kind === 'score' || request.kind === 'agree') {
    const abort = new AbortController();
    cancellable.set(request.id, abort);
    const run = request.kind === 'score' ? () => score(request, abort.signal) : () => agree(request, abort.signal);
    queue = queue.then(run).catch(fail).finally(() => cancellable.delete(request.id));
    return;
  }
  // Short jobs do not wait for a scoring run to end: they run between its records.
  const job = handle(request).catch(fail);
  running.add(job);
  void job.finally(() => running.delete(job));
});

/**
 * Ends the worker without ONNX Runtime's teardown racing a pass: terminating a thread while a session runs (or
 * merely holds) native work aborts the whole process. Jobs are cancelled, the pass under way ends, the sessions
 * are released here, and the port is closed, so that the thread ends with nothing left to tear down.
 */
async function close(): Promise<void> {
  for (const abort of cancellable.values()) abort.abort();
  await queue.catch(() => undefined);
  while (running.size > 0) await Promise.allSettled([...running]);
  const old = backend;
  backend = undefined;
  prepared = undefined;
  await old?.backend.dispose().catch(() => undefined);
  port!.close();
}

/**
 * Both models score the same records one after the other (each replacing the kept backend), then compare.
 * A cancel (`signal`) stops the download, the requests in flight or the current record, and fails the request.
 */
async function agree(request: Extract<WorkerRequest, { kind: 'agree' }>, signal: AbortSignal): Promise<void> {
  const records = request.records.map(asRecord);
  const scores: CandidateScore[][] = [];
  const names: string[] = [];
  for (const [i, model] of request.models.entries()) {
    const opened = await backendFor(model, request.modelOptions[i]!, { signal });
    const anchors = await opened.prepareAnchors(request.anchors, request.options, signal);
    const scored: CandidateScore[] = [];
    await scoreRecords(opened, anchors, records, (score) => scored.push(score), signal);
    if (signal.aborted) throw new NuggetsError('Compare Models was cancelled.');
    scores.push(scored);
    names.push(modelLabel(opened.identity.name, request.modelOptions[i]!.variant));
  }
  const pair: [string, string] = [names[0]!, names[1]!];
  const result = agreement(records, scores[0]!, scores[1]!, request.threshold, pair);
  const constant = scores.map((s) => s.every((score) => score.goldenScore === s[0]?.goldenScore)) as [boolean, boolean];
  reply({ id: request.id, kind: 'agreement', agreement: result, report: formatAgreement(result, pair), names: pair, constant });
}

async function handle(request: Exclude<WorkerRequest, { kind: 'cancel' | 'close' | 'score' | 'agree' }>): Promise<void> {
  switch (request.kind) {
    case 'identify': {
      if (existsSync(request.model) && !isGgufPath(request.model)) {
        const folder = readModelFolder(request.model, request.options.variant ?? 'fp32');
        reply({ id: request.id, kind: 'identity', name: folder.name, fingerprint: folder.fingerprint });
        return;
      }
      // Not a folder (a hub model or serving endpoint, as openBackend understands them): the backend knows its identity.
      const abort = new AbortController();
      cancellable.set(request.id, abort);
      try {
        const hub = parseHubSpec(request.model) !== undefined;
        const importing = throttled(
          ({ model, progress }: { model: string; progress: GgufImportProgress }) => reply({ id: request.id, kind: 'import', model, progress }),
          ({ model, progress }) => (progress.phase === 'importing' && progress.done < progress.total ? model : undefined),
        );
        let opened: ScoringBackend;
        try {
          opened = await backendFor(request.model, request.options, {
            offline: hub && !request.download,
            signal: abort.signal,
            onDownload: throttled((progress) => reply({ id: request.id, kind: 'download', progress }), (p) => (p.phase === 'downloading' ? p.file : undefined)),
            // The import runs synchronously in this thread; its messages reach the main thread while it goes on.
            onImport: (model, progress) => importing({ model, progress }),
          });
        } catch (err) {
          if (hub && !request.download && !abort.signal.aborted) {
            reply({ id: request.id, kind: 'notDownloaded', message: err instanceof NuggetsError ? err.describe() : String(err) });
            return;
          }
          throw err;
        }
        reply({ id: request.id, kind: 'identity', name: opened.identity.name, fingerprint: opened.identity.fingerprint });
      } finally {
        cancellable.delete(request.id);
      }
      return;
    }
    case 'chatTemplate': {
      try {
        const template = await chatTemplateFor(request.model, request.options, request.name);
        reply({ id: request.id, kind: 'chatTemplate', text: template.text, source: template.source, key: template.key, specialTokens: template.specialTokens });
      } catch (err) {
        if (!(err instanceof NoChatTemplateError)) throw err;
        reply({ id: request.id, kind: 'noChatTemplate', message: err.message });
      }
      return;
    }
    case 'chooseAnchors': {
      const records = request.records.map(asRecord);
      const chosen = request.method === 'kmeans' ? chooseKMeans(records, request.count, request.seed) : chooseRandom(records, request.count, request.seed);
      reply({ id: request.id, kind: 'anchors', indices: chosen.map((r) => r.index) });
    }
  }
}

interface OpenOptions {
  offline?: boolean;
  signal?: AbortSignal;
  onDownload?: (progress: DownloadProgress) => void;
  onImport?: (model: string, progress: GgufImportProgress) => void;
}

/**
 * The backend for `model`, opened once and kept while the model, its variant, cache and thread count
 * stay the same. Credentials are not part of the key (a new token is used by the next download); where the
 * serving key may go is, since the backend decides that when it opens.
 */
async function backendFor(model: string, options: ModelOptions, open: OpenOptions = {}): Promise<ScoringBackend> {
  const { key, threads } = backendKey(model, options);
  if (!backend || backend.key !== key) {
    const old = backend;
    backend = undefined;
    prepared = undefined;
    await old?.backend.dispose();
    const opened = await openBackend(model, { ...options, threads, onWarning: (message) => reply({ id: 0, kind: 'warning', message }), ...open });
    backend = { key, backend: opened };
  }
  return backend.backend;
}

/**
 * The chat template `name` names for the model, resolved as the command line resolves --template
 * (chat-template.ts resolveChatTemplate). A model folder's own template is read from its folder without opening
 * the model; any other model (hub, GGUF, a serving engine) is opened, as scoring opens it. A serving engine's own
 * template is not known (it does not say it): chatml or a .jinja file is named instead.
 */
async function chatTemplateFor(model: string, options: ModelOptions, name: string): Promise<ChatTemplate> {
  if (existsSync(model) && !isGgufPath(model)) {
    const configFile = join(model, 'tokenizer_config.json');
    const tokenizerConfig = existsSync(configFile) ? (JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>) : {};
    return resolveChatTemplate(name, model, tokenizerConfig);
  }
  const opened = await backendFor(model, options, { offline: parseHubSpec(model) !== undefined });
  if (!(opened instanceof LocalBackend) && name === 'chat') {
    // A serving engine does not say its chat template: the editor offers ChatML, or a .jinja file, instead.
    throw new NoChatTemplateError(`${model} is a serving engine, which does not say its own chat template.`, 'Set nuggets.template to chatml or to a .jinja file (the served model\'s chat template).');
  }
  return templateForBackend(name, opened);
}

/** Scores the request's records until `signal` aborts; the run is cancelled when it stopped before its last record. */
async function score(request: Extract<WorkerRequest, { kind: 'score' }>, signal: AbortSignal): Promise<void> {
  let scored = 0;
  try {
    // The server identified the model first, so a hub model is in the cache by now: never download here.
    // Opening a model (its ONNX Runtime session) can take a while: the status bar says so.
    if (backend?.key !== backendKey(request.model, request.modelOptions).key) reply({ id: request.id, kind: 'stage', stage: 'opening the model (ONNX Runtime session)…' });
    const opened = await backendFor(request.model, request.modelOptions, { offline: parseHubSpec(request.model) !== undefined });
    // A probe times each record's passes (cost-estimate.ts): its score reply carries them.
    const timer = request.probe ? new CostProbe() : undefined;
    const scoring = timer ? timer.wrap(opened) : opened;
    const options = { ...request.options, ...(request.template ? { chatTemplate: await chatTemplateFor(request.model, request.modelOptions, request.template) } : {}) };
    // The prepared anchors carry the options they were prepared with, which the candidates' passes read (turns too).
    const preparedKey = JSON.stringify([request.anchorsHash, options.maxAnchorTokens, options.separator, options.batchSize, options.chatTemplate?.key ?? null, options.turns ?? 'last']);
    if (!prepared || prepared.key !== preparedKey) {
      reply({ id: request.id, kind: 'stage', stage: `scoring the ${request.anchors.length} anchors alone (zero-shot)…` });
      const started = Date.now();
      prepared = { key: preparedKey, anchors: await scoring.prepareAnchors(request.anchors, options, signal) };
      reply({ id: request.id, kind: 'prepared', seconds: (Date.now() - started) / 1000, excluded: excludedAnchors(prepared.anchors, request.options.maxAnchorTokens) });
    } else {
      reply({ id: request.id, kind: 'prepared', seconds: 0, excluded: excludedAnchors(prepared.anchors, request.options.maxAnchorTokens) });
    }
    const replyScore = (score: CandidateScore): void => {
      reply({ id: request.id, kind: 'score', score, ...(timer ? { probe: timer.take(score) } : {}) });
      scored++;
    };
    if (opened instanceof LocalBackend) {
      for (const candidate of request.records) {
        // Yield to the message queue so that a cancel sent meanwhile is seen before the next record.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (signal.aborted) break;
        replyScore(await scoreCandidate(scoring, prepared.anchors, asRecord(candidate), undefined, signal));
      }
    } else {
      // A serving engine gets several records at once (their requests are awaited, so a cancel is seen at once);
      // scores are handed over in dataset order, and a cancel keeps every record handed over before it.
      await scoreRecords(scoring, prepared.anchors, request.records.map(asRecord), replyScore, signal, undefined, request.recordsInFlight ?? DEFAULT_RECORDS_IN_FLIGHT);
    }
  } catch (err) {
    // Aborted requests reject their record's score: that record stays unscored, the ones before it are kept.
    if (!signal.aborted) throw err;
  }
  reply({ id: request.id, kind: 'done', cancelled: scored < request.records.length });
}

/** What the kept backend is kept by (backendFor), and the thread count it opens with. */
function backendKey(model: string, options: ModelOptions): { key: string; threads: number } {
  const threads = options.threads ? options.threads : Math.max(1, availableParallelism() - 1);
  return { key: JSON.stringify([model, threads, options.variant ?? 'fp32', options.cacheDir, options.apiKeyOrigins]), threads };
}

/**
 * Byte counts arrive per network chunk, and an import's per tensor: pass on at most ten a second of one
 * stream (`streamOf`: a file downloading, a model importing) and every other message (undefined: a change
 * of phase, the last bytes of an import).
 */
function throttled<P>(send: (progress: P) => void, streamOf: (progress: P) => string | undefined): (progress: P) => void {
  let last = { stream: undefined as string | undefined, at: 0 };
  return (progress) => {
    const now = Date.now();
    const stream = streamOf(progress);
    if (stream !== undefined && stream === last.stream && now - last.at < 100) return;
    last = { stream, at: now };
    send(progress);
  };
}

function asRecord(c: Candidate): DatasetRecord {
  return { ...c, start: 0, end: 0, original: {} };
}
