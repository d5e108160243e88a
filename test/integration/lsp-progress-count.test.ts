/**
 * One progress count: a Score Dataset run's progress notification counts the records of the file with a
 * current score, as the status bar does (scoring/status notifications' `scored` of `total`), not the records
 * scored by this run. A file whose first records are already scored starts its count there.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { writeAnchors } from '../../server/records/anchors';
import * as protocol from '../../server/protocol';
import { progressMessage, progressPercentage } from '../../server/lsp/scoring-runs';
import { demoModel, scratchDir, sharedRecords } from '../helpers';
import { TestClient } from './lsp-client';

const work = scratchDir('lsp-progress-count');
const anchorsPath = join(work, 'anchors.json');
const records = sharedRecords('gsm8k-train.alpaca.json', [...Array(10).keys()]);
const rows = records.slice(0, 7).map((r) => r.original);
const settings: protocol.ServerSettings = { model: demoModel, anchors: anchorsPath, maxAnchorTokens: 96, batchSize: 2, threads: 1, scoringAllowed: true };
let client: TestClient;

before(async () => {
  writeAnchors(anchorsPath, records.slice(7));
  client = await TestClient.start({ storagePath: join(work, 'storage'), settings });
});

after(async () => {
  await client?.stop().catch(() => undefined);
});

test('the progress message counts the file\'s scored records, as the status bar does; the percentage is the file\'s', () => {
  assert.equal(progressMessage(162, 400, null), '162/400 records');
  assert.equal(progressMessage(163, 400, 125), `163/400 records · ETA ${protocol.formatDuration(125)}`);
  assert.equal(progressPercentage(162, 400), 40);
  assert.equal(progressPercentage(399, 400), 99, 'not 100 before the last record');
  assert.equal(progressPercentage(400, 400), 100);
});

test('a run over a partly scored file reports the same count in its progress and in its status: 4/7 scored before, then 5/7 … 7/7', async () => {
  // The first four records are scored through another file: scores are keyed by record content, so they count in the second.
  const firstPath = join(work, 'first.alpaca.json');
  const firstText = JSON.stringify(rows.slice(0, 4), null, 2);
  writeFileSync(firstPath, firstText);
  const firstUri = pathToFileURL(firstPath).toString();
  await client.open(firstUri, firstText);
  const first = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: firstUri } });
  assert.equal(first.scored, 4);

  const wholePath = join(work, 'whole.alpaca.json');
  const wholeText = JSON.stringify(rows, null, 2);
  writeFileSync(wholePath, wholeText);
  const uri = pathToFileURL(wholePath).toString();
  await client.open(uri, wholeText);
  await client.waitForScores(uri, (p) => p.full && p.scored === 4, 'the second file showing its 4 stored scores');
  const workDoneToken = randomUUID();
  client.listenProgress(workDoneToken);
  const from = client.received.length;
  const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri }, workDoneToken });
  assert.equal(result.scoredNow, 3);
  assert.equal(result.scored, 7);

  const reports = client.received.slice(from).filter((r) => r.method === `$/progress:${workDoneToken}`)
    .map((r) => r.params as { kind: string; message?: string; percentage?: number })
    .filter((p) => p.kind === 'report' && /records/.test(p.message ?? ''));
  assert.deepEqual(reports.map((p) => /^(\d+\/\d+) records/.exec(p.message!)?.[1]), ['5/7', '6/7', '7/7'], JSON.stringify(reports));
  assert.deepEqual(reports.map((p) => p.percentage), [71, 85, 100]);
  // The status notifications the status bar reads, after each record: the same counts.
  const statusCounts = client.received.slice(from).filter((r) => r.method === protocol.scoringStatusNotification.method)
    .map((r) => r.params as protocol.ScoringStatus).filter((s) => s.uri === uri && s.phase === 'scoring' && s.done > 0).map((s) => `${s.scored}/${s.total}`);
  assert.deepEqual(statusCounts, ['5/7', '6/7', '7/7']);
});
