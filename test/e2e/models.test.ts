/**
 * End to end, in a real VS Code (the packaged .vsix in code-server, driven in Debian's Chromium): the model
 * choices. Choose Model's quick pick offers each kind of model (the demo model, hub models, one Ollama has
 * pulled, a folder, a GGUF file, a serving endpoint), and picking a folder and then a serving endpoint (a vLLM
 * stand-in on loopback, which records the Authorization header of every request) takes effect. The serving key
 * modal, in a trusted folder, with a key stored for another server: it asks before the key goes to the
 * endpoint; after Cancel the stand-in's requests arrive without the key, after Send Key with it. Compare
 * Models through the same pick list: the demo model against a second local model (a stand-in model folder),
 * the result in the dashboard in plain words, and its [compare] line in the Nuggets log. A screenshot of each
 * step goes to .test-artifacts/e2e/models/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { demoModel, repoRoot, sharedData, standins } from '../helpers';
import { FakeVllm } from '../support/vllm-server';
import { E2eSession, e2eFolders, installPackagedExtension, nuggetsLog, nuggetsStatus, runCommand, startCodeServer, until } from './code-server';

const RECORDS = 10;
const ANCHORS = 4;
const DATASET = 'data.alpaca.json';
const KEY = 'sk-nuggets-e2e-modal';
/** The server the key is entered for: another origin than the stand-in's. */
const ENTERED_FOR = 'http://gpu-a.example:8000';
const artifacts = join(repoRoot, '.test-artifacts', 'e2e', 'models');

let root: string;
let workspace: string;
/** The second local model: a stand-in model folder (random weights, a real family's files). */
let secondModel: string;
let vllm: FakeVllm;
let page: Page;
const session = new E2eSession(artifacts, () => `Authorization headers the stand-in received: ${JSON.stringify(vllm?.authorizations.slice(-6))}\n`
  + `Nuggets log, last lines:\n${nuggetsLog(root).trimEnd().split('\n').slice(-8).join('\n')}`);
const step = (name: string, run: () => Promise<void>): Promise<void> => session.step(name, run);

const cli = (...args: string[]): string => execFileSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
const statusText = (): Promise<string> => nuggetsStatus(page);
const quickInput = (): ReturnType<Page['locator']> => page.locator('.quick-input-widget input.input');
const quickRow = (text: string | RegExp): ReturnType<Page['locator']> => page.locator('.quick-input-widget .monaco-list-row', { hasText: text }).first();
const toast = (text: string | RegExp): ReturnType<Page['locator']> => page.locator('.notification-toast', { hasText: text }).first();

/** Closes the notifications shown, so that the next step's are the ones read. */
async function clearToasts(): Promise<void> {
  await runCommand(page, 'Notifications: Clear All Notifications').catch(() => undefined);
}

/** Types into the input box titled `title` (once it is the one shown) and accepts it. */
async function answerInput(title: RegExp, text: string): Promise<void> {
  await page.locator('.quick-input-widget .quick-input-title', { hasText: title }).waitFor({ state: 'visible' });
  await quickInput().fill(text);
  await quickInput().press('Enter');
}

/**
 * Picks `folder` in the editor's own folder dialog (a quick input in code-server): its path typed, then the
 * dialog's OK button ("Score with this model"), pressed again if the dialog went into the folder instead.
 */
async function pickFolder(folder: string): Promise<void> {
  const input = quickInput();
  await input.waitFor({ state: 'visible' });
  // The dialog writes its starting folder into the input once it has read it, which can come after a path typed
  // early (then the starting folder would be chosen): type the path until it stays.
  const wanted = `${folder}/`;
  const typed = async (): Promise<string> => {
    if ((await input.inputValue()) !== wanted) await input.fill(wanted);
    await page.waitForTimeout(400);
    return input.inputValue();
  };
  await until(typed, (value) => value === wanted, 15_000, 'the folder typed into the open dialog');
  await page.waitForTimeout(800); // the dialog lists the folder
  const ok = page.locator('.quick-input-widget .monaco-button', { hasText: 'Score with this model' }).first();
  for (let attempt = 0; attempt < 3 && (await input.isVisible()); attempt++) {
    if ((await input.inputValue()) !== wanted && !(await input.inputValue()).startsWith(wanted)) await input.fill(wanted);
    if (await ok.isVisible()) await ok.click();
    else await input.press('Enter');
    await page.waitForTimeout(800);
  }
}

before(async () => {
  ({ root, workspace } = e2eFolders(artifacts, 'nuggets-e2e-models-'));
  const records = (JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')) as Record<string, string>[]).slice(0, RECORDS);
  writeFileSync(join(workspace, DATASET), JSON.stringify(records, null, 2) + '\n');
  const anchors = join(root, 'anchors.json');
  cli('anchors', join(workspace, DATASET), '--kmeans', String(ANCHORS), '--out', anchors);
  secondModel = join(standins(), 'qwen2');
  // One model Ollama has pulled, as its store lists it (a manifest is enough for the list).
  const ollama = join(root, 'ollama');
  mkdirSync(join(ollama, 'manifests', 'registry.ollama.ai', 'library', 'smollm2'), { recursive: true });
  writeFileSync(join(ollama, 'manifests', 'registry.ollama.ai', 'library', 'smollm2', '135m'), '{}\n');
  vllm = await FakeVllm.start(demoModel, { servedModel: 'nuggets-demo' });

  const extensionsDir = installPackagedExtension(root);
  page = await session.launch(await startCodeServer({
    root, extensionsDir, folder: workspace, log: join(artifacts, 'code-server.log'),
    settings: { 'nuggets.anchors': anchors, 'editor.minimap.enabled': false },
    env: { OLLAMA_MODELS: ollama },
  }));
}, { timeout: 240_000 });

after(async () => {
  await session.close();
  await vllm?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('Choose Model offers each kind and a folder, then an endpoint, take effect; the serving key modal; Compare Models in the dashboard', { timeout: 300_000 }, async () => {
  await step('01-open-trusted', async () => {
    await page.goto(`${session.server!.url}/?folder=${encodeURIComponent(workspace)}`, { timeout: 60_000 });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Yes, I trust the authors' }).click({ timeout: 30_000 });
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: DATASET }).dblclick();
    await page.locator(`.tab.active[data-resource-name="${DATASET}"]`).waitFor();
    await until(statusText, (t) => t.includes(`Nuggets 0/${RECORDS}`), 60_000, 'the Nuggets status bar item');
  });

  await step('02-choose-model-kinds', async () => {
    await runCommand(page, 'Nuggets: Choose Model');
    await quickRow('Demo model').waitFor({ state: 'visible' });
    // Each kind, found as a user would by typing part of its name (the list is longer than the widget).
    for (const [typed, row] of [['demo', 'Demo model'], ['SmolLM2', /HuggingFaceTB\/SmolLM2/], ['Another hub', 'Another hub model…'], ['smollm2:135m', 'smollm2:135m'],
      ['local folder', 'A local folder…'], ['GGUF file', 'A GGUF file…'], ['serving endpoint', 'A serving endpoint…']] as const) {
      await quickInput().fill(typed);
      await quickRow(row).waitFor({ state: 'visible', timeout: 10_000 });
    }
    await quickInput().fill('');
    await quickRow('A serving endpoint…').waitFor({ state: 'visible' });
  });

  await step('03-folder-takes-effect', async () => {
    await quickInput().fill('local folder');
    await quickRow('A local folder…').click();
    await pickFolder(secondModel);
    await toast(`scoring with ${secondModel} (user settings)`).waitFor({ timeout: 20_000 });
    // The server now scores with it: its model line names the folder's model and what it replaced.
    await until(() => Promise.resolve(nuggetsLog(root)), (t) => /\[model\] data\.alpaca\.json: model qwen2 \(fingerprint [0-9a-f]+\);.* 0\/10 current, 10 to score; model was .*demo/.test(t), 20_000, 'the [model] line of the folder');
    await clearToasts();
  });

  await step('04-key-stored-for-another-server', async () => {
    await runCommand(page, 'Nuggets: Set Serving API Key');
    await answerInput(/^Nuggets: serving API key$/, KEY);
    await answerInput(/for which server\?/, ENTERED_FOR);
    await toast('serving API key stored').waitFor();
    await clearToasts();
  });

  await step('05-endpoint-takes-effect', async () => {
    await runCommand(page, 'Nuggets: Choose Model');
    await quickInput().fill('serving endpoint');
    await quickRow('A serving endpoint…').click();
    await answerInput(/^Nuggets: serving endpoint$/, vllm.url);
    // The stand-in says it is vLLM (/v1/models); were it not to, the engine is asked for.
    const engine = quickRow('vLLM');
    if (await engine.waitFor({ state: 'visible', timeout: 4000 }).then(() => true, () => false)) await engine.click();
    await toast(`scoring with ${vllm.url} (user settings)`).waitFor({ timeout: 20_000 });
    await until(() => Promise.resolve(nuggetsLog(root)), (t) => t.includes(`model was ${secondModel}`), 20_000, 'the [model] line of the endpoint');
    await clearToasts();
  });

  const origin = new URL(vllm.url).origin;
  const modal = page.locator('.monaco-dialog-box', { hasText: `Send your serving API key to ${origin}?` });
  await step('06-key-modal-asks', async () => {
    await runCommand(page, 'Nuggets: Score Dataset');
    await modal.waitFor({ timeout: 20_000 });
    assert.match(await modal.innerText(), new RegExp(`The key was entered for ${ENTERED_FOR.replace(/[.:/]/g, '\\$&')}`));
  });

  await step('07-after-cancel-no-key', async () => {
    const from = vllm.authorizations.length;
    await modal.locator('.monaco-button', { hasText: 'Cancel' }).click();
    await until(statusText, (t) => t.includes(`◆ Nuggets ${RECORDS}/${RECORDS}`), 120_000, 'the status bar after scoring without the key');
    const sent = vllm.authorizations.slice(from);
    assert.ok(sent.length >= RECORDS, `the endpoint scored the records: ${sent.length} requests`);
    assert.deepEqual(sent.filter((a) => a !== undefined), [], 'no request carried an Authorization header');
  });

  await step('08-after-accept-key-sent', async () => {
    // Declined origins are not asked again in this session: a new window asks afresh.
    await Promise.all([page.waitForEvent('load', { timeout: 60_000 }), runCommand(page, 'Developer: Reload Window')]);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    // The new window's server has read the document again. Its scores are asked to be current only by the steps
    // below (after Send Key): once in about seven runs they came back stale after the reload, an open bug whose cause
    // is not found yet (the served model's identity after a reload), which this step is not about.
    await until(statusText, (t) => new RegExp(`Nuggets \\d+/${RECORDS}`).test(t), 60_000, 'the status bar after reloading');
    await runCommand(page, 'Nuggets: Clear Scores');
    await page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Clear Scores' }).click();
    await until(statusText, (t) => t.includes(`Nuggets 0/${RECORDS}`), 20_000, 'the status bar after Clear Scores');
    await runCommand(page, 'Nuggets: Score Dataset');
    await modal.waitFor({ timeout: 20_000 });
    const from = vllm.authorizations.length;
    await modal.locator('.monaco-button', { hasText: 'Send Key' }).click();
    await until(statusText, (t) => t.includes(`◆ Nuggets ${RECORDS}/${RECORDS}`), 120_000, 'the status bar after scoring with the key');
    const sent = vllm.authorizations.slice(from);
    assert.ok(sent.filter((a) => a === `Bearer ${KEY}`).length >= RECORDS, `the scoring requests carried the key: ${JSON.stringify(sent)}`);
    await clearToasts();
  });

  const view = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
  await step('09-compare-models-pick-list', async () => {
    await runCommand(page, 'Nuggets: Choose Model');
    await quickRow('Demo model').click();
    await toast('scoring with the bundled demo model').waitFor({ timeout: 20_000 });
    await clearToasts();
    await runCommand(page, 'Nuggets: Compare Models on a Sample');
    // The same list, with the models used before: the folder and the endpoint picked above.
    await quickRow('qwen2').waitFor({ state: 'visible' });
    assert.match(await page.locator('.quick-input-widget .quick-input-title').innerText(), /compare .*demo.* with/);
  });

  await step('10-compare-models-in-dashboard', async () => {
    await quickRow('qwen2').click();
    await answerInput(/^Nuggets: records to compare on$/, String(RECORDS));
    const section = view.locator('#comparison');
    await section.waitFor({ state: 'visible', timeout: 120_000 });
    const verdict = (await view.locator('#comparison-verdict').innerText()).trim();
    assert.match(verdict, /^demo can(not)? stand in for \S+: it ranks these 10 random records/);
    const figures = await view.locator('#comparison-table tr').allInnerTexts();
    assert.equal(figures.length, 5, JSON.stringify(figures));
    assert.match(figures[1]!, /^Spearman rank correlation, golden score\s+(-?\d\.\d{3}\s+How alike the two models order|undefined\s+Undefined: )/);
    assert.match(figures[3]!, /^Top-10% overlap\s+\d+%\s+Of the records the current model ranks in the best 10%/);
    assert.match(figures[4]!, /^Decisions at golden score ≥ 0\.85\s+\d+\.\d% agree\s+Records that both models keep/);
    assert.doesNotMatch(figures.join('\n'), /--[a-z]/, 'no command-line flags');
    await toast(/stand in for/).locator('.monaco-button', { hasText: 'Show in Dashboard' }).waitFor();
    await view.locator('#comparison').scrollIntoViewIfNeeded();
    const log = await until(() => Promise.resolve(nuggetsLog(root)), (t) => t.includes('[compare] '), 20_000, 'the [compare] line');
    assert.match(log, new RegExp(`\\[compare\\] ${DATASET.replace(/\./g, '\\.')}: model demo \\(fingerprint [0-9a-f]+.*\\); anchors .*, ${ANCHORS} anchors, set [0-9a-f]+; compared with ${secondModel.replace(/[./]/g, '\\$&')} on ${RECORDS} records: golden Spearman `));
  });
});
