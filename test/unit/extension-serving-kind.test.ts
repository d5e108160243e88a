/**
 * Choose Model → A serving endpoint…: the engine is asked of the server (SGLang answers GET /get_model_info, vLLM
 * does not), and the setting written names SGLang's as sglang+http://…; a server that cannot tell leaves the choice
 * to the user. Through the stand-in vscode API (test/support/vscode-standin.ts) and the vLLM and SGLang stand-ins.
 */
import { editor } from '../support/vscode-standin'; // first: the extension modules below require('vscode')
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import type { Ctx } from '../../extension/ctx';
import { chooseModel } from '../../extension/models';
import { detectServingKind, modelSetting } from '../../extension/serving_kind';
import { demoModel } from '../helpers';
import { FakeSglang } from '../support/sglang-server';
import { FakeVllm } from '../support/vllm-server';

let vllm: FakeVllm;
let sglang: FakeSglang;
/** A server that demands a key for everything (401), as vLLM or SGLang started with --api-key. */
let locked: Server;
let lockedUrl: string;
const ctx = { client: { sendRequest: () => Promise.reject(new Error('no server')) }, extensionContext: { globalState: editor.globalState } } as unknown as Ctx;

before(async () => {
  vllm = await FakeVllm.start(demoModel, { servedModel: 'demo' });
  sglang = await FakeSglang.start(demoModel, { servedModel: 'demo' });
  locked = createServer((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Unauthorized"}'));
  await new Promise<void>((resolve) => locked.listen(0, '127.0.0.1', resolve));
  lockedUrl = `http://127.0.0.1:${(locked.address() as AddressInfo).port}`;
});
after(async () => {
  await vllm.close();
  await sglang.close();
  await new Promise((resolve) => locked.close(resolve));
});
beforeEach(() => {
  editor.reset();
  editor.workspaceFolder = '/home/ada/project';
});

/** Choose Model with the endpoint item picked and `typed` entered; `engine` answers the question of which engine, if asked. */
async function chooseEndpoint(typed: string, engine?: string): Promise<string | undefined> {
  editor.answer = (prompt) => {
    if (prompt.kind === 'input') return typed;
    const items = prompt.items as { ask?: string; label?: string }[];
    if (prompt.kind === 'quickPick') return items.find((i) => i.ask === 'endpoint') ?? items.find((i) => i.label === engine);
    return undefined;
  };
  return chooseModel(ctx);
}

test('the server says which engine it is: SGLang (its /get_model_info) is written as sglang+http://, vLLM as typed, without asking', async () => {
  assert.equal(await detectServingKind(sglang.url), 'sglang');
  assert.equal(await detectServingKind(`${vllm.url}`), 'vllm');
  assert.equal(await detectServingKind(lockedUrl), undefined);

  assert.equal(await chooseEndpoint(`${sglang.url}/v1`), `sglang+${sglang.url}`);
  assert.deepEqual(editor.updates.filter((u) => u.name === 'nuggets.model').map((u) => u.value), [`sglang+${sglang.url}`]);
  assert.equal(editor.prompts.filter((p) => p.kind === 'quickPick').length, 1, 'no question of which engine');

  editor.reset();
  assert.equal(await chooseEndpoint(vllm.url), vllm.url);
  assert.equal(editor.prompts.filter((p) => p.kind === 'quickPick').length, 1);
});

test('a server that cannot tell (401 without a key) leaves the engine to the user; sglang+ typed, or several addresses, are taken as typed', async () => {
  assert.equal(await chooseEndpoint(`${lockedUrl}/v1`, 'SGLang'), `sglang+${lockedUrl}`);
  const asked = editor.prompts.filter((p) => p.kind === 'quickPick')[1];
  assert.equal(asked?.message, `Nuggets: which engine serves ${lockedUrl}/v1?`);
  editor.reset();
  assert.equal(await chooseEndpoint(`${lockedUrl}/v1`, 'vLLM'), `${lockedUrl}/v1`);
  editor.reset();
  assert.equal(await chooseEndpoint(`${lockedUrl}/v1`), undefined, 'dismissed: nothing written');
  assert.deepEqual(editor.updates, []);

  editor.reset();
  assert.equal(await chooseEndpoint(`sglang+${lockedUrl}`), `sglang+${lockedUrl}`);
  editor.reset();
  assert.equal(await chooseEndpoint(`${lockedUrl}/v1,${vllm.url}/v1`), `${lockedUrl}/v1,${vllm.url}/v1`);
  assert.equal(editor.prompts.filter((p) => p.kind === 'quickPick').length, 1);
  assert.equal(modelSetting('sglang+http://gpu-a:30000/v1/', 'sglang'), 'sglang+http://gpu-a:30000');
});
