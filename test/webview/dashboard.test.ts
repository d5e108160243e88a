/**
 * The dashboard page (dist/webview.js in the HTML the extension serves, same CSP) in headless
 * Chromium, with a fake host in place of the extension: it answers the page's messages the way
 * extension/dashboard.ts relays the server's answers, and records what the page posts.
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
import type { AnchorEffectsResult, DistributionResult, HostMessage, ScatterResult, TableQuery, TableRow, WebviewMessage } from '../../webview/messages';
import { repoRoot } from '../helpers';
import { CHROMIUM, CHROMIUM_ARGS } from './browser';

const XSS = '<img src=x onerror=alert(1)>';
const ANCHORS = 20;
const DATASET_NAME = '<b>bold</b>.alpaca.json';
const artifacts = join(repoRoot, '.test-artifacts', 'webview');

/** IFD of record i: 0.3 to 1.18 over the records. */
const ifdOf = (index: number): number => 0.3 + ((index * 7) % 60) / 68;

/** 60 records with golden scores wins/20; record 7 carries HTML in every text field. */
const rows: TableRow[] = Array.from({ length: 60 }, (_, index) => {
  const wins = (index * 13) % (ANCHORS + 1);
  return {
    index,
    id: `id${index}`,
    instruction: index === 7 ? XSS : `Instruction of record ${index + 1}`,
    input: index === 7 ? '<script>alert(2)</script>' : '',
    output: index === 7 ? '<svg onload=alert(3)>' : `Output ${index + 1}`,
    range: { start: { line: 1 + index * 5, character: 2 }, end: { line: 5 + index * 5, character: 3 } },
    score: { goldenScore: wins / ANCHORS, wins, anchors: ANCHORS, meanDelta: (wins - 10) / 7, truncated: false, signals: { ifd: ifdOf(index) } },
    stale: false,
    signals: { ppl_cond: '12.5', ppl_direct: '20', ifd: ifdOf(index).toFixed(3) },
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
    counts: [3, 10, 20, 15, 12], from: 0.3, to: 1.18, missing: 0, summary: { count: 60, missing: 0, mean: 0.7, p10: 0.4, median: 0.7, p90: 1.1 },
  })),
};
const scatter: ScatterResult = { xLabel: 'Golden score', yLabel: 'IFD', points: rows.map((r) => ({ index: r.index, x: r.score!.goldenScore, y: ifdOf(r.index) })) };
const anchorEffects: AnchorEffectsResult = {
  candidates: rows.length,
  anchors: Array.from({ length: 5 }, (_, index) => ({
    index, instruction: index === 2 ? XSS : `Anchor ${index + 1}`, input: '', winRate: [0.5, 0.9, 0.1, 0.7, 0.3][index]!, meanDelta: index - 2,
  })),
  anchorSet: { hash: 'h', count: 5, path: '/anchors.json' },
};

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
  if (message.type === 'ready') await hostPost({ type: 'state', dataset: DATASET_NAME, distribution, anchorEffects, scatter });
  if (message.type === 'page') await hostPost({ type: 'page', seq: message.seq, query: message.query, page: tablePage(message.query) });
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

const cellTexts = (column: number): Promise<string[]> =>
  page.locator(`#records-grid vscode-data-grid-row.record vscode-data-grid-cell[grid-column="${column}"]`).allTextContents();

before(async () => {
  execFileSync(process.execPath, [join(repoRoot, 'tools', 'build.mjs')], { cwd: repoRoot, stdio: 'pipe' });
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(dashboardHtml({ cspSource: origin, scriptUri: `${origin}/dist/webview.js`, styleUri: `${origin}/media/dashboard.css`, nonce: 'testnonce123' }));
    } else if (path === '/dist/webview.js' || path === '/media/dashboard.css') {
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
  await page.locator('#records-grid vscode-data-grid-row.record').first().waitFor({ timeout: 10_000 });
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
  assert.equal(await page.evaluate('!!customElements.get("vscode-data-grid") && !!customElements.get("vscode-panels")'), true);
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
  const expected = (t: number): string => {
    const n = goldenScores.filter((s) => s >= t).length;
    return `${n} of 60 scored records (${((100 * n) / 60).toFixed(1)}%) at or above ${t.toFixed(2)}`;
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
  const scores = (await cellTexts(2)).map(Number);
  assert.equal(scores.length, 25);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  assert.equal(scores[0], 1);

  let from = posted.length;
  await page.locator('#records-grid vscode-data-grid-cell[data-sort="index"]').click();
  const asc = await postedSince(from, (m) => m.type === 'page', 'a page sorted by index');
  assert.deepEqual(asc.type === 'page' && asc.query, { offset: 0, limit: 25, sortBy: 'index', descending: false });
  await untilText('#records-grid vscode-data-grid-row.record vscode-data-grid-cell >> nth=0', '1');
  assert.deepEqual(await cellTexts(1), Array.from({ length: 25 }, (_, i) => String(i + 1)));
  assert.equal(await page.locator('#records-grid vscode-data-grid-cell[data-sort="index"]').getAttribute('aria-sort'), 'ascending');

  from = posted.length;
  await page.locator('#records-grid vscode-data-grid-cell[data-sort="index"]').click();
  await postedSince(from, (m) => m.type === 'page' && m.query.sortBy === 'index' && m.query.descending, 'a page sorted by index, descending');
  await untilText('#records-grid vscode-data-grid-row.record vscode-data-grid-cell >> nth=0', '60');
  assert.equal((await cellTexts(1))[24], '36');
});

test('paging: Next and Previous move by 25 records; Next is disabled on the last page', async () => {
  await page.locator('#records-grid vscode-data-grid-cell[data-sort="index"]').click(); // back to ascending
  await untilText('#records-grid vscode-data-grid-row.record vscode-data-grid-cell >> nth=0', '1');
  assert.equal(await page.locator('#page-info').textContent(), 'Records 1–25 of 60');
  await page.locator('#next-page').click();
  await untilText('#page-info', 'Records 26–50 of 60');
  assert.equal((await cellTexts(1))[0], '26');
  await page.locator('#next-page').click();
  await untilText('#page-info', 'Records 51–60 of 60');
  assert.deepEqual(await cellTexts(1), Array.from({ length: 10 }, (_, i) => String(51 + i)));
  assert.equal(await page.locator('#next-page').evaluate((e) => (e as unknown as { disabled: boolean }).disabled), true);
  await page.locator('#prev-page').click();
  await untilText('#page-info', 'Records 26–50 of 60');
  await page.locator('#prev-page').click();
  await untilText('#page-info', 'Records 1–25 of 60');
  assert.equal(await page.locator('#prev-page').evaluate((e) => (e as unknown as { disabled: boolean }).disabled), true);
});

test('"only at or above the threshold" asks for rows with minScore = the threshold', async () => {
  const from = posted.length;
  await page.locator('#only-above').click();
  const filtered = await postedSince(from, (m) => m.type === 'page' && m.query.minScore !== undefined, 'a filtered page');
  assert.equal(filtered.type === 'page' && filtered.query.minScore, 0.8);
  const n = goldenScores.filter((s) => s >= 0.8).length;
  await untilText('#page-info', `Records 1–${n} of ${n}`);
  await page.locator('#only-above').click();
  await untilText('#page-info', 'Records 1–25 of 60');
});

test('clicking a row posts a reveal of that record with its range', async () => {
  const from = posted.length;
  await page.locator('#records-grid vscode-data-grid-row.record[data-index="3"]').click();
  const reveal = await postedSince(from, (m) => m.type === 'reveal', 'a reveal message');
  assert.deepEqual(reveal, { type: 'reveal', index: 3, range: rows[3]!.range });
});

test('the table has a column per signal, sortable by the server like the golden score', async () => {
  const titles = await page.locator('#records-grid vscode-data-grid-cell[cell-type="columnheader"]').allTextContents();
  assert.deepEqual(titles.map((t) => t.replace(/ [▲▼]$/, '')), ['#', 'Score', 'Wins', 'Mean Δ', 'PPL (cond.)', 'PPL (direct)', 'IFD', 'Instruction', 'Output']);
  const from = posted.length;
  await page.locator('#records-grid vscode-data-grid-cell[data-sort="ifd"]').click();
  const sorted = await postedSince(from, (m) => m.type === 'page' && m.query.sortBy === 'ifd', 'a page sorted by IFD');
  assert.equal(sorted.type === 'page' && sorted.query.descending, true);
  await untilText('#records-grid vscode-data-grid-row.record vscode-data-grid-cell[grid-column="7"] >> nth=0', Math.max(...rows.map((r) => ifdOf(r.index))).toFixed(3));
  const ifds = (await cellTexts(7)).map(Number);
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
  const row = page.locator('#records-grid vscode-data-grid-row.record[data-index="7"]');
  await row.waitFor();
  const texts = await row.locator('vscode-data-grid-cell').allTextContents();
  assert.equal(texts[7], `${XSS} — <script>alert(2)</script>`);
  assert.equal(texts[8], '<svg onload=alert(3)>');
  assert.equal(await page.locator('#dataset').textContent(), DATASET_NAME);
  await page.locator('#tab-anchors').click();
  await page.locator('#anchors-grid vscode-data-grid-row.anchor').first().waitFor();
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate('document.querySelectorAll("img, b, script:not([nonce]), #records-grid svg, #anchors-grid svg").length'), 0);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(consoleErrors, []);
});

test('the anchor-effects view lists each anchor with its win rate and mean delta, best first', async () => {
  await page.locator('#tab-anchors').click();
  const anchorRows = page.locator('#anchors-grid vscode-data-grid-row.anchor');
  await anchorRows.first().waitFor();
  assert.deepEqual(await anchorRows.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { index: string } }).dataset.index)), ['1', '3', '0', '4', '2']);
  const first = await anchorRows.first().locator('vscode-data-grid-cell').allTextContents();
  assert.deepEqual(first, ['2', 'Anchor 2', '90%', '-1.000']);
  assert.equal(await page.locator('#anchors-note').textContent(),
    '5 anchors, statistics over 60 scored records. Win rate: share of records that made the anchor\'s response more likely.');
  assert.equal(await page.locator('#anchors-grid vscode-data-grid-row.anchor[data-index="2"] vscode-data-grid-cell').nth(1).textContent(), XSS);
  await page.locator('#anchors-grid vscode-data-grid-cell[data-sort="meanDelta"]').click();
  assert.deepEqual(await anchorRows.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { index: string } }).dataset.index)), ['4', '3', '2', '1', '0']);
  await page.screenshot({ path: join(artifacts, 'anchors.png') });
});

test('dist/webview.js is a browser bundle of webview/ and the toolkit only: no vscode, no server or extension code', () => {
  const meta = JSON.parse(readFileSync(join(repoRoot, 'dist', 'webview.meta.json'), 'utf8')) as { inputs: Record<string, { imports: { path: string; external?: boolean }[] }> };
  const inputs = Object.keys(meta.inputs);
  assert.deepEqual(inputs.filter((i) => !i.startsWith('node_modules/')).sort(), ['webview/main.ts', 'webview/messages.ts']);
  assert.ok(inputs.some((i) => i.startsWith('node_modules/@vscode/webview-ui-toolkit/')));
  assert.deepEqual(Object.values(meta.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path)), []);
  assert.ok(!/\brequire\(["']vscode["']\)/.test(readFileSync(join(repoRoot, 'dist', 'webview.js'), 'utf8')));
});
