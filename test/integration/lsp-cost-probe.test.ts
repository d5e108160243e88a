/**
 * The probe before a long run (server/lsp/run-probe.ts), through the built language server over stdio with the demo
 * model on real records: the estimate arrives once the probe's records are scored and before the rest, it is within
 * a sane factor of the time the rest takes, the run waits for the answer when it asks, and a run that is stopped
 * at the question keeps its probe's records.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CancellationTokenSource } from 'vscode-languageserver-protocol/node';
import * as protocol from '../../server/protocol';
import { PROBE_RECORDS } from '../../server/scoring/cost-estimate';
import { demoModel, sharedData } from '../helpers';
import { TestClient } from './lsp-client';

const work = mkdtempSync(join(tmpdir(), 'nuggets-lsp-probe-'));
const source = JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')) as Record<string, string>[];
/** A file of real records, written and opened in the server. */
function dataset(name: string, from: number, count: number): { uri: string; text: string } {
  const path = join(work, name);
  const text = JSON.stringify(source.slice(from, from + count), null, 2) + '\n';
  writeFileSync(path, text);
  return { uri: pathToFileURL(path).toString(), text };
}
const settings: protocol.ServerSettings = {
  model: demoModel, anchors: null, maxAnchorTokens: 96, batchSize: 8, threads: 1, scoringAllowed: true, askAboveSeconds: 0,
};

let client: TestClient;
/** How the test's client answers the next estimate, and what it saw. */
let answer: (estimate: protocol.CostEstimateInfo) => Promise<protocol.CostEstimateAnswer> = async () => ({ choice: 'continue' });
const asked: Array<{ estimate: protocol.CostEstimateInfo; at: number; scoredBefore: number }> = [];

/** Records scored by runs so far, as partial scores notifications (one record each) of `uri`. */
const partialScores = (uri: string): number => client.scores(uri).filter((p) => !p.full).length;

describe('the cost probe before a long run', () => {
  before(async () => {
    client = await TestClient.start({ storagePath: join(work, 'storage'), settings });
    client.connection.onRequest(protocol.costEstimateRequest, (estimate) => {
      asked.push({ estimate, at: performance.now(), scoredBefore: partialScores(estimate.uri) });
      return answer(estimate);
    });
  });

  after(async () => {
    await client?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  test('the estimate arrives after the probe\'s records and before the rest, within a sane factor of the rest\'s time', { timeout: 300_000 }, async () => {
    const { uri, text } = dataset('probe-30.json', 1000, 30);
    await client.open(uri, text);
    await client.connection.sendRequest(protocol.chooseAnchors, { textDocument: { uri }, choice: { method: 'kmeans', count: 16 } });
    let answeredAt = 0;
    answer = async () => {
      answeredAt = performance.now();
      return { choice: 'continue' };
    };
    const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
    const restSeconds = (performance.now() - answeredAt) / 1000;
    assert.equal(asked.length, 1);
    const { estimate, scoredBefore } = asked[0]!;
    assert.ok(estimate.probed >= 1 && estimate.probed <= PROBE_RECORDS, `${estimate.probed} probe records`);
    // Asked once the probe's records were scored (and stored), before any of the rest.
    assert.equal(scoredBefore, estimate.probed);
    assert.equal(estimate.records, 30 - estimate.probed);
    assert.equal(estimate.ask, true);
    assert.equal(estimate.anchors, 16 - 0);
    // The demo model is a local folder without an int8 export; 16 anchors are too few to offer fewer.
    assert.deepEqual(estimate.fasterWays, ['endpoint']);
    assert.ok(estimate.earlyStop.seconds < estimate.fullSeconds);
    assert.ok(estimate.earlyStop.passesPerRecord > 0 && estimate.earlyStop.passesPerRecord < 16);
    const ratio = estimate.fullSeconds / restSeconds;
    process.stdout.write(`# estimated ${estimate.fullSeconds.toFixed(1)} s for ${estimate.records} records from ${estimate.probed}; they took ${restSeconds.toFixed(1)} s (x${ratio.toFixed(2)})\n`);
    assert.ok(ratio > 1 / 3 && ratio < 3, `estimate ${estimate.fullSeconds.toFixed(1)} s vs ${restSeconds.toFixed(1)} s`);
    assert.equal(result.scored, 30);
    assert.equal(result.cancelled, false);
    assert.deepEqual(result.estimate, estimate);
    // Before the first record the status names each step under way, for the status bar.
    const steps = client.received.filter((r) => r.method === protocol.scoringStatusNotification.method).map((r) => r.params as protocol.ScoringStatus)
      .filter((st) => st.uri === uri && st.phase === 'preparing' && st.message).map((st) => st.message);
    assert.deepEqual(steps, ['opening the model (ONNX Runtime session)…', 'scoring the 16 anchors alone (zero-shot)…']);
  });

  test('a faster way chosen at the question ends the run with the probe\'s records kept; a short run goes on without waiting', { timeout: 300_000 }, async () => {
    const { uri, text } = dataset('probe-24.json', 1100, 24);
    await client.open(uri, text);
    await client.connection.sendRequest(protocol.chooseAnchors, { textDocument: { uri }, choice: { method: 'kmeans', count: 16 } });
    answer = async () => ({ choice: 'endpoint' });
    const stopped = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
    const probed = asked.at(-1)!.estimate.probed;
    assert.equal(stopped.cancelled, true);
    assert.equal(stopped.fasterWay, 'endpoint');
    assert.equal(stopped.scored, probed);
    assert.equal(partialScores(uri), probed, 'nothing after the probe was scored');
    // Above the estimate, the question is not asked: the run does not wait for an answer that never comes.
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, askAboveSeconds: 100_000 });
    answer = () => new Promise(() => undefined);
    const rest = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
    assert.equal(asked.at(-1)!.estimate.ask, false);
    assert.equal(rest.cancelled, false);
    assert.equal(rest.scored, 24);
    assert.equal(rest.scoredNow, 24 - probed);
  });

  test('cancelling the run while its question is open ends it at once, the probe\'s records kept', { timeout: 300_000 }, async () => {
    const { uri, text } = dataset('probe-cancel.json', 1200, 20);
    await client.open(uri, text);
    await client.connection.sendRequest(protocol.chooseAnchors, { textDocument: { uri }, choice: { method: 'kmeans', count: 16 } });
    await client.connection.sendNotification(protocol.didChangeSettings, settings);
    const cancel = new CancellationTokenSource();
    let askedAt = 0;
    answer = () => {
      askedAt = performance.now();
      setTimeout(() => cancel.cancel(), 200);
      return new Promise(() => undefined); // the question stays open
    };
    const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } }, cancel.token);
    const seconds = (performance.now() - askedAt) / 1000;
    assert.equal(result.cancelled, true);
    assert.equal(result.scored, asked.at(-1)!.estimate.probed);
    assert.ok(seconds < 5, `ended ${seconds.toFixed(1)} s after the question`);
  });
});
