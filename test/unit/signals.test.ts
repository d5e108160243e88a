import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { readDataset, type DatasetRecord, type Example } from '../../server/records/dataset';
import { FINAL_HIDDEN_STATE } from '../../server/model/hidden-state';
import { graphWithLogprobHead } from '../../server/model/logprob-head';
import { computeSignals } from '../../server/signals';
import { fromHalf, toHalf } from '../../server/signals/embedding';
import { EmbeddingsWriter, readEmbeddings } from '../../server/signals/embedding-file';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { scoreCandidate } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { fullText, queryText } from '../../server/scoring/template';
import { demoModel, scratchDir, sharedData, sharedRecords } from '../helpers';

let cached: LocalBackend;
/** The reference: full logits, a log-softmax in JavaScript, one plain sequence per pass. */
let naive: LocalBackend;
let headedGraph: string;
before(async () => {
  const cacheDir = scratchDir('signals');
  cached = await LocalBackend.open(demoModel, { path: 'cached', cacheDir });
  naive = await LocalBackend.open(demoModel, { path: 'naive', logprobHead: false });
  headedGraph = graphWithLogprobHead(join(demoModel, 'model.onnx'), cacheDir, 'signals-test')!;
});
after(async () => {
  await cached.dispose();
  await naive.dispose();
});

function realRecords(): DatasetRecord[] {
  return [...sharedRecords('gsm8k-train.alpaca.json', [3, 41]), ...sharedRecords('gpteacher-toolformer.alpaca.json', [5]), ...sharedRecords('gpteacher-roleplay.alpaca.json', [12, 300])];
}

/** Perplexity of tokens [from, to) of `tokens`, naively: one sequence, logits, log-softmax. */
async function naivePerplexity(tokens: number[], from: number, to: number): Promise<number | null> {
  if (to <= from) return null;
  const [logprobs] = await naive.lm.forward([{ tokens, targetFrom: from, targetTo: to }]);
  return Math.exp(-logprobs!.reduce((s, v) => s + v, 0) / logprobs!.length);
}

/** The mean final hidden state over `tokens`, read straight from an ONNX Runtime session of the graph. */
async function naiveEmbedding(session: ort.InferenceSession, tokens: number[]): Promise<Float64Array> {
  const n = tokens.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, (_, i) => BigInt(i)), [1, n]),
    target_ids: new ort.Tensor('int64', new BigInt64Array(n), [1, n, 1]),
  };
  for (const name of session.inputNames.filter((x) => x.startsWith('past_key_values.'))) {
    feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, cached.lm.shape.kvHeads, 0, cached.lm.shape.headDim]);
  }
  const out = await session.run(feeds);
  const hidden = out['final_hidden_state']!;
  const size = hidden.dims[2]!;
  const data = hidden.data as Float32Array;
  const mean = new Float64Array(size);
  for (let t = 0; t < n; t++) for (let d = 0; d < size; d++) mean[d]! += data[t * size + d]! / n;
  const norm = Math.hypot(...mean);
  return mean.map((v) => v / norm);
}

function assertClose(actual: number | null, expected: number | null, what: string): void {
  if (expected === null) return assert.equal(actual, null, what);
  assert.ok(actual !== null && Math.abs(actual - expected) <= 1e-4 * Math.abs(expected), `${what}: ${actual} vs ${expected}`);
}

test('the rewritten graph also returns the final hidden state, [batch, sequence, n_embd]', async () => {
  const session = await ort.InferenceSession.create(headedGraph);
  assert.ok(session.outputNames.includes(FINAL_HIDDEN_STATE));
  const config = JSON.parse(readFileSync(join(demoModel, 'config.json'), 'utf8')) as { n_embd: number };
  const tokens = cached.tokenizer.encode('Instruction:\nSay hi.\nResponse:\nHi', true);
  const pass = await cached.lm.prefixPass(tokens, 1, tokens.length);
  assert.equal(pass.hidden!.size, config.n_embd);
  assert.equal(pass.hidden!.data.length, tokens.length * config.n_embd);
  await session.release();
});

test('every signal equals a naive reference on real records, within 1e-4 relative', async () => {
  const session = await ort.InferenceSession.create(headedGraph);
  const anchors = readDataset(sharedData('gsm8k-train.alpaca.json')).records.slice(100, 104);
  const prepared = await cached.prepareAnchors(anchors, DEFAULT_OPTIONS);
  for (const record of realRecords()) {
    const score = await scoreCandidate(cached, prepared, record);
    const full = cached.tokenizer.encode(fullText(record), true);
    const query = cached.tokenizer.encode(queryText(record), true);
    const output = cached.tokenizer.encode(record.output, true);
    const pplCond = await naivePerplexity(full, query.length, full.length);
    const pplDirect = await naivePerplexity(output, 1, output.length);
    assertClose(score.signals!['ppl_cond']!, pplCond, `ppl_cond of record ${record.index}`);
    assertClose(score.signals!['ppl_direct']!, pplDirect, `ppl_direct of record ${record.index}`);
    assertClose(score.signals!['ifd']!, pplCond! / pplDirect!, `ifd of record ${record.index}`);
    const expected = await naiveEmbedding(session, full);
    assert.equal(score.embedding!.length, expected.length);
    expected.forEach((v, d) => assert.ok(Math.abs(score.embedding![d]! - v) <= 1e-4 * Math.max(Math.abs(v), 1e-2), `embedding of record ${record.index}, dimension ${d}`));
    assert.ok(pplCond! > 1 && pplDirect! > 1, 'perplexities are above 1');
  }
  await session.release();
});

test('the signals of the one-shot pass leave golden scores as they were', async () => {
  const anchors = readDataset(sharedData('gpteacher-roleplay.alpaca.json')).records.slice(20, 24);
  const prepared = await cached.prepareAnchors(anchors, DEFAULT_OPTIONS);
  const record = realRecords()[2]!;
  const plain = await cached.oneShot(record, prepared);
  const score = await scoreCandidate(cached, prepared, record);
  score.deltas.forEach((d, i) => assert.ok(Math.abs(d - (plain.oneShot[i]! - prepared.zeroShot[i]!)) < 1e-4));
});

test('IFD is missing, never 0, when the output leaves an empty span; a cut candidate uses what remains', async () => {
  assert.deepEqual(computeSignals({ conditional: new Float64Array([-1, -3]), direct: new Float64Array(0) }), {
    ppl_cond: Math.exp(2), ppl_direct: null, ifd: null,
  });
  const anchors = readDataset(sharedData('gsm8k-train.alpaca.json')).records.slice(0, 2);
  const prepared = await cached.prepareAnchors(anchors, DEFAULT_OPTIONS);
  const base = readDataset(sharedData('gpteacher-roleplay.alpaca.json')).records[0]!;
  const huge: Example = { ...base, output: Array.from({ length: 40 }, () => base.output).join(' ') };
  const passes = await cached.candidatePasses(huge, prepared);
  const prefix = cached.candidatePrefix(huge, prepared as never);
  assert.equal(prefix.truncated, true);
  assert.equal(passes.conditional.length, prefix.prefix.length - 1, 'the response fills the cut prefix: every token after the first');
  assert.ok(passes.embedding && Math.abs(Math.hypot(...passes.embedding) - 1) < 1e-5);
});

test('float16 keeps an embedding to 1e-3 and rounds to nearest', () => {
  for (const v of [0, 1, -1, 0.1, -0.033, 65504, 6.1e-5, 3e-7]) assert.ok(Math.abs(fromHalf(toHalf(v)) - v) <= Math.abs(v) * 1e-3 + 6e-8, String(v));
  assert.equal(toHalf(1), 0x3c00);
  assert.equal(toHalf(-2), 0xc000);
  assert.equal(fromHalf(toHalf(1e6)), Infinity);
});

test('an embeddings sidecar is resumed from its header alone: an entry cut short is cut off, another model is refused, a header cut short starts again', () => {
  const path = join(scratchDir('sidecar-resume'), 'scores.jsonl.embeddings');
  const vector = (seed: number): Float32Array => Float32Array.from({ length: 4 }, (_, d) => Math.sin(seed + d));
  const first = EmbeddingsWriter.open(path, 'model-a', 4, () => 0);
  for (const k of [1, 2, 3]) first.append(k.toString(16).padStart(16, '0'), vector(k));
  first.close();
  appendFileSync(path, Buffer.from([1, 2, 3, 4, 5])); // a killed run's entry, cut short
  const resumed = EmbeddingsWriter.open(path, 'model-a', 4, () => 3);
  resumed.append('4'.padStart(16, '0'), vector(4));
  resumed.close();
  const read = readEmbeddings(path)!;
  assert.deepEqual([...read.vectors.keys()], [1, 2, 3, 4].map((k) => k.toString(16).padStart(16, '0')));
  for (const [k, id] of [1, 2, 3, 4].map((k) => [k, k.toString(16).padStart(16, '0')] as const)) {
    assert.deepEqual([...read.vectors.get(id)!], [...vector(k)].map((v) => fromHalf(toHalf(v))), `entry ${k}`);
  }
  assert.throws(() => EmbeddingsWriter.open(path, 'model-b', 4, () => 4), /holds embeddings of another model \(model-a, dimension 4\)/);
  writeFileSync(path, '{"nuggets_embeddings":1,"mod'); // a header cut short by a full disk
  const again = EmbeddingsWriter.open(path, 'model-b', 4, () => 0);
  again.append('5'.padStart(16, '0'), vector(5));
  again.close();
  assert.equal(readEmbeddings(path)!.header.model, 'model-b');
});
