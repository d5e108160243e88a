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
import { formatScores } from '../../server/selection/export-scores';
import { repoRoot } from '../helpers';
import { CHROMIUM, CHROMIUM_ARGS } from './browser';
import { MEASURE_LAYOUT, type Layout } from './layout';
import { applyTheme } from './themes';

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

/** A record's value of a signal, as the server reads it for a range (a brush, a column filter). */
function signalValue(r: TableRow, signal: string): number {
  return signal === 'golden' ? r.score!.goldenScore : signal === 'mean_delta' ? r.score!.meanDelta : signal === 'ifd' ? r.score!.signals!['ifd']! : Number(r.signals[signal]);
}

/** Whether a row is within every range and contains both texts: the server's table filter (its own unit and integration tests hold it). */
function matches(r: TableRow, query: TableQuery): boolean {
  const f = query.filter;
  return (f?.bounds ?? []).every((b) => (b.min === undefined || signalValue(r, b.signal) >= b.min) && (b.max === undefined || signalValue(r, b.signal) < b.max))
    && (!f?.instruction || `${r.instruction}\u0000${r.input}`.toLowerCase().includes(f.instruction.trim().toLowerCase()))
    && (!f?.output || r.output.toLowerCase().includes(f.output.trim().toLowerCase()));
}

/** The records the fake host serves: the 60 above, or 2,000 for the virtual table's test. */
let tableRows: TableRow[] = rows;

/** What the server's tablePage answers (sorted, filtered, one block). */
function tablePage(query: TableQuery): { total: number; offset: number; rows: TableRow[] } {
  const key = (r: TableRow): number => query.sortBy === 'index' ? r.index : query.sortBy === 'wins' ? r.score!.wins
    : query.sortBy === 'meanDelta' ? r.score!.meanDelta : query.sortBy === 'ifd' ? r.score!.signals!['ifd']! : r.score!.goldenScore;
  const kept = tableRows.filter((r) => (query.minScore === undefined || r.score!.goldenScore >= query.minScore) && matches(r, query))
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

/** Waits (5 s at most) for the element's attribute to have the value. */
async function untilAttribute(selector: string, name: string, value: string): Promise<void> {
  const deadline = Date.now() + 5000;
  let seen: string | null = null;
  while (Date.now() < deadline) {
    seen = await page.locator(selector).first().getAttribute(name, { timeout: 1000 }).catch(() => null);
    if (seen === value) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${selector} has ${name}=${JSON.stringify(seen)}, expected ${JSON.stringify(value)}`);
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

test('the golden-score histogram is a chart (uPlot, on a canvas) of the distribution\'s counts, with axes that have ticks and labels', async () => {
  const figure = page.locator('#histogram-chart figure.chart');
  assert.equal(await figure.getAttribute('data-counts'), counts.join(' '));
  assert.equal(await page.locator('#histogram-chart canvas').count(), 1);
  assert.equal(await figure.getAttribute('data-x-ticks'), '0 0.2 0.4 0.6 0.8 1', 'golden-score ticks every 0.2');
  const yTicks = (await figure.getAttribute('data-y-ticks'))!.split(' ').map(Number);
  assert.ok(yTicks.length >= 2 && yTicks[0] === 0 && yTicks.at(-1)! >= Math.max(...counts) - 1, `record counts on the y axis: ${yTicks.join(' ')}`);
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
  assert.equal(await page.locator('#histogram-chart figure').getAttribute('data-threshold'), '0.8', 'the chart marks the threshold (bins from 0.80 drawn full)');
  await page.waitForTimeout(300);
  assert.equal(posted.length, before, 'moving the threshold asks the extension nothing');
});

test('the table starts at the best golden scores; clicking a column header sorts by it, again reverses', async () => {
  const first = posted.find((m) => m.type === 'page');
  assert.deepEqual(first?.type === 'page' && first.query, { offset: 0, limit: 100, sortBy: 'goldenScore', descending: true });
  const scores = (await cellTexts('goldenScore')).slice(0, 25).map((t) => Number(t.replace(' (stale)', '')));
  assert.equal(scores.length, 25);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  assert.equal(scores[0], 1);

  let from = posted.length;
  await sortBy('records-table', 'index');
  const asc = await postedSince(from, (m) => m.type === 'page', 'a page sorted by index');
  assert.deepEqual(asc.type === 'page' && asc.query, { offset: 0, limit: 100, sortBy: 'index', descending: false });
  await untilText(FIRST_INDEX, '0');
  assert.deepEqual((await cellTexts('index')).slice(0, 25), Array.from({ length: 25 }, (_, i) => `${i}${PROBLEMS.has(i) ? ' ⚠' : ''}${i === TRUNCATED ? ' ✂' : ''}`));
  assert.equal(await page.locator('#records-table th[data-sort="index"]').getAttribute('aria-sort'), 'ascending');

  from = posted.length;
  await sortBy('records-table', 'index');
  await postedSince(from, (m) => m.type === 'page' && m.query.sortBy === 'index' && m.query.descending, 'a page sorted by index, descending');
  await untilText(FIRST_INDEX, '59');
  assert.equal((await cellTexts('index'))[24], '35');
  await sortBy('records-table', 'index'); // back to ascending
  await untilText(FIRST_INDEX, '0');
});

test('"only at or above the threshold" asks for rows with minScore = the threshold', async () => {
  const from = posted.length;
  await page.locator('#only-above').click();
  const filtered = await postedSince(from, (m) => m.type === 'page' && m.query.minScore !== undefined, 'a filtered page');
  assert.equal(filtered.type === 'page' && filtered.query.minScore, 0.8);
  const n = goldenScores.filter((s) => s >= 0.8).length;
  await untilAttribute('#page-info', 'data-total', String(n));
  assert.equal(await page.locator('#records-table tr.record').count(), n);
  await page.locator('#only-above').click();
  await untilAttribute('#page-info', 'data-total', '60');
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

/** Where a point of the scatter is on the screen: x linear over [0, 1], y on the chart's (log) range. */
async function scatterPosition(x: number, y: number): Promise<{ x: number; y: number }> {
  await page.locator('#scatter-chart .u-over').scrollIntoViewIfNeeded();
  const over = (await page.locator('#scatter-chart .u-over').boundingBox())!;
  const [low, high] = (await page.locator('#scatter-chart figure').getAttribute('data-y-range'))!.split(' ').map(Number);
  const log = (await page.locator('#scatter-chart figure').getAttribute('data-scale')) === 'log';
  const at = log ? (Math.log(high!) - Math.log(y)) / (Math.log(high!) - Math.log(low!)) : (high! - y) / (high! - low!);
  return { x: over.x + x * over.width, y: over.y + at * over.height };
}

test('a chart per signal, and golden score against IFD: hovering a point names its record, clicking it shows the record', async () => {
  assert.deepEqual(await page.locator('#signal-charts figure').evaluateAll((fs) => fs.map((f) => (f as unknown as { dataset: { signal: string } }).dataset.signal)), ['ppl_cond', 'ppl_direct', 'ifd']);
  assert.equal(await page.locator('#signal-charts figure[data-signal="ifd"]').getAttribute('data-counts'), '3 10 20 15 12');
  assert.equal(await page.locator('#signal-charts figure[data-signal="ifd"]').getAttribute('data-scale'), 'log');
  assert.equal(await page.locator('#signal-charts figure[data-signal="ppl_cond"]').getAttribute('data-scale'), 'linear');
  assert.equal(await page.locator('#scatter-chart figure').getAttribute('data-points'), '60');
  const point = await scatterPosition(rows[12]!.score!.goldenScore, ifdOf(12));
  await page.mouse.move(point.x, point.y);
  await untilText('#scatter-chart .chart-tip', `record 12: golden score ${rows[12]!.score!.goldenScore.toFixed(2)}, IFD ${Number(ifdOf(12).toPrecision(3))}`);
  const from = posted.length;
  await page.mouse.click(point.x, point.y);
  const reveal = await postedSince(from, (m) => m.type === 'reveal', 'a reveal from the scatter plot');
  assert.deepEqual(reveal, { type: 'reveal', index: 12 });
  await postedSince(from, (m) => m.type === 'showRecord' && m.index === 12, 'the record view of the point');
  await page.mouse.move(0, 0);
  await page.locator('#record-close').click();
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
  assert.equal(await page.locator('#record-title').textContent(), 'Record index 7');
  await untilText('#record-text .record-field-text >> nth=0', XSS);
  assert.deepEqual(await page.locator('#record-text .record-field-text').allTextContents(), [XSS, '<script>alert(2)</script>', '<svg onload=alert(3)>']);
  assert.equal(await page.locator('#neighbours li').first().textContent(), `0.987 · index 9: ${XSS}`);
  assert.equal(await page.evaluate('document.querySelectorAll("#record-view img, #record-view script, #record-view svg, #neighbours img").length'), 0);
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
  assert.deepEqual(inputs.filter((i) => !i.startsWith('node_modules/')).sort(), ['webview/charts.ts', 'webview/compare.ts', 'webview/compare_words.ts', 'webview/main.ts', 'webview/messages.ts', 'webview/record-view.ts', 'webview/table.ts', 'webview/virtual-table.ts']);
  assert.ok(inputs.some((i) => i.startsWith('node_modules/@vscode/webview-ui-toolkit/')));
  assert.ok(inputs.some((i) => i.startsWith('node_modules/uplot/')), 'uPlot is bundled, not loaded from elsewhere');
  assert.deepEqual(Object.values(meta.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path)), []);
  assert.ok(!/\brequire\(["']vscode["']\)/.test(readFileSync(join(repoRoot, 'dist', 'webview.js'), 'utf8')));
});

const measureLayout = (): Promise<Layout> => page.evaluate(MEASURE_LAYOUT);

/** The records tab, sorted by index and scrolled to its top, whatever earlier tests left. */
async function firstPageByIndex(): Promise<void> {
  if (!(await isDisabled('#clear-selection'))) await page.locator('#clear-selection').click();
  await page.locator('#tab-records').click();
  for (let i = 0; i < 2 && (await page.locator('#records-table th[data-sort="index"]').getAttribute('aria-sort')) !== 'ascending'; i++) {
    await sortBy('records-table', 'index');
    await page.waitForTimeout(100);
  }
  await page.locator('#records-scroll').evaluate((e) => (e as unknown as { scrollTop: number }).scrollTop = 0);
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
  await page.locator('#record-close').click();
  await page.locator('#tab-anchors').click();
  await page.locator('#anchors-table tr.anchor').first().waitFor();
  const anchors = await measureLayout();
  assert.deepEqual(anchors.cutNumbers, [], `no number in the anchor effects is cut at ${width} px`);
  assert.deepEqual(anchors.cutWithoutTitle, []);
  await page.screenshot({ path: join(artifacts, `${name}-anchors.png`), fullPage: true });
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
  // The width survives a new order (the table is drawn again) and scrolling.
  await sortBy('records-table', 'index');
  await untilText(FIRST_INDEX, '59');
  assert.ok(Math.abs((await width()) - widened) <= 2, 'the width is kept across a new order');
  await sortBy('records-table', 'index');
  await untilText(FIRST_INDEX, '0');
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
  assert.equal(await page.locator('#record-title').textContent(), 'Record index 6');
  assert.deepEqual(await page.locator('#record-text h4').allTextContents(), ['Instruction', 'Output'], 'no input: no empty Input field');
  assert.deepEqual(await page.locator('#record-text .record-field-text').allTextContents(), [rows[6]!.instruction, rows[6]!.output], 'the whole record');
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
  // up at the charts, the record view out of sight below.
  const scrollY = (): Promise<number> => page.evaluate('window.scrollY') as Promise<number>;
  await page.evaluate('window.scrollTo(0, 0)');
  const top = await scrollY();
  const view = (await page.locator('#record-view').boundingBox())!;
  assert.ok(view.y > 900, `the record view is scrolled out of sight (at ${view.y})`);
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

test('a Compare Models result reads in words: each figure with its meaning, an undefined Spearman named, model names as isolated text', async () => {
  const rtl = 'نموذج\u202E';
  await hostPost({
    type: 'comparison', comparison: {
      sample: 40, models: [rtl, XSS], goldenSpearman: null, goldenSpearmanUndefined: `${rtl} gave every record of the sample the same golden score: it ranks nothing`,
      ifdSpearman: 0.5, ifdPairs: 40, top10Overlap: 0.25, decisionAgreement: 0.9, threshold: 0.85, kept: [0, 4], standsIn: false, verdict: '', report: '',
    },
  });
  await page.locator('#comparison').waitFor({ state: 'visible' });
  assert.deepEqual(await page.locator('#comparison-verdict bdi').allTextContents(), [rtl, XSS], 'each name in its own <bdi>, as text');
  assert.equal(await page.locator('#comparison img').count(), 0, 'a name with HTML creates no element');
  const figures = await page.locator('#comparison-table tr').allTextContents();
  assert.equal(figures.length, 5);
  assert.equal(figures[1], `Spearman rank correlation, golden scoreundefinedUndefined: ${rtl} gave every record of the sample the same golden score: it ranks nothing.`);
  assert.doesNotMatch(figures.join('\n'), /0\.000/);
  assert.deepEqual(consoleErrors, []);
});

/** Drags the mouse over a chart's plotting area from one fraction of its width (and height) to another. */
async function drag(selector: string, from: { x: number; y?: number }, to: { x: number; y?: number }): Promise<void> {
  await page.locator(`${selector} .u-over`).first().scrollIntoViewIfNeeded();
  const over = (await page.locator(`${selector} .u-over`).first().boundingBox())!;
  const at = (p: { x: number; y?: number }): [number, number] => [over.x + p.x * over.width, over.y + (p.y ?? 0.5) * over.height];
  await page.mouse.move(...at(from));
  await page.mouse.down();
  await page.mouse.move(...at(to), { steps: 6 });
  await page.mouse.up();
  await page.mouse.move(0, 0);
}

/** The record indexes the table shows (every row, scrolled through), in its order. */
async function shownIndexes(): Promise<number[]> {
  return (await page.locator('#records-table tr.record').evaluateAll((trs) => trs.map((tr) => Number((tr as unknown as { dataset: { index: string } }).dataset.index))));
}

const selectionRanges = async (): Promise<unknown> => JSON.parse((await page.locator('#selection-summary').getAttribute('data-ranges'))!);

test('brushing: a dragged range of the golden-score histogram selects exactly its records; Write Subset and Export take the range; Clear Selection ends it', async () => {
  await firstPageByIndex();
  assert.equal(await isDisabled('#clear-selection'), true);
  const from = posted.length;
  // From inside bin 12 (0.60–0.65) to inside bin 17 (0.85–0.90): whole bins are selected.
  await drag('#histogram-chart', { x: 0.61 }, { x: 0.89 });
  assert.deepEqual(await selectionRanges(), [{ signal: 'golden', min: 0.6, max: 0.9 }]);
  const asked = await postedSince(from, (m) => m.type === 'page' && m.query.filter !== undefined, 'a page of the brushed range');
  assert.deepEqual(asked.type === 'page' && asked.query.filter, { bounds: [{ signal: 'golden', min: 0.6, max: 0.9 }] });
  const expected = rows.filter((r) => r.score!.goldenScore >= 0.6 && r.score!.goldenScore < 0.9).map((r) => r.index);
  await untilAttribute('#page-info', 'data-total', String(expected.length));
  assert.deepEqual(await shownIndexes(), expected, 'the table shows exactly the records of the brushed bins');
  assert.match((await page.locator('#selection-summary').textContent())!, new RegExp(`^Selection: golden in \\[0\\.6, 0\\.9\\) — ${expected.length} records in the table\\.$`));
  assert.equal(await isDisabled('#clear-selection'), false);
  assert.equal(await page.locator('#records-table th[data-column="goldenScore"] input').inputValue(), '0.6..0.9', 'the Score column\'s filter shows the range');
  await page.screenshot({ path: join(artifacts, 'brushed.png') });

  // Write Subset and Export Scores take the brushed range; the extension passes it on (selectSubset's rule bounds, exportScores' bounds).
  assert.match((await page.locator('#write-subset-why').textContent())!, /^Of the selection only: golden in \[0\.6, 0\.9\)/);
  const write = posted.length;
  await page.locator('#write-subset').click();
  const written = await postedSince(write, (m) => m.type === 'writeSubset', 'writeSubset');
  assert.deepEqual(written.type === 'writeSubset' && [written.threshold, written.bounds], [0.8, [{ signal: 'golden', min: 0.6, max: 0.9 }]]);
  const exported = posted.length;
  await page.locator('#export-scores').click();
  const exportMessage = await postedSince(exported, (m) => m.type === 'exportScores', 'exportScores');
  assert.deepEqual(exportMessage.type === 'exportScores' && exportMessage.bounds, [{ signal: 'golden', min: 0.6, max: 0.9 }]);

  // A brush on the IFD histogram adds its range; the table shows records within both.
  await drag('#signal-charts figure[data-signal="ifd"]', { x: 0.05 }, { x: 0.5 });
  const ranges = await selectionRanges() as { signal: string; min?: number; max?: number }[];
  assert.deepEqual(ranges.map((r) => r.signal), ['golden', 'ifd']);
  const ifd = ranges[1]!;
  const both = rows.filter((r) => r.score!.goldenScore >= 0.6 && r.score!.goldenScore < 0.9 && ifdOf(r.index) >= ifd.min! && (ifd.max === undefined || ifdOf(r.index) < ifd.max)).map((r) => r.index);
  await untilAttribute('#page-info', 'data-total', String(both.length));
  assert.deepEqual(await shownIndexes(), both);

  // A region of the scatter replaces both ranges.
  await drag('#scatter-chart', { x: 0.2, y: 0.1 }, { x: 0.7, y: 0.9 });
  const region = await selectionRanges() as { signal: string; min?: number; max?: number }[];
  assert.deepEqual(region.map((r) => r.signal), ['golden', 'ifd']);
  const [g, y] = region;
  assert.ok(g!.min! > 0.15 && g!.min! < 0.25 && g!.max! > 0.65 && g!.max! < 0.75, `golden from the region: ${JSON.stringify(g)}`);
  const inRegion = rows.filter((r) => r.score!.goldenScore >= g!.min! && r.score!.goldenScore < g!.max! && ifdOf(r.index) >= y!.min! && ifdOf(r.index) < y!.max!).map((r) => r.index);
  assert.ok(inRegion.length > 0);
  await untilAttribute('#page-info', 'data-total', String(inRegion.length));
  assert.deepEqual(await shownIndexes(), inRegion, 'the table shows exactly the records in the region');

  const cleared = posted.length;
  await page.locator('#clear-selection').click();
  const all = await postedSince(cleared, (m) => m.type === 'page', 'a page without the selection');
  assert.equal(all.type === 'page' && all.query.filter, undefined);
  await untilAttribute('#page-info', 'data-total', '60');
  assert.equal(await page.locator('#selection-summary').getAttribute('data-ranges'), '[]');
  assert.equal(await isDisabled('#clear-selection'), true);
  const after = posted.length;
  await page.locator('#write-subset').click();
  const plain = await postedSince(after, (m) => m.type === 'writeSubset', 'writeSubset without a selection');
  assert.equal(plain.type === 'writeSubset' && plain.bounds, undefined, 'without a selection, Write Subset takes every record at the threshold');
});

test('column filters: a numeric range and text searches are asked of the server; a malformed range is flagged and asks nothing', async () => {
  await firstPageByIndex();
  const score = page.locator('#records-table th[data-column="goldenScore"] input');
  const from = posted.length;
  await score.fill('0.5..0.7');
  const asked = await postedSince(from, (m) => m.type === 'page' && m.query.filter !== undefined, 'a filtered page');
  assert.deepEqual(asked.type === 'page' && asked.query.filter, { bounds: [{ signal: 'golden', min: 0.5, max: 0.7 }] });
  await untilAttribute('#page-info', 'data-total', String(rows.filter((r) => r.score!.goldenScore >= 0.5 && r.score!.goldenScore < 0.7).length));
  // The brush on the histogram follows the typed range.
  assert.deepEqual(await selectionRanges(), [{ signal: 'golden', min: 0.5, max: 0.7 }]);

  const instruction = page.locator('#records-table th[data-column="instruction"] input');
  await instruction.fill('RECORD 1');
  const expected = rows.filter((r) => r.score!.goldenScore >= 0.5 && r.score!.goldenScore < 0.7 && r.instruction.toLowerCase().includes('record 1')).map((r) => r.index);
  assert.ok(expected.length > 0);
  await untilAttribute('#page-info', 'data-total', String(expected.length));
  assert.deepEqual(await shownIndexes(), expected);
  assert.match((await page.locator('#selection-summary').textContent())!, /^Selection: golden in \[0\.5, 0\.7\), instruction contains “RECORD 1” — \d+ records? in the table\.$/);
  // Text searches narrow only the table: Write Subset takes the ranges and says so.
  assert.match((await page.locator('#write-subset-why').textContent())!, /\(text searches narrow only the table\)/);

  const before = posted.length;
  await score.fill('0.5..abc');
  await page.waitForTimeout(400);
  assert.equal(await score.getAttribute('aria-invalid'), 'true');
  assert.match((await score.getAttribute('title'))!, /min\.\.max/);
  assert.equal(posted.slice(before).filter((m) => m.type === 'page').length, 0, 'a malformed range asks nothing');
  await score.fill('0.7..0.5');
  assert.equal(await score.getAttribute('title'), 'The min must be below the max');
  await page.locator('#clear-selection').click();
  await untilAttribute('#page-info', 'data-total', '60');
  assert.equal(await instruction.inputValue(), '');
  assert.equal(await page.locator('#records-table th[data-column="goldenScore"] input').inputValue(), '');
});

test('the clicked row stays marked, also after scrolling away and back', async () => {
  await firstPageByIndex();
  await page.locator('#records-table tr.record[data-index="5"]').click();
  await page.locator('#record-view[data-index="5"]').waitFor();
  assert.deepEqual(await page.locator('#records-table tr.record.marked').evaluateAll((trs) => trs.map((tr) => (tr as unknown as { dataset: { index: string } }).dataset.index)), ['5']);
  assert.equal(await page.locator('#records-table tr.record[data-index="5"]').getAttribute('aria-selected'), 'true');
  assert.equal(await page.locator('#records-table tr.record[data-index="6"]').getAttribute('aria-selected'), 'false');
  await page.locator('#records-scroll').evaluate((e) => (e as unknown as { scrollTop: number }).scrollTop = 100_000);
  await page.locator('#records-table tr.record[data-index="59"]').waitFor();
  await page.locator('#records-scroll').evaluate((e) => (e as unknown as { scrollTop: number }).scrollTop = 0);
  await page.locator('#records-table tr.record.marked[data-index="5"]').waitFor();
  await page.locator('#record-close').click();
});

test('the virtual table covers every record: 2,000 rows, asked in blocks as they come into view, with only the rows in view in the page', async () => {
  tableRows = Array.from({ length: 2000 }, (_, index) => ({ ...rows[index % 60]!, index, id: `big${index}` }));
  const big: DistributionResult = { ...distribution, total: 2000, scored: 2000, problems: [] };
  const from = posted.length;
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution: big, anchorEffects, scatter });
  await firstPageByIndex();
  await untilAttribute('#page-info', 'data-total', '2000');
  const drawn = await page.locator('#records-table tbody tr').count();
  assert.ok(drawn < 120, `only the rows in view (and a few around them) are in the page: ${drawn}`);
  await page.locator('#records-scroll').evaluate((e) => (e as unknown as { scrollTop: number; scrollHeight: number }).scrollTop = 1e9);
  await page.locator('#records-table tr.record[data-index="1999"]').waitFor();
  const last = page.locator('#records-table tr.record').last();
  assert.equal(await last.getAttribute('data-index'), '1999', 'the last row is the last record');
  assert.equal(await last.locator('td[data-column="index"]').textContent(), '1999');
  // The last row is inside the scrolling box, not under its edge.
  const box = (await page.locator('#records-scroll').boundingBox())!;
  const row = (await last.boundingBox())!;
  assert.ok(row.y + row.height <= box.y + box.height + 1, `the last row is in view: ${row.y + row.height} <= ${box.y + box.height}`);
  const blocks = posted.slice(from).flatMap((m) => (m.type === 'page' ? [m.query.offset] : []));
  assert.ok(blocks.every((offset) => offset % 100 === 0), `blocks of 100: ${blocks.join(' ')}`);
  assert.ok(blocks.includes(1900) && !blocks.includes(1000), `only the blocks that came into view were asked: ${blocks.join(' ')}`);
  await page.screenshot({ path: join(artifacts, 'virtual-table-end.png') });
  tableRows = rows;
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter });
  await firstPageByIndex();
  await untilAttribute('#page-info', 'data-total', '60');
});

test('a long-tailed IFD with one outlier is drawn on log axes: the outlier in view, the rest spread, hover names each record', async () => {
  // Record 17's IFD is 9.45 (as in the 400 Alpaca-GPT4 records); the others stay between 0.3 and 1.18.
  const outlier = 17;
  const ifdWithOutlier = (i: number): number => (i === outlier ? 9.45 : ifdOf(i));
  const tailed: DistributionResult = {
    ...distribution,
    signals: distribution.signals.map((chart) => (chart.name === 'ifd' ? { ...chart, from: 0.3, to: 9.45, counts: [6, 20, 20, 13, 0, 0, 0, 0, 0, 1] } : chart)),
  };
  const tailedScatter: ScatterResult = { ...scatter, points: rows.map((r) => ({ index: r.index, x: r.score!.goldenScore, y: ifdWithOutlier(r.index) })) };
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution: tailed, anchorEffects, scatter: tailedScatter });
  await untilAttribute('#signal-charts figure[data-signal="ifd"]', 'data-counts', '6 20 20 13 0 0 0 0 0 1');
  const histogramTicks = (await page.locator('#signal-charts figure[data-signal="ifd"]').getAttribute('data-x-ticks'))!.split(' ');
  assert.deepEqual(histogramTicks.filter((t) => ['0.5', '1', '2', '5'].includes(t)), ['0.5', '1', '2', '5'], `log ticks: ${histogramTicks.join(' ')}`);
  const scatterTicks = (await page.locator('#scatter-chart figure').getAttribute('data-y-ticks'))!.split(' ');
  assert.deepEqual(scatterTicks.filter((t) => ['0.5', '1', '2', '5'].includes(t)), ['0.5', '1', '2', '5'], `log ticks: ${scatterTicks.join(' ')}`);
  assert.equal(await page.locator('#scatter-chart figure').getAttribute('data-scale'), 'log');
  // The 59 other records take more than a third of the height (a linear axis would give them a tenth).
  const over = (await page.locator('#scatter-chart .u-over').boundingBox())!;
  const low = await scatterPosition(0.5, 0.3);
  const high = await scatterPosition(0.5, 1.18);
  assert.ok((low.y - high.y) / over.height > 0.33, `the bulk spans ${((low.y - high.y) / over.height).toFixed(2)} of the height`);
  const top = await scatterPosition(rows[outlier]!.score!.goldenScore, 9.45);
  assert.ok(top.y >= over.y && top.y <= over.y + over.height, 'the outlier is inside the chart');
  await page.mouse.move(top.x, top.y);
  await untilText('#scatter-chart .chart-tip', `record ${outlier}: golden score ${rows[outlier]!.score!.goldenScore.toFixed(2)}, IFD 9.45`);
  const bulk = await scatterPosition(rows[40]!.score!.goldenScore, ifdOf(40));
  await page.mouse.move(bulk.x, bulk.y);
  await untilText('#scatter-chart .chart-tip', `record 40: golden score ${rows[40]!.score!.goldenScore.toFixed(2)}, IFD ${Number(ifdOf(40).toPrecision(3))}`);
  await page.mouse.move(0, 0);
  await page.locator('#signals').screenshot({ path: join(artifacts, 'log-scale-outlier.png') });
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter });
  await untilAttribute('#signal-charts figure[data-signal="ifd"]', 'data-counts', '3 10 20 15 12');
});

test('a conversation\'s record view shows every turn with its role, the scored (final assistant) turn marked, each text whole and isolated', async () => {
  const rtl = 'مرحبا \u202Ebidi';
  const turns: NonNullable<RecordEffectsResult['turns']> = [
    { role: 'system', content: 'You are a careful tutor.' },
    { role: 'user', content: 'What is 2 + 2?' },
    { role: 'assistant', content: '4.' },
    { role: 'user', content: `And in Arabic? ${rtl}` },
    { role: 'assistant', content: `${LONG}\nwith a second line <b>not bold</b>` },
  ];
  await hostPost({ type: 'record', record: { ...recordEffects(3), instruction: turns[3]!.content, input: '', output: turns[4]!.content, turns, scoredTurn: 4 } });
  await page.locator('#record-view[data-index="3"]').waitFor();
  const items = page.locator('#record-text ol.turns > li');
  assert.deepEqual(await items.evaluateAll((lis) => lis.map((li) => (li as unknown as { dataset: { role: string } }).dataset.role)), ['system', 'user', 'assistant', 'user', 'assistant']);
  assert.deepEqual(await items.locator('.record-field-text').allTextContents(), turns.map((t) => t.content), 'every turn whole, as text');
  assert.deepEqual(await page.locator('#record-text li.scored').evaluateAll((lis) => lis.length), 1);
  assert.equal(await page.locator('#record-text li.scored h4').textContent(), 'assistant — the scored turn');
  assert.equal(await page.locator('#record-text li').nth(4).evaluate((li) => (li as unknown as { classList: { contains(c: string): boolean } }).classList.contains('scored')), true);
  assert.equal(await page.locator('#record-text b').count(), 0);
  assert.equal(await page.locator('#record-text li').nth(3).locator('.record-field-text').evaluate((e) => (globalThis as unknown as { getComputedStyle(e: unknown): { unicodeBidi: string } }).getComputedStyle(e).unicodeBidi), 'isolate');
  await page.locator('#record-view').screenshot({ path: join(artifacts, 'record-view-conversation.png') });
  await page.locator('#record-close').click();
});

/** Boxes of the records table and the record view, with the page's width and whether anything is wider than the window. */
async function splitLayout(): Promise<{ records: { x: number; y: number; width: number; height: number }; view: { x: number; y: number; width: number; height: number }; overflow: number; charts: number[] }> {
  const records = (await page.locator('#records-split .records').boundingBox())!;
  const view = (await page.locator('#record-view').boundingBox())!;
  const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as number;
  // Each chart's canvas against its box: uPlot is as wide as the box it is in (proportions right at every width).
  const charts = await page.locator('figure.chart .uplot').evaluateAll((us) => us.map((u) => {
    const e = u as unknown as { getBoundingClientRect(): { width: number }; parentElement: { getBoundingClientRect(): { width: number } } };
    return Math.abs(e.getBoundingClientRect().width - e.parentElement.getBoundingClientRect().width);
  }));
  return { records, view, overflow, charts };
}

for (const theme of ['light', 'dark', 'highContrast'] as const) {
  test(`${theme} theme: at full width the record view is beside the table, at 600 px directly under it; nothing overlaps, charts fit their boxes`, async () => {
    await page.evaluate(applyTheme(theme));
    for (const width of [1280, 600]) {
      await page.setViewportSize({ width, height: 900 });
      await firstPageByIndex();
      await page.locator('#records-table tr.record[data-index="3"]').click();
      await page.locator('#record-view[data-index="3"]').waitFor();
      await untilText('#neighbours h3', 'Nearest neighbours of record index 3');
      await page.waitForTimeout(250); // charts follow their boxes' new width
      const { records, view, overflow, charts } = await splitLayout();
      assert.ok(overflow <= 0, `nothing is wider than the ${width} px window (${overflow} px over)`);
      assert.ok(charts.every((d) => d <= 2), `every chart is as wide as its box: ${charts.join(' ')}`);
      if (width === 1280) {
        assert.ok(view.x >= records.x + records.width - 1, `beside: the record view (x ${view.x}) starts right of the table (ends ${records.x + records.width})`);
        assert.ok(Math.abs(view.y - records.y) < 4, 'beside: their tops are level');
      } else {
        assert.ok(view.y >= records.y + records.height - 1, `under: the record view (y ${view.y}) starts below the table (ends ${records.y + records.height})`);
        assert.ok(view.y - (records.y + records.height) < 40, 'directly under the table');
        assert.ok(Math.abs(view.width - records.width) < 4, 'as wide as the table');
      }
      // The whole record, its neighbours and its anchor effects in one view: no 3,000 px scroll from one to the next.
      const effects = (await page.locator('#record-table').boundingBox())!;
      const neighbours = (await page.locator('#neighbours').boundingBox())!;
      assert.ok(effects.y - neighbours.y < 900, `neighbours and anchor effects close together: ${effects.y - neighbours.y} px`);
      assert.deepEqual((await measureLayout()).cutNumbers, [], `no number is cut at ${width} px`);
      const name = `${width === 1280 ? 'full' : '600px'}-${theme}`;
      await page.locator('#overview').screenshot({ path: join(artifacts, `charts-${name}.png`) });
      await page.locator('#records-split').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(artifacts, `record-view-${name}.png`) });
      await page.locator('#record-close').click();
    }
    await page.setViewportSize({ width: 1200, height: 900 });
    if (theme !== 'light') await page.evaluate(applyTheme('light'));
    assert.deepEqual(consoleErrors, []);
  });
}

test('a refresh while scoring keeps a filter being typed in: its text, its focus, and the rows until the new ones come', async () => {
  await firstPageByIndex();
  const output = page.locator('#records-table th[data-column="output"] input');
  await output.click();
  await output.pressSequentially('Output 1');
  await untilAttribute('#page-info', 'data-total', String(rows.filter((r) => r.output.toLowerCase().includes('output 1')).length));
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter });
  await page.keyboard.type('2');
  assert.equal(await output.inputValue(), 'Output 12', 'the field kept its focus through the refresh');
  await untilAttribute('#page-info', 'data-total', String(rows.filter((r) => r.output.toLowerCase().includes('output 12')).length));
  assert.deepEqual(await shownIndexes(), rows.filter((r) => r.output.toLowerCase().includes('output 12')).map((r) => r.index));
  await page.locator('#clear-selection').click();
  await untilAttribute('#page-info', 'data-total', '60');
});

test('50,000 points: the scatter plot draws them all, and hovering still names the record under the pointer', async (t) => {
  const many = Array.from({ length: 50_000 }, (_, index) => ({ index, x: ((index * 7919) % 50_000) / 50_000, y: 0.3 + ((index * 104_729) % 50_000) / 25_000 }));
  const target = many[31_337]!;
  // Room around the target, so that the pointer finds it and no other.
  const points = many.filter((p) => p === target || Math.hypot(p.x - target.x, (p.y - target.y) / 2) > 0.06);
  const started = Date.now();
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter: { ...scatter, points } });
  const sent = Date.now() - started;
  await untilAttribute('#scatter-chart figure', 'data-points', String(points.length));
  const drawn = Date.now() - started;
  t.diagnostic(`${points.length} points drawn ${drawn} ms after the state was sent (${sent} ms of it to send them into the page)`);
  const at = await scatterPosition(target.x, target.y);
  const hovered = Date.now();
  await page.mouse.move(at.x, at.y);
  await untilText('#scatter-chart .chart-tip', `record ${target.index}: golden score ${target.x.toFixed(2)}, IFD ${Number(target.y.toPrecision(3))}`);
  t.diagnostic(`the tooltip named the record ${Date.now() - hovered} ms after the pointer moved`);
  await page.mouse.move(0, 0);
  await page.locator('#scatter-chart').screenshot({ path: join(artifacts, 'scatter-50000.png') });
  await hostPost({ type: 'state', dataset: DATASET_NAME, model: DEMO, distribution, anchorEffects, scatter });
  await untilAttribute('#scatter-chart figure', 'data-points', '60');
});
