/**
 * The built language server scoring through a serving endpoint (the vLLM stand-in, test/support/vllm-server.ts,
 * computing with the demo model) whose requests hang: Cancel must end the run within seconds, not after the
 * HTTP timeout (five minutes by default), keep the records scored before it, and leave the model usable; the
 * same for Compare Models, and for a run still waiting on a model lookup that hangs. Several records in flight at
 * once (nuggets.recordsInFlight, default 4): the stand-in sees them together, and the stored scores are the
 * one-at-a-time ones, in dataset order.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CancellationTokenSource, LSPErrorCodes, type ResponseError } from 'vscode-languageserver-protocol/node';
import { writeAnchors } from '../../server/records/anchors';
import * as protocol from '../../server/protocol';
import { readScores } from '../../server/records/store';
import { demoModel, scratchDir, sharedRecords } from '../helpers';
import { StallingServer } from '../support/stalling-server';
import { FakeVllm } from '../support/vllm-server';
import { TestClient } from './lsp-client';

const RECORDS = 8;
const work = scratchDir('lsp-serving');
const storagePath = join(work, 'storage');
const datasetPath = join(work, 'gsm8k-8.alpaca.json');
const anchorsPath = join(work, 'anchors.json');
const uri = pathToFileURL(datasetPath).toString();

let vllm: FakeVllm;
let client: TestClient;

/** The score lines stored for the dataset (one scores file: one model and anchor set). */
function storedScores(): number {
  const dir = join(storagePath, 'scores');
  return readdirSync(dir).filter((f) => f.endsWith('.jsonl')).reduce((n, f) => n + readScores(join(dir, f)).scores.size, 0);
}

/** The stored score lines of the one scores file under `storage`, in file order: index, golden score and deltas. */
function storedLines(storage: string): { index: number; golden: number; deltas: number[] }[] {
  const dir = join(storage, 'scores');
  const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  assert.equal(files.length, 1, 'one scores file');
  return readFileSync(join(dir, files[0]!), 'utf8').split('\n').slice(1).filter((l) => l !== '').map((l) => {
    const line = JSON.parse(l) as { index: number; golden_score: number; deltas: number[] };
    return { index: line.index, golden: line.golden_score, deltas: line.deltas };
  });
}

before(async () => {
  const records = sharedRecords('gsm8k-train.alpaca.json', [...Array(RECORDS + 3).keys()]);
  const text = JSON.stringify(records.slice(0, RECORDS).map((r) => r.original), null, 2);
  writeFileSync(datasetPath, text);
  writeAnchors(anchorsPath, records.slice(RECORDS));
  vllm = await FakeVllm.start(demoModel, { servedModel: 'demo' });
  // One record at a time, so that the hangs below fall on a known record (the records-in-flight test has its own client).
  const settings: protocol.ServerSettings = { model: vllm.url, anchors: anchorsPath, maxAnchorTokens: 96, batchSize: 4, threads: 1, scoringAllowed: true, recordsInFlight: 1 };
  client = await TestClient.start({ storagePath, settings }, { NUGGETS_API_KEY: undefined, OPENAI_API_KEY: undefined });
  await client.open(uri, text);
  await client.waitForScores(uri, (p) => p.full, 'the scores of the opened file');
});

after(async () => {
  await client?.stop().catch(() => undefined);
  await vllm?.close();
});

test('Cancel during a hung serving request ends the run within seconds; the records scored before it are kept and the next run scores the rest', { timeout: 60_000 }, async () => {
  // A record takes two completions requests (its passes, then its anchors), the anchors' zero-shot one:
  // the fourth record's requests never get an answer.
  vllm.stallAfter = vllm.requests + 1 + 3 * 2;
  const from = client.received.length;
  const workDoneToken = randomUUID();
  client.listenProgress(workDoneToken);
  const cancel = new CancellationTokenSource();
  const scoring = client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri }, workDoneToken }, cancel.token);
  while (vllm.stalled === 0) await new Promise((r) => setTimeout(r, 20));
  const cancelledAt = performance.now();
  cancel.cancel();
  const stopped = await scoring;
  const seconds = (performance.now() - cancelledAt) / 1000;
  process.stdout.write(`# cancelled ${seconds.toFixed(2)} s after Cancel, ${stopped.scoredNow} of ${RECORDS} records kept\n`);
  assert.equal(stopped.cancelled, true);
  assert.ok(seconds < 3, `the run ended ${seconds.toFixed(2)} s after Cancel`);
  assert.equal(stopped.scoredNow, 3, 'the records answered before the hang');
  const partials = client.scores(uri).slice(-stopped.scoredNow);
  assert.ok(partials.every((p) => !p.full && p.records[0]!.score !== undefined), 'each kept record was shown with its score');
  assert.equal(storedScores(), stopped.scoredNow, 'each kept record is stored');
  const status = client.received.slice(from).filter((r) => r.method === protocol.scoringStatusNotification.method).at(-1)!.params as protocol.ScoringStatus;
  assert.equal(status.phase, 'cancelled');

  // The same worker and backend score the rest once the endpoint answers again.
  vllm.stallAfter = Infinity;
  const rest = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
  assert.equal(rest.cancelled, false);
  assert.equal(rest.scoredNow, RECORDS - stopped.scoredNow);
  assert.equal(rest.scored, RECORDS);
  assert.equal(storedScores(), RECORDS);
});

test('against a serving endpoint the worker keeps 4 records in flight by default: the stand-in sees 4 requests at once, the stored scores equal the one-at-a-time ones in dataset order, and Cancel mid-run keeps the records completed before it', { timeout: 90_000 }, async () => {
  await client.waitForScores(uri, (p) => p.scored === RECORDS, 'every record scored one at a time');
  const oneAtATime = storedLines(storagePath);
  const storage = join(work, 'storage-in-flight');
  const settings: protocol.ServerSettings = { model: vllm.url, anchors: anchorsPath, maxAnchorTokens: 96, batchSize: 4, threads: 1, scoringAllowed: true };
  const other = await TestClient.start({ storagePath: storage, settings }, { NUGGETS_API_KEY: undefined, OPENAI_API_KEY: undefined });
  try {
    await other.open(uri, readFileSync(datasetPath, 'utf8'));
    await other.waitForScores(uri, (p) => p.full, 'the scores of the opened file');
    // Each answer held a while, so that the records started together are seen together.
    vllm.delayMs = 150;
    // Requests the hangs above left held count as in flight for good: the run's own are those above them.
    const held = vllm.inFlight;
    vllm.maxInFlight = 0;
    const all = await other.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
    vllm.delayMs = 0;
    assert.equal(all.scoredNow, RECORDS);
    process.stdout.write(`# ${vllm.maxInFlight - held} completions requests in flight at once (nuggets.recordsInFlight default 4)\n`);
    assert.equal(vllm.maxInFlight - held, 4, 'one request of each of 4 records at once (a record\'s own requests follow one another)');
    const inFlight = storedLines(storage);
    assert.deepEqual(inFlight.map((l) => l.index), [...Array(RECORDS).keys()], 'stored in dataset order');
    assert.deepEqual(inFlight, oneAtATime, 'the same scores as one record at a time');

    // Cancel while the sixth request of the run hangs: the records handed over before it stay, a prefix of the dataset.
    const cleared = await other.connection.sendRequest(protocol.clearScores, { textDocument: { uri } });
    assert.equal(cleared.removed, RECORDS);
    vllm.stallAfter = vllm.requests + 1 + 5;
    const stalledBefore = vllm.stalled;
    const cancel = new CancellationTokenSource();
    const scoring = other.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } }, cancel.token);
    while (vllm.stalled === stalledBefore) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300)); // the requests not held are answered meanwhile
    const cancelledAt = performance.now();
    cancel.cancel();
    const stopped = await scoring;
    const seconds = (performance.now() - cancelledAt) / 1000;
    vllm.stallAfter = Infinity;
    process.stdout.write(`# cancelled with 4 records in flight ${seconds.toFixed(2)} s after Cancel, ${stopped.scoredNow} of ${RECORDS} records kept\n`);
    assert.equal(stopped.cancelled, true);
    assert.ok(seconds < 3, `the run ended ${seconds.toFixed(2)} s after Cancel`);
    const kept = storedLines(storage);
    assert.equal(kept.length, stopped.scoredNow);
    assert.ok(stopped.scoredNow < RECORDS, 'the run stopped before its end');
    assert.deepEqual(kept, oneAtATime.slice(0, kept.length), 'the kept records are the first ones, with their one-at-a-time scores');
    const rest = await other.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
    assert.equal(rest.scoredNow, RECORDS - stopped.scoredNow);
    assert.deepEqual(storedLines(storage).sort((a, b) => a.index - b.index), oneAtATime, 'resumed: every record, with the same scores');
  } finally {
    vllm.delayMs = 0;
    vllm.stallAfter = Infinity;
    await other.stop().catch(() => undefined);
  }
});

test('Cancel during a hung request of Compare Models ends it within seconds; the worker then compares and scores again', { timeout: 60_000 }, async () => {
  // Both models are the endpoint: the first one's third record never gets an answer.
  vllm.stallAfter = vllm.requests + 1 + 2 * 2;
  const stalledBefore = vllm.stalled;
  const cancel = new CancellationTokenSource();
  const comparing = client.connection.sendRequest(protocol.compareModels, { textDocument: { uri }, other: vllm.url, sample: RECORDS }, cancel.token);
  while (vllm.stalled === stalledBefore) await new Promise((r) => setTimeout(r, 20));
  const cancelledAt = performance.now();
  cancel.cancel();
  await assert.rejects(comparing, (err: ResponseError<unknown>) => err.code === LSPErrorCodes.RequestCancelled && /cancelled/.test(err.message));
  const seconds = (performance.now() - cancelledAt) / 1000;
  process.stdout.write(`# Compare Models ended ${seconds.toFixed(2)} s after Cancel\n`);
  assert.ok(seconds < 3, `the comparison ended ${seconds.toFixed(2)} s after Cancel`);

  // The worker's queue is not held by the abandoned comparison.
  vllm.stallAfter = Infinity;
  const compared = await client.connection.sendRequest(protocol.compareModels, { textDocument: { uri }, other: vllm.url, sample: 4 });
  assert.equal(compared.sample, 4);
  assert.equal(compared.goldenSpearman, 1, 'a model agrees with itself');
  const cleared = await client.connection.sendRequest(protocol.clearScores, { textDocument: { uri } });
  assert.equal(cleared.removed, RECORDS);
  const again = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
  assert.equal(again.scoredNow, RECORDS);
});

test('stored scores show at once when the file is opened again while the serving endpoint hangs on every request, its model list included', { timeout: 90_000 }, async () => {
  // The scores stored by the tests above, in a copy of the storage: a later session of the editor.
  await client.waitForScores(uri, (p) => p.scored === RECORDS, 'every record scored');
  const later = join(work, 'storage-later');
  cpSync(storagePath, later, { recursive: true });
  vllm.stallModels = true;
  const stalledBefore = vllm.stalled;
  const settings: protocol.ServerSettings = { model: vllm.url, anchors: anchorsPath, maxAnchorTokens: 96, batchSize: 4, threads: 1, scoringAllowed: true };
  const other = await TestClient.start({ storagePath: later, settings }, { NUGGETS_API_KEY: undefined, OPENAI_API_KEY: undefined });
  try {
    const opened = performance.now();
    await other.open(uri, readFileSync(datasetPath, 'utf8'));
    const shown = await other.waitForScores(uri, (p) => p.full, 'the scores of the opened file');
    const seconds = (performance.now() - opened) / 1000;
    process.stdout.write(`# stored scores shown ${seconds.toFixed(2)} s after the open, the model list still hanging\n`);
    for (const deadline = Date.now() + 10_000; vllm.stalled === stalledBefore && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    assert.ok(vllm.stalled > stalledBefore, 'the model lookup is hanging');
    assert.equal(shown.scored, RECORDS, 'every stored score is current, not stale');
    assert.ok(shown.records.every((r) => r.score && !r.stale));
    assert.match(shown.model ?? '', /^demo \(served at /);
    // The model list's timeout is 30 s, retried once: the badges waited for it.
    assert.ok(seconds < 5, `shown ${seconds.toFixed(2)} s after the open`);
  } finally {
    vllm.stallModels = false;
    await other.stop().catch(() => undefined);
  }
});

test('Cancel while the model lookup hangs (an endpoint that never answers) ends Score Dataset within seconds', { timeout: 60_000 }, async () => {
  const silent = await StallingServer.start(['no-headers']);
  const settings: protocol.ServerSettings = { model: `${silent.url}/v1`, anchors: anchorsPath, maxAnchorTokens: 96, batchSize: 4, threads: 1, scoringAllowed: true };
  const other = await TestClient.start({ storagePath: join(work, 'storage-silent'), settings }, { NUGGETS_API_KEY: undefined, OPENAI_API_KEY: undefined });
  try {
    // The open's parse waits for the model's identity, which waits for the endpoint: for minutes (its HTTP timeout).
    await other.open(uri, JSON.stringify(sharedRecords('gsm8k-train.alpaca.json', [0, 1]).map((r) => r.original)));
    const cancel = new CancellationTokenSource();
    const scoring = other.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } }, cancel.token);
    while (silent.connections === 0) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    const cancelledAt = performance.now();
    cancel.cancel();
    await assert.rejects(scoring, (err: ResponseError<unknown>) => err.code === LSPErrorCodes.RequestCancelled);
    const seconds = (performance.now() - cancelledAt) / 1000;
    process.stdout.write(`# Score Dataset ended ${seconds.toFixed(2)} s after Cancel, the model lookup still hanging\n`);
    assert.ok(seconds < 3, `Score Dataset ended ${seconds.toFixed(2)} s after Cancel`);
  } finally {
    await other.stop().catch(() => undefined);
    await silent.close();
  }
});

test('a serving API key stored for another endpoint is withheld, and the editor is told so in a warning', { timeout: 60_000 }, async () => {
  const guarded = await FakeVllm.start(demoModel, { servedModel: 'demo', apiKey: 'sk-nuggets-test' });
  const settings: protocol.ServerSettings = {
    model: guarded.url, anchors: anchorsPath, maxAnchorTokens: 96, batchSize: 4, threads: 1, scoringAllowed: true,
    secrets: { apiKey: 'sk-nuggets-test', apiKeyOrigins: ['http://gpu-a.example:8000'] },
  };
  const other = await TestClient.start({ storagePath: join(work, 'storage-key'), settings }, { NUGGETS_API_KEY: undefined, OPENAI_API_KEY: undefined });
  try {
    await other.open(uri, JSON.stringify(sharedRecords('gsm8k-train.alpaca.json', [0, 1]).map((r) => r.original)));
    const shown = await other.waitFor((r) => r.method === 'window/showMessage', 'a warning about the withheld key');
    const { type, message } = shown.params as { type: number; message: string };
    assert.equal(type, 2, 'a warning');
    assert.match(message, new RegExp(`API key is not sent to ${new URL(guarded.url).origin.replace(/[.]/g, '\\.')}: it was stored for another endpoint`));
    assert.ok(!message.includes('sk-nuggets-test'), 'the key itself is never shown');
  } finally {
    await other.stop().catch(() => undefined);
    await guarded.close();
  }
});
