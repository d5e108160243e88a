/** Paths shared by the tests: the real datasets beside the checkout, the bundled demo model, scratch folders. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The checkout's root, found upward from wherever the bundled test file runs. */
export const repoRoot = ((): string => {
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'server'))) return dir;
  }
  throw new Error(`no checkout above ${__dirname}`);
})();

export function sharedData(file: string): string {
  const path = join(repoRoot, '..', 'shared', 'data', file);
  if (!existsSync(path)) throw new Error(`test data not found: ${path} (the real datasets live in ../shared/data)`);
  return path;
}

export const demoModel = join(repoRoot, 'models', 'demo');

const scratchDirs: string[] = [];
process.once('exit', () => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under the system's temp directory, removed when the test process exits. */
export function scratchDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `nuggets-${name}-`));
  scratchDirs.push(dir);
  return dir;
}
