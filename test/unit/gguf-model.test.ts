/**
 * GGUF models scored with the file's own weights. Each imported graph is checked against an
 * independent float64 forward (tools/gguf/reference.py: the `gguf` package's dequantizer, llama.cpp's
 * own rotary layout, no code shared with the importer) on the same token ids:
 * - synthetic llama and qwen2 files holding every tensor type the importer reads (tools/gguf/make_gguf.py),
 *   as stored (MatMulNBits) and dequantized to float32; the dequantizer itself against the `gguf` package's;
 * - the real SmolLM2-135M-Instruct weights (Q4_1, Q8_0 tied embedding): 24 real records x 10 anchors,
 *   every summed response span within 1e-3 nats (the reference runs each candidate's prefix once, in float64); the cached path equal to the naive one; and the
 *   in-context sanity check the demo model passes at 91/100.
 * Needs python3 with the `gguf` package and the real file (tools/setup.sh installs both).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readDataset, type DatasetRecord } from '../../server/records/dataset';
import { OnnxCausalLM } from '../../server/model/causal-lm';
import { readGguf, readTensorBytes } from '../../server/model/gguf/file';
import { importGguf } from '../../server/model/gguf/import';
import { dequantize } from '../../server/model/gguf/quants';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { LocalBackend } from '../../server/scoring/local';
import { fullText } from '../../server/scoring/template';
import { demoModel, repoRoot, scratchDir, sharedData, smollm2Gguf } from '../helpers';

interface ReferenceRow { tokens: number[]; from: number; to: number }
interface ReferenceAnswer { sums: number[]; logprobs: number[][] }
type ReferenceJob = { rows: ReferenceRow[] } | { groups: Array<{ prefix: number[]; rows: ReferenceRow[] }> };

/** The independent float64 forward over `gguf`: one whole sequence per row, or rows continuing a shared prefix (in float64 too). */
function reference(gguf: string, job: ReferenceJob): ReferenceAnswer {
  const run = spawnSync('python3', [join(repoRoot, 'tools', 'gguf', 'reference.py')], { input: JSON.stringify({ gguf, ...job }), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(`tools/gguf/reference.py failed (bash tools/setup.sh installs the gguf package):\n${run.stderr || run.error?.message}`);
  return JSON.parse(run.stdout) as ReferenceAnswer;
}

function python(script: string, args: string[]): void {
  const run = spawnSync('python3', [join(repoRoot, 'tools', 'gguf', script), ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`tools/gguf/${script} failed:\n${run.stderr || run.error?.message}`);
}

let dir: string;
let cache: string;
before(() => {
  dir = scratchDir('gguf-model');
  cache = join(dir, 'cache');
});

for (const { arch, flags } of [{ arch: 'llama', flags: ['--tied'] }, { arch: 'qwen2', flags: ['--untied'] }]) {
  test(`${arch}: every tensor type dequantizes as the gguf package does, and both graphs match the float64 reference`, async () => {
    const gguf = join(dir, `${arch}.gguf`);
    python('make_gguf.py', ['--arch', arch, ...flags, '--out', gguf, '--no-check']);
    const fixture = join(dir, `${arch}.json`);
    python('dequant_fixture.py', [gguf, fixture]);
    const file = readGguf(gguf);
    const expected = JSON.parse(readFileSync(fixture, 'utf8')) as { tensors: Array<{ name: string; type: string; first: number[]; last: number[]; sum: number; sumsq: number }> };
    const types = new Set<string>();
    for (const t of expected.tensors) {
      const values = dequantize(file.tensors.get(t.name)!, readTensorBytes(file, file.tensors.get(t.name)!));
      types.add(t.type);
      const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
      t.first.forEach((v, i) => assert.ok(close(values[i]!, v), `${t.name} (${t.type}) value ${i}: ${values[i]} vs ${v}`));
      t.last.forEach((v, i) => assert.ok(close(values[values.length - t.last.length + i]!, v), `${t.name} (${t.type}) value ${values.length - t.last.length + i}`));
      let sumsq = 0;
      for (const v of values) sumsq += v * v;
      assert.ok(Math.abs(sumsq - t.sumsq) <= 1e-5 * t.sumsq, `${t.name} (${t.type}) sum of squares ${sumsq} vs ${t.sumsq}`);
    }
    for (const type of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K']) assert.ok(types.has(type), `the file holds ${type}`);

    // Rows of real-looking ids, past the rotary's first positions; row 2 continues a prefix through the cache.
    const vocabulary = (file.metadata.get('tokenizer.ggml.tokens') as string[]).length;
    const tokens = Array.from({ length: 40 }, (_, i) => (i * 7919 + 13) % vocabulary);
    const rows = [{ tokens, from: 1, to: 40 }, { tokens: tokens.slice(5, 30), from: 3, to: 25 }];
    const want = reference(gguf, { rows });
    for (const weights of ['stored', 'float32'] as const) {
      const { folder } = importGguf(gguf, { cacheDir: cache, weights });
      const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
      const lm = await OnnxCausalLM.load(join(folder, 'model.onnx'), config, 4096);
      try {
        const got = await lm.forward(rows.map((r) => ({ tokens: r.tokens, targetFrom: r.from, targetTo: r.to })));
        let worst = 0;
        rows.forEach((_, r) => want.logprobs[r]!.forEach((v, k) => (worst = Math.max(worst, Math.abs(got[r]![k]! - v)))));
        const cache1 = await lm.prefill(tokens.slice(0, 20));
        const [continued] = await lm.forward([{ tokens: tokens.slice(20), targetFrom: 1, targetTo: 20 }], cache1);
        continued!.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - want.logprobs[0]![20 + k]!))));
        console.log(`${arch} ${weights}: max |log-probability - float64 reference| ${worst.toExponential(2)} over ${rows.reduce((n, r) => n + r.to - r.from, 0) + 19} positions`);
        assert.ok(worst < 1e-4, `${arch} ${weights}: ${worst}`);
      } finally {
        await lm.dispose();
      }
    }
  });
}

/** Short real records, so that the float64 reference (about 4 ms a token here) stays quick. */
function shortRecords(file: string, count: number, maxChars: number, skip = 0): DatasetRecord[] {
  return readDataset(sharedData(file)).records.filter((r) => fullText(r).length <= maxChars).slice(skip, skip + count);
}

let smol: LocalBackend;
let naive: LocalBackend;
let smolFolder: string;
before(async () => {
  smolFolder = importGguf(smollm2Gguf(), { cacheDir: join(scratchDir('gguf-smol'), 'cache') }).folder;
  smol = await LocalBackend.open(smolFolder, { path: 'cached', displayName: 'SmolLM2-135M-Instruct.Q4_1.gguf' });
  naive = await LocalBackend.open(smolFolder, { path: 'naive' });
});
after(async () => {
  await smol?.dispose();
  await naive?.dispose();
});

test('the real SmolLM2 weights: every summed span of 24 real records x 10 anchors within 1e-3 nats of the float64 reference', async () => {
  const candidates = [...shortRecords('alpaca-seed-tasks.jsonl', 8, 260), ...shortRecords('gsm8k-train.alpaca.json', 8, 260), ...shortRecords('gpteacher-toolformer.alpaca.json', 8, 320)];
  const anchors = [...shortRecords('alpaca-seed-tasks.jsonl', 5, 300, 20), ...shortRecords('gsm8k-train.alpaca.json', 5, 260, 20)];
  assert.equal(candidates.length, 24);
  assert.equal(anchors.length, 10);
  const options = { ...DEFAULT_OPTIONS, maxAnchorTokens: 96 };
  const prepared = await smol.prepareAnchors(anchors, options);
  const anchorTokens = anchors.map((a) => smol.anchorTokens(a, options.maxAnchorTokens));
  const zeroShot: ReferenceRow[] = anchorTokens.map((a) => ({ tokens: a.tokens, from: a.responseFrom, to: a.tokens.length }));
  // The reference runs each candidate's prefix once and continues it with every anchor (float64 keys
  // and values of its own): the numbers of one whole sequence per pair, at a fifth of the cost.
  const groups = [];
  const engine: number[] = [...prepared.zeroShot];
  for (const c of candidates) {
    const prefix = smol.tokenizer.encode(fullText(c), true);
    groups.push({ prefix, rows: anchorTokens.map((a) => ({ tokens: a.tokens, from: prefix.length + a.responseFrom, to: prefix.length + a.tokens.length })) });
    engine.push(...(await smol.oneShot(c, prepared)).oneShot);
  }
  const started = Date.now();
  const want = [...reference(smollm2Gguf(), { rows: zeroShot }).sums, ...reference(smollm2Gguf(), { groups }).sums];
  const differences = want.map((s, i) => Math.abs(s - engine[i]!));
  const worst = Math.max(...differences);
  console.log(`SmolLM2 Q4_1 (as stored) vs float64 reference: max |summed span difference| ${worst.toExponential(2)} nats over ${want.length} spans `
    + `(10 zero-shot + 240 one-shot; reference ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  assert.ok(worst < 1e-3, `worst span ${differences.indexOf(worst)}: ${worst}`);
});

test('the real SmolLM2 weights: the cached path gives the naive path\'s golden scores, deltas within 1e-3', async () => {
  const candidates = shortRecords('gsm8k-train.alpaca.json', 6, 400, 30);
  const anchors = shortRecords('gpteacher-toolformer.alpaca.json', 8, 300, 40);
  const options = { ...DEFAULT_OPTIONS, maxAnchorTokens: 96 };
  const a = await smol.prepareAnchors(anchors, options);
  const b = await naive.prepareAnchors(anchors, { ...options, batchSize: 1 });
  let worst = 0;
  for (const c of candidates) {
    const cached = (await smol.oneShot(c, a)).oneShot;
    const full = (await naive.oneShot(c, b)).oneShot;
    const wins = (s1: Float64Array, s0: Float64Array): number => s1.filter((v, i) => v > s0[i]!).length;
    assert.equal(wins(cached, a.zeroShot), wins(full, b.zeroShot));
    cached.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - a.zeroShot[i]! - (full[i]! - b.zeroShot[i]!)))));
  }
  console.log(`SmolLM2 cached vs naive: golden scores equal on ${candidates.length} records x ${anchors.length} anchors, max |delta difference| ${worst.toExponential(2)} nats`);
  assert.ok(worst < 1e-3);
});

test('the real SmolLM2 weights learn in context: a held-out record given as its own one-shot example raises its response\'s likelihood', async () => {
  const records = readDataset(join(demoModel, 'heldout-check.json')).records;
  const prepared = await smol.prepareAnchors(records, DEFAULT_OPTIONS);
  let positive = 0;
  let total = 0;
  for (let i = 0; i < records.length; i++) {
    const delta = (await smol.oneShot(records[i]!, prepared, [i])).oneShot[0]! - prepared.zeroShot[i]!;
    if (delta > 0) positive++;
    total += delta;
  }
  console.log(`SmolLM2-135M-Instruct one-shot self check: ${positive}/${records.length} positive, mean delta ${(total / records.length).toFixed(2)} nats (the demo model: 91/100)`);
  assert.ok(positive >= 95, `${positive}/${records.length}`);
});
