/**
 * The dashboard page (dist/webview.js in the HTML the extension serves, same CSP) in headless
 * Chromium, with a fake host in place of the extension: it answers the page's messages the way
 * extension/dashboard.ts relays the server's answers, and records what the page posts. The layout is
 * checked at a 900 px window and a 400 px panel: no number is cut, cut text has its whole text as title.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { contentSecurityPolicy, dashboardHtml } from '../../extension/dashboard_html';
import type { AnchorEffectsResult, DistributionResult, HostMessage, ModelInfo, RecordEffectsResult, ScatterResult, TableQuery, TableRow, WebviewMessage } from '../../webview/messages';
import { formatScores } from '../../server/export-scores';
import { repoRoot } from '../helpers';
import { CHROMIUM, CHROMIUM_ARGS } from './browser';
import { MEASURE_LAYOUT, type Layout } from './layout';

const XSS = '<img src=x onerror=alert(1)>';
const ANCHORS = 20;
const DATASET_NAME = '<b>bold</b>.alpaca.json';
const artifacts = join(repoRoot, '.test-artifacts', 'webview');

/** IFD of record i: 0.3 to 1.18 over the records. */
const ifdOf = (index: number): number => 0.3 + ((index * 7) % 60) / 68;

/** Long enough to be cut in any layout. */
const LONG = 'Explain, step by step and with a worked example for each case, how a curator should read the golden score of an instruction record';
/** Record 4 was cut from the left to fit the model's context; record 5's score is stale. */
const TRUNCATED = 4;
const STALE = 5;
/** Record 10 has an empty output, record 11 repeats record 3: problem records, never selected. */
const PROBLEMS = new Map<number, { mark: 'empty' | 'duplicate'; reason: string }>([[10, { mark: 'empty', reason: 'empty output' }], [11, { mark: 'duplicate', reason: 'repeats index 3' }]]);

/** 60 records with golden scores wins/20; record 7 carries HTML in every text field; every third has a long instruction. */
const rows: TableRow[] = Array.from({ length: 60 }, (_, index) => {
  const wins = (index * 13) % (ANCHORS + 1);
  return {
    index,
    id: `id${index}`,
    instruction: index === 7 ? XSS : index % 3 === 0 ? `${LONG} (record ${index + 1})` : `Instruction of record ${index + 1}`,
    input: index === 7 ? '<script>alert(2)</script>' : '',
    output: index === 7 ? '<svg onload=alert(3)>' : `Output ${index + 1}`,
    range: { start: { line: 1 + index * 5, character: 2 }, end: { line: 5 + index * 5, character: 3 } },
    score: { goldenScore: wins / ANCHORS, wins, anchors: ANCHORS, meanDelta: (wins - 10) / 7, truncated: index === TRUNCATED, signals: { ifd: ifdOf(index) } },
    stale: index === STALE,
    signals: { ppl_cond: '12.5', ppl_direct: '20', ifd: ifdOf(index).toFixed(3) },
    ...(PROBLEMS.has(index) ? { problem: PROBLEMS.get(index)! } : {}),
  };
});
const goldenScores = rows.map((r) => r.score!.goldenScore).sort((a, b) => b - a);
const counts = new Array<number>(20).fill(0);
for (const s of goldenScores) counts[Math.min(19, Math.floor(s * 20))]!++;
const distribution: DistributionResult = {
  total: rows.length, scored: rows.length, stale: 0, counts, goldenScores,
  meanGoldenScore: goldenScores.reduce((a, b) => a + b, 0) / goldenScores.length,
  signals: ['ppl_cond', 'ppl_direct', 'ifd'].map((name, k) => ({
    name, label: ['PPL (cond.)', 'PPL (direct)', 'IFD'][k]!, unit: '', description: `the ${name} signal`, better: name === 'ifd' ? 'higher' : 'lower',
    counts: [3, 10, 20, 15, 12], from: 0.3, to: 1.18, scale: name === 'ifd' ? 'log' : 'linear', missing: 0, summary: { count: 60, missing: 0, mean: 0.7, p10: 0.4, median: 0.7, p90: 1.1 },
  })),
  problems: [...PROBLEMS].map(([index, problem]) => ({ index, ...problem, goldenScore: rows[index]!.score!.goldenScore, instruction: rows[index]!.instruction, range: rows[index]!.range })),
};
const scatter: ScatterResult = { xLabel: 'Golden score', yLabel: 'IFD', points: rows.map((r) => ({ index: r.index, x: r.score!.goldenScore, y: ifdOf(r.index) })) };
const anchorEffects: AnchorEffectsResult = {
  candidates: rows.length,
  anchors: Array.from({ length: 5 }, (_, index) => ({
    index, instruction: index === 2 ? XSS : index === 4 ? `${LONG} (anchor 5)` : `Anchor ${index + 1}`, input: '',
    winRate: [0.5, 0.9, 0, 0.7, 0.3][index]!, meanDelta: index - 2, moved: [60, 60, 0, 45, 30][index]!,
  })),
  anchorSet: { hash: 'h', count: 5, path: '/anchors.json', label: 'k-means 5 of this file' },
};
const DEMO: ModelInfo = { name: 'the bundled demo model (demo)', demo: true };
/** Record i's delta on anchor k, as the server's recordEffects answers; anchor 3 (index 2) was not scored for odd records. */
const deltaOf = (i: number, k: number): number | null => (k === 2 && i % 2 === 1 ? null : ((i + 3 * k) % 7) - 3 + k / 10);
function recordEffects(index: number): RecordEffectsResult {
  const row = rows[index]!;
  return {
    index, id: row.id, instruction: row.instruction, input: row.input, output: row.output, range: row.range, score: row.score!, stale: row.stale,
    anchorSet: { hash: 'h', count: 5, label: 'k-means 5 of this file' },
    effects: anchorEffects.anchors.map((a) => ({ index: a.index, instruction: a.instruction, input: a.input, delta: deltaOf(index, a.index) })),
  };
}

/** What the server's tablePage answers (sorted, filtered, paged). */
function tablePage(query: TableQuery): { total: number; offset: number; rows: TableRow[] } {
  const key = (r: TableRow): number => query.sortBy === 'index' ? r.index : query.sortBy === 'wins' ? r.score!.wins
    : query.sortBy === 'meanDelta' ? r.score!.meanDelta : query.sortBy === 'ifd' ? ifdOf(r.index) : r.score!.goldenScore;
  const kept = rows.filter((r) => query.minScore === undefined || r.score!.goldenScore >= query.minScore)
    .sort((a, b) => (query.descending ? key(b) - key(a) : key(a) - key(b)) || a.index - b.index);
  return { total: kept.length, offset: query.offset, rows: kept.slice(query.offset, query.offset + query.limit) };
}

let server: Server;
let origin: string;
let browser: Browser;
let page: Page;
const posted: WebviewMessage[] = [];
const dialogs: string[] = [];
const consoleErrors: string[] = [];

async function hostPost(message: HostMessage): Promise<void> {
  await page.evaluate((m) => (globalThis as unknown as { postMessage(m: unknown, o: string): void }).postMessage(m, '*'), message as never);
}

async function answer(message: WebviewMessage): Promise<void> {
  posted.push(message);
  if (message.type === 'ready') await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter });
  if (message.type === 'page') await hostPost({ type: 'page', seq: message.seq, query: message.query, page: tablePage(message.query) });
  if (message.type === 'neighbours') {
    await hostPost({ type: 'neighbours', result: { index: message.index, neighbours: [{ index: 9, similarity: 0.987, instruction: XSS }, { index: 2, similarity: 0.5, instruction: 'Instruction of record 3' }] } });
  }
  if (message.type === 'showRecord') await hostPost({ type: 'record', record: recordEffects(message.index) });
}

/** Resolves when `predicate` holds for something posted after `from`, or fails after 5 s. */
async function postedSince(from: number, predicate: (m: WebviewMessage) => boolean, what: string): Promise<WebviewMessage> {
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
    seen = await page.locator(selector).textContent({ timeout: 1000 }).catch(() => null);
    if (seen === text) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${selector} shows ${JSON.stringify(seen)}, expected ${JSON.stringify(text)}`);
}

const cellTexts = (column: string): Promise<string[]> => page.locator(`#records-table tr.record td[data-column="${column}"]`).allTextContents();
const FIRST_INDEX = '#records-table tr.record td[data-column="index"] >> nth=0';
const sortBy = (table: string, key: string): Promise<void> => page.locator(`#${table} th[data-sort="${key}"] button`).click();

before(async () => {
  execFileSync(process.execPath, [join(repoRoot, 'tools', 'build.mjs')], { cwd: repoRoot, stdio: 'pipe' });
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(dashboardHtml({ cspSource: origin, scriptUri: `${origin}/dist/webview.js`, styleUri: `${origin}/media/dashboard.css`, chartStyleUri: `${origin}/dist/webview.css`, nonce: 'testnonce123' }));
    } else if (path === '/dist/webview.js' || path === '/dist/webview.css' || path === '/media/dashboard.css') {
      res.writeHead(200, { 'content-type': path.endsWith('.js') ? 'text/javascript' : 'text/css' });
      res.end(readFileSync(join(repoRoot, path)));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(5000);
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.exposeFunction('__nuggetsHost', (m: WebviewMessage) => answer(m));
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
  await page.goto(origin);
  await page.locator('#records-table tr.record').first().waitFor({ timeout: 10_000 });
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'records.png') });
});

after(async () => {
  await browser?.close();
  server?.close();
});

test('the page loads under its strict CSP: scripts run by nonce, toolkit components defined, no violation, no error', async () => {
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  assert.equal(csp, contentSecurityPolicy(origin, 'testnonce123'));
  assert.match(csp!, /^default-src 'none'; script-src 'nonce-testnonce123';/);
  assert.equal(await page.evaluate('!!customElements.get("vscode-button") && !!customElements.get("vscode-panels")'), true);
  assert.deepEqual(await page.evaluate('globalThis.__cspViolations'), []);
  assert.deepEqual(consoleErrors, []);
  assert.equal(posted[0]?.type, 'ready');
});

test('the histogram draws one bar per bin with the distribution\'s counts', async () => {
  const bars = page.locator('#histogram-chart rect.bar');
  assert.equal(await bars.count(), 20);
  const drawn = await bars.evaluateAll((els) => els.map((e) => Number((e as unknown as { dataset: { count: string } }).dataset.count)));
  assert.deepEqual(drawn, counts);
  // Bars are as tall as their counts: the fullest bin is the tallest bar.
  const heights = await bars.evaluateAll((els) => els.map((e) => Number((e as unknown as { getAttribute(n: string): string }).getAttribute('height'))));
  assert.equal(heights.indexOf(Math.max(...heights)), counts.indexOf(Math.max(...counts)));
  assert.equal(await page.locator('#summary').textContent(), `60 of 60 records scored · mean golden score ${distribution.meanGoldenScore!.toFixed(3)}`);
});

test('the threshold slider shows the count and share at or above it, from memory (nothing is requested)', async () => {
  const before = posted.length;
  // Record 11 (0.85), a problem record, is not counted: Write Subset would not write it.
  const expected = (t: number): string => {
    const n = goldenScores.filter((s) => s >= t).length - 1;
    return `${n} of 60 scored records (${((100 * n) / 60).toFixed(1)}%) at or above ${t.toFixed(2)}, not counting 1 problem record, which are never selected`;
  };
  assert.equal(await page.locator('#threshold-count').textContent(), expected(0.5));
  await page.locator('#threshold').evaluate((e) => {
    const input = e as unknown as { value: string; dispatchEvent(ev: unknown): void };
    input.value = '0.79';
    input.dispatchEvent(new (globalThis as unknown as { Event: new (t: string) => unknown }).Event('input'));
  });
  await page.locator('#threshold').focus();
  await page.keyboard.press('ArrowRight'); // 0.80, as a user would nudge it
  assert.equal(await page.locator('#threshold-count').textContent(), expected(0.8));
  assert.equal(await page.locator('#threshold-value').textContent(), '0.80');
  assert.equal(await page.locator('#histogram-chart rect.bar.above').count(), 4, 'bins 0.80–1.00 are highlighted');
  await page.waitForTimeout(300);
  assert.equal(posted.length, before, 'moving the threshold asks the extension nothing');
});

test('the table starts at the best golden scores; clicking a column header sorts by it, again reverses', async () => {
  const first = posted.find((m) => m.type === 'page');
  assert.deepEqual(first?.type === 'page' && first.query, { offset: 0, limit: 25, sortBy: 'goldenScore', descending: true });
  const scores = (await cellTexts('goldenScore')).map((t) => Number(t.replace(' (stale)', '')));
  assert.equal(scores.length, 25);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  assert.equal(scores[0], 1);

  let from = posted.length;
  await sortBy('records-table', 'index');
  const asc = await postedSince(from, (m) => m.type === 'page', 'a page sorted by index');
  assert.deepEqual(asc.type === 'page' && asc.query, { offset: 0, limit: 25, sortBy: 'index', descending: false });
  await untilText(FIRST_INDEX, '0');
  assert.deepEqual(await cellTexts('index'), Array.from({ length: 25 }, (_, i) => `${i}${PROBLEMS.has(i) ? ' ⚠' : ''}${i === TRUNCATED ? ' ✂' : ''}`));
  assert.equal(await page.locator('#records-table th[data-sort="index"]').getAttribute('aria-sort'), 'ascending');

  from = posted.length;
  await sortBy('records-table', 'index');
  await postedSince(from, (m) => m.type === 'page' && m.query.sortBy === 'index' && m.query.descending, 'a page sorted by index, descending');
  await untilText(FIRST_INDEX, '59');
  assert.equal((await cellTexts('index'))[24], '35');
});

test('paging: Next and Previous move by 25 records; Next is disabled on the last page', async () => {
  await sortBy('records-table', 'index'); // back to ascending
  await untilText(FIRST_INDEX, '0');
  assert.equal(await page.locator('#page-info').textContent(), 'Rows 1–25 of 60');
  await page.locator('#next-page').click();
  await untilText('#page-info', 'Rows 26–50 of 60');
  assert.equal((await cellTexts('index'))[0], '25');
  await page.locator('#next-page').click();
  await untilText('#page-info', 'Rows 51–60 of 60');
  assert.deepEqual(await cellTexts('index'), Array.from({ length: 10 }, (_, i) => String(50 + i)));
  assert.equal(await page.locator('#next-page').evaluate((e) => (e as unknown as { disabled: boolean }).disabled), true);
  await page.locator('#prev-page').click();
  await untilText('#page-info', 'Rows 26–50 of 60');
  await page.locator('#prev-page').click();
  await untilText('#page-info', 'Rows 1–25 of 60');
  assert.equal(await page.locator('#prev-page').evaluate((e) => (e as unknown as { disabled: boolean }).disabled), true);
});

test('"only at or above the threshold" asks for rows with minScore = the threshold', async () => {
  const from = posted.length;
  await page.locator('#only-above').click();
  const filtered = await postedSince(from, (m) => m.type === 'page' && m.query.minScore !== undefined, 'a filtered page');
  assert.equal(filtered.type === 'page' && filtered.query.minScore, 0.8);
  const n = goldenScores.filter((s) => s >= 0.8).length;
  await untilText('#page-info', `Rows 1–${n} of ${n}`);
  await page.locator('#only-above').click();
  await untilText('#page-info', 'Rows 1–25 of 60');
});

test('clicking a row posts a reveal of that record with its range, opens its record view and lists its nearest neighbours by embedding', async () => {
  const from = posted.length;
  await page.locator('#records-table tr.record[data-index="3"]').click();
  const reveal = await postedSince(from, (m) => m.type === 'reveal', 'a reveal message');
  assert.deepEqual(reveal, { type: 'reveal', index: 3, range: rows[3]!.range });
  await postedSince(from, (m) => m.type === 'neighbours' && m.index === 3, 'a request for the record\'s nearest neighbours');
  await untilText('#neighbours h3', 'Nearest neighbours of record index 3');
  assert.deepEqual(await page.locator('#neighbours li').allTextContents(), [`0.987 · index 9: ${XSS}`, '0.500 · index 2: Instruction of record 3']);
  const again = posted.length;
  await page.locator('#neighbours li[data-index="9"]').click();
  assert.deepEqual(await postedSince(again, (m) => m.type === 'reveal', 'a reveal of the neighbour'), { type: 'reveal', index: 9 });
  assert.deepEqual(await postedSince(from, (m) => m.type === 'showRecord', 'a showRecord message'), { type: 'showRecord', index: 3 });
  await page.locator('#record-view[data-index="3"]').waitFor();
  await page.locator('#record-close').click();
  assert.equal(await page.locator('#record-view').isHidden(), true);
});

test('the table has a column per signal, sortable by the server like the golden score', async () => {
  const titles = await page.locator('#records-table th').allTextContents();
  assert.deepEqual(titles.map((t) => t.replace(/ [▲▼]$/, '')), ['index', 'Score', 'Wins', 'Mean Δ', 'PPL (cond.)', 'PPL (direct)', 'IFD', 'Instruction', 'Output']);
  const from = posted.length;
  await sortBy('records-table', 'ifd');
  const sorted = await postedSince(from, (m) => m.type === 'page' && m.query.sortBy === 'ifd', 'a page sorted by IFD');
  assert.equal(sorted.type === 'page' && sorted.query.descending, true);
  await untilText('#records-table tr.record td[data-column="ifd"] >> nth=0', Math.max(...rows.map((r) => ifdOf(r.index))).toFixed(3));
  const ifds = (await cellTexts('ifd')).map(Number);
  assert.deepEqual(ifds, [...ifds].sort((a, b) => b - a));
});

test('a chart per signal, and golden score against IFD where clicking a point reveals its record', async () => {
  assert.deepEqual(await page.locator('#signal-charts figure').evaluateAll((fs) => fs.map((f) => (f as unknown as { dataset: { signal: string } }).dataset.signal)), ['ppl_cond', 'ppl_direct', 'ifd']);
  assert.deepEqual(await page.locator('#signal-charts figure[data-signal="ifd"] rect.bar').evaluateAll((rs) => rs.map((r) => Number((r as unknown as { dataset: { count: string } }).dataset.count))), [3, 10, 20, 15, 12]);
  assert.equal(await page.locator('#scatter-chart circle').count(), 60);
  const from = posted.length;
  await page.locator('#scatter-chart circle[data-index="12"]').click({ force: true });
  const reveal = await postedSince(from, (m) => m.type === 'reveal', 'a reveal from the scatter plot');
  assert.deepEqual(reveal, { type: 'reveal', index: 12 });
});

test('dataset text with HTML renders as text: no element is created and no script runs', async () => {
  // Record 7 on the first page sorted by index, also when this test runs alone (npm run mutants).
  // Each click toggles the order once the page has the new rows: wait for it before looking again.
  const indexHeader = page.locator('#records-table th[data-sort="index"]');
  for (let clicks = 0; clicks < 2; clicks++) {
    const sort = await indexHeader.getAttribute('aria-sort');
    if (sort === 'ascending') break;
    await sortBy('records-table', 'index');
    const deadline = Date.now() + 5000;
    while (await indexHeader.getAttribute('aria-sort') === sort && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
  await untilText(FIRST_INDEX, '0');
  const row = page.locator('#records-table tr.record[data-index="7"]');
  await row.waitFor();
  const texts = await row.locator('td').allTextContents();
  assert.equal(texts[7], `${XSS} — <script>alert(2)</script>`);
  assert.equal(texts[8], '<svg onload=alert(3)>');
  assert.equal(await page.locator('#dataset').textContent(), DATASET_NAME);
  // Its record view: the title and the nearest neighbours (one of which carries HTML too).
  await row.click();
  await untilText('#neighbours h3', 'Nearest neighbours of record index 7');
  assert.equal(await page.locator('#record-title').textContent(), `Record index 7: ${XSS}`);
  assert.equal(await page.locator('#neighbours li').first().textContent(), `0.987 · index 9: ${XSS}`);
  assert.equal(await page.evaluate('document.querySelectorAll("#record-view img, #neighbours img").length'), 0);
  await page.locator('#record-close').click();
  await page.locator('#tab-anchors').click();
  await page.locator('#anchors-table tr.anchor').first().waitFor();
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate('document.querySelectorAll("img, b, script:not([nonce]), table svg").length'), 0);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(consoleErrors, []);
});

test('the anchor-effects view lists each anchor with its win rate and mean delta, best first', async () => {
  await page.locator('#tab-anchors').click();
  const anchorRows = page.locator('#anchors-table tr.anchor');
  await anchorRows.first().waitFor();
  assert.deepEqual(await anchorRows.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { index: string } }).dataset.index)), ['1', '3', '0', '4', '2']);
  const first = await anchorRows.first().locator('td').allTextContents();
  assert.deepEqual(first, ['2', 'Anchor 2', '90%', '-1.000', '60']);
  assert.equal(await page.locator('#anchors-note').textContent(),
    '5 anchors (k-means 5 of this file), statistics over 60 scored records. Win rate: share of records that made the anchor\'s response more likely.');
  assert.equal(await page.locator('#anchors-table tr.anchor[data-index="2"] td').nth(1).textContent(), XSS);
  await sortBy('anchors-table', 'meanDelta');
  assert.deepEqual(await anchorRows.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { index: string } }).dataset.index)), ['4', '3', '2', '1', '0']);
  await page.screenshot({ path: join(artifacts, 'anchors.png') });
});

test('dist/webview.js is a browser bundle of webview/ and the toolkit only: no vscode, no server or extension code', () => {
  const meta = JSON.parse(readFileSync(join(repoRoot, 'dist', 'webview.meta.json'), 'utf8')) as { inputs: Record<string, { imports: { path: string; external?: boolean }[] }> };
  const inputs = Object.keys(meta.inputs);
  assert.deepEqual(inputs.filter((i) => !i.startsWith('node_modules/')).sort(), ['webview/main.ts', 'webview/messages.ts', 'webview/table.ts']);
  assert.ok(inputs.some((i) => i.startsWith('node_modules/@vscode/webview-ui-toolkit/')));
  assert.deepEqual(Object.values(meta.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path)), []);
  assert.ok(!/\brequire\(["']vscode["']\)/.test(readFileSync(join(repoRoot, 'dist', 'webview.js'), 'utf8')));
});

const measureLayout = (): Promise<Layout> => page.evaluate(MEASURE_LAYOUT);

/** The records tab, sorted by index, on its first page (records 1–25), whatever earlier tests left. */
async function firstPageByIndex(): Promise<void> {
  await page.locator('#tab-records').click();
  for (let i = 0; i < 2 && (await page.locator('#records-table th[data-sort="index"]').getAttribute('aria-sort')) !== 'ascending'; i++) {
    await sortBy('records-table', 'index');
    await page.waitForTimeout(100);
  }
  while ((await page.locator('#page-info').textContent()) !== 'Rows 1–25 of 60') {
    await page.locator('#prev-page').click();
    await page.waitForTimeout(100);
  }
  await untilText(FIRST_INDEX, '0');
}

/** Checks the records, record view and anchors at one window width, with a screenshot of each. */
async function checkLayout(width: number, name: string): Promise<void> {
  await page.setViewportSize({ width, height: 900 });
  await firstPageByIndex();
  await page.locator('#records-table tr.record[data-index="4"]').click(); // the truncated one: its record view opens
  await page.locator('#record-view[data-index="4"]').waitFor();
  await page.waitForTimeout(100);
  const records = await measureLayout();
  assert.ok(records.numbers > 150, `numeric cells measured: ${records.numbers}`);
  assert.deepEqual(records.cutNumbers, [], `no number is cut at ${width} px`);
  assert.ok(records.cutTexts > 0, `long text is cut at ${width} px`);
  assert.deepEqual(records.cutWithoutTitle, [], 'cut text has its whole text as title');
  await page.screenshot({ path: join(artifacts, `${name}-records.png`), fullPage: true });
  await page.locator('#tab-anchors').click();
  await page.locator('#anchors-table tr.anchor').first().waitFor();
  const anchors = await measureLayout();
  assert.deepEqual(anchors.cutNumbers, [], `no number in the anchor effects is cut at ${width} px`);
  assert.deepEqual(anchors.cutWithoutTitle, []);
  await page.screenshot({ path: join(artifacts, `${name}-anchors.png`), fullPage: true });
  await page.locator('#record-close').click();
  await page.locator('#tab-records').click();
}

test('at a 900 px window no number is cut, and cut text shows whole on hover', async () => {
  await checkLayout(900, '900px');
});

test('in a narrow 400 px panel no number is cut either: the table scrolls sideways instead', async () => {
  await checkLayout(400, 'narrow');
  const scroll = await page.locator('#records-table').evaluate((t) => {
    const parent = (t as unknown as { parentElement: { scrollWidth: number; clientWidth: number } }).parentElement;
    return { scrollWidth: parent.scrollWidth, clientWidth: parent.clientWidth };
  });
  assert.ok(scroll.scrollWidth > scroll.clientWidth, 'the table is wider than the panel and scrolls');
  await page.setViewportSize({ width: 1200, height: 900 });
});

test('columns resize by dragging their header\'s edge or with the arrow keys; numbers stay whole', async () => {
  await page.setViewportSize({ width: 1200, height: 900 });
  await firstPageByIndex();
  const header = page.locator('#records-table th[data-column="instruction"]');
  const output = page.locator('#records-table th[data-column="output"]');
  const width = async (): Promise<number> => (await header.boundingBox())!.width;
  const before = await width();
  const outputBefore = (await output.boundingBox())!.width;
  const handle = (await header.locator('.resizer').boundingBox())!;
  await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
  await page.mouse.down();
  await page.mouse.move(handle.x + handle.width / 2 - 120, handle.y + handle.height / 2, { steps: 5 });
  await page.mouse.up();
  const dragged = await width();
  // The table keeps its width: what the column gives up goes to the other text column.
  assert.ok(dragged < before - 80, `dragged 120 px narrower: ${before} -> ${dragged}`);
  assert.ok((await output.boundingBox())!.width > outputBefore + 80, 'the Output column takes the rest');
  await header.locator('.resizer').focus();
  await page.keyboard.press('ArrowRight');
  const widened = await width();
  assert.ok(widened > dragged + 8, `ArrowRight widens: ${dragged} -> ${widened}`);
  assert.equal(await header.locator('.resizer').getAttribute('role'), 'separator');
  // The width survives the next page.
  await page.locator('#next-page').click();
  await untilText('#page-info', 'Rows 26–50 of 60');
  assert.ok(Math.abs((await width()) - widened) <= 2, 'the width is kept across pages');
  await page.locator('#prev-page').click();
  await untilText('#page-info', 'Rows 1–25 of 60');
  assert.deepEqual((await measureLayout()).cutNumbers, []);
});

test('a truncated record is marked in its row, with a tooltip saying it was cut from the left', async () => {
  await firstPageByIndex();
  const mark = page.locator(`#records-table tr.record[data-index="${TRUNCATED}"] td[data-column="index"] .cut`);
  assert.equal(await mark.textContent(), ' ✂');
  assert.match((await mark.getAttribute('title'))!, /cut from the left/i);
  assert.equal(await page.locator('#records-table tr.record.truncated').count(), 1);
});

test('problem records are counted and listed; clicking one reveals it; their rows are marked with the reason', async () => {
  assert.equal(await page.locator('#problems').isHidden(), false);
  assert.equal(await page.locator('#problems').getAttribute('data-count'), '2');
  assert.match((await page.locator('#problems-note').textContent())!, /^2 problem records \(1 with an empty instruction or output, 1 exact duplicate of an earlier record\): scored, but never selected/);
  assert.deepEqual(await page.locator('#problems-list li').allTextContents(),
    [`index 10: empty output · ${rows[10]!.instruction}`, `index 11: repeats index 3 · ${rows[11]!.instruction}`]);
  const from = posted.length;
  await page.locator('#problems-list li[data-index="11"]').click();
  assert.deepEqual(await postedSince(from, (m) => m.type === 'reveal', 'a reveal of the problem record'), { type: 'reveal', index: 11, range: rows[11]!.range });
  await firstPageByIndex();
  const mark = page.locator('#records-table tr.record[data-index="10"] td[data-column="index"] .problem');
  assert.equal(await mark.getAttribute('title'), 'Never selected: empty output.');
  assert.equal(await page.locator('#records-table tr.record.problem').count(), 2);
});

test('the dashboard\'s number for a record is its exported row\'s index (and the scores file\'s), under a header that says so', async () => {
  await firstPageByIndex();
  const exported = formatScores(rows.map((r) => ({ index: r.index, id: r.id, score: undefined })), 5, 'csv', false).split('\n');
  for (const index of [0, 12, 24]) {
    const shown = await page.locator(`#records-table tr.record[data-index="${index}"] td[data-column="index"]`).textContent();
    const row = exported.find((line) => line.split(',')[1] === rows[index]!.id)!.split(',');
    assert.equal(shown, row[0], `record ${rows[index]!.id}: the table shows the export's index`);
  }
  assert.equal(exported[0]!.split(',')[0], 'index');
  assert.equal((await page.locator('#records-table th[data-column="index"]').textContent())!.replace(/ [▲▼]$/, ''), 'index');
});

test('the record view lists every anchor\'s delta with the anchor\'s whole text, sortable', async () => {
  await firstPageByIndex();
  const from = posted.length;
  await page.locator('#records-table tr.record[data-index="6"]').click();
  await postedSince(from, (m) => m.type === 'showRecord' && m.index === 6, 'showRecord 6');
  await page.locator('#record-view[data-index="6"]').waitFor();
  assert.equal(await page.locator('#record-title').textContent(), `Record index 6: ${rows[6]!.instruction}`);
  const s = rows[6]!.score!;
  assert.equal(await page.locator('#record-summary').textContent(),
    `Golden score ${s.goldenScore.toFixed(2)} · ${s.wins}/${s.anchors} anchors helped · mean Δ ${s.meanDelta.toFixed(3)} nats · anchors: k-means 5 of this file`);
  assert.equal(await page.locator('#record-truncated').isHidden(), true, 'record 7 was not cut');
  const effectRows = page.locator('#record-table tr.effect');
  const order = (): Promise<string[]> => effectRows.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { index: string } }).dataset.index));
  const deltas = [0, 1, 2, 3, 4].map((k) => deltaOf(6, k)!);
  const byDelta = [0, 1, 2, 3, 4].sort((a, b) => deltas[b]! - deltas[a]! || a - b).map(String);
  assert.deepEqual(await order(), byDelta, 'largest delta first');
  const fmt = (d: number): string => `${d > 0 ? '+' : ''}${d.toFixed(3)}`;
  assert.deepEqual(await page.locator('#record-table tr.effect td[data-column="delta"]').allTextContents(), byDelta.map((k) => fmt(deltas[Number(k)]!)));
  const longAnchor = page.locator('#record-table tr.effect[data-index="4"] td[data-column="anchor"]');
  assert.equal(await longAnchor.getAttribute('title'), `${LONG} (anchor 5)`, 'the anchor\'s whole text on hover');
  await sortBy('record-table', 'delta');
  assert.deepEqual(await order(), [...byDelta].reverse());
  await sortBy('record-table', 'index');
  assert.deepEqual(await order(), ['0', '1', '2', '3', '4']);
  // An odd record: anchor 3 was not scored for it (early stop), listed last by delta.
  await page.locator('#records-table tr.record[data-index="1"]').click();
  await page.locator('#record-view[data-index="1"]').waitFor();
  assert.equal(await page.locator('#record-table tr.effect[data-index="2"] td[data-column="delta"]').textContent(), 'not scored');
  // A record that is itself an anchor: that pair is left out, and said so.
  await hostPost({ type: 'record', record: { ...recordEffects(1), score: { ...rows[1]!.score!, selfAnchor: 2 } } });
  assert.equal(await page.locator('#record-table tr.effect[data-index="2"] td[data-column="delta"]').textContent(), 'itself, left out');
  assert.match((await page.locator('#record-summary').textContent())!, /it is anchor 3 itself: that pair is left out/);
  await page.locator(`#records-table tr.record[data-index="${TRUNCATED}"]`).click();
  await page.locator(`#record-view[data-index="${TRUNCATED}"]`).waitFor();
  assert.match((await page.locator('#record-truncated').textContent())!, /cut from the left/);
  assert.equal(await page.locator('#record-truncated').isVisible(), true);
  const revealFrom = posted.length;
  await page.locator('#record-reveal').click();
  assert.deepEqual(await postedSince(revealFrom, (m) => m.type === 'reveal', 'a reveal from the record view'), { type: 'reveal', index: TRUNCATED, range: rows[TRUNCATED]!.range });
  await page.screenshot({ path: join(artifacts, 'record-view.png'), fullPage: true });
  await page.locator('#record-close').click();
});

test('the record view opens when the extension sends a record (the hover\'s "Show all anchor effects")', async () => {
  await hostPost({ type: 'record', record: recordEffects(9) });
  await page.locator('#record-view[data-index="9"]').waitFor();
  assert.equal(await page.locator('#record-table tr.effect').count(), 5);
  // The same record sent again (each refresh while scoring) leaves the page where the reader scrolled it:
  // down at the records table, the record view out of sight above.
  const scrollY = (): Promise<number> => page.evaluate('window.scrollY') as Promise<number>;
  await page.evaluate('window.scrollTo(0, document.body.scrollHeight)');
  const top = await scrollY();
  const view = (await page.locator('#record-view').boundingBox())!;
  assert.ok(view.y + view.height < 0, 'the record view is scrolled out of sight');
  await hostPost({ type: 'record', record: recordEffects(9) });
  await page.waitForTimeout(100);
  assert.equal(await scrollY(), top, 'no jump back to the record view');
  // Closing it tells the extension, so that the next refresh does not open it again.
  const closeFrom = posted.length;
  await page.locator('#record-close').click();
  assert.deepEqual(await postedSince(closeFrom, (m) => m.type === 'closeRecord', 'the record view closed'), { type: 'closeRecord' });
});

test('the anchor effects flag anchors that no record moves', async () => {
  await page.locator('#tab-anchors').click();
  const flagged = page.locator('#anchors-table tr.anchor.unmoved');
  assert.deepEqual(await flagged.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { index: string } }).dataset.index)), ['2']);
  assert.equal(await flagged.locator('td[data-column="moved"]').textContent(), 'no record ⚠');
  assert.match((await page.locator('#anchors-unmoved').textContent())!, /^1 anchor no record moves \(3\): .*caps every golden score below 1/);
  assert.equal(await page.locator('#anchors-unmoved').isVisible(), true);
  await page.locator('#tab-records').click();
});

test('names and texts from the data or a model are isolated: a right-to-left model name cannot reorder the header', async () => {
  const rtl = 'نموذج\u202E';
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: { name: rtl, demo: false }, distribution, anchorEffects, scatter });
  await untilText('#provenance', `Scores from ${rtl} against k-means 5 of this file.`);
  assert.deepEqual(await page.locator('#provenance bdi').allTextContents(), [rtl, 'k-means 5 of this file']);
  assert.equal(await page.locator('#dataset').evaluate((e) => (globalThis as unknown as { getComputedStyle(e: unknown): { unicodeBidi: string } }).getComputedStyle(e).unicodeBidi), 'isolate');
  assert.equal(await page.locator('#problems-list li[data-index="10"] bdi').textContent(), rows[10]!.instruction);
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter });
  await untilText('#provenance', 'Scores from the bundled demo model (demo) against k-means 5 of this file.');
});

test('the header names the model and the anchor set; for the demo model it warns and offers Choose Model', async () => {
  assert.equal(await page.locator('#provenance').textContent(), 'Scores from the bundled demo model (demo) against k-means 5 of this file.');
  assert.equal(await page.locator('#demo-note').isVisible(), true);
  assert.match((await page.locator('#demo-note').textContent())!, /for trying the tool, not for curation/);
  const from = posted.length;
  await page.locator('#choose-model').click();
  await postedSince(from, (m) => m.type === 'chooseModel', 'chooseModel');
  await hostPost({
    type: 'state', dataset: DATASET_NAME, model: { name: 'SmolLM2-135M-Instruct', demo: false }, distribution,
    anchorEffects: { ...anchorEffects, anchorSet: { ...anchorEffects.anchorSet!, label: 'anchors.json' } }, scatter,
  });
  await untilText('#provenance', 'Scores from SmolLM2-135M-Instruct against anchors.json (5 anchors).');
  assert.equal(await page.locator('#demo-note').isHidden(), true);
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter });
  await untilText('#provenance', 'Scores from the bundled demo model (demo) against k-means 5 of this file.');
});

test('Write Subset at This Threshold and Export Scores ask the extension, with the page\'s threshold and choices', async () => {
  let from = posted.length;
  await page.locator('#write-subset').click();
  assert.deepEqual(await postedSince(from, (m) => m.type === 'writeSubset', 'writeSubset'), { type: 'writeSubset', threshold: 0.8, withScores: false });
  from = posted.length;
  await page.locator('#with-scores').click();
  await page.locator('#write-subset').click();
  assert.deepEqual(await postedSince(from, (m) => m.type === 'writeSubset', 'writeSubset with scores'), { type: 'writeSubset', threshold: 0.8, withScores: true });
  from = posted.length;
  await page.locator('#export-scores').click();
  assert.deepEqual(await postedSince(from, (m) => m.type === 'exportScores', 'exportScores'), { type: 'exportScores', format: 'csv', withDeltas: false });
  await page.locator('#export-format').click();
  await page.locator('#export-format vscode-option[value="jsonl"]').click();
  await page.locator('#export-deltas').click();
  from = posted.length;
  await page.locator('#export-scores').click();
  assert.deepEqual(await postedSince(from, (m) => m.type === 'exportScores', 'exportScores as JSON Lines'), { type: 'exportScores', format: 'jsonl', withDeltas: true });
  assert.deepEqual(consoleErrors, []);
});

const isDisabled = (selector: string): Promise<boolean> => page.locator(selector).evaluate((e) => (e as unknown as { disabled: boolean }).disabled);

/** Clicks `selector` even when disabled, and says whether the page posted a message of `type` within 300 ms. */
async function clickPosts(selector: string, type: WebviewMessage['type']): Promise<boolean> {
  const from = posted.length;
  await page.locator(selector).click({ force: true });
  await page.waitForTimeout(300);
  return posted.slice(from).some((m) => m.type === type);
}

test('on a partly scored file Write Subset is unavailable and says why beside it (a click writes nothing); Export Scores stays available', async () => {
  const partly: DistributionResult = { ...distribution, scored: 50, total: 60 };
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution: partly, anchorEffects, scatter });
  await untilText('#write-subset-why', '10 of 60 records have no current golden score: run Nuggets: Score Dataset first, so that no record is left out unseen.');
  assert.equal(await isDisabled('#write-subset'), true);
  assert.equal(await page.locator('#write-subset').getAttribute('aria-describedby'), 'write-subset-why');
  assert.equal(await clickPosts('#write-subset', 'writeSubset'), false, 'a click on the unavailable action asks nothing');
  assert.equal(await isDisabled('#export-scores'), false);
  assert.equal(await page.locator('#export-why').textContent(), '');
  await page.screenshot({ path: join(artifacts, 'partly-scored.png') });

  // Scored in full: available again, nothing said.
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter });
  await untilText('#write-subset-why', '');
  assert.equal(await isDisabled('#write-subset'), false);
  assert.equal(await page.locator('#write-subset-why').isHidden(), true);

  // Nothing scored: neither action, each saying why.
  const none: DistributionResult = { ...distribution, scored: 0, goldenScores: [], counts: new Array<number>(20).fill(0), problems: [] };
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution: none, anchorEffects, scatter });
  await untilText('#export-why', 'No record has a current golden score yet: run Nuggets: Score Dataset first.');
  assert.equal(await isDisabled('#export-scores'), true);
  assert.equal(await clickPosts('#export-scores', 'exportScores'), false);
  assert.equal(await isDisabled('#write-subset'), true);
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter });
  await untilText('#export-why', '');
});

test('a file that does not parse is shown as broken, with where and what; its last scores stay, and the actions say to fix it first', async () => {
  const fileProblem = { message: 'malformed JSON (expected a comma) <b>', line: 12, column: 7 };
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter, fileProblem });
  await untilText('#file-problem', 'This file does not parse (line 12, column 7): malformed JSON (expected a comma) <b>. Its last scores stay shown; fix the file to score it, write a subset or export.');
  assert.equal(await page.locator('#file-problem').isVisible(), true);
  assert.equal(await page.locator('#file-problem b').count(), 0, 'the message is text, not HTML');
  assert.equal(await page.locator('#file-problem').getAttribute('role'), 'alert');
  const fix = 'The file does not parse: fix it first (the scores shown are from before the problem).';
  assert.equal(await page.locator('#write-subset-why').textContent(), fix);
  assert.equal(await page.locator('#export-why').textContent(), fix);
  assert.equal(await isDisabled('#write-subset'), true);
  assert.equal(await isDisabled('#export-scores'), true);
  assert.equal(await clickPosts('#write-subset', 'writeSubset'), false);
  assert.equal(await page.locator('#records-table tr.record').count() > 0, true, 'the last scores stay in the table');
  await page.screenshot({ path: join(artifacts, 'broken-file.png') });

  // Fixed: the banner goes, the actions come back.
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter, fileProblem: null });
  await untilText('#write-subset-why', '');
  assert.equal(await page.locator('#file-problem').isHidden(), true);
  assert.equal(await isDisabled('#write-subset'), false);
  assert.equal(await isDisabled('#export-scores'), false);
  assert.deepEqual(consoleErrors, []);
});
