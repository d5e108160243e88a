/**
 * Two editor windows on one storage folder: two built language servers (dist/server.js) over stdio, as
 * two VS Code windows run them, scoring the same file. Nothing may be computed twice or lost, a Clear
 * Scores in one window must show in the other (which must not go on writing to a removed file), and a
 * window killed mid-run must leave its completed records to the next one.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ResponseError } from 'vscode-languageserver-protocol/node';
import * as protocol from '../../server/protocol';
import { demoModel, scratchDir } from '../helpers';
import { TestClient } from '../integration/lsp-client';
import { until, writeRecords } from './harness';

const RECORDS = 60;
const work = scratchDir('chaos-windows');
const storagePath = join(work, 'storage');
const datasetPath = join(work, 'gsm8k-60.alpaca.json');
const anchorsPath = join(work, 'anchors.json');
const uri = pathToFileURL(datasetPath).toString();
const settings: protocol.ServerSettings = {
  model: demoModel, anchors: anchorsPath, maxAnchorTokens: 200, batchSize: 8, threads: 1, scoringAllowed: true,
};

/** Every score line in the storage folder, by file. */
function storedLines(): Map<string, string[]> {
  const dir = join(storagePath, 'scores');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jsonl')) : [];
  return new Map(files.map((f) => [f, readFileSync(join(dir, f), 'utf8').split('\n').slice(1).filter((l) => l !== '')]));
}

/** One scores file holding each of the dataset's records exactly once. */
function assertStoredOnce(): void {
  const files = storedLines();
  assert.equal(files.size, 1, `scores files: ${[...files.keys()].join(', ')}`);
  const lines = [...files.values()][0]!;
  const ids = lines.map((l) => (JSON.parse(l) as { id: string }).id);
  assert.equal(ids.length, RECORDS, 'one line per record');
  assert.equal(new Set(ids).size, RECORDS, 'no record computed twice');
}

function score(client: TestClient, workDoneToken?: string): Promise<protocol.ScoreDatasetResult> {
  if (workDoneToken) client.listenProgress(workDoneToken);
  return client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri }, ...(workDoneToken ? { workDoneToken } : {}) });
}

const lastScored = (client: TestClient): number | undefined => client.scores(uri).at(-1)?.scored;

describe('two editor windows sharing one storage folder', () => {
  let a: TestClient;
  let b: TestClient;

  before(async () => {
    writeRecords(datasetPath, 'gsm8k-train.alpaca.json', RECORDS);
    writeRecords(anchorsPath, 'gsm8k-train.alpaca.json', 8, 500);
    const text = readFileSync(datasetPath, 'utf8');
    [a, b] = await Promise.all([TestClient.start({ storagePath, settings }), TestClient.start({ storagePath, settings })]);
    await Promise.all([a.open(uri, text), b.open(uri, text)]);
    await Promise.all([a, b].map((c) => c.waitForScores(uri, (p) => p.full, 'the first scores notification')));
  });

  after(async () => {
    await Promise.all([a, b].map((c) => c?.stop().catch(() => undefined)));
  });

  test('both score at once: each record is computed once, and both windows show every score', async () => {
    const waitToken = randomUUID();
    const fromB = b.received.length;
    const runA = score(a);
    await a.waitForScores(uri, (p) => !p.full, 'window A scoring');
    const runB = score(b, waitToken);
    const [resultA, resultB] = await Promise.all([runA, runB]);
    assert.equal(resultA.scoredNow + resultB.scoredNow, RECORDS, `computed by A: ${resultA.scoredNow}, by B: ${resultB.scoredNow}`);
    assert.ok(resultB.scoredNow < RECORDS, 'B did not score everything again');
    assert.equal(resultA.scored, RECORDS);
    assert.equal(resultB.scored, RECORDS);
    assertStoredOnce();
    // B showed A's scores as they were written, while it waited.
    const waited = b.received.filter((r) => r.method === `$/progress:${waitToken}`).map((r) => (r.params as { message?: string }).message ?? '');
    assert.ok(waited.some((m) => /waiting for another VS Code window \(process \d+\)/.test(m)), waited.join('\n'));
    assert.ok(b.scores(uri).slice(fromB).some((p) => !p.full && p.scored > 0 && p.scored < RECORDS), 'partial scores from the other window');
    await until(() => lastScored(a) === RECORDS && lastScored(b) === RECORDS, 'both windows showing every score');
  });

  test('Clear Scores in one window clears the other, which then writes to the new file', async () => {
    const fromB = b.received.length;
    const cleared = await a.connection.sendRequest(protocol.clearScores, { textDocument: { uri } });
    assert.equal(cleared.removed, RECORDS);
    assert.equal(storedLines().size, 0, 'no scores left on disk');
    const shown = await b.waitForScores(uri, (p) => p.full && p.scored === 0, 'window B showing the clear', fromB);
    assert.ok(shown.records.every((r) => r.score === undefined));

    const fromA = a.received.length;
    const again = await score(b);
    assert.equal(again.scoredNow, RECORDS);
    assertStoredOnce();
    await a.waitForScores(uri, (p) => p.scored === RECORDS, 'window A showing B\'s new scores', fromA);
  });

  test('Clear Scores refuses while the other window scores into the file, and that run loses nothing', async () => {
    await a.connection.sendRequest(protocol.clearScores, { textDocument: { uri } });
    await b.waitForScores(uri, (p) => p.scored === 0, 'window B showing the clear');
    const fromB = b.received.length;
    const run = score(b);
    await b.waitForScores(uri, (p) => !p.full, 'window B scoring', fromB);
    const refused = await a.connection.sendRequest(protocol.clearScores, { textDocument: { uri } }).then(() => undefined, (err: unknown) => err);
    assert.ok(refused instanceof ResponseError, 'the clear was refused');
    assert.match(refused.message, /Another VS Code window \(process \d+ on .+\) is scoring into the stored scores of these records; nothing was cleared/);
    assert.equal((await run).scoredNow, RECORDS);
    assertStoredOnce();
  });

  test('a window killed mid-run leaves its records (and its lock) to the next window, which scores only the rest', async () => {
    await a.connection.sendRequest(protocol.clearScores, { textDocument: { uri } });
    const fromB = b.received.length;
    void score(b).catch(() => undefined);
    await b.waitForScores(uri, (p) => !p.full && p.scored >= 5, 'window B scoring', fromB);
    b.child.kill('SIGKILL');
    await new Promise((resolve) => b.child.once('exit', resolve));
    const kept = [...storedLines().values()][0]?.length ?? 0;
    assert.ok(kept >= 5 && kept < RECORDS, `records kept after the kill: ${kept}`);
    assert.ok(readdirSync(join(storagePath, 'scores')).some((f) => f.endsWith('.lock')), 'the killed window left its lock');

    const result = await score(a);
    assert.equal(result.scoredNow, RECORDS - kept, 'only the records the killed window had not written');
    assertStoredOnce();
    assert.equal(readdirSync(join(storagePath, 'scores')).filter((f) => f.endsWith('.lock')).length, 0, 'the stale lock was taken over and released');
  });
});
