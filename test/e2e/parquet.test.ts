/**
 * End to end, in a real VS Code: the packaged .vsix in code-server, a trusted folder holding a Parquet file of
 * eight real GSM8K records (/work/shared/data, written here by hyparquet-writer in three row groups, with a
 * `source` column no record format reads). The file opens in the table editor, its rows in the table; the
 * table's Score Dataset button scores it (the status bar follows the table), and each row's golden score is the
 * one the CLI computes for the same file and anchors; Select Golden Subset from the palette writes a Parquet subset
 * that holds the rows `nuggets select` chooses, with every column, and opens it in the table editor, whose Show
 * Dashboard shows its scores, current. A screenshot of each step goes to .test-artifacts/e2e/parquet/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { repoRoot } from '../helpers';
import { E2eSession, contributionsLoaded, e2eFolders, installPackagedExtension, nuggetsStatus, runCommand, startCodeServer, until, type CodeServer } from './code-server';

const RECORDS = 8;
const ANCHORS = 4;
const DATASET = 'gsm8k.parquet';
const COLUMNS = ['instruction', 'input', 'output', 'source'];
const artifacts = join(repoRoot, '.test-artifacts', 'e2e', 'parquet');

interface CliScore { index: number; golden_score: number; wins: number; anchors: number }
type Row = Record<string, string>;

let root: string;
let workspace: string;
let records: Row[];
let expected: CliScore[];
let server: CodeServer | undefined;
let page: Page;
const session = new E2eSession(artifacts);
const step = (name: string, run: () => Promise<void>): Promise<void> => session.step(name, run);

const cli = (...args: string[]): string => execFileSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });

/** Every row of a Parquet file, as plain objects. */
async function readParquet(path: string): Promise<Row[]> {
  const { parquetReadObjects } = await import('hyparquet');
  return (await parquetReadObjects({ file: new Uint8Array(readFileSync(path)).buffer })) as Row[];
}

before(async () => {
  ({ root, workspace } = e2eFolders(artifacts, 'nuggets-e2e-parquet-'));
  const gsm8k = JSON.parse(readFileSync('/work/shared/data/gsm8k-train.alpaca.json', 'utf8')) as { instruction: string; input: string; output: string }[];
  records = gsm8k.slice(0, RECORDS).map((r, k) => ({ instruction: r.instruction, input: r.input, output: r.output, source: `gsm8k-train#${k}` }));
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  writeFileSync(join(workspace, DATASET), Buffer.from(parquetWriteBuffer({
    columnData: COLUMNS.map((name) => ({ name, data: records.map((r) => r[name]!), type: 'STRING' as const })),
    rowGroupSize: 3,
  })));
  // Anchors from the CLI, outside the folder; the CLI's scores of the same file are what the table must show.
  writeFileSync(join(root, 'gsm8k.json'), JSON.stringify(records));
  const anchors = join(root, 'anchors.json');
  cli('anchors', join(root, 'gsm8k.json'), '--random', String(ANCHORS), '--seed', '3', '--out', anchors);
  cli('score', join(workspace, DATASET), '--anchors', anchors, '--out', join(root, 'scores.jsonl'));
  expected = readFileSync(join(root, 'scores.jsonl'), 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as CliScore);
  assert.equal(expected.length, RECORDS);
  cli('select', join(workspace, DATASET), '--scores', join(root, 'scores.jsonl'), '--top-percent', '25', '--out', join(root, 'golden-cli.parquet'));

  const extensionsDir = installPackagedExtension(root);
  server = await startCodeServer({
    root, extensionsDir, folder: workspace, log: join(artifacts, 'code-server.log'),
    settings: { 'nuggets.anchors': anchors, 'editor.minimap.enabled': false },
  });
  page = await session.launch(server);
}, { timeout: 300_000 });

after(async () => {
  await session.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('a Parquet file in VS Code: the table shows its rows, Score Dataset gives the CLI\'s golden scores, Select Golden Subset writes a Parquet subset with every column, the dashboard shows its scores', { timeout: 240_000 }, async () => {
  // The table editor's page: the webview's inner frame (one webview is shown at a time here, until the dashboard opens beside the table at the end).
  const table = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');

  await step('01-open-table', async () => {
    await page.goto(`${server!.url}/?folder=${encodeURIComponent(workspace)}`, { timeout: 60_000 });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Yes, I trust the authors' }).click({ timeout: 30_000 });
    // A file opened before the workbench has read the extension's contributions gets the text editor.
    await contributionsLoaded(page);
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: DATASET }).dblclick();
    await page.locator(`.tab.active[data-resource-name="${DATASET}"]`).waitFor();
    await table.locator('#records-table tr.record').first().waitFor({ timeout: 60_000 });
    assert.equal(await table.locator('#dataset').innerText(), DATASET);
    assert.match(await table.locator('#table-facts').innerText(), new RegExp(`^${RECORDS} rows · 3 row groups · [\\d.]+ KB · 4 columns: instruction, input, output, source$`));
    assert.equal(await table.locator('#records-table tr.record').count(), RECORDS);
    const instructions = await table.locator('#records-table tr.record td[data-column="instruction"]').allInnerTexts();
    assert.deepEqual(instructions.map((t) => t.slice(0, 40)), records.map((r) => r.instruction.replace(/\s+/g, ' ').slice(0, 40)), 'the rows in file order');
    assert.deepEqual(await table.locator('#records-table tr.record td[data-column="goldenScore"]').allInnerTexts(), new Array(RECORDS).fill('—'), 'nothing scored yet');
  });

  await step('02-scored-in-table', async () => {
    await table.locator('#score-dataset').click();
    // The status bar follows the table, which is no text editor.
    await until(() => nuggetsStatus(page), (t) => t.includes(`◆ Nuggets ${RECORDS}/${RECORDS}`), 120_000, 'the status bar after Score Dataset');
    const cell = (index: number, column: string): Promise<string> => table.locator(`#records-table tr.record[data-index="${index}"] td[data-column="${column}"]`).innerText();
    await until(() => cell(RECORDS - 1, 'goldenScore'), (t) => t !== '—', 15_000, 'the last row\'s score in the table');
    for (const want of expected) {
      assert.equal(await cell(want.index, 'goldenScore'), want.golden_score.toFixed(2), `row ${want.index}'s golden score is the CLI's`);
      assert.equal(await cell(want.index, 'wins'), `${want.wins}/${want.anchors}`, `row ${want.index}'s wins are the CLI's`);
    }
    // The row index is read: the table sorts, best first.
    await until(async () => (await table.locator('#records-table th[data-sort="goldenScore"] button').isDisabled()), (d) => !d, 15_000, 'sorting once the row index is read');
    await table.locator('#records-table th[data-sort="goldenScore"] button').click();
    const best = Math.max(...expected.map((s) => s.golden_score));
    await until(() => table.locator('#records-table tr.record td[data-column="goldenScore"]').first().innerText(), (t) => t === best.toFixed(2), 10_000, 'the best row first');
  });

  await step('03-parquet-subset', async () => {
    // From the command palette this time: the command acts on the active table editor.
    await runCommand(page, 'Nuggets: Select Golden Subset');
    const pick = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Top 25%' }).first();
    await pick.waitFor({ state: 'visible', timeout: 30_000 });
    assert.match(await pick.innerText(), new RegExp(`keeps 2 of ${RECORDS} \\(25\\.0%\\)`));
    await pick.click();
    // The subset and then its card are each written atomically: wait for both.
    const finished = (f: string[]): boolean => f.length === 1 && readdirSync(workspace).some((g) => g.startsWith(f[0]!) && g.endsWith('.card.json'));
    const written = await until(async () => readdirSync(workspace).filter((f) => f !== DATASET && f.endsWith('.parquet')), finished, 30_000, 'the Parquet subset beside its card');
    const name = written[0]!;
    assert.match(name, /^gsm8k\.golden-top25pct\.parquet$/);
    const subset = await readParquet(join(workspace, name));
    const cliSubset = await readParquet(join(root, 'golden-cli.parquet'));
    assert.equal(subset.length, 2);
    assert.deepEqual(subset, cliSubset, 'the rows `nuggets select --top-percent 25 --out x.parquet` chooses');
    for (const row of subset) assert.deepEqual(Object.keys(row), COLUMNS, 'every column kept, the source column too');
    assert.ok(subset.every((row) => records.some((r) => COLUMNS.every((c) => r[c] === row[c]))), 'each row as it is in the file');
    assert.equal(existsSync(join(workspace, 'gsm8k.golden-top25pct.json')), false, 'no JSON subset written');
    // It opens in the table editor.
    await page.locator(`.tab.active[data-resource-name="${name}"]`).waitFor({ timeout: 20_000 });
    await until(() => table.locator('#records-table tr.record').count(), (n) => n === 2, 30_000, 'the subset\'s rows in its table');
    assert.equal(await table.locator('#dataset').innerText(), name);
  });

  await step('04-dashboard-of-parquet', async () => {
    // The subset's table's Show Dashboard: the dashboard reads the Parquet file whole and shows its scores, current.
    await table.locator('#show-dashboard').click();
    const summary = async (): Promise<string> => {
      for (const frame of page.frames()) {
        const found = frame.locator('#summary');
        if (await found.count().catch(() => 0)) return found.innerText();
      }
      return '';
    };
    await until(summary, (t) => t.startsWith('2 of 2 records scored'), 30_000, 'the dashboard\'s summary of the Parquet subset');
  });
});
