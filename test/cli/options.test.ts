/**
 * Options of `nuggets score` and `nuggets select` that the README promises, as a user passes them: the
 * built CLI in a child process, the demo model, and local stand-ins for the hub (test/support/hub-server.ts)
 * and for a vLLM server (test/support/vllm-server.ts) on 127.0.0.1. Each test fails when its option is
 * ignored: --separator, --with-scores, --offline, --served-model and --tokenizer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { readAnchors, writeAnchors } from '../../server/records/anchors';
import { readDataset, type DatasetRecord } from '../../server/records/dataset';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { scoreRecords, type CandidateScore } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { demoModel, repoRoot, scratchDir, sharedData } from '../helpers';
import { demoRepository, FakeHub } from '../support/hub-server';
import { FakeVllm } from '../support/vllm-server';

const cli = join(repoRoot, 'dist', 'cli.js');
const RECORDS = 6;
let dir: string;
let dataset: string;
let anchors: string;
let records: DatasetRecord[];

interface ScoreLine { id: string; golden_score: number; deltas: number[] }

/**
 * `nuggets ...args`, without blocking this process (the stand-in servers run in it); `env` adds variables.
 * HF_HUB_OFFLINE is left out: offline mode comes from --offline alone.
 */
function nuggets(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, NUGGETS_API_KEY: '', OPENAI_API_KEY: '', ...env };
  delete childEnv['HF_HUB_OFFLINE'];
  const child = spawn(process.execPath, [cli, ...args], { cwd: dir, env: childEnv });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function header(file: string): { model: { name: string }; separator: string } {
  return JSON.parse(readFileSync(join(dir, file), 'utf8').split('\n')[0]!);
}

function scoreLines(file: string): ScoreLine[] {
  return readFileSync(join(dir, file), 'utf8').split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l) as ScoreLine);
}

const deltasOf = (file: string): number[][] => scoreLines(file).map((l) => l.deltas);

before(async () => {
  dir = scratchDir('cli-options');
  const source = readDataset(sharedData('gsm8k-train.alpaca.json')).records;
  dataset = join(dir, 'data.json');
  writeFileSync(dataset, JSON.stringify(source.slice(0, RECORDS).map((r) => r.original), null, 2));
  records = readDataset(dataset).records;
  anchors = join(dir, 'anchors.json');
  writeAnchors(anchors, readDataset(sharedData('gpteacher-roleplay.alpaca.json')).records.slice(0, 3));
  const plain = await nuggets(['score', dataset, '--anchors', anchors, '--out', 'plain.jsonl']);
  assert.equal(plain.code, 0, plain.stderr);
});

test('--separator puts its text between candidate and anchor: the scores are the engine\'s with that separator, the header records it, and a rerun without it is refused', async () => {
  const separator = '\n\n### Example above, task below\n\n';
  const r = await nuggets(['score', dataset, '--anchors', anchors, '--separator', separator, '--out', 'separated.jsonl']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(header('separated.jsonl').separator, separator);

  // The same separator through the library: the CLI passed exactly this text.
  const backend = await LocalBackend.open(demoModel, { path: 'cached' });
  const expected: CandidateScore[] = [];
  try {
    const prepared = await backend.prepareAnchors(readAnchors(anchors).anchors, { ...DEFAULT_OPTIONS, separator });
    await scoreRecords(backend, prepared, records, (s) => expected.push(s));
  } finally {
    await backend.dispose();
  }
  const separated = deltasOf('separated.jsonl');
  separated.forEach((deltas, i) => deltas.forEach((d, j) => assert.ok(Math.abs(d - expected[i]!.deltas[j]!) < 2e-4, `record ${i}, anchor ${j}: ${d} against the engine's ${expected[i]!.deltas[j]}`)));
  const plain = deltasOf('plain.jsonl');
  const moved = separated.flat().filter((d, k) => Math.abs(d - plain.flat()[k]!) > 1e-3).length;
  assert.ok(moved > separated.flat().length / 2, `the separator moves most deltas (${moved} of ${separated.flat().length})`);

  const before = readFileSync(join(dir, 'separated.jsonl'));
  const mixed = await nuggets(['score', dataset, '--anchors', anchors, '--out', 'separated.jsonl']);
  assert.equal(mixed.code, 1, mixed.stderr);
  assert.match(mixed.stderr, /separated\.jsonl holds scores computed with .*separator/);
  assert.deepEqual(readFileSync(join(dir, 'separated.jsonl')), before);
});

test('select --with-scores adds each record\'s golden_score, last; without it the records are written exactly as they were', async () => {
  const golden = new Map(scoreLines('plain.jsonl').map((l) => [l.id, l.golden_score]));
  const withScores = await nuggets(['select', dataset, '--scores', 'plain.jsonl', '--top', '3', '--with-scores', '--out', 'with.json']);
  assert.equal(withScores.code, 0, withScores.stderr);
  const plain = await nuggets(['select', dataset, '--scores', 'plain.jsonl', '--top', '3', '--out', 'without.json']);
  assert.equal(plain.code, 0, plain.stderr);
  const chosen = (JSON.parse(readFileSync(join(dir, 'without.json'), 'utf8')) as Record<string, string>[])
    .map((original) => records.find((r) => JSON.stringify(r.original) === JSON.stringify(original))!);
  assert.equal(chosen.length, 3);
  assert.ok(chosen.every((r) => r !== undefined), 'every written record is one of the dataset\'s, unchanged');
  assert.equal(readFileSync(join(dir, 'without.json'), 'utf8'), JSON.stringify(chosen.map((r) => r.original), null, 2) + '\n');
  assert.equal(readFileSync(join(dir, 'with.json'), 'utf8'),
    JSON.stringify(chosen.map((r) => ({ ...r.original, golden_score: golden.get(r.id) })), null, 2) + '\n');
});

test('--offline scores from the cache without a request to the hub, and refuses when the model is not cached', { timeout: 60_000 }, async () => {
  const hub = await FakeHub.start({ 'nuggets/demo': demoRepository(demoModel) });
  const cache = join(dir, 'hub-cache');
  const score = (out: string, ...more: string[]): string[] => ['score', dataset, '--anchors', anchors, '--model', 'hf:nuggets/demo', '--cache-dir', cache, '--out', out, ...more];
  const env = { HF_ENDPOINT: hub.endpoint };
  try {
    const uncached = await nuggets(score('offline-uncached.jsonl', '--offline'), env);
    assert.equal(uncached.code, 1, uncached.stderr);
    assert.match(uncached.stderr, /hf:nuggets\/demo@main \(variant fp32\) is not in the cache .*hub-cache\/hub, and offline mode is on/);
    assert.equal(hub.requests.length, 0, 'no request to the hub');
    assert.equal(existsSync(join(dir, 'offline-uncached.jsonl')), false);

    const online = await nuggets(score('online.jsonl'), env);
    assert.equal(online.code, 0, online.stderr);
    const asked = hub.requests.length;
    assert.ok(asked > 0, 'the online run downloads');

    const offline = await nuggets(score('offline.jsonl', '--offline'), env);
    assert.equal(offline.code, 0, offline.stderr);
    assert.equal(hub.requests.length, asked, `no request to the hub: ${JSON.stringify(hub.requests.slice(asked))}`);
    assert.match(offline.stderr, /offline mode: using the cache/);
    assert.deepEqual(deltasOf('offline.jsonl'), deltasOf('online.jsonl'));
  } finally {
    await hub.close();
  }
});

test('--served-model chooses among the models a server lists; a name it does not serve is refused', { timeout: 60_000 }, async () => {
  const vllm = await FakeVllm.start(demoModel, { servedModel: 'demo' });
  const listed = (id: string) => ({ id, object: 'model', created: 0, owned_by: 'vllm', root: `models/${id}`, parent: null, max_model_len: vllm.maxModelLen, permission: [] });
  vllm.modelsText = JSON.stringify({ object: 'list', data: [listed('other'), listed('demo')] }); // the first listed is not the one wanted
  const score = (out: string, ...more: string[]): string[] => ['score', dataset, '--anchors', anchors, '--model', vllm.url, '--out', out, ...more];
  try {
    const chosen = await nuggets(score('served.jsonl', '--served-model', 'demo'));
    assert.equal(chosen.code, 0, chosen.stderr);
    assert.match(header('served.jsonl').model.name, /^demo \(served at http:\/\/127\.0\.0\.1:\d+\/v1\)$/);
    assert.equal(scoreLines('served.jsonl').length, RECORDS);
    assert.ok(vllm.bodies.length > 0 && vllm.bodies.every((b) => b.model === 'demo'), 'every completions request names the chosen model');

    const missing = await nuggets(score('not-served.jsonl', '--served-model', 'nope'));
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /does not serve the model "nope" \(it serves: other, demo\)/);
    assert.equal(existsSync(join(dir, 'not-served.jsonl')), false);
  } finally {
    await vllm.close();
  }
});

test('--tokenizer tokenizes with the named tokenizer.json instead of the server\'s /tokenize, with the same scores', { timeout: 60_000 }, async () => {
  const vllm = await FakeVllm.start(demoModel, { servedModel: 'demo' });
  const score = (out: string, ...more: string[]): string[] => ['score', dataset, '--anchors', anchors, '--model', vllm.url, '--out', out, ...more];
  try {
    const viaServer = await nuggets(score('tokenized-by-server.jsonl'));
    assert.equal(viaServer.code, 0, viaServer.stderr);
    assert.ok(vllm.tokenizeBodies.length > 0);

    vllm.tokenizeEndpoint = false; // as servers without /tokenize answer: 404
    const without = await nuggets(score('no-tokenizer.jsonl'));
    assert.equal(without.code, 1, without.stderr);
    assert.match(without.stderr, /--tokenizer/);

    const asked = vllm.tokenizeBodies.length;
    const named = await nuggets(score('tokenized-here.jsonl', '--tokenizer', join(demoModel, 'tokenizer.json')));
    assert.equal(named.code, 0, named.stderr);
    assert.equal(vllm.tokenizeBodies.length, asked, 'no /tokenize request');
    assert.deepEqual(deltasOf('tokenized-here.jsonl'), deltasOf('tokenized-by-server.jsonl'));
  } finally {
    await vllm.close();
  }
});
