/**
 * Compare Models as the editor asks it: the model to compare with is opened before anything is scored, and a
 * bad choice is told in the editor's words (no command-line flags); the result names both models and every
 * figure, an undefined Spearman with its reason; and every comparison, the failed one included, has its
 * [compare] line in the Nuggets output channel with a run line's fields.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { ResponseError } from 'vscode-languageserver-protocol/node';
import { writeAnchors } from '../../server/records/anchors';
import * as protocol from '../../server/protocol';
import { demoModel, scratchDir, sharedRecords, standins } from '../helpers';
import { TestClient } from './lsp-client';

const work = scratchDir('lsp-compare-models');
const datasetPath = join(work, 'records.alpaca.json');
const anchorsPath = join(work, 'anchors.json');
const uri = pathToFileURL(datasetPath).toString();
const records = sharedRecords('gsm8k-train.alpaca.json', [...Array(10).keys()]);
const text = JSON.stringify(records.slice(0, 7).map((r) => r.original), null, 2);
const settings: protocol.ServerSettings = { model: demoModel, anchors: anchorsPath, maxAnchorTokens: 96, batchSize: 4, threads: 1, scoringAllowed: true };
let client: TestClient;

/** `[compare] records.alpaca.json: model NAME (fingerprint F…); anchors …, N anchors, set H; …; S s`. */
const COMPARE_LINE = /^\[compare\] records\.alpaca\.json: model .+ \(fingerprint [0-9a-f]+\); anchors .+, \d+ anchors, set [0-9a-f]+; .+; \d+\.\d s/;

async function compareLine(from: number): Promise<string> {
  const line = await client.waitFor((r) => r.method === 'window/logMessage' && (r.params as { message: string }).message.startsWith('[compare] '), 'a [compare] line', 30_000, from);
  const { message } = line.params as { message: string };
  assert.match(message, COMPARE_LINE, message);
  process.stdout.write(`# ${message}\n`);
  return message;
}

before(async () => {
  writeFileSync(datasetPath, text);
  writeAnchors(anchorsPath, records.slice(7));
  client = await TestClient.start({ storagePath: join(work, 'storage'), settings });
  await client.open(uri, text);
  await client.waitForScores(uri, (p) => p.full, 'the opened file\'s scores');
});

after(async () => {
  await client?.stop().catch(() => undefined);
});

test('a model that cannot be opened is refused before any record is scored, in the editor\'s words, and logged', async () => {
  const from = client.received.length;
  const missing = join(work, 'no-such-model');
  await assert.rejects(client.connection.sendRequest(protocol.compareModels, { textDocument: { uri }, other: missing, sample: 5 }), (err: ResponseError<unknown>) => {
    assert.match(err.message, new RegExp(`^The model to compare with \\(${missing.replace(/[.\\/]/g, '\\$&')}\\) cannot be used: .*not found.* Nothing was scored\\.`));
    assert.doesNotMatch(err.message, /--[a-z]/, 'no command-line flags');
    return true;
  });
  const line = await compareLine(from);
  assert.match(line, /compare with .*no-such-model on 5 records; .*failed: The model to compare with/);
  // Nothing was scored: no score of the current model arrived for the document either.
  assert.equal(client.received.slice(from).filter((r) => r.method === protocol.scoresNotification.method).length, 0);
});

test('the demo model against a second local model: both named, every figure given, the comparison logged', { timeout: 120_000 }, async () => {
  const second = join(standins(), 'qwen2');
  const from = client.received.length;
  const result = await client.connection.sendRequest(protocol.compareModels, { textDocument: { uri }, other: second, sample: 7 });
  assert.equal(result.sample, 7);
  assert.equal(result.models[0], 'demo');
  assert.ok(result.models[1].length > 0 && result.models[1] !== 'demo', `the second model's name: ${result.models[1]}`);
  assert.ok(result.goldenSpearman === null ? typeof result.goldenSpearmanUndefined === 'string' : Math.abs(result.goldenSpearman) <= 1);
  assert.ok(result.top10Overlap >= 0 && result.top10Overlap <= 1);
  assert.equal(result.threshold, 0.85);
  assert.equal(result.kept.length, 2);
  assert.match(await compareLine(from), /compared with .*qwen2 on 7 records: golden Spearman (-?\d\.\d{3}|undefined \(.+\)), top-10% overlap \d\.\d\d; /);
});

test('a sample too small to rank: the Spearman is undefined and says why, never 0', async () => {
  const result = await client.connection.sendRequest(protocol.compareModels, { textDocument: { uri }, other: demoModel, sample: 2 });
  assert.equal(result.goldenSpearman, null);
  assert.equal(result.goldenSpearmanUndefined, 'the sample has 2 records; a rank correlation needs at least 3');
});
