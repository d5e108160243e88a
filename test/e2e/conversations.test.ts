/**
 * End to end, in a real VS Code: the packaged .vsix in code-server, a trusted folder holding a ShareGPT JSON
 * Lines file (ten real conversations of samples/identity-15.sharegpt.json, one per line), nuggets.template left
 * at auto. The bundled demo model has no chat template of its own: Score Dataset says so and offers Use ChatML,
 * which sets nuggets.template to chatml for the folder and scores the conversations through the scoring worker;
 * each record's badge then shows the golden score the CLI computes for the same file, anchors and template, and
 * the hover of a conversation lists its turns with their roles. A screenshot of each step goes to
 * .test-artifacts/e2e/conversations/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { repoRoot } from '../helpers';
import {
  E2eSession, e2eFolders, installPackagedExtension, injectedTexts, nuggetsStatus, runCommand, startCodeServer, until, type CodeServer,
} from './code-server';

const RECORDS = 10;
const DATASET = 'identity.sharegpt.jsonl';
const artifacts = join(repoRoot, '.test-artifacts', 'e2e', 'conversations');

interface CliScore { index: number; golden_score: number; wins: number; anchors: number }

let root: string;
let workspace: string;
let expected: CliScore[];
let conversations: { conversations: { from: string; value: string }[] }[];
let server: CodeServer | undefined;
let page: Page;
const session = new E2eSession(artifacts);
const step = (name: string, run: () => Promise<void>): Promise<void> => session.step(name, run);

const cli = (...args: string[]): string => execFileSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });

before(async () => {
  ({ root, workspace } = e2eFolders(artifacts, 'nuggets-e2e-chat-'));
  conversations = (JSON.parse(readFileSync(join(repoRoot, 'samples', 'identity-15.sharegpt.json'), 'utf8')) as typeof conversations).slice(0, RECORDS);
  writeFileSync(join(workspace, DATASET), conversations.map((c) => JSON.stringify(c)).join('\n') + '\n');
  // Anchors from the CLI, outside the folder; the CLI's scores of the same file are what the badges must show.
  const anchors = join(root, 'chat-anchors.json');
  cli('anchors', join(workspace, DATASET), '--random', '4', '--seed', '2', '--out', anchors);
  cli('score', join(workspace, DATASET), '--anchors', anchors, '--template', 'chatml', '--out', join(root, 'scores.jsonl'));
  expected = readFileSync(join(root, 'scores.jsonl'), 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as CliScore);
  assert.equal(expected.length, RECORDS);

  const extensionsDir = installPackagedExtension(root);
  server = await startCodeServer({
    root, extensionsDir, folder: workspace, log: join(artifacts, 'code-server.log'),
    settings: { 'nuggets.anchors': anchors, 'editor.hover.delay': 200, 'editor.minimap.enabled': false, 'editor.wordWrap': 'off' },
  });
  page = await session.launch(server);
}, { timeout: 240_000 });

after(async () => {
  await session.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('a ShareGPT JSON Lines file in VS Code: no chat template, Use ChatML, badges equal to the CLI\'s scores, a hover with the turns', { timeout: 180_000 }, async () => {
  await step('01-open', async () => {
    await page.goto(`${server!.url}/?folder=${encodeURIComponent(workspace)}`, { timeout: 60_000 });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Yes, I trust the authors' }).click({ timeout: 30_000 });
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: DATASET }).dblclick();
    await page.locator(`.tab.active[data-resource-name="${DATASET}"]`).waitFor();
    await page.locator('.editor-group-container.active .view-line', { hasText: '"conversations"' }).first().waitFor();
    // The server read the conversations: the status bar counts them, none scored yet.
    await until(() => nuggetsStatus(page), (t) => t.includes(`Nuggets 0/${RECORDS}`), 60_000, 'the Nuggets status bar item');
  });

  await step('02-no-chat-template', async () => {
    await runCommand(page, 'Nuggets: Score Dataset');
    const toast = page.locator('.notification-toast', { hasText: 'has no chat template' }).first();
    await toast.waitFor({ timeout: 60_000 });
    assert.match(await toast.innerText(), /The model demo has no chat template .* so it cannot score conversations with its own\./);
    await toast.locator('.monaco-button', { hasText: 'Use ChatML' }).waitFor();
  });

  await step('03-use-chatml-scored', async () => {
    await page.locator('.notification-toast', { hasText: 'has no chat template' }).first().locator('.monaco-button', { hasText: 'Use ChatML' }).click();
    await until(() => nuggetsStatus(page), (t) => t.includes(`◆ Nuggets ${RECORDS}/${RECORDS}`), 120_000, 'the status bar after Use ChatML');
    // Set for this folder, where a user finds it.
    const folderSettings = JSON.parse(readFileSync(join(workspace, '.vscode', 'settings.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(folderSettings['nuggets.template'], 'chatml');
  });

  await step('04-badges', async () => {
    // One conversation a line: the badges, top to bottom, are records 0, 1, 2, … in view.
    const badges = await until(() => injectedTexts(page, '◆'), (b) => b.length === RECORDS, 15_000, 'a badge on every conversation');
    assert.deepEqual(badges.map((b) => b.text), expected.map((s) => `◆ ${s.golden_score.toFixed(2)} · ${s.wins}/${s.anchors} anchors`),
      'each conversation shows the golden score the CLI computes with the same anchors and template');
  });

  await step('05-hover-turns', async () => {
    const line = page.locator('.editor-group-container.active .view-line', { hasText: '"conversations"' }).first();
    const box = (await line.boundingBox())!;
    await page.mouse.move(box.x + 10, box.y + box.height / 2);
    await page.mouse.move(box.x + 60, box.y + box.height / 2, { steps: 5 });
    const hover = page.locator('.monaco-hover', { hasText: 'Golden score' }).first();
    await hover.waitFor({ state: 'visible', timeout: 15_000 });
    const text = (await hover.innerText()).replace(/[\u2066-\u2069]/g, '');
    const want = expected[0]!;
    assert.match(text, new RegExp(`Golden score ${want.golden_score.toFixed(2)} · ${want.wins}/${want.anchors} anchors helped`));
    const turns = conversations[0]!.conversations;
    assert.match(text, new RegExp(`Conversation · ${turns.length} turns`));
    // Each turn, with its role, as plain text: the first user turn, and the scored (last) assistant turn.
    assert.ok(text.includes(`user: ${turns[0]!.value}`), `the first turn with its role: ${text}`);
    assert.ok(text.includes(`assistant (scored): ${turns.at(-1)!.value}`), `the scored turn, marked: ${text}`);
    await page.waitForTimeout(300); // let the hover finish fading in before the screenshot
  });
});
