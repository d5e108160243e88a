/**
 * A GGUF file as the model, through the built language server: `nuggets.model` is the real
 * SmolLM2-135M-Instruct Q4_1 .gguf (what Choose Model's "A GGUF file…" writes). Opening the dataset starts
 * the model's one-time import into the storage path's cache; Score Dataset, sent at once, waits for it and
 * shows it in its progress ("importing …gguf: 40%"), then scores four short real records against three
 * anchors. A second server on the same storage reuses the import and the stored scores; an untrusted
 * workspace imports nothing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parseDataset } from '../../server/records/dataset';
import * as protocol from '../../server/protocol';
import { scratchDir, sharedData, smollm2Gguf } from '../helpers';
import { TestClient } from './lsp-client';

const gguf = smollm2Gguf();
const modelName = basename(gguf); // SmolLM2-135M-Instruct.Q4_1.gguf
const work = scratchDir('lsp-gguf');
const storagePath = join(work, 'storage');
// Short grade-school maths records (about 100 characters each): SmolLM2 135M scores a record a second here.
const source = JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')) as Record<string, string>[];
const datasetPath = join(work, 'gsm8k-short.alpaca.json');
const datasetUri = pathToFileURL(datasetPath).toString();
const datasetText = JSON.stringify([2348, 6469, 535, 2497].map((i) => source[i]), null, 2) + '\n';
writeFileSync(datasetPath, datasetText);
const anchorsPath = join(work, 'anchors.alpaca.json');
writeFileSync(anchorsPath, JSON.stringify([7368, 5492, 5955].map((i) => source[i]), null, 2) + '\n');
const records = parseDataset(datasetText, datasetPath).records;

const settings: protocol.ServerSettings = {
  model: gguf, anchors: anchorsPath, maxAnchorTokens: 128, batchSize: 8, threads: 0, scoringAllowed: true, secrets: {},
};

/** Every server started here, stopped at the end even when a test fails. */
const clients: TestClient[] = [];

after(async () => {
  await Promise.all(clients.map((c) => c.stop().catch(() => undefined)));
});

async function startServer(): Promise<TestClient> {
  const client = await TestClient.start({ storagePath, settings });
  clients.push(client);
  return client;
}

/** The line of a record's second line (inside its object). */
function lineInside(index: number): number {
  return datasetText.slice(0, records[index]!.start).split('\n').length;
}

test('a .gguf model is imported once, with its progress in Score Dataset, and scores a real file; the hover names it', async () => {
  const started = performance.now();
  const client = await startServer();
  const workDoneToken = randomUUID();
  client.listenProgress(workDoneToken);
  await client.open(datasetUri, datasetText);
  // Sent at once: the import the opening started is still under way, and this run waits for it.
  const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: datasetUri }, workDoneToken });
  const seconds = (performance.now() - started) / 1000;

  assert.equal(result.cancelled, false);
  assert.equal(result.scoredNow, records.length);
  assert.equal(result.model?.name, modelName);
  assert.equal(result.anchors?.count, 3);
  const messages = client.received.filter((r) => r.method === `$/progress:${workDoneToken}`)
    .map((r) => (r.params as { kind: string; message?: string }).message).filter((m): m is string => m !== undefined);
  const imports = messages.filter((m) => m.includes(modelName));
  assert.ok(imports.some((m) => new RegExp(`^importing ${modelName.replace(/\./g, '\\.')}: \\d+%$`).test(m)), `the import's percentage in the run's progress: ${JSON.stringify(imports)}`);
  assert.ok(messages.indexOf(imports.at(-1)!) < messages.findIndex((m) => /records/.test(m)), 'the import is shown before records are scored');

  const last = await client.waitForScores(datasetUri, (p) => p.scored === records.length, 'every record scored');
  assert.equal(last.model, modelName);
  const golden = last.records.map((r) => r.score?.goldenScore);
  assert.ok(golden.every((g) => g !== undefined && Number.isFinite(g) && g >= 0 && g <= 1), `finite golden scores: ${JSON.stringify(golden)}`);
  assert.ok(last.records.every((r) => !r.stale));

  const hover = (await client.hover(datasetUri, lineInside(1)))?.replace(/\\(.)/g, '$1').replace(/[\u2066-\u2069]/g, ''); // Markdown escapes and isolates undone
  assert.match(hover ?? '', /Golden score/);
  assert.ok(hover!.includes(`Model ${modelName} · anchors: ${basename(anchorsPath)}`), `the hover names the model: ${hover}`);
  // One import in the cache, named by the file's content.
  assert.equal(readdirSync(join(storagePath, 'cache', 'gguf')).filter((f) => !f.startsWith('hashes')).length, 1);
  console.log(`# import and ${records.length} records scored in ${seconds.toFixed(1)} s; the run showed: ${imports[0]} … ${imports.at(-1)} (${imports.length} import messages)`);
  await client.stop();
  clients.splice(clients.indexOf(client), 1);
});

test('another server on the same storage reuses the import and shows the stored scores at once', async () => {
  const started = performance.now();
  const client = await startServer();
  await client.open(datasetUri, datasetText);
  const first = await client.waitForScores(datasetUri, (p) => p.full && p.model !== null, 'the scores of the opened file');
  const seconds = (performance.now() - started) / 1000;
  assert.equal(first.model, modelName);
  assert.equal(first.scored, records.length, 'the stored scores are current under the same model identity');
  // The scores may show (under the identity remembered from the last session) before the lookup has logged its
  // cache hit: wait for the lookup's line.
  const logLines = (): string[] => client.received.filter((r) => r.method === 'window/logMessage').map((r) => (r.params as { message: string }).message);
  const deadline = Date.now() + 30_000;
  while (!logLines().some((m) => m.includes(`${modelName}: already imported`)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const log = logLines();
  assert.ok(log.some((m) => m.includes(`${modelName}: already imported`)), `the import is reused: ${JSON.stringify(log)}`);
  assert.ok(!log.some((m) => /hashing|importing/.test(m)), 'nothing hashed or imported again');
  console.log(`# reopened with stored scores in ${seconds.toFixed(1)} s`);
});

test('in an untrusted workspace a .gguf model is neither imported nor opened', async () => {
  const untrustedStorage = join(work, 'untrusted-storage');
  const client = await TestClient.start({ storagePath: untrustedStorage, settings: { ...settings, scoringAllowed: false } });
  clients.push(client);
  await client.open(datasetUri, datasetText);
  const first = await client.waitForScores(datasetUri, (p) => p.full, 'the scores of the opened file');
  assert.equal(first.model, null);
  assert.equal(first.scored, 0);
  assert.ok(!existsSync(join(untrustedStorage, 'cache', 'gguf')), 'nothing imported');
});
