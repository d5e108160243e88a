/**
 * The extension's guards for users who open someone else's workspace (extension/config.ts,
 * extension/models.ts), against a stand-in of the editor (test/support/vscode-standin.ts): in an
 * untrusted workspace the workspace's model, variant and anchors are ignored and no credential is sent;
 * the serving API key is bound to the server it was entered for, and goes to another only when the user
 * says so. Where a key would go, a stand-in vLLM server records what it received.
 */
import { editor } from '../support/vscode-standin'; // first: the extension modules below require('vscode')
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { isNoChatTemplate, offerChatml, USE_CHATML } from '../../extension/chat_template_offer';
import { Config, SECRET_KEYS } from '../../extension/config';
import type { Ctx } from '../../extension/ctx';
import type * as vscode from 'vscode';
import { chooseModel, confirmServingKey, setServingApiKey } from '../../extension/models';
import { modelOptions } from '../../server/lsp/model-identity';
import { openBackend } from '../../server/scoring/open';
import { demoModel, scratchDir } from '../helpers';
import { FakeSglang } from '../support/sglang-server';
import { FakeVllm } from '../support/vllm-server';

const extensionPath = '/opt/nuggets-extension';
const bundledModel = join(extensionPath, 'models', 'demo');
const workspace = '/home/ada/project';
const KEY = 'sk-nuggets-trust-test';
/** vscode.ConfigurationTarget's values. */
const USER = 1;
const WORKSPACE = 2;
/** The server the key was entered for: no request is made to it. */
const ENTERED_FOR = 'http://gpu-a.example:8000';

let vllm: FakeVllm;
let sglang: FakeSglang;
before(async () => {
  vllm = await FakeVllm.start(demoModel, { servedModel: 'nuggets-demo' });
  sglang = await FakeSglang.start(demoModel, { servedModel: 'nuggets-demo' });
});
after(async () => {
  await vllm.close();
  await sglang.close();
});

beforeEach(() => {
  editor.reset();
  editor.workspaceFolder = workspace;
});

/** A workspace whose settings (.vscode/settings.json) point the model, its variant and the anchors elsewhere. */
function hostileWorkspaceSettings(model: string): void {
  editor.set('nuggets.model', 'workspace', model);
  editor.set('nuggets.modelVariant', 'workspace', 'q4');
  editor.set('nuggets.anchors', 'workspace', 'poisoned-anchors.json');
}

/** The parts of the extension's live state the key check uses; `sent` counts settings sent to the server. */
function keyContext(config: Config): { ctx: Ctx; sent: () => number } {
  let sent = 0;
  const ctx = { config, extensionContext: { secrets: editor.secrets }, sendSettings: () => void sent++ } as unknown as Ctx;
  return { ctx, sent: () => sent };
}

/** What the serving endpoint receives when the engine opens the model with the settings the extension sends. */
async function authorizationsReceived(config: Config, server: { authorizations: (string | undefined)[] } = vllm): Promise<(string | undefined)[]> {
  const settings = config.serverSettings();
  const from = server.authorizations.length;
  const backend = await openBackend(settings.model, modelOptions(settings, scratchDir('trust')));
  await backend.dispose();
  const received = server.authorizations.slice(from);
  assert.ok(received.length > 0, 'opening the endpoint made no request');
  return received;
}

test('in an untrusted workspace the workspace\'s model, variant and anchors are ignored: the user\'s own values or the demo model count', () => {
  const config = new Config(extensionPath);
  hostileWorkspaceSettings('http://evil.example:8000/v1');
  editor.trusted = false;
  assert.deepEqual(pick(config.serverSettings()), { model: bundledModel, variant: null, anchors: null, scoringAllowed: false, demoModel: true });

  editor.set('nuggets.model', 'user', '/home/ada/models/mine');
  editor.set('nuggets.modelVariant', 'user', 'quantized');
  editor.set('nuggets.anchors', 'user', '/home/ada/anchors.json');
  assert.deepEqual(pick(config.serverSettings()), { model: '/home/ada/models/mine', variant: 'quantized', anchors: '/home/ada/anchors.json', scoringAllowed: false, demoModel: false });

  // Trusted, the workspace's values are the ones in effect (relative paths against the workspace folder).
  editor.trusted = true;
  assert.deepEqual(pick(config.serverSettings()), { model: 'http://evil.example:8000/v1', variant: 'q4', anchors: join(workspace, 'poisoned-anchors.json'), scoringAllowed: true, demoModel: false });
});

test('in an untrusted workspace the workspace\'s template is ignored (a .jinja file it names is never read); the user\'s own counts; the format is read either way', () => {
  const config = new Config(extensionPath);
  editor.set('nuggets.template', 'workspace', 'templates/hostile.jinja');
  editor.set('nuggets.format', 'workspace', 'sharegpt');
  editor.trusted = false;
  assert.equal(config.serverSettings().template, 'auto');
  assert.equal(config.serverSettings().format, 'sharegpt');
  editor.set('nuggets.template', 'user', 'chatml');
  assert.equal(config.serverSettings().template, 'chatml');
  // Trusted, the workspace's value counts, its path made absolute against the workspace folder.
  editor.trusted = true;
  assert.equal(config.serverSettings().template, join(workspace, 'templates', 'hostile.jinja'));
  editor.set('nuggets.template', 'workspace', 'paper');
  assert.equal(config.serverSettings().template, 'paper');
  editor.set('nuggets.format', 'workspace', 'yaml');
  assert.equal(config.serverSettings().format, 'auto', 'an unknown format is auto');
});

test('nuggets.turns goes to the server as last (its default) or all, trusted or not (it runs nothing); another value is last', () => {
  const config = new Config(extensionPath);
  editor.trusted = false;
  assert.equal(config.serverSettings().turns, 'last');
  editor.set('nuggets.turns', 'workspace', 'all');
  assert.equal(config.serverSettings().turns, 'all');
  editor.trusted = true;
  assert.equal(config.serverSettings().turns, 'all');
  editor.set('nuggets.turns', 'workspace', 'every');
  assert.equal(config.serverSettings().turns, 'last');
});

test('a model without a chat template: Use ChatML sets nuggets.template to chatml for the workspace; dismissing it changes nothing', async () => {
  assert.equal(isNoChatTemplate({ message: 'x', data: { noChatTemplate: true } }), true);
  assert.equal(isNoChatTemplate(new Error('The model demo has no chat template')), false);
  editor.answer = () => undefined;
  assert.equal(await offerChatml('The model demo has no chat template.'), false);
  assert.equal(editor.updates.length, 0);
  assert.deepEqual(editor.prompts.at(-1)!.items, [USE_CHATML]);
  editor.answer = (prompt) => (prompt.kind === 'warning' ? USE_CHATML : undefined);
  assert.equal(await offerChatml('The model demo has no chat template.'), true);
  assert.deepEqual(editor.updates.map((u) => [u.name, u.value, u.target]), [['nuggets.template', 'chatml', WORKSPACE]]);
});

test('in an untrusted workspace the workspace\'s serving endpoint is not one the key check considers', () => {
  const config = new Config(extensionPath);
  editor.set('nuggets.model', 'workspace', 'http://evil.example:8000/v1,http://evil.example:8000/v2');
  editor.trusted = false;
  assert.deepEqual(config.servingOrigins(), []);
  editor.trusted = true;
  assert.deepEqual(config.servingOrigins(), [{ origin: 'http://evil.example:8000', fromWorkspace: true }]);
});

test('an untrusted workspace is sent no credential: neither the hub token nor the serving key', async () => {
  const config = new Config(extensionPath);
  await editor.secrets.store(SECRET_KEYS.hubToken, 'hf_trust_test');
  await editor.secrets.store(SECRET_KEYS.apiKey, JSON.stringify({ key: KEY, origins: [ENTERED_FOR] }));
  assert.equal(await config.loadSecrets(editor.secrets as unknown as vscode.SecretStorage), true);
  editor.trusted = false;
  assert.equal(config.serverSettings().secrets, undefined);
  editor.trusted = true;
  assert.deepEqual(config.serverSettings().secrets, { hubToken: 'hf_trust_test', apiKey: KEY, apiKeyOrigins: [ENTERED_FOR] });
});

test('in an untrusted workspace Choose Model writes the user\'s settings, not the workspace\'s it would not read', async () => {
  // The server's model lists are not needed here: the demo model is picked.
  const ctx = { client: { sendRequest: () => Promise.reject(new Error('no server')) }, extensionContext: { globalState: editor.globalState } } as unknown as Ctx;
  editor.answer = (prompt) => (prompt.kind === 'quickPick' ? (prompt.items as { model?: string }[]).find((item) => item.model === '') : undefined);
  editor.set('nuggets.model', 'workspace', 'http://evil.example:8000/v1');
  editor.trusted = false;
  assert.equal(await chooseModel(ctx), '');
  assert.deepEqual(editor.updates.map((u) => [u.name, u.target]), [['nuggets.modelVariant', USER], ['nuggets.model', USER]]);
  assert.match(editor.prompts.at(-1)!.message, /scoring with the bundled demo model \(user settings\)/);

  // Trusted, the workspace's value is the one in effect, and the choice replaces it there.
  editor.updates.length = 0;
  editor.trusted = true;
  assert.equal(await chooseModel(ctx), '');
  assert.deepEqual(editor.updates.map((u) => [u.name, u.target]), [['nuggets.modelVariant', WORKSPACE], ['nuggets.model', WORKSPACE]]);
});

test('Set Serving API Key binds the key to the server it is entered for', async () => {
  const config = new Config(extensionPath);
  editor.set('nuggets.model', 'user', 'http://gpu-b.example:8000/v1');
  const answers = [KEY, 'http://gpu-b.example:8000/v1'];
  editor.answer = (prompt) => (prompt.kind === 'input' ? answers.shift() : undefined);
  assert.equal(await setServingApiKey(keyContext(config).ctx), true);
  assert.deepEqual(editor.secrets.writes, [{ key: SECRET_KEYS.apiKey, value: JSON.stringify({ key: KEY, origins: ['http://gpu-b.example:8000'] }) }]);
  // The server asked about is the one in the model setting, offered as the default.
  assert.equal(editor.prompts.filter((p) => p.kind === 'input')[1]?.options?.['value'], 'http://gpu-b.example:8000');
});

test('before the key goes to another server the user is asked; after Cancel the request goes out without the key, and the question is not asked again', async () => {
  const config = new Config(extensionPath);
  const origin = new URL(vllm.url).origin;
  editor.set('nuggets.model', 'workspace', vllm.url);
  await editor.secrets.store(SECRET_KEYS.apiKey, JSON.stringify({ key: KEY, origins: [ENTERED_FOR] }));
  await config.loadSecrets(editor.secrets as unknown as vscode.SecretStorage);
  const { ctx, sent } = keyContext(config);

  await confirmServingKey(ctx); // the stand-in user dismisses the modal: Cancel
  assert.deepEqual(editor.prompts.map((p) => [p.kind, p.message, p.options?.['modal'], p.items]), [
    ['warning', `Send your serving API key to ${origin}?`, true, ['Send Key', 'Score Without Key']],
  ]);
  assert.match(String(editor.prompts[0]!.options?.['detail']), new RegExp(`entered for ${ENTERED_FOR}\\. .*workspace's settings`));
  assert.deepEqual(JSON.parse(editor.secrets.values.get(SECRET_KEYS.apiKey)!), { key: KEY, origins: [ENTERED_FOR] }, 'the binding is unchanged');
  assert.equal(sent(), 0);
  assert.deepEqual(new Set(await authorizationsReceived(config)), new Set([undefined]));

  await confirmServingKey(ctx);
  assert.equal(editor.prompts.length, 1, 'a declined server is not asked about again in this session');
});

test('Send Key binds the key to that server too, and its requests carry the key', async () => {
  const config = new Config(extensionPath);
  // Another origin than the previous test's (declined there for this session), on the same stand-in server.
  const endpoint = vllm.url.replace('127.0.0.1', 'localhost');
  const origin = new URL(endpoint).origin;
  editor.set('nuggets.model', 'user', endpoint);
  await editor.secrets.store(SECRET_KEYS.apiKey, JSON.stringify({ key: KEY, origins: [ENTERED_FOR] }));
  await config.loadSecrets(editor.secrets as unknown as vscode.SecretStorage);
  const { ctx, sent } = keyContext(config);
  editor.answer = (prompt) => (prompt.message === `Send your serving API key to ${origin}?` ? 'Send Key' : undefined);

  await confirmServingKey(ctx);
  assert.equal(editor.prompts.length, 1);
  assert.match(String(editor.prompts[0]!.options?.['detail']), /user settings/);
  assert.deepEqual(JSON.parse(editor.secrets.values.get(SECRET_KEYS.apiKey)!), { key: KEY, origins: [ENTERED_FOR, origin] });
  assert.equal(sent(), 1, 'the server is sent the new binding');
  assert.deepEqual(new Set(await authorizationsReceived(config)), new Set([`Bearer ${KEY}`]));

  await confirmServingKey(ctx);
  assert.equal(editor.prompts.length, 1, 'a server the key is bound to is not asked about');
});

test('the key goes to the server it was entered for without asking, and to no other server in the same setting', async () => {
  const config = new Config(extensionPath);
  const origin = new URL(vllm.url).origin;
  editor.set('nuggets.model', 'user', vllm.url);
  await editor.secrets.store(SECRET_KEYS.apiKey, JSON.stringify({ key: KEY, origins: [origin] }));
  await config.loadSecrets(editor.secrets as unknown as vscode.SecretStorage);
  await confirmServingKey(keyContext(config).ctx);
  assert.deepEqual(editor.prompts, []);
  assert.deepEqual(new Set(await authorizationsReceived(config)), new Set([`Bearer ${KEY}`]));

  // Bound to another server only: the engine withholds it from this one.
  await editor.secrets.store(SECRET_KEYS.apiKey, JSON.stringify({ key: KEY, origins: [ENTERED_FOR] }));
  await config.loadSecrets(editor.secrets as unknown as vscode.SecretStorage);
  assert.deepEqual(new Set(await authorizationsReceived(config)), new Set([undefined]));
});

/** What the SGLang stand-in receives on opening, but for the gateway probe (GET /workers), which never carries the key. */
async function sglangAuthorizations(config: Config): Promise<(string | undefined)[]> {
  const from = sglang.requestPaths.length;
  await authorizationsReceived(config, sglang);
  const received = sglang.authorizations.slice(from).filter((_, k) => sglang.requestPaths[from + k] !== '/workers');
  assert.ok(received.length > 0, 'opening the SGLang server made no request but the probe');
  return received;
}

test('an SGLang model (sglang+http://…) is asked about as its http address: Send Key binds the key to it, and the SGLang server\'s requests carry the key; Set Serving API Key offers that address', async () => {
  const config = new Config(extensionPath);
  const origin = new URL(sglang.url).origin;
  editor.set('nuggets.model', 'user', `sglang+${sglang.url}`);
  assert.deepEqual(config.servingOrigins(), [{ origin, fromWorkspace: false }]);
  await editor.secrets.store(SECRET_KEYS.apiKey, JSON.stringify({ key: KEY, origins: [ENTERED_FOR] }));
  await config.loadSecrets(editor.secrets as unknown as vscode.SecretStorage);
  // Bound elsewhere: the SGLang server gets no key before the user says so.
  assert.deepEqual(new Set(await sglangAuthorizations(config)), new Set([undefined]));
  const { ctx, sent } = keyContext(config);
  editor.answer = (prompt) => (prompt.message === `Send your serving API key to ${origin}?` ? 'Send Key' : undefined);
  await confirmServingKey(ctx);
  assert.deepEqual(editor.prompts.map((p) => p.message), [`Send your serving API key to ${origin}?`]);
  assert.deepEqual(JSON.parse(editor.secrets.values.get(SECRET_KEYS.apiKey)!), { key: KEY, origins: [ENTERED_FOR, origin] });
  assert.equal(sent(), 1);
  assert.deepEqual(new Set(await sglangAuthorizations(config)), new Set([`Bearer ${KEY}`]));

  editor.reset();
  editor.workspaceFolder = workspace;
  editor.set('nuggets.model', 'user', `sglang+${sglang.url}`);
  const answers = [KEY, `sglang+${sglang.url}`];
  editor.answer = (prompt) => (prompt.kind === 'input' ? answers.shift() : undefined);
  assert.equal(await setServingApiKey(keyContext(config).ctx), true);
  assert.equal(editor.prompts.filter((p) => p.kind === 'input')[1]?.options?.['value'], origin, 'the SGLang server offered as the default');
  assert.deepEqual(editor.secrets.writes.at(-1), { key: SECRET_KEYS.apiKey, value: JSON.stringify({ key: KEY, origins: [origin] }) });
});

function pick(settings: ReturnType<Config['serverSettings']>): Record<string, unknown> {
  const { model, variant, anchors, scoringAllowed, demoModel } = settings;
  return { model, variant, anchors, scoringAllowed, demoModel };
}
