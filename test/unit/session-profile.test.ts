import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readDataset } from '../../server/records/dataset';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { LocalBackend } from '../../server/scoring/local';
import { demoModel, scratchDir, sharedData } from '../helpers';

test('a session opened with a profile prefix records the per-operator timings of ONNX Runtime, and scores as without', async () => {
  const dir = scratchDir('profile');
  const profiled = await LocalBackend.open(demoModel, { cacheDir: dir, profileFilePrefix: join(dir, 'run') });
  const plain = await LocalBackend.open(demoModel, { cacheDir: dir });
  const anchors = readDataset(sharedData('gpteacher-roleplay.alpaca.json')).records.slice(0, 3);
  const candidate = readDataset(sharedData('gsm8k-train.alpaca.json')).records[4]!;
  const a = await profiled.oneShot(candidate, await profiled.prepareAnchors(anchors, DEFAULT_OPTIONS));
  const b = await plain.oneShot(candidate, await plain.prepareAnchors(anchors, DEFAULT_OPTIONS));
  assert.deepEqual(Array.from(a.oneShot), Array.from(b.oneShot));
  await profiled.dispose();
  await plain.dispose();
  const files = readdirSync(dir).filter((f) => f.startsWith('run_') && f.endsWith('.json'));
  assert.equal(files.length, 1, `one profile file, got ${files.join(', ')}`);
  const events = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as Array<{ cat: string; name: string; args?: { op_name?: string } }>;
  const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')).map((e) => e.args?.op_name);
  assert.ok(kernels.includes('LogSoftmax'), 'the log-probability head is profiled with the model');
  assert.ok(kernels.some((op) => op === 'MatMul' || op === 'FusedMatMul'), 'the projections are profiled');
});
