/**
 * End to end, in a real VS Code: the packaged .vsix installed into code-server, the workbench driven
 * in Debian's Chromium the way a user drives it. A real Alpaca file (the first 20 GSM8K records of
 * ../shared/data) in a trusted workspace is scored from the command palette against 8 k-means anchors
 * chosen by the CLI; what the editor shows is checked against the CLI's own scores of the same file:
 * the inline scores (decorations, read from their CSS content), a hover's per-anchor deltas, the file
 * "Select Golden Subset" writes and opens, and the dashboard inside its webview, whose rows reveal
 * their records. A screenshot of each step goes to .test-artifacts/e2e/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import { repoRoot, sharedData } from '../helpers';
import { MEASURE_LAYOUT, type Layout } from '../webview/layout';
import { E2eSession, e2eFolders, injectedTexts, installPackagedExtension, nuggetsLog, nuggetsStatus, runCommand, startCodeServer, until } from './code-server';

const RECORDS = 20;
const ANCHORS = 8;
const DATASET = 'data.alpaca.json';
const artifacts = join(repoRoot, '.test-artifacts', 'e2e');
const BADGE = /^◆ (\d\.\d\d) · (\d+)\/(\d+) anchors$/;
/** Written into the workspace after the subset step: a dataset with a missing comma, and one scored without an anchors setting. */
const BROKEN = 'tricky.alpaca.json';
const FIRST_RUN = 'first-run.alpaca.json';

interface CliScore { index: number; golden_score: number; wins: number; anchors: number; mean_delta: number; deltas: number[]; self_anchor?: number }

let root: string;
let workspace: string;
let sourceText: string;
let allRecords: Record<string, string>[];
/** The CLI's scores of the same file, model and anchors: what the editor must show. */
let expected: CliScore[];
let page: Page;
/** The browser and code-server; a failed step's message ends with the last lines of the Nuggets log. */
const session = new E2eSession(artifacts, () => `Nuggets log, last lines:\n${nuggetsLog(root).trimEnd().split('\n').slice(-8).join('\n')}`);
const step = (name: string, run: () => Promise<void>): Promise<void> => session.step(name, run);
const consoleLines = session.consoleLines;

const cli = (...args: string[]): string => execFileSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });

/** First line (0-based) of each record, as JSON.stringify(records, null, 2) writes them. */
const recordStartLines = (text: string): number[] => text.split('\n').flatMap((line, i) => (line === '  {' ? [i] : []));

/** How the dashboard's tables fit in its frame now (test/webview/layout.ts). */
async function dashboardLayout(view: FrameLocator): Promise<Layout & { width: number }> {
  const frame = await (await view.locator('body').elementHandle())!.ownerFrame();
  const layout = (await frame!.evaluate(MEASURE_LAYOUT)) as Layout;
  return { ...layout, width: (await view.locator('body').boundingBox())!.width };
}

/** Opens the records tab of the dashboard and checks that no number is cut and cut text has its title. */
async function checkDashboardLayout(view: FrameLocator, where: string): Promise<void> {
  await view.locator('#tab-records').click();
  await view.locator('#records-table tr.record').first().waitFor();
  await page.waitForTimeout(300); // the layout settles after the resize
  // Shown from its first column, in view (clicking a row may have scrolled it sideways).
  await view.locator('#records-table').evaluate((table) => {
    (table as unknown as { parentElement: { scrollLeft: number } }).parentElement.scrollLeft = 0;
  });
  await view.locator('#records-table').scrollIntoViewIfNeeded();
  const layout = await dashboardLayout(view);
  assert.ok(layout.numbers >= RECORDS * 7, `${where}: numeric cells measured: ${layout.numbers}`);
  assert.deepEqual(layout.cutNumbers, [], `${where} (dashboard ${layout.width} px wide): no number is wider than its cell`);
  assert.deepEqual(layout.cutWithoutTitle, [], `${where}: cut text has its whole text as title`);
}

const statusText = (): Promise<string> => nuggetsStatus(page);

before(async () => {
  ({ root, workspace } = e2eFolders(artifacts, 'nuggets-e2e-'));
  allRecords = (JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')) as Record<string, string>[]).slice(0, 40);
  const records = allRecords.slice(0, RECORDS);
  sourceText = JSON.stringify(records, null, 2) + '\n';
  writeFileSync(join(workspace, DATASET), sourceText);
  // The anchor set comes from the CLI, outside the workspace: 8 anchors keep scoring to seconds.
  const anchors = join(root, 'anchors.json');
  cli('anchors', join(workspace, DATASET), '--kmeans', String(ANCHORS), '--out', anchors);
  cli('score', join(workspace, DATASET), '--anchors', anchors, '--out', join(root, 'scores.jsonl'));
  expected = readFileSync(join(root, 'scores.jsonl'), 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as CliScore);
  cli('select', join(workspace, DATASET), '--scores', join(root, 'scores.jsonl'), '--top-percent', '25', '--out', join(root, 'golden-cli.json'));
  assert.deepEqual(readdirSync(workspace), [DATASET], 'the CLI left the workspace as it was');

  const extensionsDir = installPackagedExtension(root);
  page = await session.launch(await startCodeServer({
    root, extensionsDir, folder: workspace, log: join(artifacts, 'code-server.log'),
    settings: { 'nuggets.anchors': anchors, 'editor.hover.delay': 200, 'editor.minimap.enabled': false },
  }));
}, { timeout: 240_000 });

after(async () => {
  await session.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('the packaged extension in code-server: open, score, inline scores, hover deltas, golden subset, dashboard, a broken file, a first run, the log', { timeout: 480_000 }, async () => {
  const starts = recordStartLines(sourceText);
  assert.equal(starts.length, RECORDS);

  await step('01-open-trusted', async () => {
    await page.goto(`${session.server!.url}/?folder=${encodeURIComponent(workspace)}`, { timeout: 60_000 });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    // Trust the folder as a user does: scoring runs a model, which restricted mode refuses.
    await page.getByRole('button', { name: 'Yes, I trust the authors' }).click({ timeout: 30_000 });
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: DATASET }).dblclick();
    await page.locator(`.tab.active[data-resource-name="${DATASET}"]`).waitFor();
    await page.locator('.editor-group-container.active .view-line', { hasText: '"instruction"' }).first().waitFor();
    // The server recognised the Alpaca file: the status bar counts its records, none scored yet.
    await until(statusText, (t) => t.includes(`Nuggets 0/${RECORDS}`), 60_000, 'the Nuggets status bar item');
  });

  await step('02-scored', async () => {
    await runCommand(page, 'Nuggets: Score Dataset');
    await until(statusText, (t) => t.includes(`◆ Nuggets ${RECORDS}/${RECORDS}`), 120_000, 'the status bar after Score Dataset');
  });

  await step('03-inline-scores', async () => {
    // Line numbers in the gutter, by vertical position, to tell which record each badge belongs to.
    const gutter = await page.locator('.editor-group-container.active .margin-view-overlays .line-numbers').evaluateAll((els) =>
      els.map((e) => ({ line: Number((e as unknown as { textContent: string }).textContent), top: (e as unknown as { getBoundingClientRect(): { top: number } }).getBoundingClientRect().top })));
    const visibleStarts = starts.map((s, index) => ({ index, line: s + 1 })).filter((r) => gutter.some((g) => g.line === r.line));
    assert.ok(visibleStarts.length >= 5, `several records in view: ${visibleStarts.length}`);
    const badges = await until(() => injectedTexts(page, '◆'), (b) => b.length >= visibleStarts.length, 10_000, 'badges on the visible records');
    for (const { index, line } of visibleStarts) {
      const top = gutter.find((g) => g.line === line)!.top;
      const badge = badges.find((b) => Math.abs(b.top - top) < 2);
      assert.ok(badge, `record ${index} (line ${line}) has a badge; badges: ${JSON.stringify(badges)}`);
      const want = expected[index]!;
      assert.match(badge.text, BADGE);
      // A record that is itself an anchor counts the other anchors (its own pair is left out), in the CLI as here.
      assert.equal(badge.text, `◆ ${want.golden_score.toFixed(2)} · ${want.wins}/${want.anchors} anchors`, `record ${index}'s badge matches the CLI's score`);
    }
  });

  await step('04-hover-deltas', async () => {
    const line = page.locator('.editor-group-container.active .view-line', { hasText: '"instruction"' }).first();
    const box = (await line.boundingBox())!;
    await page.mouse.move(box.x + 10, box.y + box.height / 2);
    await page.mouse.move(box.x + 80, box.y + box.height / 2, { steps: 5 });
    const hover = page.locator('.monaco-hover', { hasText: 'Golden score' }).first();
    await hover.waitFor({ state: 'visible', timeout: 15_000 });
    // The model's name and the anchors' texts are isolated (U+2068 … U+2069): read without those marks.
    const text = (await hover.innerText()).replace(/[\u2066-\u2069]/g, '');
    const want = expected[0]!;
    assert.match(text, new RegExp(`Golden score ${want.golden_score.toFixed(2)} · ${want.wins}/${want.anchors} anchors helped`));
    const rows = [...text.matchAll(/([+-]\d+\.\d{3})\s+(\d+)\\?\. ([^\n]*)/g)].map((m) => ({ delta: Number(m[1]), anchor: Number(m[2]), label: m[3]! }));
    const helps = want.deltas.map((delta, i) => ({ delta, anchor: i + 1 })).filter((d) => d.delta > 0).sort((a, b) => b.delta - a.delta).slice(0, 3);
    const hurts = want.deltas.map((delta, i) => ({ delta, anchor: i + 1 })).filter((d) => d.delta < 0).sort((a, b) => a.delta - b.delta).slice(0, 3);
    assert.deepEqual(rows.map((r) => r.anchor), [...helps, ...hurts].map((d) => d.anchor), `the anchors it helps and hurts most: ${text}`);
    for (const row of rows) assert.ok(Math.abs(row.delta - want.deltas[row.anchor - 1]!) < 6e-4, `anchor ${row.anchor}: ${row.delta} vs the CLI's ${want.deltas[row.anchor - 1]}`);
    // Each row names its anchor by its (shortened) instruction, shown as plain text.
    const anchorRecords = JSON.parse(readFileSync(join(root, 'anchors.json'), 'utf8')) as Array<{ instruction: string }>;
    for (const row of rows) {
      const instruction = anchorRecords[row.anchor - 1]!.instruction.replace(/\s+/g, ' ').trim();
      assert.ok(row.label.trim().startsWith(instruction.slice(0, 30)), `anchor ${row.anchor} is named by its instruction: "${row.label}"`);
    }
    // Its foot names the model and the anchor set, and what the demo model's scores are for; the extension's own links follow.
    assert.match(text, /Model demo · anchors: anchors\.json \(nuggets\.anchors setting\)/);
    assert.match(text, /bundled demo model: its scores are for trying the tool, not for curation/);
    if (want.self_anchor !== undefined) assert.match(text, new RegExp(`This record is anchor ${want.self_anchor + 1} itself: that pair is left out`));
    else assert.doesNotMatch(text, /itself: that pair is left out/);
    await hover.locator('a', { hasText: 'Show all anchor effects' }).waitFor();
    await hover.locator('a', { hasText: 'Choose Model' }).waitFor();
    // Scroll the hover to its foot for the screenshot: the model, the anchors and the links.
    const hoverBox = (await hover.boundingBox())!;
    await page.mouse.move(hoverBox.x + hoverBox.width / 2, hoverBox.y + hoverBox.height / 2, { steps: 3 });
    for (let i = 0; i < 8; i++) {
      await page.mouse.wheel(0, 300);
      await page.waitForTimeout(100);
    }
    await page.waitForTimeout(300); // let the hover finish fading in before the screenshot
  });

  await step('05-select-quick-pick', async () => {
    await page.keyboard.press('Escape');
    await page.mouse.move(700, 880);
    await runCommand(page, 'Nuggets: Select Golden Subset');
    const pick = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Top 25%' }).first();
    await pick.waitFor({ state: 'visible' });
    assert.match(await pick.innerText(), new RegExp(`keeps 5 of ${RECORDS} \\(25\\.0%\\)`));
  });

  await step('06-golden-subset-opened', async () => {
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Top 25%' }).first().click();
    // The subset and then its card are each written atomically (a temporary file renamed into place): wait for both names.
    const finished = (f: string[]): boolean => f.length === 1 && existsSync(join(workspace, f[0]!.replace(/\.json$/, '.card.json')));
    // Beside the subset: its card, and the anchors its scores were computed against (copied for `nuggets select --card`).
    const written = await until(async () => readdirSync(workspace).filter((f) => f !== DATASET && f.endsWith('.json') && !/\.(card|anchors)\.json$/.test(f)), finished, 20_000, 'the new file beside its selection card');
    const name = written[0]!;
    await page.locator(`.tab.active[data-resource-name="${name}"]`).waitFor();
    const subset = JSON.parse(readFileSync(join(workspace, name), 'utf8')) as { instruction: string }[];
    assert.deepEqual(subset, JSON.parse(readFileSync(join(root, 'golden-cli.json'), 'utf8')), 'the same records as `nuggets select --top-percent 25`');
    assert.equal(readFileSync(join(workspace, DATASET), 'utf8'), sourceText, 'the source file is untouched');
    const opening = JSON.stringify(subset[0]!.instruction).slice(1, 30);
    await page.locator('.editor-group-container.active .view-line', { hasText: opening }).first().waitFor();
  });

  const view = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
  await step('07-dashboard', async () => {
    await page.locator(`.tab[data-resource-name="${DATASET}"]`).click();
    await page.locator(`.tab.active[data-resource-name="${DATASET}"]`).waitFor();
    await runCommand(page, 'Nuggets: Show Dashboard');
    await view.locator('#records-table tr.record').first().waitFor({ timeout: 30_000 });
    const counts = new Array<number>(20).fill(0);
    for (const s of expected) counts[Math.min(19, Math.floor(s.golden_score * 20))]!++;
    const bars = (await view.locator('#histogram-chart figure').getAttribute('data-counts'))!.split(' ').map(Number);
    assert.deepEqual(bars, counts, 'the histogram has the CLI scores\' distribution');
    assert.equal(await view.locator('#histogram-chart figure').getAttribute('data-x-ticks'), '0 0.2 0.4 0.6 0.8 1', 'the chart has an axis with ticks');
    const above = expected.filter((s) => s.golden_score >= 0.5).length;
    assert.equal(await view.locator('#threshold-count').innerText(), `${above} of ${RECORDS} scored records (${((100 * above) / RECORDS).toFixed(1)}%) at or above 0.50`);
    assert.equal(await view.locator('#page-info').getAttribute('data-total'), String(RECORDS));
    assert.equal(await view.locator('#records-table tr.record').count(), RECORDS);
    const best = Math.max(...expected.map((s) => s.golden_score));
    assert.equal(await view.locator('#records-table tr.record td[data-column="goldenScore"]').first().innerText(), best.toFixed(2));
    assert.equal(await view.locator('#anchors-table tr.anchor').count(), ANCHORS);
    // The header names the model and the anchor set, and what the demo model's scores are for.
    assert.equal(await view.locator('#provenance').innerText(), 'Scores from the bundled demo model (demo) against anchors.json (nuggets.anchors setting) (8 anchors).');
    assert.match(await view.locator('#demo-note').innerText(), /for trying the tool, not for curation/);
    await checkDashboardLayout(view, 'beside the editor in a 1400 px window');
  });

  await step('08-dashboard-row-revealed', async () => {
    const index = 11;
    await view.locator(`#records-table tr.record[data-index="${index}"]`).click();
    const first = starts[index]! + 1;
    const position = page.locator('.statusbar-item', { hasText: /^Ln \d+, Col \d+/ }).first();
    const text = await until(() => position.innerText().catch(() => ''), (t) => {
      const line = Number(/Ln (\d+)/.exec(t)?.[1] ?? 0);
      return line >= first && line <= first + 4 && t.includes('selected');
    }, 10_000, `the editor's selection after clicking record ${index} (lines ${first}–${first + 4})`);
    assert.match(text, /selected/);
    await page.locator(`.tab.active[data-resource-name="${DATASET}"]`).waitFor();
  });

  await step('08a-dashboard-narrow', async () => {
    // A 900 px window with the dashboard beside the editor: a narrow panel. Numbers stay whole; the table scrolls sideways.
    await page.setViewportSize({ width: 900, height: 900 });
    await checkDashboardLayout(view, 'a narrow panel beside the editor in a 900 px window');
    assert.ok((await dashboardLayout(view)).width < 450, 'the panel is narrow');
  });

  await step('08b-dashboard-900px', async () => {
    // The dashboard's group maximized in the 900 px window.
    const dashboardTab = page.locator('.tab', { hasText: `Nuggets: ${DATASET}` }).first();
    await dashboardTab.click();
    await runCommand(page, 'View: Toggle Maximize Editor Group');
    await until(async () => (await dashboardLayout(view)).width, (w) => w > 500, 10_000, 'the dashboard\'s width once maximized');
    await checkDashboardLayout(view, 'maximized in a 900 px window');
  });

  await step('08c-dashboard-record-view', async () => {
    // Back beside the editor, in a 1400 px window.
    await page.locator('.tab', { hasText: `Nuggets: ${DATASET}` }).first().click();
    await runCommand(page, 'View: Toggle Maximize Editor Group');
    await page.locator(`.tab[data-resource-name="${DATASET}"]`).waitFor({ state: 'visible' });
    await page.setViewportSize({ width: 1400, height: 900 });
    // Anchor effects: no anchor of this set is left unmoved by every record.
    await view.locator('#tab-anchors').click();
    await view.locator('#anchors-table tr.anchor').first().waitFor();
    assert.equal(await view.locator('#anchors-table tr.anchor.unmoved').count(), 0);
    assert.deepEqual((await dashboardLayout(view)).cutNumbers, []);
    await view.locator('#tab-records').click();
    // The record view: every anchor's delta, as the CLI computed it, with the anchor's whole text.
    const index = 2;
    await view.locator(`#records-table tr.record[data-index="${index}"]`).click();
    await view.locator(`#record-view[data-index="${index}"]`).waitFor({ timeout: 10_000 });
    const want = expected[index]!;
    const shown = await view.locator('#record-table tr.effect').evaluateAll((rows) => rows.map((r) => {
      const row = r as unknown as { dataset: { index: string }; querySelector(s: string): { textContent: string; title: string } };
      return { anchor: Number(row.dataset.index), delta: row.querySelector('td[data-column="delta"]').textContent, text: row.querySelector('td[data-column="anchor"]').title };
    }));
    assert.equal(shown.length, ANCHORS);
    const anchorRecords = JSON.parse(readFileSync(join(root, 'anchors.json'), 'utf8')) as Array<{ instruction: string; input: string }>;
    for (const { anchor, delta, text } of shown) {
      const d = want.deltas[anchor];
      if (want.self_anchor === anchor) assert.equal(delta, 'itself, left out');
      else assert.ok(Math.abs(Number(delta) - d!) < 6e-4, `anchor ${anchor + 1}: ${delta} vs the CLI's ${d}`);
      const a = anchorRecords[anchor]!;
      const whole = (a.input ? `${a.instruction} — ${a.input}` : a.instruction).replace(/\s+/g, ' ').trim();
      assert.equal(text, whole, `anchor ${anchor + 1}'s whole text on hover`);
    }
    const order = shown.filter((r) => r.anchor !== want.self_anchor).map((r) => Number(r.delta));
    assert.deepEqual(order, [...order].sort((a, b) => b - a), 'largest delta first');
    // The whole record beside its anchor effects: instruction and output as in the file (these records have no input).
    const record = allRecords[index]!;
    assert.deepEqual((await view.locator('#record-text .record-field-text').allTextContents()).map((t) => t.trim()), [record.instruction!.trim(), record.output!.trim()]);
    assert.equal(await view.locator(`#records-table tr.record.marked[data-index="${index}"]`).count(), 1, 'the clicked row stays marked');
  });

  await step('08c-dashboard-record-view-dark', async () => {
    // The same record view in the Dark Modern theme, beside the editor and maximized: the dashboard follows the theme
    // (its colours are VS Code's own variables) and its layout holds. The theme is chosen as a user would.
    const background = (): Promise<number> => view.locator('body').evaluate((body) => {
      const [r, g, b] = (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(body).backgroundColor.match(/\d+/g)!.map(Number);
      return (0.2126 * r! + 0.7152 * g! + 0.0722 * b!) / 255;
    });
    const chooseTheme = async (name: string): Promise<void> => {
      await runCommand(page, 'Preferences: Color Theme');
      const input = page.locator('.quick-input-widget input.input');
      await input.fill(name);
      await page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first().waitFor();
      await input.press('Enter');
    };
    await chooseTheme('Dark Modern');
    await until(background, (l) => l < 0.25, 15_000, 'the dashboard\'s background once the theme is dark');
    await view.locator('#record-view[data-index="2"]').waitFor();
    await page.screenshot({ path: join(artifacts, '08c-dashboard-record-view-dark-beside.png') });
    await checkDashboardLayout(view, 'beside the editor, in the dark theme');
    await page.locator('.tab', { hasText: `Nuggets: ${DATASET}` }).first().click();
    await runCommand(page, 'View: Toggle Maximize Editor Group');
    await until(async () => (await dashboardLayout(view)).width, (w) => w > 1000, 10_000, 'the dashboard\'s width once maximized');
    await view.locator('#record-view[data-index="2"]').waitFor();
    await checkDashboardLayout(view, 'maximized in a 1400 px window, in the dark theme');
    await page.screenshot({ path: join(artifacts, '08c-dashboard-record-view-dark-full.png') });
    await page.locator('.tab', { hasText: `Nuggets: ${DATASET}` }).first().click();
    await runCommand(page, 'View: Toggle Maximize Editor Group');
    await chooseTheme('Light Modern');
    await until(background, (l) => l > 0.75, 15_000, 'the dashboard\'s background once the theme is light again');
    await page.locator(`.tab[data-resource-name="${DATASET}"]`).waitFor({ state: 'visible' });
  });

  await step('08d-dashboard-export', async () => {
    await view.locator('#export-deltas').click();
    await view.locator('#export-scores').click();
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await until(() => input.inputValue(), (v) => v.endsWith(`${workspace}/data.alpaca.scores.csv`), 10_000, 'the save dialog\'s path');
    await input.press('Enter');
    const toast = page.locator('.notification-toast', { hasText: 'exported 20 records' }).first();
    await toast.waitFor({ timeout: 20_000 });
    const lines = readFileSync(join(workspace, 'data.alpaca.scores.csv'), 'utf8').trimEnd().split('\n');
    assert.equal(lines[0], `index,id,golden_score,wins,mean_delta,ppl_cond,ppl_direct,ifd,${Array.from({ length: ANCHORS }, (_, k) => `delta_${k + 1}`).join(',')}`);
    assert.equal(lines.length, RECORDS + 1);
    for (const line of lines.slice(1)) {
      const cells = line.split(',');
      const want = expected[Number(cells[0])]!;
      assert.equal(Number(cells[2]), want.golden_score, `record ${cells[0]}'s exported golden score is the CLI's`);
      assert.equal(Number(cells[3]), want.wins);
      assert.ok(Math.abs(Number(cells[4]) - want.mean_delta) < 6e-4);
    }
  });

  await step('08e-dashboard-subset-at-threshold', async () => {
    await page.locator('.notification-toast .codicon-notifications-clear, .notification-toast .codicon-close').first().click().catch(() => undefined);
    const before = new Set(readdirSync(workspace));
    await view.locator('#with-scores').click();
    await view.locator('#write-subset').click();
    const written = await until(async () => readdirSync(workspace).filter((f) => !before.has(f) && /golden-min0\.5(-\d+)?\.json$/.test(f)), (f) => f.length === 1, 20_000, 'the subset at the threshold');
    await page.locator(`.tab.active[data-resource-name="${written[0]}"]`).waitFor();
    const subset = JSON.parse(readFileSync(join(workspace, written[0]!), 'utf8')) as { golden_score: number }[];
    assert.equal(subset.length, expected.filter((s) => s.golden_score >= 0.5).length);
    assert.ok(subset.every((r) => r.golden_score >= 0.5), 'each record carries its golden_score');
    await page.locator('.notification-toast', { hasText: /wrote \d+ of 20 records \(golden score ≥ 0\.50, with golden_score\)/ }).first().waitFor();
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.locator(`.tab[data-resource-name="${DATASET}"]`).click();
    await page.locator(`.tab.active[data-resource-name="${DATASET}"]`).waitFor();
  });

  await step('09-dashboard-follows-cleared-scores', async () => {
    // The open dashboard refreshes itself when the dataset's scores change (here: all removed).
    assert.ok((await injectedTexts(page, '◆')).length > 0, 'inline scores before Clear Scores');
    await runCommand(page, 'Nuggets: Clear Scores');
    await page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Clear Scores' }).click();
    await until(statusText, (t) => t.includes(`Nuggets 0/${RECORDS}`), 20_000, 'the status bar after Clear Scores');
    await until(() => view.locator('#summary').innerText().catch(() => ''), (t) => t === `0 of ${RECORDS} records scored`, 10_000, 'the dashboard summary after Clear Scores');
    const bars = (await view.locator('#histogram-chart figure').getAttribute('data-counts'))!.split(' ').map(Number);
    assert.equal(bars.reduce((a, b) => a + b, 0), 0);
    assert.equal(await view.locator('#threshold-count').innerText(), 'No records have a current golden score yet: run Nuggets: Score Dataset.');
    await until(() => injectedTexts(page, '◆'), (b) => b.length === 0, 10_000, 'inline scores after Clear Scores');
  });

  await step('10-broken-file-go-to-error', async () => {
    // A dataset with one missing comma, another dataset open before it: named with line and column, never the other file.
    const text = JSON.stringify(allRecords.slice(RECORDS, RECORDS + 4), null, 2) + '\n';
    const comma = text.indexOf('},\n  {', text.indexOf('},\n  {') + 1);
    writeFileSync(join(workspace, BROKEN), text.slice(0, comma + 1) + text.slice(comma + 2));
    const line = text.slice(0, comma).split('\n').length + 1;
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: BROKEN }).dblclick();
    await page.locator(`.tab.active[data-resource-name="${BROKEN}"]`).waitFor();
    await page.locator('.statusbar-item', { hasText: 'Nuggets: not a valid dataset' }).first().waitFor({ timeout: 30_000 });
    await runCommand(page, 'Nuggets: Score Dataset');
    const toast = page.locator('.notification-toast', { hasText: `${BROKEN}:${line}:3: malformed JSON` }).first();
    await toast.waitFor({ timeout: 20_000 });
    assert.doesNotMatch(await toast.innerText(), /already scored/);
    await page.waitForTimeout(500); // the toast finishes fading in
    await page.screenshot({ path: join(artifacts, '10-broken-file-message.png') });
    await toast.locator('.monaco-button', { hasText: 'Go to Error' }).click();
    const position = page.locator('.statusbar-item', { hasText: /^Ln \d+, Col \d+/ }).first();
    await until(() => position.innerText().catch(() => ''), (t) => t.startsWith(`Ln ${line}, Col 3`), 10_000, 'the cursor at the error');
  });

  await step('11-first-run-chooses-anchors', async () => {
    // Without an anchors setting, the first Score Dataset of a file chooses k-means anchors from it and says which.
    // The setting is blanked in the Settings editor's Remote tab (code-server's machine settings, which take
    // precedence over the User value this test started with).
    await runCommand(page, 'Preferences: Open User Settings');
    await page.locator('.settings-editor').waitFor();
    await page.keyboard.type('nuggets.anchors');
    await page.locator('.settings-editor .settings-tabs-widget .action-label', { hasText: 'Remote' }).first().click();
    const anchorsInput = page.locator('.settings-editor .monaco-list-row', { hasText: 'Alpaca file (JSON or JSON Lines) of anchor records' }).locator('input').first();
    await anchorsInput.fill(' ');
    await anchorsInput.press('Tab');
    const machineSettings = join(root, 'user-data', 'Machine', 'settings.json');
    await until(async () => { try { return (JSON.parse(readFileSync(machineSettings, 'utf8')) as Record<string, unknown>)['nuggets.anchors']; } catch { return undefined; } },
      (v) => v === ' ', 15_000, 'the blank anchors setting in the Remote settings');
    await page.waitForTimeout(2000); // the extension hears of the change and tells the server
    const rows = [...allRecords.slice(30, 36), { instruction: 'Say nothing at all.', input: '', output: '' }, allRecords[30]];
    writeFileSync(join(workspace, FIRST_RUN), JSON.stringify(rows, null, 2) + '\n');
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: FIRST_RUN }).dblclick();
    await page.locator(`.tab.active[data-resource-name="${FIRST_RUN}"]`).waitFor();
    // The status bar item is clicked the moment it appears: it is drawn from the file read ahead, before the
    // document itself has gone to the server (ReadAhead holds its didOpen back), and the Score Dataset it runs
    // must not overtake that document.
    const unscored = page.locator('.statusbar-item', { hasText: 'Nuggets 0/8' }).first();
    await unscored.waitFor({ timeout: 30_000 });
    await unscored.click();
    const toast = page.locator('.notification-toast', { hasText: 'chose 6 anchors by k-means from this file' }).first();
    await toast.waitFor({ timeout: 120_000 });
    assert.match(await toast.innerText(), /2 records skipped as anchors: index 6 \("Say nothing at all\.…"\) has an empty response; index 7 .* repeats index 0/);
    await until(statusText, (t) => t.includes('◆ Nuggets 8/8'), 30_000, 'the status bar after the first run');
  });

  await step('12-run-log', async () => {
    // Every run in the Nuggets log: model and fingerprint, anchors, records scored and skipped, duration; and the broken file.
    const log = await until(() => Promise.resolve(nuggetsLog(root)), (t) => t.includes(`[run] ${FIRST_RUN}: model`), 20_000, 'the run log');
    assert.match(log, new RegExp(`\\[run\\] ${DATASET.replace(/\./g, '\\.')}: model demo \\(fingerprint [^,)]+, bundled demo model\\); anchors anchors\\.json \\(nuggets\\.anchors setting\\), ${ANCHORS} anchors, set [0-9a-f]{16}; scored ${RECORDS} records, skipped 0 already scored; ${RECORDS}/${RECORDS} current; \\d+\\.\\d s`));
    assert.match(log, new RegExp(`\\[run\\] ${FIRST_RUN.replace(/\./g, '\\.')}: chose 6 anchors by k-means from the file; 2 records skipped as anchors`));
    assert.match(log, new RegExp(`\\[run\\] ${FIRST_RUN.replace(/\./g, '\\.')}: model demo .*; anchors k-means 6 of this file, 6 anchors, .*; scored 7 records, skipped 1 already scored; 8/8 current`));
    assert.match(log, new RegExp(`${BROKEN.replace(/\./g, '\\.')}:\\d+:3: malformed JSON`));
    await runCommand(page, 'Output: Show Output Channels...');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Nuggets' }).first().click();
    await page.locator('.part.panel .view-line', { hasText: '[run]' }).first().waitFor({ timeout: 15_000 });
  });

  const cspErrors = consoleLines.filter((l) => /Content Security Policy|Refused to/.test(l) && /webview\.js|dashboard\.css|nonce/.test(l));
  assert.deepEqual(cspErrors, [], 'the dashboard loads under its CSP');
});
