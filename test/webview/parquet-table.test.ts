/**
 * The Parquet table editor's page (dist/parquet-table.js in the HTML extension/parquet_editor.ts serves, same
 * CSP) in headless Chromium, with a fake host in place of the extension: it answers the page's messages the way
 * the editor relays the server's (openTable's footer, tablePage, recordEffects, the row index's progress) and
 * records what the page posts. The rows are real conversations (FastChat's identity set, /work/shared/data) and
 * one row whose every text is HTML.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { contentSecurityPolicy } from '../../extension/dashboard_html';
import { parquetTableHtml } from '../../extension/parquet_table_html';
import type { RecordEffectsResult, TableQuery, TableRow } from '../../webview/messages';
import type { TableHostMessage, TableInfo, TableWebviewMessage } from '../../webview/table-messages';
import { repoRoot } from '../helpers';
import { CHROMIUM, CHROMIUM_ARGS } from './browser';
import { MEASURE_LAYOUT, type Layout } from './layout';
import { applyTheme } from './themes';

const XSS = '<img src=x onerror=alert(1)>';
const FILE_NAME = '<b>shard</b>-00000.parquet';
const ANCHORS = 10;
const XSS_ROW = 5;

interface ShareGpt {
  id: string;
  conversations: { from: 'human' | 'gpt'; value: string }[];
}
const conversations = (JSON.parse(readFileSync('/work/shared/data/fastchat-identity.sharegpt.json', 'utf8')) as ShareGpt[]).slice(0, 240);
const turnsOf = (c: ShareGpt): NonNullable<RecordEffectsResult['turns']> => c.conversations.map((t) => ({ role: t.from === 'human' ? 'user' : 'assistant', content: t.value }));

/** 240 rows: row i scored with (i * 7) % 11 wins of 10 anchors (capped), every third unscored; row 5 carries HTML in every text. */
const rows: TableRow[] = conversations.map((c, index) => {
  const turns = turnsOf(c);
  const wins = Math.min(ANCHORS, (index * 7) % 11);
  const scored = index % 3 !== 2;
  return {
    index, id: c.id,
    instruction: index === XSS_ROW ? XSS : turns.filter((t) => t.role === 'user').at(-1)!.content,
    input: '',
    output: index === XSS_ROW ? '<script>alert(2)</script>' : turns.at(-1)!.content,
    turns: turns.length,
    range: { start: { line: index, character: 0 }, end: { line: index, character: 0 } },
    ...(scored ? { score: { goldenScore: wins / ANCHORS, wins, anchors: ANCHORS, meanDelta: (wins - 5) / 4, truncated: false, signals: { ifd: 0.5 + index / 480 } } } : {}),
    stale: false,
    signals: scored ? { ppl_cond: (10 + index / 10).toFixed(2), ppl_direct: (12 + index / 10).toFixed(2), ifd: (0.5 + index / 480).toFixed(3) } : {} as Record<string, string>,
  };
});

const INFO: TableInfo = { uri: 'file:///data/shard-00000.parquet', rows: rows.length, rowGroups: 3, bytes: 3 * 2 ** 20, columns: ['id', 'conversations'], wholeAllowed: true, wholeMaxBytes: 256 * 2 ** 20 };

function recordEffects(index: number): RecordEffectsResult {
  const row = rows[index]!;
  const turns = turnsOf(conversations[index]!);
  return {
    index, id: row.id, instruction: row.instruction, input: '', output: row.output, range: row.range, stale: false,
    turns: index === XSS_ROW ? [{ role: 'user', content: XSS }, { role: 'assistant', content: '<script>alert(2)</script>' }] : turns,
    scoredTurn: index === XSS_ROW ? 1 : turns.length - 1,
    ...(row.score ? { score: row.score } : {}),
    anchorSet: { hash: 'h', count: ANCHORS, label: 'k-means 10 of this file' },
    effects: Array.from({ length: ANCHORS }, (_, k) => ({ index: k, instruction: `Anchor ${k + 1}`, input: '', delta: ((index + k) % 5) - 2 })),
  };
}

/** What the server's tablePage answers: file order, or sorted and filtered (unscored rows after scored ones). */
function tablePage(query: TableQuery): { total: number; offset: number; rows: TableRow[] } {
  const key = (r: TableRow): number | undefined => query.sortBy === 'index' ? r.index : query.sortBy === 'goldenScore' ? r.score?.goldenScore : query.sortBy === 'wins' ? r.score?.wins : r.score?.meanDelta;
  const bounds = query.filter?.bounds ?? [];
  const kept = rows.filter((r) => bounds.every((b) => r.score && (b.min === undefined || r.score.goldenScore >= b.min) && (b.max === undefined || r.score.goldenScore < b.max))
    && (!query.filter?.output || r.output.toLowerCase().includes(query.filter.output.toLowerCase())))
    .sort((a, b) => {
      const [ka, kb] = [key(a), key(b)];
      if (ka === undefined || kb === undefined) return ka !== undefined ? -1 : kb !== undefined ? 1 : a.index - b.index;
      return (query.descending ? kb - ka : ka - kb) || a.index - b.index;
    });
  return { total: kept.length, offset: query.offset, rows: kept.slice(query.offset, query.offset + query.limit) };
}

let server: Server;
let origin: string;
let browser: Browser;
let page: Page;
const posted: TableWebviewMessage[] = [];
const dialogs: string[] = [];
const consoleErrors: string[] = [];
/** What the fake host answers `ready` with: the footer, or a refusal. */
let opened: TableHostMessage = { type: 'info', name: FILE_NAME, info: INFO };

async function hostPost(message: TableHostMessage): Promise<void> {
  await page.evaluate((m) => (globalThis as unknown as { postMessage(m: unknown, o: string): void }).postMessage(m, '*'), message as never);
}

async function answer(message: TableWebviewMessage): Promise<void> {
  posted.push(message);
  if (message.type === 'ready') {
    await hostPost(opened);
    await hostPost({ type: 'index', index: { uri: INFO.uri, indexed: 96, rows: rows.length, done: false } });
  }
  if (message.type === 'page') await hostPost({ type: 'page', seq: message.seq, page: tablePage(message.query) });
  if (message.type === 'showRecord') await hostPost({ type: 'record', record: recordEffects(message.index) });
}

/** Resolves with the first message posted after `from` that `predicate` holds for; fails after 5 s. */
async function postedSince(from: number, predicate: (m: TableWebviewMessage) => boolean, what: string): Promise<TableWebviewMessage> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = posted.slice(from).find(predicate);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`the page did not post ${what}; it posted ${JSON.stringify(posted.slice(from))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits (5 s at most) for the element's text; the page's CSP forbids the eval behind waitForFunction. */
async function untilText(selector: string, text: string): Promise<void> {
  const deadline = Date.now() + 5000;
  let seen: string | null = null;
  while (Date.now() < deadline) {
    seen = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => null);
    if (seen === text) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${selector} shows ${JSON.stringify(seen)}, expected ${JSON.stringify(text)}`);
}

const cellTexts = (column: string): Promise<string[]> => page.locator(`#records-table tr.record td[data-column="${column}"]`).allTextContents();
const isDisabled = (selector: string): Promise<boolean> => page.locator(selector).first().evaluate((e) => (e as unknown as { disabled: boolean }).disabled);

async function openPage(): Promise<void> {
  posted.length = 0;
  await page.goto(origin);
}

before(async () => {
  execFileSync(process.execPath, [join(repoRoot, 'tools', 'build.mjs')], { cwd: repoRoot, stdio: 'pipe' });
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(parquetTableHtml({ cspSource: origin, scriptUri: `${origin}/dist/parquet-table.js`, styleUri: `${origin}/media/dashboard.css`, tableStyleUri: `${origin}/media/parquet-table.css`, nonce: 'testnonce123' }));
    } else if (['/dist/parquet-table.js', '/media/dashboard.css', '/media/parquet-table.css'].includes(path)) {
      res.writeHead(200, { 'content-type': path.endsWith('.js') ? 'text/javascript' : 'text/css' });
      res.end(readFileSync(join(repoRoot, path)));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.setDefaultTimeout(5000);
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.exposeFunction('__nuggetsHost', (m: TableWebviewMessage) => answer(m));
  await page.addInitScript(() => {
    const w = globalThis as unknown as Record<string, unknown> & { addEventListener(t: string, f: (e: { violatedDirective: string }) => void): void };
    w.__cspViolations = [];
    w.addEventListener('securitypolicyviolation', (e) => (w.__cspViolations as string[]).push(e.violatedDirective));
    let state: unknown;
    w.acquireVsCodeApi = () => ({
      postMessage: (m: unknown) => (w.__nuggetsHost as (m: unknown) => void)(m),
      getState: () => state,
      setState: (s: unknown) => (state = s),
    });
  });
  await openPage();
  await page.locator('#records-table tr.record').first().waitFor({ timeout: 10_000 });
});

after(async () => {
  await browser?.close();
  server?.close();
});

test('the page loads under its strict CSP: no violation, no error; it says ready, and its header names the file and what its footer says, as text', async () => {
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  assert.equal(csp, contentSecurityPolicy(origin, 'testnonce123'));
  assert.deepEqual(await page.evaluate('globalThis.__cspViolations'), []);
  assert.deepEqual(consoleErrors, []);
  assert.equal(posted[0]?.type, 'ready');
  assert.equal(await page.locator('#dataset').textContent(), FILE_NAME);
  assert.equal(await page.locator('header b').count(), 0, 'the file name is text, not HTML');
  assert.equal(await page.locator('#table-facts').textContent(), '240 rows · 3 row groups · 3.0 MB · 2 columns: id, conversations');
  assert.equal(await page.locator('#whole-note').isHidden(), true);
});

test('before the row index is read, rows come in file order; sorting and filters wait, disabled, saying how far the index is', async () => {
  await untilText('#index-progress', 'Sorting and filters wait for the row index: 40% read');
  const pages = posted.filter((m): m is Extract<TableWebviewMessage, { type: 'page' }> => m.type === 'page');
  assert.ok(pages.length > 0);
  for (const p of pages) {
    assert.equal(p.query.sortBy, 'index');
    assert.equal(p.query.descending, false);
    assert.equal(p.query.filter, undefined);
  }
  assert.deepEqual((await cellTexts('index')).slice(0, 4), ['0', '1', '2', '3']);
  assert.equal(await isDisabled('#records-table th[data-sort="goldenScore"] button'), true);
  assert.equal(await isDisabled('#records-table th[data-column="goldenScore"] input.column-filter'), true);
  assert.equal(await page.locator('#records-table th[data-sort="goldenScore"] button').getAttribute('title'), 'Sorting and filters wait for the row index: 40% read');
});

test('the columns: index, turns, the last user turn, the scored turn, the golden score, wins, mean delta and each signal; unscored rows say so', async () => {
  const headers = await page.locator('#records-table th').evaluateAll((ths) => ths.map((th) => (th as unknown as { dataset: { column: string } }).dataset.column));
  assert.deepEqual(headers, ['index', 'turns', 'instruction', 'output', 'goldenScore', 'wins', 'meanDelta', 'ppl_cond', 'ppl_direct', 'ifd']);
  const first = await page.locator('#records-table tr.record[data-index="0"] td').allTextContents();
  const row = rows[0]!;
  assert.deepEqual(first, ['0', `${row.turns} turns`, row.instruction, row.output, row.score!.goldenScore.toFixed(2), `${row.score!.wins}/10`, row.score!.meanDelta.toFixed(3), row.signals['ppl_cond'], row.signals['ppl_direct'], row.signals['ifd']]);
  const unscored = await page.locator('#records-table tr.record[data-index="2"] td').allTextContents();
  assert.deepEqual(unscored.slice(4), ['—', '—', '—', '—', '—', '—']);
});

test('dataset text with HTML renders as text in the table and the record view: no element is created, no script runs', async () => {
  assert.equal(await page.locator(`#records-table tr.record[data-index="${XSS_ROW}"] td[data-column="instruction"]`).textContent(), XSS);
  assert.equal(await page.locator(`#records-table tr.record[data-index="${XSS_ROW}"] td[data-column="output"]`).textContent(), '<script>alert(2)</script>');
  await page.locator(`#records-table tr.record[data-index="${XSS_ROW}"]`).click();
  await page.locator(`#record-view[data-index="${XSS_ROW}"]`).waitFor();
  assert.deepEqual(await page.locator('#record-text .record-field-text').allTextContents(), [XSS, '<script>alert(2)</script>']);
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.locator('body script').count(), 1, 'only the page\'s own script');
  assert.deepEqual(dialogs, []);
  await page.locator('#record-close').click();
});

test('clicking a row asks for its record and opens the record view beside the table: every turn, the scored turn marked, the anchor effects', async () => {
  const from = posted.length;
  await page.locator('#records-table tr.record[data-index="2"]').click();
  await postedSince(from, (m) => m.type === 'showRecord' && m.index === 2, 'showRecord 2');
  await page.locator('#record-view[data-index="2"]').waitFor();
  const turns = turnsOf(conversations[2]!);
  assert.deepEqual(await page.locator('#record-text ol.turns > li .record-field-text').allTextContents(), turns.map((t) => t.content));
  assert.equal(await page.locator('#record-text li.scored h4').textContent(), 'assistant — the scored turn');
  assert.equal(await page.locator('#record-text li').last().evaluate((li) => (li as unknown as { classList: { contains(c: string): boolean } }).classList.contains('scored')), true);
  assert.equal(await page.locator('#record-table tr.effect').count(), ANCHORS);
  assert.equal(await page.locator('#record-summary').textContent(), 'Not scored yet: run Nuggets: Score Dataset. · anchors: k-means 10 of this file');
  assert.equal(await page.locator('#records-table tr.record[data-index="2"]').getAttribute('aria-selected'), 'true');
  const table = (await page.locator('#records-split .records').boundingBox())!;
  const view = (await page.locator('#record-view').boundingBox())!;
  assert.ok(view.x >= table.x + table.width - 1, 'the record view is beside the table');
  const from2 = posted.length;
  await page.locator('#record-close').click();
  await postedSince(from2, (m) => m.type === 'closeRecord', 'closeRecord');
  assert.equal(await page.locator('#record-view').isHidden(), true);
});

test('once the row index is read, a header sorts (asked of the server) and a column filter narrows the rows', async () => {
  await hostPost({ type: 'index', index: { uri: INFO.uri, indexed: rows.length, rows: rows.length, done: true } });
  await untilText('#index-progress', '');
  assert.equal(await isDisabled('#records-table th[data-sort="goldenScore"] button'), false);
  assert.equal(await page.locator('#records-table th[data-sort="goldenScore"] button').getAttribute('title'), 'Sort by golden score: the share of anchors the record helps', 'its own title back');
  let from = posted.length;
  await page.locator('#records-table th[data-sort="goldenScore"] button').click();
  const sorted = await postedSince(from, (m) => m.type === 'page' && m.query.sortBy === 'goldenScore', 'a page sorted by golden score');
  assert.equal(sorted.type === 'page' && sorted.query.descending, true, 'best first');
  await untilText('#records-table tr.record td[data-column="goldenScore"]', '1.00');
  from = posted.length;
  await page.locator('#records-table th[data-column="goldenScore"] input.column-filter').fill('0.5..0.8');
  const filtered = await postedSince(from, (m) => m.type === 'page' && m.query.filter?.bounds?.[0]?.signal === 'golden', 'a filtered page');
  assert.deepEqual(filtered.type === 'page' && filtered.query.filter, { bounds: [{ signal: 'golden', min: 0.5, max: 0.8 }] });
  const expected = tablePage({ offset: 0, limit: 1000, sortBy: 'goldenScore', descending: true, filter: { bounds: [{ signal: 'golden', min: 0.5, max: 0.8 }] } });
  await untilText('#page-info', `${expected.total} rows match${expected.total > 100 ? '; scroll for more' : ''}`);
  const scores = (await cellTexts('goldenScore')).map(Number);
  assert.ok(scores.length > 0 && scores.every((s) => s >= 0.5 && s < 0.8), `every row within the range: ${scores.join(' ')}`);
  await page.locator('#records-table th[data-column="goldenScore"] input.column-filter').fill('');
  await untilText('#page-info', '240 rows; scroll for more');
});

test('new scores ask again for the rows in view', async () => {
  const from = posted.length;
  await hostPost({ type: 'scores' });
  await postedSince(from, (m) => m.type === 'page' && m.query.offset === 0, 'the first block again');
});

test('the buttons run Score Dataset, Select Golden Subset and Show Dashboard on the file', async () => {
  const from = posted.length;
  for (const id of ['score-dataset', 'select-subset', 'show-dashboard']) await page.locator(`#${id}`).click();
  await postedSince(from, (m) => m.type === 'command' && m.command === 'showDashboard', 'the three commands');
  assert.deepEqual(posted.slice(from).filter((m) => m.type === 'command').map((m) => m.type === 'command' && m.command), ['scoreDataset', 'selectGoldenSubset', 'showDashboard']);
});

test('in each theme no number is cut and text cut short has its whole text as title', async () => {
  for (const theme of ['light', 'dark', 'highContrast'] as const) {
    await page.evaluate(applyTheme(theme));
    const layout = await page.evaluate(MEASURE_LAYOUT) as Layout;
    assert.ok(layout.numbers > 20, `numbers measured: ${layout.numbers}`);
    assert.deepEqual(layout.cutNumbers, [], theme);
    assert.deepEqual(layout.cutWithoutTitle, [], theme);
  }
  await page.evaluate(applyTheme('light'));
});

test('a stopped row index says why; rows stay in file order and sorting stays off', async () => {
  await openPage();
  await page.locator('#records-table tr.record').first().waitFor();
  await hostPost({ type: 'index', index: { uri: INFO.uri, indexed: 96, rows: rows.length, done: true, problem: `row group 2 is damaged ${XSS}` } });
  await untilText('#index-progress', `The row index stopped: row group 2 is damaged ${XSS}. Rows still show in file order; sorting and filters are off.`);
  assert.equal(await page.locator('#index-progress img').count(), 0);
  assert.equal(await isDisabled('#records-table th[data-sort="goldenScore"] button'), true);
});

test('a file too large to read whole: the commands\' buttons are off and a note says to use the command line', async () => {
  opened = { type: 'info', name: FILE_NAME, info: { ...INFO, bytes: 300 * 2 ** 20, wholeAllowed: false, wholeMaxBytes: 100 * 2 ** 20 } };
  await openPage();
  await page.locator('#records-table tr.record').first().waitFor();
  assert.equal(await page.locator('#whole-note').isVisible(), true);
  assert.match((await page.locator('#whole-note').textContent())!, /larger than the 100\.0 MB the editor reads whole: .*nuggets score, nuggets select/);
  assert.equal(await isDisabled('#score-dataset'), true);
});

test('a file that is no readable Parquet: the page says what is wrong, as text, and asks for no rows', async () => {
  opened = { type: 'refused', name: 'notes.parquet', message: `not a Parquet file (no PAR1 magic) ${XSS}` };
  await openPage();
  await untilText('#error', `Nuggets cannot show this file: not a Parquet file (no PAR1 magic) ${XSS}`);
  await page.waitForTimeout(200);
  assert.deepEqual(posted.filter((m) => m.type === 'page'), []);
  assert.equal(await page.locator('#error img').count(), 0);
  assert.equal(await isDisabled('#score-dataset'), true);
  opened = { type: 'info', name: FILE_NAME, info: INFO };
});

test('dist/parquet-table.js is a browser bundle of webview/ and the toolkit only: no vscode, no server or extension code', () => {
  const meta = JSON.parse(readFileSync(join(repoRoot, 'dist', 'parquet-table.meta.json'), 'utf8')) as { inputs: Record<string, { imports: { path: string; external?: boolean }[] }> };
  const inputs = Object.keys(meta.inputs);
  // A worktree's node_modules is a link: its inputs read ../main/node_modules/.
  assert.deepEqual(inputs.filter((i) => !i.includes('node_modules/')).sort(), ['webview/messages.ts', 'webview/parquet-table.ts', 'webview/record-view.ts', 'webview/table.ts', 'webview/virtual-table.ts']);
  assert.deepEqual(Object.values(meta.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path)), []);
});
