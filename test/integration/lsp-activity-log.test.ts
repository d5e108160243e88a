/**
 * The Nuggets output channel logs everything the server does for the user, not only Score Dataset runs: a rescore
 * after an edit, Compare Models, Write Subset, Export Scores, a model change, an anchor change and a refused
 * request each send one window/logMessage line (which the language client writes to the channel) with a run
 * line's fields: the file, the model and its fingerprint, the anchor set, what was done, the duration.
 */
import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { writeAnchors } from '../../server/records/anchors';
import * as protocol from '../../server/protocol';
import { demoModel, scratchDir, sharedRecords } from '../helpers';
import { TestClient } from './lsp-client';

const work = scratchDir('lsp-activity-log');
const datasetPath = join(work, 'records.alpaca.json');
const anchorsPath = join(work, 'anchors.json');
const uri = pathToFileURL(datasetPath).toString();
const records = sharedRecords('gsm8k-train.alpaca.json', [...Array(9).keys()]);
const rows = records.slice(0, 6).map((r) => r.original);
const text = JSON.stringify(rows, null, 2);
const settings: protocol.ServerSettings = { model: demoModel, anchors: anchorsPath, maxAnchorTokens: 96, batchSize: 4, threads: 1, scoringAllowed: true };
let client: TestClient;

/** A run line's fields: `[kind] file: model NAME (fingerprint F…); anchors …, N anchors, set H; …; S s`. */
const RUN_LINE = (kind: string): RegExp => new RegExp(`^\\[${kind}\\] records\\.alpaca\\.json: model .+ \\(fingerprint [0-9a-f]+\\); anchors .+, \\d+ anchors, set [0-9a-f]+; .+; \\d+\\.\\d s`);

async function logLine(kind: string, from: number): Promise<string> {
  const line = await client.waitFor((r) => r.method === 'window/logMessage' && (r.params as { message: string }).message.startsWith(`[${kind}] `), `a [${kind}] line`, 30_000, from);
  const { message } = line.params as { message: string };
  assert.match(message, RUN_LINE(kind), message);
  process.stdout.write(`# ${message}\n`);
  return message;
}

before(async () => {
  writeFileSync(datasetPath, text);
  writeAnchors(anchorsPath, records.slice(6));
  client = await TestClient.start({ storagePath: join(work, 'storage'), settings });
  await client.open(uri, text);
  await client.waitForScores(uri, (p) => p.full, 'the opened file\'s scores');
  const run = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
  assert.equal(run.scored, 6);
});

after(async () => {
  await client?.stop().catch(() => undefined);
});

test('a rescore after an edit is logged: the edited records, scored, current', async () => {
  const from = client.received.length;
  const edited = rows.map((r, i) => (i === 2 ? { ...r, output: `${r.output} Checked twice.` } : r));
  await client.change(uri, 2, JSON.stringify(edited, null, 2));
  const line = await logLine('rescore', from);
  assert.match(line, /1 edited record: scored 1; 6\/6 current/);
});

test('Compare Models, Write Subset and Export Scores are logged with what they did', async () => {
  let from = client.received.length;
  await client.connection.sendRequest(protocol.compareModels, { textDocument: { uri }, other: demoModel, sample: 3 });
  assert.match(await logLine('compare', from), /compared with .*demo on 3 records: golden Spearman /);

  from = client.received.length;
  const subset = await client.connection.sendRequest(protocol.selectSubset, { textDocument: { uri }, rule: { kind: 'top', count: 2 } });
  assert.match(await logLine('subset', from), new RegExp(`wrote 2 of 6 records \\(top2\\) to ${subset.path.replace(/[.\\/]/g, '\\$&')}`));

  from = client.received.length;
  const out = join(work, 'scores.csv');
  await client.connection.sendRequest(protocol.exportScores, { textDocument: { uri }, path: out, format: 'csv', withDeltas: false });
  assert.match(await logLine('export', from), /wrote 6 rows \(6 scored\) as CSV to .*scores\.csv/);
});

test('anchor and model changes are logged with what they leave current', async () => {
  let from = client.received.length;
  await client.connection.sendRequest(protocol.chooseAnchors, { textDocument: { uri }, choice: { method: 'random', count: 3 } });
  assert.match(await logLine('anchors', from), /chose 3 anchors \(random\); 6 scores now stale/);

  from = client.received.length;
  const otherModel = join(work, 'demo-copy');
  cpSync(demoModel, otherModel, { recursive: true });
  await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, model: otherModel });
  const line = await logLine('model', from);
  assert.match(line, /\d+\/6 current, \d+ to score; model was .*demo/);
});

test('a refused request is logged as [refused], with the request and the message the user saw', async () => {
  const from = client.received.length;
  await assert.rejects(client.connection.sendRequest(protocol.exportScores, { textDocument: { uri }, path: datasetPath, format: 'csv', withDeltas: false }));
  const line = await logLine('refused', from);
  assert.match(line, /exportScores; \d+\.\d s; refused: .+/);
});
