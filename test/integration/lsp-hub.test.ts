/**
 * The built language server with a hub model (`hf:nuggets/demo`) served by the local stand-in for the
 * Hugging Face hub (test/support/hub-server.ts): opening never downloads; Score Dataset downloads into
 * <storagePath>/cache, reports progress through its work-done progress, can be cancelled, and scores a
 * real file; the token from the editor's secret storage reaches the hub as a Bearer header and is never
 * written under the storage path; an untrusted workspace downloads nothing.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CancellationTokenSource } from 'vscode-languageserver-protocol/node';
import * as protocol from '../../server/protocol';
import { demoModel, sharedData } from '../helpers';
import { FakeHub, DEMO_ONNX, demoRepository } from '../support/hub-server';
import { TestClient } from './lsp-client';

const RECORDS = 6;
const ONNX = DEMO_ONNX;
const TOKEN = `hf_nuggetsTest${randomUUID().replace(/-/g, '')}`;
const work = mkdtempSync(join(tmpdir(), 'nuggets-lsp-hub-'));
const source = JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')) as Record<string, string>[];

function dataset(name: string, from: number): { uri: string; text: string } {
  const path = join(work, name);
  const text = JSON.stringify(source.slice(from, from + RECORDS), null, 2) + '\n';
  writeFileSync(path, text);
  return { uri: pathToFileURL(path).toString(), text };
}

function settings(overrides: Partial<protocol.ServerSettings> = {}): protocol.ServerSettings {
  return {
    model: 'hf:nuggets/demo', variant: null, anchors: null, maxAnchorTokens: 64, batchSize: 8, threads: 1, scoringAllowed: true,
    secrets: { hubToken: TOKEN }, ...overrides,
  };
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

function progressMessages(client: TestClient, token: string): { kind: string; message?: string; percentage?: number }[] {
  return client.received.filter((r) => r.method === `$/progress:${token}`).map((r) => r.params as { kind: string; message?: string });
}

let hub: FakeHub;
const serverEnv = { HF_ENDPOINT: '', HF_TOKEN: undefined, HF_HUB_OFFLINE: undefined, NUGGETS_API_KEY: undefined };

before(async () => {
  hub = await FakeHub.start({
    'nuggets/demo': demoRepository(demoModel),
  });
  serverEnv.HF_ENDPOINT = hub.endpoint;
});

after(async () => {
  await hub?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('a hub model in the language server', () => {
  const storagePath = join(work, 'storage');
  const first = dataset('roleplay-a.alpaca.json', 0);
  let client: TestClient;

  before(async () => {
    client = await TestClient.start({ storagePath, settings: settings() }, serverEnv);
  });
  after(async () => {
    await client?.stop().catch(() => undefined);
  });

  test('opening a dataset never downloads: its records are shown unscored, the hub is not asked', async () => {
    await client.open(first.uri, first.text);
    const opened = await client.waitForScores(first.uri, (p) => p.full, 'the first scores notification');
    assert.equal(opened.total, RECORDS);
    assert.equal(opened.scored, 0);
    assert.equal(opened.model, null);
    assert.deepEqual(hub.requests, []);
  });

  test('Score Dataset downloads the model into <storagePath>/cache with progress, then scores the file', async () => {
    const workDoneToken = randomUUID();
    client.listenProgress(workDoneToken);
    const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: first.uri }, workDoneToken });
    assert.equal(result.cancelled, false);
    assert.equal(result.scoredNow, RECORDS);
    assert.equal(result.scored, RECORDS);

    // Progress: the download's files, then the scoring, in one work-done progress.
    const messages = progressMessages(client, workDoneToken).map((p) => p.message ?? '');
    const downloading = messages.findIndex((m) => /^downloading hf:nuggets\/demo: onnx\/model\.onnx [\d.]+ of [\d.]+ MB$/.test(m));
    const downloaded = messages.findIndex((m) => /^hf:nuggets\/demo: onnx\/model\.onnx downloaded/.test(m));
    const scoring = messages.findIndex((m) => new RegExp(`^${RECORDS}/${RECORDS} records`).test(m));
    assert.ok(downloading >= 0 && downloaded > downloading && scoring > downloaded, `progress messages in order: ${JSON.stringify(messages)}`);
    // The status bar is told the same steps before the first record: the download, then the anchors' zero-shot
    // scores (the model was opened by the lookup that downloaded it).
    const steps = client.received.filter((r) => r.method === protocol.scoringStatusNotification.method).map((r) => r.params as protocol.ScoringStatus)
      .filter((st) => st.uri === first.uri && st.phase === 'preparing' && st.message).map((st) => st.message!);
    assert.ok(steps.some((m) => /^downloading hf:nuggets\/demo: onnx\/model\.onnx [\d.]+ of [\d.]+ MB$/.test(m)), JSON.stringify(steps));
    assert.ok(steps.findIndex((m) => m.startsWith('downloading')) < steps.findIndex((m) => /^scoring the \d+ anchors alone \(zero-shot\)…$/.test(m)), JSON.stringify(steps));

    // The files are in the storage path's cache, verified: the same bytes as the model the hub served.
    const folder = join(storagePath, 'cache', 'hub', 'nuggets', 'demo', 'main');
    const sha256 = createHash('sha256').update(readFileSync(join(folder, ONNX))).digest('hex');
    assert.equal(sha256, hub.sha256Of('nuggets/demo', ONNX));
    assert.ok(existsSync(join(folder, 'tokenizer.json')) && existsSync(join(folder, 'config.json')));
    // The graph with its log-probability head is derived into the same cache.
    assert.ok(readdirSync(join(storagePath, 'cache', 'graphs')).some((f) => /-logprobs-hidden-v\d+\.onnx$/.test(f)));

    const last = client.scores(first.uri).at(-1)!;
    assert.equal(last.scored, RECORDS);
    assert.match(last.model ?? '', /^hf:nuggets\/demo@main$/);
    const status = client.received.filter((r) => r.method === protocol.scoringStatusNotification.method).map((r) => r.params as protocol.ScoringStatus);
    assert.equal(status.at(-1)!.phase, 'done');
  });

  test('the token reaches the hub as a Bearer header, not the storage it redirects to, and is never written or logged', () => {
    const resolves = hub.requests.filter((r) => r.url.includes('/resolve/'));
    const storage = hub.requests.filter((r) => r.url.startsWith('/lfs/'));
    assert.ok(resolves.length >= 4 && storage.length >= 1);
    assert.ok(resolves.every((r) => r.authorization === `Bearer ${TOKEN}`), JSON.stringify(resolves.map((r) => r.authorization)));
    assert.ok(storage.every((r) => r.authorization === undefined));
    const files = filesUnder(storagePath);
    assert.ok(files.length >= 6, 'scores, anchors, the model and its graph are stored');
    const needle = Buffer.from(TOKEN);
    for (const file of files) assert.equal(readFileSync(file).indexOf(needle), -1, `${file} holds the token`);
    assert.ok(!client.stderr.includes(TOKEN));
    assert.ok(!JSON.stringify(client.received).includes(TOKEN), 'the server never sends the token back');
  });

  test('an untrusted workspace neither downloads nor runs the hub model', async () => {
    const requestsBefore = hub.requests.length;
    const other = dataset('roleplay-b.alpaca.json', 20);
    await client.connection.sendNotification(protocol.didChangeSettings, settings({ model: 'hf:nuggets/demo@other', scoringAllowed: false }));
    await client.open(other.uri, other.text);
    await client.waitForScores(other.uri, (p) => p.full, 'the scores of the second file');
    await assert.rejects(
      client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: other.uri }, workDoneToken: randomUUID() }),
      /disabled in untrusted workspaces/,
    );
    assert.equal(hub.requests.length, requestsBefore);
  });
});

test('a restarted server finds the downloaded model in the cache: stored scores are current at once, without the hub', async () => {
  // Reuses the first suite's storage: the model and scores are there.
  const storagePath = join(work, 'storage');
  const again = dataset('roleplay-a.alpaca.json', 0);
  const requestsBefore = hub.requests.length;
  const client = await TestClient.start({ storagePath, settings: settings() }, serverEnv);
  try {
    await client.open(again.uri, again.text);
    const opened = await client.waitForScores(again.uri, (p) => p.full, 'the scores after a restart');
    assert.equal(opened.scored, RECORDS);
    assert.equal(opened.model, 'hf:nuggets/demo@main');
    assert.ok(opened.records.every((r) => r.score !== undefined && !r.stale));
    assert.equal(hub.requests.length, requestsBefore);
  } finally {
    await client.stop().catch(() => undefined);
  }
});

test('cancelling Score Dataset stops a download; the next run resumes it and scores', async () => {
  const storagePath = join(work, 'storage-cancel');
  const doc = dataset('roleplay-c.alpaca.json', 40);
  // The graph's download fails and is retried after 0.5 s, 1 s, 2 s: cancel during the first wait.
  hub.arm(ONNX, 'error500');
  hub.arm(ONNX, 'error500');
  const client = await TestClient.start({ storagePath, settings: settings() }, serverEnv);
  try {
    await client.open(doc.uri, doc.text);
    await client.waitForScores(doc.uri, (p) => p.full, 'the scores of the file');
    const workDoneToken = randomUUID();
    client.listenProgress(workDoneToken);
    const cancel = new CancellationTokenSource();
    const scoring = client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: doc.uri }, workDoneToken }, cancel.token);
    await client.waitFor((r) => r.method === `$/progress:${workDoneToken}` && /retrying onnx\/model\.onnx/.test((r.params as { message?: string }).message ?? ''),
      'a retry of the graph download', 20_000);
    const cancelledAt = performance.now();
    cancel.cancel();
    const result = await scoring;
    assert.equal(result.cancelled, true);
    assert.equal(result.scoredNow, 0);
    assert.ok(performance.now() - cancelledAt < 2_000, 'cancelled without waiting for the retries');
    const folder = join(storagePath, 'cache', 'hub', 'nuggets', 'demo', 'main');
    assert.ok(!existsSync(join(folder, ONNX)), 'no graph was put in place');
    assert.equal(hub.pendingFaults(), 1, 'the second fault was never reached');

    const rerun = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: doc.uri }, workDoneToken: randomUUID() });
    assert.equal(rerun.cancelled, false);
    assert.equal(rerun.scored, RECORDS);
    assert.equal(hub.pendingFaults(), 0);
    assert.ok(statSync(join(folder, ONNX)).size > 0);
  } finally {
    await client.stop().catch(() => undefined);
  }
});
