/**
 * Served scoring tokenized as the paper does, on a SentencePiece-style model (the Llama-2 stand-in from
 * tools/standins: Metaspace with the "▁" prefix, byte fallback, BOS added by a template). Such a
 * tokenizer puts "▁" before every text it encodes, so the candidate + anchor text encoded jointly
 * differs from the two encoded apart: a server given the joined text scores the anchor after other
 * tokens than the paper's rule. The serving backend sends token ids instead, encoded apart; this test
 * shows that the joint encoding moves the scores, and that the served scores now equal the local path's.
 * (A protocol test, as test/unit/serving.test.ts: the vLLM stand-in computes with this project's engine.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readDataset, type DatasetRecord } from '../../server/records/dataset';
import { readModelFolder } from '../../server/model/folder';
import { TextTokenizer } from '../../server/model/tokenizer';
import type { ScoringOptions } from '../../server/scoring/backend';
import { scoreCandidate } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { openBackend } from '../../server/scoring/open';
import { fullText } from '../../server/scoring/template';
import { sharedData, standins } from '../helpers';
import { FakeVllm } from '../support/vllm-server';

const standin = (name: string): string => join(standins(), name);

const OPTIONS: ScoringOptions = { maxAnchorTokens: 200, separator: '', batchSize: 8 };
const TOLERANCE = 1e-3;

const seed = readDataset(sharedData('alpaca-seed-tasks.jsonl')).records;
let model: string;
let tokenizer: TextTokenizer;
let anchors: DatasetRecord[];
let candidates: DatasetRecord[];
let vllm: FakeVllm;
let local: LocalBackend;

before(async () => {
  model = standin('llama2-sp');
  const folder = readModelFolder(model);
  tokenizer = new TextTokenizer(folder.tokenizerJson, folder.tokenizerConfig, folder.path);
  // Anchors within maxAnchorTokens, so that a joint encoding's response span can be found from its end.
  anchors = seed.filter((r) => tokenizer.encode(fullText(r), false).length <= OPTIONS.maxAnchorTokens).slice(0, 8);
  candidates = seed.slice(40, 46);
  vllm = await FakeVllm.start(model, { servedModel: 'llama2-sp' });
  local = await LocalBackend.open(model, { threads: 1 });
});

after(async () => {
  await local.dispose();
  await vllm.close();
});

test('the SentencePiece stand-in encodes candidate + anchor differently jointly than apart', () => {
  assert.equal(anchors.length, 8);
  assert.match(JSON.stringify(readModelFolder(model).tokenizerJson), /"Metaspace"/, 'a Metaspace tokenizer');
  let differing = 0;
  for (const c of candidates) {
    for (const a of anchors) {
      const joint = tokenizer.encode(fullText(c) + fullText(a), true);
      const apart = [...tokenizer.encode(fullText(c), true), ...tokenizer.encode(fullText(a), false)];
      if (joint.join() !== apart.join()) differing++;
    }
  }
  assert.equal(differing, candidates.length * anchors.length, 'every pair differs');
  // Where: the anchor alone starts with "▁Instruction"; after the candidate's text its tokens are others.
  const alone = tokenizer.encode(fullText(anchors[0]!), false);
  const prefix = tokenizer.encode(fullText(candidates[0]!), true);
  const joint = tokenizer.encode(fullText(candidates[0]!) + fullText(anchors[0]!), true);
  assert.deepEqual(joint.slice(0, prefix.length - 1), prefix.slice(0, prefix.length - 1));
  assert.notDeepEqual(joint.slice(prefix.length, prefix.length + 2), alone.slice(0, 2));
});

test('served scoring fails under joint text encoding: the scores move away from the paper\'s rule', async () => {
  const preparedLocal = await local.prepareAnchors(anchors, OPTIONS);
  let moved = 0;
  let largest = 0;
  let goldenDiffers = 0;
  for (const c of candidates) {
    const expected = await scoreCandidate(local, preparedLocal, c);
    // What the served path sent before: one text, tokenized by the server with its special tokens.
    const res = await fetch(`${vllm.url}/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'llama2-sp', prompt: anchors.map((a) => fullText(c) + fullText(a)), echo: true, logprobs: 0, max_tokens: 1 }),
    });
    const body = await res.json() as { choices: { index: number; logprobs: { token_logprobs: (number | null)[] } }[] };
    let wins = 0;
    anchors.forEach((_, i) => {
      const lp = body.choices.find((ch) => ch.index === i)!.logprobs.token_logprobs.slice(0, -1); // the generated token off
      const span = preparedLocal.responseTokens[i]!;
      const s1 = lp.slice(lp.length - span).reduce((s: number, v) => s + v!, 0);
      const delta = s1 - preparedLocal.zeroShot[i]!;
      const off = Math.abs(delta - expected.deltas[i]!);
      if (off > TOLERANCE) moved++;
      largest = Math.max(largest, off);
      if (delta > 0) wins++;
    });
    if (wins / anchors.length !== expected.goldenScore) goldenDiffers++;
  }
  const pairs = candidates.length * anchors.length;
  process.stdout.write(`# joint encoding: ${moved}/${pairs} deltas off by more than ${TOLERANCE} nats (largest ${largest.toFixed(3)}), ${goldenDiffers}/${candidates.length} golden scores differ\n`);
  assert.ok(moved > pairs / 2, `${moved} of ${pairs} deltas moved`);
  assert.ok(largest > 0.01, `largest move ${largest}`);
});

test('served scores tokenized apart equal the local path exactly (golden equal, deltas within 1e-3 nats)', async () => {
  for (const tokenizerSource of [undefined, model]) {
    const served = await openBackend(vllm.url, { servedModel: 'llama2-sp', ...(tokenizerSource ? { tokenizer: tokenizerSource } : {}) });
    const preparedLocal = await local.prepareAnchors(anchors, OPTIONS);
    const preparedServed = await served.prepareAnchors(anchors, OPTIONS);
    assert.deepEqual([...preparedServed.responseTokens], [...preparedLocal.responseTokens]);
    preparedLocal.zeroShot.forEach((s0, i) => assert.ok(Math.abs(s0 - preparedServed.zeroShot[i]!) < TOLERANCE, `s0 of anchor ${i}`));
    const golden: number[] = [];
    for (const c of candidates) {
      const expected = await scoreCandidate(local, preparedLocal, c);
      const actual = await scoreCandidate(served, preparedServed, c);
      expected.deltas.forEach((d, i) => assert.ok(Math.abs(d - actual.deltas[i]!) < TOLERANCE, `delta of record ${c.index}, anchor ${i}: ${d} vs ${actual.deltas[i]}`));
      assert.equal(actual.goldenScore, expected.goldenScore, `golden score of record ${c.index}`);
      golden.push(actual.goldenScore);
    }
    assert.ok(new Set(golden).size > 1, `golden scores should differ between records: ${golden.join(', ')}`);
  }
  // The prompts went as token ids: the candidate's with its BOS, then the anchor's, encoded apart.
  const last = vllm.bodies.at(-1)!.prompt as number[][];
  const bos = tokenizer.encode('x', true)[0]!;
  assert.ok(last.every((ids) => Array.isArray(ids) && ids[0] === bos));
});
