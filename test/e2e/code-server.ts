/**
 * A real VS Code for the end-to-end tests: code-server (tools/setup-e2e.sh installs it into
 * .cache/code-server) on a free 127.0.0.1 port, with its own user data, extensions and config, so that
 * nothing of the machine's own VS Code or code-server settings leaks in; the browser that drives it
 * (Debian's Chromium), each step with its screenshot, and the teardown, which every e2e file shares
 * (E2eSession); and the few ways a test drives its workbench (the command palette, text the editor
 * draws with CSS, the Nuggets log).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoRoot } from '../helpers';
import { CHROMIUM, CHROMIUM_ARGS } from '../webview/browser';

export const CODE_SERVER = join(repoRoot, '.cache', 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');

export function requireCodeServer(): void {
  if (!existsSync(CODE_SERVER)) throw new Error(`code-server is not installed at ${CODE_SERVER}: run bash tools/setup.sh (it calls tools/setup-e2e.sh)`);
}

/** A fresh e2e run's folders: `artifacts` emptied for its screenshots, and a new scratch root (named from `prefix`) holding an empty workspace folder. */
export function e2eFolders(artifacts: string, prefix: string): { root: string; workspace: string } {
  requireCodeServer();
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  const root = mkdtempSync(join(tmpdir(), prefix));
  const workspace = join(root, 'workspace');
  mkdirSync(workspace);
  return { root, workspace };
}

/** The .vsix a user installs, packaged into `root` and installed into root/extensions: that folder, for startCodeServer. */
export function installPackagedExtension(root: string): string {
  const vsix = join(root, 'nuggets.vsix');
  packageExtension(vsix);
  const extensionsDir = join(root, 'extensions');
  const printed = installExtension(vsix, extensionsDir);
  if (!/was successfully installed/.test(printed)) throw new Error(`code-server did not install ${vsix}: ${printed}`);
  return extensionsDir;
}

/** `npm run package` into `out`: the .vsix a user installs. */
export function packageExtension(out: string): void {
  execFileSync(process.execPath, [join(repoRoot, 'tools', 'package.mjs'), '--target', 'linux-x64', '--out', out], { cwd: repoRoot, stdio: 'pipe', timeout: 120_000 });
}

/** `code-server --install-extension`; returns what it printed. */
export function installExtension(vsix: string, extensionsDir: string): string {
  requireCodeServer();
  return execFileSync(process.execPath, [CODE_SERVER, '--install-extension', vsix, '--extensions-dir', extensionsDir], { encoding: 'utf8', timeout: 120_000 });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface CodeServer {
  url: string;
  stop(): Promise<void>;
}

/** User settings of every run: no telemetry, update checks, welcome pages or tips. */
const QUIET_SETTINGS = {
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'workbench.enableExperiments': false,
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'json.schemaDownload.enable': false,
};

export async function startCodeServer(options: {
  /** A fresh folder: user data goes to root/user-data. */
  root: string;
  extensionsDir: string;
  folder: string;
  log: string;
  settings: Record<string, unknown>;
  /** Variables added to code-server's environment (and so its extension host's and the language server's). */
  env?: Record<string, string>;
}): Promise<CodeServer> {
  requireCodeServer();
  const userDataDir = join(options.root, 'user-data');
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...QUIET_SETTINGS, ...options.settings }, null, 2));
  const config = join(options.root, 'code-server.yaml');
  writeFileSync(config, 'auth: none\n');
  const port = await freePort();
  const log = openSync(options.log, 'a');
  const child: ChildProcess = spawn(process.execPath, [
    CODE_SERVER, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--config', config,
    '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override', '--ignore-last-opened',
    '--user-data-dir', userDataDir, '--extensions-dir', options.extensionsDir,
  ], { stdio: ['ignore', log, log], detached: true, env: { ...process.env, ...options.env } });
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Its process group: code-server forks the extension host, the language server and the scoring worker.
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      child.kill('SIGTERM');
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited with status ${child.exitCode}; see ${options.log}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`code-server did not answer on ${url} within 30 s; see ${options.log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, stop };
}

/**
 * Runs a command from the command palette (F1), as a user does. Just after a webview tab is clicked, the
 * webview may take the focus back a moment later, which closes the palette (or swallows F1 before it reaches
 * the workbench): the palette is then asked for again, from the workbench itself, up to three times.
 */
export async function runCommand(page: Page, title: string): Promise<void> {
  const input = page.locator('.quick-input-widget input.input');
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
  for (let attempt = 1; ; attempt++) {
    const last = attempt >= 3;
    try {
      if (attempt > 1) {
        await page.waitForTimeout(500); // let a webview's late focus land first
        await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { blur?(): void } | null } }).document.activeElement?.blur?.());
      }
      await page.keyboard.press('F1');
      await input.waitFor({ state: 'visible', timeout: last ? 10_000 : 4_000 });
      await input.fill(`>${title}`, { timeout: last ? 10_000 : 4_000 });
      await row.waitFor({ state: 'visible', timeout: 10_000 });
      await row.click({ timeout: last ? 10_000 : 4_000 });
      return;
    } catch (err) {
      if (last) {
        const hidden = !(await input.isVisible());
        throw hidden ? err : new Error(`the command palette has no "${title}"`);
      }
    }
  }
}

/**
 * Waits until the workbench knows the extension's contributions: its commands are in the palette. Until then a
 * file opened takes the editor VS Code had without them (a .parquet file the text editor's "binary" notice, not
 * the extension's table), as it would for a user who opens one in the first moments of a new window.
 */
export async function contributionsLoaded(page: Page, command = 'Nuggets: Score Dataset'): Promise<void> {
  const input = page.locator('.quick-input-widget input.input');
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: command }).first();
  await until(async () => {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 4_000 }).catch(() => undefined);
    await input.fill(`>${command}`, { timeout: 4_000 }).catch(() => undefined);
    const listed = await row.waitFor({ state: 'visible', timeout: 3_000 }).then(() => true, () => false);
    await page.keyboard.press('Escape');
    return listed;
  }, (listed) => listed, 60_000, `"${command}" in the command palette`);
}

/**
 * Text the visible editors draw with CSS (decorations: `::after`/`::before` content), starting with
 * `prefix`, with the vertical position of its line, top to bottom.
 */
export async function injectedTexts(page: Page, prefix: string): Promise<{ text: string; top: number }[]> {
  return page.evaluate((prefix) => {
    const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<unknown> } }).document;
    const style = (globalThis as unknown as { getComputedStyle(e: unknown, p: string): { content: string } }).getComputedStyle;
    const found: { text: string; top: number }[] = [];
    for (const span of Array.from(doc.querySelectorAll('.part.editor .editor-group-container .view-lines .view-line span')) as {
      closest(s: string): { getBoundingClientRect(): { top: number } } | null;
    }[]) {
      for (const pseudo of ['::after', '::before']) {
        const content = style(span, pseudo).content;
        if (!content || content === 'none' || content === 'normal') continue;
        const text = content.replace(/^"|"$/g, '');
        if (text.startsWith(prefix)) found.push({ text, top: span.closest('.view-line')!.getBoundingClientRect().top });
      }
    }
    return found.sort((a, b) => a.top - b.top);
  }, prefix);
}

/** Polls `read` until `ok` holds, for at most `ms`; returns the last value read. */
export async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!ok(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
    value = await read();
  }
  return value;
}

/**
 * The Nuggets log channel's files in the logs folder of code-server's user data under `root`, oldest first, as one
 * text ('' until one exists): each window (a reload is a new one) writes its own.
 */
export function nuggetsLog(root: string): string {
  const files: string[] = [];
  const find = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) find(path);
      else if (entry.name === 'Nuggets.log') files.push(path);
    }
  };
  const logs = join(root, 'user-data', 'logs');
  if (existsSync(logs)) find(logs);
  return files.map((path) => ({ path, written: statSync(path).mtimeMs })).sort((a, b) => a.written - b.written)
    .map(({ path }) => readFileSync(path, 'utf8')).join('');
}

/**
 * One e2e file's browser on one code-server: Chromium launched with a 1400×900 page, its console kept; steps that
 * each leave a screenshot in `artifacts` (and, when one fails, a `-failed` screenshot, the console, the
 * notifications shown and what `describe` adds, in the error); and the teardown.
 */
export class E2eSession {
  page!: Page;
  server: CodeServer | undefined;
  private browser: Browser | undefined;
  readonly consoleLines: string[] = [];

  /** `describe`: what else a failed step's message should say (a log's tail, the requests a stand-in received). */
  constructor(readonly artifacts: string, private readonly describe: () => string = () => '') {}

  /** Launches the browser for `server` (the page is not navigated yet). */
  async launch(server: CodeServer): Promise<Page> {
    this.server = server;
    this.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
    this.page = await this.browser.newPage({ viewport: { width: 1400, height: 900 } });
    this.page.setDefaultTimeout(20_000);
    this.page.on('console', (m) => this.consoleLines.push(`[${m.type()}] ${m.text()}`));
    this.page.on('dialog', (d) => void d.dismiss());
    return this.page;
  }

  /** Runs one step; then saves `<name>.png`, or on failure `<name>-failed.png`, and says which step failed. */
  async step(name: string, run: () => Promise<void>): Promise<void> {
    const page = this.page;
    try {
      await run();
      await page.screenshot({ path: join(this.artifacts, `${name}.png`) });
    } catch (err) {
      await page?.screenshot({ path: join(this.artifacts, `${name}-failed.png`) }).catch(() => undefined);
      writeFileSync(join(this.artifacts, 'console.log'), this.consoleLines.join('\n'));
      // What the screenshot shows, in words, for a run whose artifacts cannot be seen (CI prints only this message).
      const toasts = await page?.locator('.notification-toast').allInnerTexts().catch(() => []) ?? [];
      let more: string;
      try {
        more = this.describe();
      } catch (describeErr) {
        more = `(${(describeErr as Error).message})`;
      }
      throw new Error(`e2e step ${name} failed (screenshot ${relative(repoRoot, join(this.artifacts, `${name}-failed.png`))}): ${(err as Error).message}\n`
        + `notifications shown: ${JSON.stringify(toasts)}${more ? `\n${more}` : ''}`, { cause: err });
    }
  }

  /** Saves the console, closes the browser and stops code-server (its whole process group). */
  async close(): Promise<void> {
    if (this.consoleLines.length > 0) writeFileSync(join(this.artifacts, 'console.log'), this.consoleLines.join('\n'));
    await this.browser?.close();
    await this.server?.stop();
  }
}

/** The Nuggets status bar item's text ("◆ Nuggets 10/10 …"); '' while it is not shown. */
export function nuggetsStatus(page: Page): Promise<string> {
  return page.locator('.statusbar-item', { hasText: /Nuggets \d+\/\d+/ }).first().innerText({ timeout: 2000 }).catch(() => '');
}
