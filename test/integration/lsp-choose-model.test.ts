/**
 * What Nuggets: Choose Model offers, through the language server to scores. The picker's list comes from
 * the server (`nuggets/suggestedModels`); choosing an entry sets `nuggets.model` and `nuggets.modelVariant`,
 * which reach the server as a settings notification. Here the stand-in models (tools/standins) are served
 * under the real repository names by the local hub, and every offered model and variant is downloaded
 * into the storage path and scores a real file. (The quick pick itself is VS Code's: not driven here.)
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as protocol from '../../server/protocol';
import { scratchDir, sharedData, standins } from '../helpers';
import { FakeHub } from '../support/hub-server';
import { TestClient } from './lsp-client';

const RECORDS = 3;
let hub: FakeHub;
let client: TestClient;
let dataset: { uri: string; text: string };
const env = { HF_ENDPOINT: '', HF_TOKEN: undefined, HF_HUB_OFFLINE: undefined, NUGGETS_API_KEY: undefined };

/** A stand-in's files under the hub's file names, every variant the picker may ask for. */
function repository(folder: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) files[f] = join(folder, f);
  for (const f of ['model.onnx', 'model_quantized.onnx', 'model_q4.onnx']) files[`onnx/${f}`] = join(folder, 'onnx', f);
  return files;
}

function settings(model: string, variant: string): protocol.ServerSettings {
  return { model, variant: variant === 'fp32' ? null : variant, anchors: null, maxAnchorTokens: 200, batchSize: 8, threads: 1, scoringAllowed: true, secrets: {} };
}

before(async () => {
  const root = standins();
  hub = await FakeHub.start({
    'HuggingFaceTB/SmolLM2-135M-Instruct': repository(join(root, 'smollm2')),
    'onnx-community/Qwen2.5-0.5B-Instruct': repository(join(root, 'qwen2')),
  });
  env.HF_ENDPOINT = hub.endpoint;
  const work = scratchDir('lsp-choose-model');
  const records = (JSON.parse(readFileSync(sharedData('gpteacher-toolformer.alpaca.json'), 'utf8')) as unknown[]).slice(10, 10 + RECORDS);
  const path = join(work, 'tools.alpaca.json');
  dataset = { uri: pathToFileURL(path).toString(), text: JSON.stringify(records, null, 2) + '\n' };
  writeFileSync(path, dataset.text);
  client = await TestClient.start({ storagePath: join(work, 'storage'), settings: settings('', 'fp32') }, env);
  await client.open(dataset.uri, dataset.text);
  await client.waitForScores(dataset.uri, (p) => p.full, 'the first scores notification');
});

after(async () => {
  await client?.stop().catch(() => undefined);
  await hub?.close();
});

test('every model and variant the picker offers downloads and scores a real file', async () => {
  const offered = await client.connection.sendRequest(protocol.suggestedModels);
  assert.deepEqual(offered.map((m) => m.spec), ['hf:HuggingFaceTB/SmolLM2-135M-Instruct', 'hf:onnx-community/Qwen2.5-0.5B-Instruct']);
  for (const { spec, variants } of offered) {
    for (const variant of variants) {
      const from = client.received.length;
      await client.connection.sendNotification(protocol.didChangeSettings, settings(spec, variant));
      const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: dataset.uri }, workDoneToken: randomUUID() });
      assert.equal(result.cancelled, false, `${spec} ${variant}`);
      assert.equal(result.scoredNow, RECORDS, `${spec} ${variant}: every record scored by this model and variant`);
      const last = await client.waitForScores(dataset.uri, (p) => p.scored === RECORDS && p.model !== null, `${spec} ${variant} scores`, from);
      assert.match(last.model!, new RegExp(spec.slice(3).split('/')[1]!.replace(/\./g, '\\.')), `the scores name the model (${last.model})`);
      assert.ok(last.records.every((r) => r.score && !r.stale && Number.isFinite(r.score.goldenScore)), `${spec} ${variant}: current scores`);
    }
  }
});
