#!/usr/bin/env node
// Opening a 50,000-record Alpaca file with stored scores in a real VS Code (code-server in Chromium),
// as a user does: how long until the inline scores show. A measurement, not a test (not in npm test).
//
//  1. The packaged extension: nuggets-<version>-linux-x64.vsix from `npm run package`, reused when it is newer
//     than every source it is built from, installed into a fresh extensions folder (test/e2e/code-server.ts).
//  2. The 50,000-record file (in a fresh workspace folder) and the extension's score store, pre-filled
//     with SYNTHETIC scores under the exact key the server computes (demo model fingerprint, a
//     100-anchor file, template, maxAnchorTokens 200): prepareLargeDataset from tools/editor-latency.mjs,
//     written straight into the folder code-server gives the extension as its globalStorage,
//     <user-data-dir>/User/globalStorage/<publisher>.<name>. Settings point nuggets.anchors at that
//     anchor file. This measures opening and drawing, not scoring.
//  3. code-server 4.100.3 (.cache/code-server) on a free 127.0.0.1 port with a fresh user-data-dir,
//     Debian's Chromium driven by playwright-core; the workspace is trusted from its dialog, then the
//     file is opened from the Explorer with a click; the web workbench then asks before opening a file
//     this large ("The file is not displayed in the text editor because it is very large"), and the
//     script clicks "Open Anyway", as a user must. Times are taken inside the page, from the mousedown
//     (event.timeStamp) of that last click to (a) the first `◆ 0.xx · n/100 anchors` badge in the viewport
//     (decoration CSS ::after content), also given from the moment the editor shows the text (a'), since
//     the time before that is VS Code's alone; (c) the status bar's "Nuggets 50000/50000"; and (b) the
//     extension's own "[decorations] N badges ... built and set in X ms[, Y ms after the document reached
//     the extension]" line, read from the Nuggets channel of the Output panel (and, as a check, from its
//     log file). Then Ctrl+End: the last records' badges must be in view too (every record is decorated,
//     not just the first screen). The extension is already running when the file is first opened (it
//     activates on onStartupFinished), so the opening tab reaches it and the server reads the saved file
//     ahead of the document (protocol.fileOpening). Then the editor is closed and the file opened again.
//  Screenshots and the code-server log go to .test-artifacts/editor-open/.
//
//   node tools/editor-open-vscode.mjs [--records 50000] [--reopens 1] [--repackage] [--keep]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import { prepareLargeDataset } from './editor-latency.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '50000' },
    reopens: { type: 'string', default: '1' },
    repackage: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'timeout-s': { type: 'string', default: '300' },
  },
});
const RECORDS = Number(values.records);
const TIMEOUT_MS = Number(values['timeout-s']) * 1000;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const artifacts = join(root, '.test-artifacts', 'editor-open');
mkdirSync(artifacts, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const started = performance.now();
const secs = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;

// The e2e tests' code-server and Chromium helpers, bundled once for this script (one implementation).
const libPath = join(root, 'out', 'editor-open-lib.cjs');
await esbuild.build({
  stdin: {
    contents: `
      export { startCodeServer, installExtension, injectedTexts, runCommand, CODE_SERVER } from './test/e2e/code-server';
      export { CHROMIUM, CHROMIUM_ARGS } from './test/webview/browser';`,
    resolveDir: root, loader: 'ts',
  },
  bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: libPath, logLevel: 'warning', external: ['playwright-core'],
});
const e2e = createRequire(import.meta.url)(libPath);

// 1. The .vsix.
const vsix = join(root, `${pkg.name}-${pkg.version}-linux-x64.vsix`);
function newestSource() {
  let newest = 0;
  const visit = (path) => {
    if (!existsSync(path)) return;
    const s = statSync(path);
    if (s.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry));
    else newest = Math.max(newest, s.mtimeMs);
  };
  for (const p of ['extension', 'server', 'webview', 'media', join('models', 'demo'), 'package.json', 'package-lock.json',
    '.vscodeignore', 'tsconfig.json', join('tools', 'build.mjs'), join('tools', 'package.mjs')]) visit(join(root, p));
  return newest;
}
if (values.repackage || !existsSync(vsix) || statSync(vsix).mtimeMs < newestSource()) {
  console.log(`packaging (npm run package -- --target linux-x64): ${existsSync(vsix) ? 'the .vsix is older than its sources' : 'no .vsix yet'}`);
  execFileSync('npm', ['run', 'package', '--', '--target', 'linux-x64'], { cwd: root, stdio: 'inherit', timeout: 300_000 });
} else {
  console.log(`reusing ${vsix} (newer than its sources)`);
}
const work = mkdtempSync(join(tmpdir(), 'nuggets-editor-open-'));
const extensionsDir = join(work, 'extensions');
const installed = e2e.installExtension(vsix, extensionsDir);
if (!/was successfully installed/.test(installed)) throw new Error(`install failed: ${installed}`);
console.log(`installed ${pkg.publisher}.${pkg.name} into a fresh extensions folder (${secs()})`);

// 2. The file and the extension's pre-filled store.
const workspace = join(work, 'workspace');
mkdirSync(workspace);
const fileName = 'alpaca-50k.json';
const datasetPath = join(workspace, fileName);
const anchorsPath = join(work, 'anchors.json');
// code-server's user data is <root>/user-data (startCodeServer); VS Code names an extension's global
// storage folder by its identifier, lower-cased.
const storagePath = join(work, 'user-data', 'User', 'globalStorage', `${pkg.publisher}.${pkg.name}`.toLowerCase());
const { text } = await prepareLargeDataset({ count: RECORDS, datasetPath, anchorsPath, storagePath });
const lines = text.split('\n').length;

// 3. code-server and Chromium.
const codeServerVersion = JSON.parse(readFileSync(join(dirname(e2e.CODE_SERVER), '..', '..', 'package.json'), 'utf8')).version;
const server = await e2e.startCodeServer({
  root: work, extensionsDir, folder: workspace, log: join(artifacts, `${stamp}-code-server.log`),
  settings: { 'nuggets.anchors': anchorsPath },
});
const browser = await chromium.launch({ executablePath: e2e.CHROMIUM, args: e2e.CHROMIUM_ARGS, timeout: 30_000 });
const chromiumVersion = browser.version();
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
page.setDefaultTimeout(30_000);
page.on('dialog', (d) => void d.dismiss());
const rows = [];
const row = (what, value, note = '') => {
  rows.push([what, value, note]);
  console.log(`  ${what}: ${value}${note ? `  (${note})` : ''}`);
};

try {
  await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}`, { timeout: 60_000 });
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  await page.getByRole('button', { name: 'Yes, I trust the authors' }).click({ timeout: 30_000 });
  const explorerRow = page.locator('.explorer-folders-view .monaco-list-row', { hasText: fileName });
  await explorerRow.waitFor();
  await page.waitForTimeout(2000); // let the workbench settle after the trust dialog
  console.log(`code-server ${codeServerVersion} at ${server.url}, workbench up, folder trusted (${secs()})`);

  /**
   * Clicks the file in the Explorer and watches the page until the badge and the full status bar
   * count show; times in ms from the click's mousedown, taken in the page.
   */
  async function openAndTime(label) {
    const watch = page.evaluate(({ total, timeoutMs }) => new Promise((resolve) => {
      const badge = /^◆ \d\.\d\d · \d+\/\d+ anchors$/;
      const marks = {};
      let t0;
      // The user's last click before the text shows: the Explorer row, or "Open Anyway" on VS Code's
      // large-file confirmation (the web workbench asks before opening files of more than 10 MB).
      const onDown = (e) => (marks.text === undefined ? (t0 = e.timeStamp) : removeEventListener('mousedown', onDown, true));
      addEventListener('mousedown', onDown, true);
      const check = () => {
        if (t0 !== undefined) {
          const now = performance.now() - t0;
          const editor = document.querySelector('.part.editor .editor-group-container.active .monaco-editor');
          if (marks.text === undefined && editor?.querySelector('.view-line')?.textContent.includes('[')) marks.text = now;
          if (marks.badge === undefined && editor) {
            const view = editor.getBoundingClientRect();
            // Only spans with more than a token colour class can carry a decoration (cheap to poll).
            for (const span of editor.querySelectorAll('.view-lines .view-line span[class]')) {
              if (/^mtk\d+$/.test(span.className)) continue;
              const content = getComputedStyle(span, '::after').content;
              if (!content || content === 'none' || content === 'normal') continue;
              const text = content.replace(/^"|"$/g, '');
              const top = span.getBoundingClientRect().top;
              if (badge.test(text) && top >= view.top && top < view.bottom) {
                marks.badge = now;
                marks.badgeText = text;
                break;
              }
            }
          }
          if (marks.status === undefined) {
            for (const item of document.querySelectorAll('.statusbar-item')) {
              const m = /Nuggets (\d+)\/(\d+)/.exec(item.textContent ?? '');
              if (m && Number(m[1]) === total && Number(m[2]) === total) {
                marks.status = now;
                marks.statusText = item.textContent.trim();
              }
            }
          }
          if ((marks.badge !== undefined && marks.status !== undefined) || now > timeoutMs) {
            if (editor) {
              // Badges drawn in view by then, for the record.
              marks.visibleBadges = [...editor.querySelectorAll('.view-lines .view-line span')]
                .filter((s) => badge.test(getComputedStyle(s, '::after').content.replace(/^"|"$/g, ''))).length;
            }
            resolve(marks);
            return;
          }
        }
        setTimeout(check, 16);
      };
      check();
    }), { total: RECORDS, timeoutMs: TIMEOUT_MS });
    await page.waitForTimeout(100); // the watcher is installed
    await explorerRow.click();
    const openAnyway = page.locator('.part.editor .monaco-button', { hasText: 'Open Anyway' });
    const shown = await Promise.race([
      openAnyway.waitFor({ timeout: 60_000 }).then(() => 'confirmation'),
      page.locator('.part.editor .editor-group-container.active .view-line').first().waitFor({ timeout: 60_000 }).then(() => 'text'),
    ]).catch(() => 'neither');
    let confirmation = '';
    if (shown === 'confirmation') {
      confirmation = (await page.locator('.part.editor', { hasText: 'very large' }).first().innerText().catch(() => '')).split('\n').find((l) => /very large/.test(l)) ?? 'large-file confirmation';
      await page.waitForTimeout(300);
      await openAnyway.click();
    }
    const marks = await watch;
    if (marks.badge === undefined || marks.status === undefined) {
      await page.screenshot({ path: join(artifacts, `${stamp}-${label.replace(/ /g, "-")}-failed.png`) });
      throw new Error(`${label}: after ${TIMEOUT_MS / 1000} s: ${JSON.stringify(marks)}`);
    }
    await page.screenshot({ path: join(artifacts, `${stamp}-${label.replace(/ /g, "-")}-editor.png`) });
    // The real records hold U+2028/U+2029: VS Code asks, in a modal dialog, to remove these "unusual
    // line terminators". Ignore, as a user keeping the data would (the dialog blocks the workbench).
    const ignore = page.locator('.monaco-dialog-box .monaco-button', { hasText: /^Ignore$/ });
    if (await ignore.waitFor({ timeout: 5000 }).then(() => true, () => false)) {
      const title = await page.locator('.monaco-dialog-box .dialog-message-text').first().innerText().catch(() => '');
      console.log(`  ${label}: dismissed a modal dialog "${title.trim()}" with Ignore`);
      await ignore.click();
    }
    if (confirmation) console.log(`  ${label}: VS Code asked first: "${confirmation.trim()}"; clicked Open Anyway, times below are from that click`);
    const from = confirmation ? 'Open Anyway' : 'click';
    row(`${label}: ${from} -> editor shows the file's text`, `${marks.text?.toFixed(0)} ms`, 'VS Code alone');
    row(`${label}: (a) ${from} -> first scored badge in view`, `${marks.badge.toFixed(0)} ms`, `"${marks.badgeText}", ${marks.visibleBadges} badges in view when (a) and (c) were both seen`);
    row(`${label}: (a') editor shows the text -> first scored badge in view`, `${(marks.badge - marks.text).toFixed(0)} ms`);
    row(`${label}: (c) ${from} -> status bar "${marks.statusText}"`, `${marks.status.toFixed(0)} ms`);
    // Every record has its badge, not just those in view: the last records' badges at the end of the file.
    await page.locator('.part.editor .editor-group-container.active .monaco-editor .view-lines').click();
    await page.keyboard.press('Control+End');
    await page.waitForTimeout(1000);
    const atEnd = (await e2e.injectedTexts(page, '◆ ')).length;
    const lastLine = await page.locator('.part.editor .editor-group-container.active .monaco-editor .line-numbers').evaluateAll(
      (els) => Math.max(...els.map((e) => Number(e.textContent) || 0)));
    row(`${label}: badges in view at the end of the file (Ctrl+End)`, String(atEnd), `last line number in view ${lastLine} of ${lines}`);
    if (atEnd === 0) throw new Error(`${label}: no badge at the end of the file`);
    await page.keyboard.press('Control+Home'); // the next open restores this view: the same first screen each time
    return marks;
  }

  // The Nuggets channel as a log file (exthost*/output_logging_*/N-Nuggets.log): its [decorations]
  // lines, to tell which open logged which render (the Output panel shows the same lines).
  const decorationLine = /\[decorations\] (\d+) badges for \S+ built and set in ([\d.]+) ms(?:, (\d+) ms after the document reached the extension \(scores ([^)]+)\))?/g;
  const logFiles = () => {
    const found = [];
    const find = (dir) => {
      for (const e of existsSync(dir) ? readdirSync(dir, { withFileTypes: true }) : []) {
        if (e.isDirectory()) find(join(dir, e.name));
        else if (/Nuggets\.log$/.test(e.name)) found.push(join(dir, e.name));
      }
    };
    find(join(work, 'user-data', 'logs'));
    return found;
  };
  const logged = () => [...logFiles().map((f) => readFileSync(f, 'utf8')).join('\n').matchAll(decorationLine)];
  let seen = 0;
  const renders = async (label) => {
    await page.waitForTimeout(1500); // the log file is written shortly after the line
    const all = logged();
    const mine = all.slice(seen);
    seen = all.length;
    row(`${label}: (b) extension's log, "[decorations] ... built and set in X ms"`, mine.map((m) => `${m[2]} ms`).join(', ') || 'none',
      `${mine.length} render(s) of ${mine.map((m) => m[1]).join(', ')} badges, from the channel's log file`);
    const first = mine.find((m) => m[3] !== undefined);
    if (first) row(`${label}: (b') the document reaches the extension -> its badges are set`, `${first[3]} ms`, `first render; scores ${first[4]}`);
  };

  await openAndTime('first open');
  await renders('first open');
  for (let i = 1; i <= Number(values.reopens); i++) {
    await e2e.runCommand(page, 'View: Close All Editors');
    await page.locator('.part.editor .tab').first().waitFor({ state: 'detached', timeout: 10_000 });
    await page.waitForTimeout(2000);
    await openAndTime(`reopen ${i}`);
    await renders(`reopen ${i}`);
  }

  // (b) The extension's own timing, from the Nuggets channel of the Output panel.
  await e2e.runCommand(page, 'Output: Show Output Channels...');
  const channel = page.locator('.quick-input-widget .monaco-list-row', { hasText: /^Nuggets$/ }).first();
  await channel.waitFor({ state: 'visible' });
  await channel.click();
  const readPanel = () => page.locator('.part.panel .view-line').evaluateAll((els) => els
    .map((e) => ({ top: e.getBoundingClientRect().top, text: e.textContent ?? '' })).sort((a, b) => a.top - b.top)
    .map((l) => l.text).join('').replace(/\u00a0/g, ' '));
  const deadline = Date.now() + 15_000;
  let panel = await readPanel();
  while ([...panel.matchAll(decorationLine)].length === 0 && Date.now() < deadline) {
    await page.waitForTimeout(250);
    panel = await readPanel();
  }
  await page.screenshot({ path: join(artifacts, `${stamp}-output-panel.png`) });
  // The panel shows the channel's last lines (wrapped lines joined back): as many as fit.
  const fromPanel = [...panel.matchAll(decorationLine)];
  row('(b) read from the Output panel, Nuggets channel', fromPanel.map((m) => `${m[2]} ms`).join(', ') || 'none',
    `the last ${fromPanel.length} of the ${seen} [decorations] lines, as the panel shows them`);
} finally {
  await browser.close().catch(() => undefined);
  await server.stop();
  if (!values.keep) rmSync(work, { recursive: true, force: true });
}

const cpu = cpus();
console.log(`\n| measurement (${RECORDS} records, ${(text.length / 1e6).toFixed(1)} MB, ${lines} lines; store pre-filled with synthetic scores) | value | notes |\n|---|---|---|`);
for (const [what, value, note] of rows) console.log(`| ${what} | ${value} | ${note} |`);
console.log(`\nmachine: ${cpu.length} cores (${cpu[0]?.model ?? '?'}), shared; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}; `
  + `${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; code-server ${codeServerVersion}; Chromium ${chromiumVersion} (headless, --disable-gpu), viewport 1400x900`);
console.log(`screenshots and the code-server log: ${artifacts}/${stamp}-*`);
process.exit(0);
