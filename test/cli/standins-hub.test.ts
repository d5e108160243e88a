/**
 * `nuggets score --model hf:… --variant …` as a user runs it (the built CLI in a child process), for
 * every model and variant the picker and the README offer, against the local stand-in for the hub
 * (test/support/hub-server.ts) serving the stand-in models (tools/standins) under the real repository
 * names and file layouts: SmolLM2-135M-Instruct (q4, fp32), Qwen2.5-0.5B-Instruct (quantized, q4, and
 * fp32 in the external-data layout) and a Llama-2-style model with a SentencePiece tokenizer.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeAnchors } from '../../server/records/anchors';
import { readDataset } from '../../server/records/dataset';
import { readScores } from '../../server/records/store';
import { repoRoot, scratchDir, sharedData, standins } from '../helpers';
import { FakeHub } from '../support/hub-server';

const cli = join(repoRoot, 'dist', 'cli.js');
let hub: FakeHub;
let root: string;
let dir: string;
let dataset: string;
let anchors: string;

/** A stand-in's files under the hub's names; `graphs` maps variant file names to the stand-in folder that provides them. */
function repository(model: string, graphs: Record<string, string>): Record<string, string> {
  const files: Record<string, string> = {};
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) files[f] = join(root, model, f);
  for (const [file, from] of Object.entries(graphs)) files[`onnx/${file}`] = join(root, from, 'onnx', file);
  return files;
}

const SMOLLM2 = 'HuggingFaceTB/SmolLM2-135M-Instruct';
const QWEN = 'onnx-community/Qwen2.5-0.5B-Instruct';
const LLAMA2 = 'Xenova/llama2.c-stories15M';

before(async () => {
  root = standins();
  const variants = (model: string): Record<string, string> => ({
    'model.onnx': model, 'model_quantized.onnx': model, 'model_q4.onnx': model, 'model_fp16.onnx': model,
  });
  hub = await FakeHub.start({
    [SMOLLM2]: repository('smollm2', variants('smollm2')),
    // As on the hub for large exports: the fp32 graph's weights in onnx/model.onnx_data.
    [QWEN]: repository('qwen2', { ...variants('qwen2'), 'model.onnx': 'qwen2-external', 'model.onnx_data': 'qwen2-external' }),
    [LLAMA2]: repository('llama2-sp', variants('llama2-sp')),
  });
  dir = scratchDir('standins-hub');
  const records = readDataset(sharedData('gpteacher-toolformer.alpaca.json')).records;
  dataset = join(dir, 'data.json');
  writeFileSync(dataset, JSON.stringify(records.slice(30, 35).map((r) => r.original), null, 2));
  anchors = join(dir, 'anchors.json');
  writeAnchors(anchors, readDataset(sharedData('gsm8k-train.alpaca.json')).records.slice(50, 54));
});

after(() => hub.close());

/** The CLI in a child process; asynchronously, so that the hub in this process keeps answering. */
function nuggets(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [cli, 'score', dataset, '--anchors', anchors, '--threads', '1', ...args], {
    cwd: dir, env: { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

for (const [repo, variant, folder] of [
  [SMOLLM2, 'q4', 'smollm2'], [SMOLLM2, 'fp32', 'smollm2'],
  [QWEN, 'quantized', 'qwen2'], [QWEN, 'q4', 'qwen2'], [QWEN, 'fp32', 'qwen2-external'],
  [LLAMA2, 'fp32', 'llama2-sp'], [LLAMA2, 'q4', 'llama2-sp'],
] as const) {
  test(`nuggets score --model hf:${repo} --variant ${variant} scores as the same files from a folder`, async () => {
    const fromHub = join(dir, `${folder}-${variant}-hub.jsonl`);
    const fromFolder = join(dir, `${folder}-${variant}-folder.jsonl`);
    const hubRun = await nuggets('--model', `hf:${repo}`, '--variant', variant, '--cache-dir', join(dir, 'cache'), '--out', fromHub);
    assert.equal(hubRun.code, 0, hubRun.stderr);
    const folderRun = await nuggets('--model', join(root, folder), '--variant', variant, '--cache-dir', join(dir, 'cache'), '--out', fromFolder);
    assert.equal(folderRun.code, 0, folderRun.stderr);
    const a = readScores(fromHub);
    const b = readScores(fromFolder);
    assert.equal(a.header.model.name, `hf:${repo}@main`);
    assert.equal(a.header.model.fingerprint, b.header.model.fingerprint, 'the same files: the same model key');
    assert.equal(a.scores.size, 5);
    for (const [id, score] of b.scores) assert.deepEqual(a.scores.get(id), score);
    for (const score of a.scores.values()) assert.equal(typeof score.goldenScore, 'number');
  });
}

test('--variant fp16 is refused with what to choose instead, before any graph is downloaded', async () => {
  hub.requests.length = 0;
  const r = await nuggets('--model', `hf:${SMOLLM2}`, '--variant', 'fp16', '--cache-dir', join(dir, 'cache-fp16'), '--out', join(dir, 'fp16.jsonl'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /The fp16 variant of hf:HuggingFaceTB\/SmolLM2-135M-Instruct@main is not scored\.\n\s+fp16 exports .* Choose q4 \(the smallest\) or fp32/);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  assert.deepEqual(hub.requests, [], 'nothing was fetched');
});

test('the external-data download keeps its weights file beside the graph, and the scores file names the model', () => {
  const cached = join(dir, 'cache', 'hub');
  const listing = spawnSync('find', [cached, '-name', 'model.onnx*'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map((p) => p.slice(cached.length));
  assert.ok(listing.some((p) => p.endsWith('/onnx/model.onnx_data')), listing.join(', '));
  assert.equal(readFileSync(join(dir, 'qwen2-external-fp32-hub.jsonl'), 'utf8').split('\n')[0]!.includes(`hf:${QWEN}@main`), true);
});
