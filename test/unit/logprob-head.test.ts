import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { readDataset } from '../../server/records/dataset';
import { assemble, bytesSource, graphWithLogprobHead, withLogprobHead } from '../../server/model/logprob-head';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { LocalBackend } from '../../server/scoring/local';
import { demoModel, repoRoot, scratchDir, sharedData } from '../helpers';

test('the rewritten graph takes target_ids, returns target_logprobs, and no longer returns logits', async () => {
  const source = bytesSource(readFileSync(join(demoModel, 'model.onnx')));
  const session = await ort.InferenceSession.create(assemble(source, withLogprobHead(source)));
  assert.ok(session.inputNames.includes('target_ids'));
  assert.ok(session.outputNames.includes('target_logprobs'));
  assert.ok(!session.outputNames.includes('logits'));
  assert.ok(session.outputNames.includes('present.3.value'), 'every other output is kept');
  await session.release();
});

test('target log-probabilities from the graph equal a log-softmax over the logits, on real records', async () => {
  const cache = scratchDir('head');
  const withHead = await LocalBackend.open(demoModel, { cacheDir: cache });
  const withLogits = await LocalBackend.open(demoModel, { logprobHead: false });
  assert.equal(withHead.lm.hasLogprobHead, true);
  assert.equal(withLogits.lm.hasLogprobHead, false);
  const anchors = readDataset(sharedData('gpteacher-roleplay.alpaca.json')).records.slice(0, 5);
  const candidate = readDataset(sharedData('gsm8k-train.alpaca.json')).records[9]!;
  const a = await withHead.prepareAnchors(anchors, DEFAULT_OPTIONS);
  const b = await withLogits.prepareAnchors(anchors, DEFAULT_OPTIONS);
  const sa = await withHead.oneShot(candidate, a);
  const sb = await withLogits.oneShot(candidate, b);
  for (let i = 0; i < anchors.length; i++) {
    assert.ok(Math.abs(a.zeroShot[i]! - b.zeroShot[i]!) < 1e-3, `zero-shot ${i}`);
    assert.ok(Math.abs(sa.oneShot[i]! - sb.oneShot[i]!) < 1e-3, `one-shot ${i}`);
  }
  await withHead.dispose();
  await withLogits.dispose();
});

test('a graph that is not a causal LM, or a truncated one, is refused and leaves no file behind', () => {
  const cache = scratchDir('head');
  const folder = scratchDir('graph');
  copyFileSync(join(repoRoot, 'test', 'fixtures', 'identity.onnx'), join(folder, 'model.onnx'));
  assert.throws(() => graphWithLogprobHead(join(folder, 'model.onnx'), cache, 'identity'), /no "logits" output/);
  writeFileSync(join(folder, 'model.onnx'), readFileSync(join(demoModel, 'model.onnx')).subarray(0, 50_000));
  assert.throws(() => graphWithLogprobHead(join(folder, 'model.onnx'), cache, 'truncated'), /truncated protobuf/);
  assert.deepEqual(readdirSync(cache).flatMap((d) => readdirSync(join(cache, d))), []);
});
