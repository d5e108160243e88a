/**
 * End to end, in a real VS Code: the packaged .vsix in code-server, a folder opened UNTRUSTED (the user
 * answers "No, I don't trust the authors": restricted mode). The folder's .vscode/settings.json names a
 * serving endpoint as its model (a local HTTP server of this test, which records every request it
 * receives), a model variant and its own anchors file. Scores of its dataset were stored beforehand in
 * the extension's storage, where the editor keeps them (the CLI's scores of the same file against the
 * user's anchors and the bundled demo model, under the editor's key name). What the editor must do:
 * show the stored scores (computed with the user's settings, not the folder's), send the folder's
 * endpoint no request at all, download nothing into its storage, and refuse Score Dataset with a
 * message about trust. A screenshot of each step goes to .test-artifacts/e2e/untrusted/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { keyName } from '../../server/lsp/score-book';
import type { ScoresHeader } from '../../server/records/store';
import { repoRoot, sharedData } from '../helpers';
import { E2eSession, e2eFolders, injectedTexts, installPackagedExtension, runCommand, startCodeServer, until } from './code-server';

const RECORDS = 10;
const ANCHORS = 4;
const DATASET = 'data.alpaca.json';
const artifacts = join(repoRoot, '.test-artifacts', 'e2e', 'untrusted');
/** The extension's global storage in code-server's user data (VS Code names it by the lower-cased extension id). */
const STORAGE_ID = 'nuggets-dev.nuggets';

interface CliScore { index: number; golden_score: number; wins: number; anchors: number }

let root: string;
let workspace: string;
let storage: string;
let expected: CliScore[];
let page: Page;
let endpoint: Server | undefined;
/** Every request the folder's endpoint received: method and path. */
const received: string[] = [];
/** The browser and code-server; a failed step's message ends with the requests the folder's endpoint received. */
const session = new E2eSession(artifacts, () => `endpoint requests: ${JSON.stringify(received)}`);
const step = (name: string, run: () => Promise<void>): Promise<void> => session.step(name, run);

const cli = (...args: string[]): string => execFileSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });

/** Every file under `dir` (relative paths); [] when it does not exist. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

const statusText = (): Promise<string> => page.locator('.statusbar-item', { hasText: /Nuggets \d+\/\d+/ }).first().innerText({ timeout: 2000 }).catch(() => '');

before(async () => {
  ({ root, workspace } = e2eFolders(artifacts, 'nuggets-e2e-untrusted-'));
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  const records = (JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')) as Record<string, string>[]).slice(0, 40);
  writeFileSync(join(workspace, DATASET), JSON.stringify(records.slice(0, RECORDS), null, 2) + '\n');

  // The folder's endpoint: answers 500 to anything, and records that it was asked.
  endpoint = createServer((req, res) => {
    received.push(`${req.method} ${req.url}`);
    res.writeHead(500).end();
  });
  await new Promise<void>((resolve) => endpoint!.listen(0, '127.0.0.1', resolve));
  const port = (endpoint.address() as { port: number }).port;

  // The user's anchors (outside the folder) and the folder's own, another set: were the folder's used, no stored score would match.
  const anchors = join(root, 'anchors.json');
  cli('anchors', join(workspace, DATASET), '--kmeans', String(ANCHORS), '--out', anchors);
  writeFileSync(join(workspace, 'folder-anchors.alpaca.json'), JSON.stringify(records.slice(30, 33), null, 2) + '\n');
  writeFileSync(join(workspace, '.vscode', 'settings.json'), JSON.stringify({
    'nuggets.model': `http://127.0.0.1:${port}/v1`,
    'nuggets.modelVariant': 'q4',
    'nuggets.anchors': 'folder-anchors.alpaca.json',
  }, null, 2));

  // The stored scores: the CLI's, with the bundled demo model and the user's anchors, where the editor keeps them.
  const scores = join(root, 'scores.jsonl');
  cli('score', join(workspace, DATASET), '--anchors', anchors, '--out', scores);
  const lines = readFileSync(scores, 'utf8').trim().split('\n');
  const header = JSON.parse(lines[0]!) as ScoresHeader;
  expected = lines.slice(1).map((l) => JSON.parse(l) as CliScore);
  storage = join(root, 'user-data', 'User', 'globalStorage', STORAGE_ID);
  mkdirSync(join(storage, 'scores'), { recursive: true });
  copyFileSync(scores, join(storage, 'scores', `${keyName(header)}.jsonl`));

  const extensionsDir = installPackagedExtension(root);
  page = await session.launch(await startCodeServer({
    root, extensionsDir, folder: workspace, log: join(artifacts, 'code-server.log'),
    settings: {
      'security.workspace.trust.enabled': true,
      'security.workspace.trust.startupPrompt': 'always',
      'nuggets.anchors': anchors,
      'editor.minimap.enabled': false,
    },
  }));
}, { timeout: 240_000 });

after(async () => {
  await session.close();
  await new Promise((resolve) => (endpoint ? endpoint.close(resolve) : resolve(undefined)));
  if (root) rmSync(root, { recursive: true, force: true });
});

test('an untrusted folder: stored scores show, its endpoint gets no request, nothing is downloaded, Score Dataset is refused', { timeout: 180_000 }, async () => {
  await step('01-open-untrusted', async () => {
    await page.goto(`${session.server!.url}/?folder=${encodeURIComponent(workspace)}`, { timeout: 60_000 });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    // The trust prompt appears; the user does not trust the folder: restricted mode.
    await page.getByRole('button', { name: "No, I don't trust the authors" }).click({ timeout: 30_000 });
    await page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).first().waitFor({ timeout: 15_000 });
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: DATASET }).dblclick();
    await page.locator(`.tab.active[data-resource-name="${DATASET}"]`).waitFor();
    await page.locator('.editor-group-container.active .view-line', { hasText: '"instruction"' }).first().waitFor();
  });

  await step('02-stored-scores-shown', async () => {
    // Every record has a current stored score: the status bar counts them, and the visible records carry their badges.
    await until(statusText, (t) => t.includes(`◆ Nuggets ${RECORDS}/${RECORDS}`), 60_000, 'the Nuggets status bar item');
    assert.match(await statusText(), /demo model/, 'scores of the bundled demo model: the folder\'s model setting is ignored');
    // The editor opens at the top: the first records are in view, each with its badge, in order.
    const badges = await until(() => injectedTexts(page, '◆'), (b) => b.length >= 5, 15_000, 'inline badges on the visible records');
    assert.deepEqual(badges.map((b) => b.text), expected.slice(0, badges.length).map((s) => `◆ ${s.golden_score.toFixed(2)} · ${s.wins}/${s.anchors} anchors`),
      'each visible record shows its stored score (the CLI\'s, with the user\'s anchors, not the folder\'s)');
  });

  await step('03-score-dataset-refused', async () => {
    await runCommand(page, 'Nuggets: Score Dataset');
    const toast = page.locator('.notification-toast', { hasText: 'disabled in untrusted workspaces' }).first();
    await toast.waitFor({ timeout: 20_000 });
    assert.match(await toast.innerText(), /Nuggets runs a model to score, which is disabled in untrusted workspaces\. Trust this workspace to score\./);
    await toast.locator('.monaco-button', { hasText: 'Manage Workspace Trust' }).waitFor();
    // No scoring progress starts, and the scores stay as stored.
    await page.waitForTimeout(2000);
    assert.equal(await page.locator('.notification-toast', { hasText: 'Nuggets: scoring' }).count(), 0, 'no scoring progress notification');
    assert.ok((await statusText()).includes(`◆ Nuggets ${RECORDS}/${RECORDS}`));
  });

  await step('04-nothing-sent-or-downloaded', async () => {
    assert.deepEqual(received, [], 'the folder\'s endpoint received no request');
    assert.deepEqual(filesUnder(join(storage, 'cache')), [], 'nothing downloaded into the extension\'s cache (hub models, graphs)');
    // The stored scores are as they were: one file, the CLI's.
    assert.deepEqual(readdirSync(join(storage, 'scores')).filter((f) => f.endsWith('.jsonl')).length, 1);
  });
});
