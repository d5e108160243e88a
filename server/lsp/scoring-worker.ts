/**
 * The scoring worker (bundled as dist/scoring-worker.js): runs the engine off the language server's
 * message loop. Score requests run one at a time in arrival order, stream one message per record, and
 * stop between records when cancelled; model identification and anchor choice are answered at once,
 * between the records of a running score. The model and the prepared anchors (zero-shot scores) are
 * kept between requests, so a one-record rescore after an edit costs one prefix pass.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { chooseKMeans, chooseRandom } from '../anchors';
import type { DatasetRecord } from '../dataset';
import { NuggetsError } from '../errors';
import { readModelFolder } from '../model/folder';
import type { PreparedAnchors, ScoringBackend } from '../scoring/backend';
import { scoreCandidate } from '../scoring/golden';
import { openBackend } from '../scoring/open';
import type { Candidate, WorkerReply, WorkerRequest } from './worker-messages';

const port = parentPort;
if (!port) throw new Error('scoring-worker.js must run as a worker thread of the Nuggets server');

let backend: { model: string; threads: number; backend: ScoringBackend } | undefined;
let prepared: { key: string; anchors: PreparedAnchors } | undefined;
const cancelled = new Set<number>();
let queue: Promise<void> = Promise.resolve();

function reply(message: WorkerReply): void {
  port!.postMessage(message);
}

port.on('message', (request: WorkerRequest) => {
  if (request.kind === 'cancel') {
    cancelled.add(request.target);
    return;
  }
  const fail = (err: unknown): void => {
    reply({ id: request.id, kind: 'error', message: err instanceof NuggetsError ? err.describe() : String((err as Error)?.stack ?? err), userError: err instanceof NuggetsError });
  };
  if (request.kind === 'score') {
    queue = queue.then(() => score(request)).catch(fail);
    return;
  }
  // Short jobs do not wait for a scoring run to end: they run between its records.
  void handle(request).catch(fail);
});

async function handle(request: Exclude<WorkerRequest, { kind: 'cancel' | 'score' }>): Promise<void> {
  switch (request.kind) {
    case 'identify': {
      if (existsSync(request.model)) {
        const folder = readModelFolder(request.model);
        reply({ id: request.id, kind: 'identity', name: folder.name, fingerprint: folder.fingerprint });
      } else {
        // Not a folder (a hub model or serving endpoint, as openBackend understands them): the backend knows its identity.
        const { identity } = await backendFor(request.model, request.threads);
        reply({ id: request.id, kind: 'identity', name: identity.name, fingerprint: identity.fingerprint });
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

/** The backend for `model`, opened once and kept while the model and thread count stay the same. */
async function backendFor(model: string, requestedThreads: number): Promise<ScoringBackend> {
  const threads = requestedThreads > 0 ? requestedThreads : Math.max(1, availableParallelism() - 1);
  if (!backend || backend.model !== model || backend.threads !== threads) {
    const old = backend;
    backend = undefined;
    prepared = undefined;
    await old?.backend.dispose();
    backend = { model, threads, backend: await openBackend(model, { intraOpThreads: threads }) };
  }
  return backend.backend;
}

async function score(request: Extract<WorkerRequest, { kind: 'score' }>): Promise<void> {
  const scoring = await backendFor(request.model, request.threads);
  const preparedKey = JSON.stringify([request.anchorsHash, request.options.maxAnchorTokens, request.options.separator, request.options.batchSize]);
  if (!prepared || prepared.key !== preparedKey) {
    const started = Date.now();
    prepared = { key: preparedKey, anchors: await scoring.prepareAnchors(request.anchors, request.options) };
    reply({ id: request.id, kind: 'prepared', seconds: (Date.now() - started) / 1000 });
  } else {
    reply({ id: request.id, kind: 'prepared', seconds: 0 });
  }
  for (const candidate of request.records) {
    // Yield to the message queue so that a cancel sent meanwhile is seen before the next record.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (cancelled.delete(request.id)) {
      reply({ id: request.id, kind: 'done', cancelled: true });
      return;
    }
    reply({ id: request.id, kind: 'score', score: await scoreCandidate(scoring, prepared.anchors, asRecord(candidate)) });
  }
  cancelled.delete(request.id);
  reply({ id: request.id, kind: 'done', cancelled: false });
}

function asRecord(c: Candidate): DatasetRecord {
  return { ...c, start: 0, end: 0, original: {} };
}
