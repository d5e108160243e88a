/** Writing outputs without ever touching the user's inputs, and without half-written files. */
import type { Hash } from 'node:crypto';
import { closeSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { posix, resolve, win32 } from 'node:path';
import { fileError, NuggetsError } from './errors';

/**
 * The engine's cache root: hub downloads (hub/) and derived graphs (graphs/), in the operating system's
 * conventional place for caches. $NUGGETS_CACHE wins everywhere; then Windows: %LOCALAPPDATA%\nuggets\Cache;
 * macOS: ~/Library/Caches/nuggets; elsewhere $XDG_CACHE_HOME/nuggets, else ~/.cache/nuggets. The extension
 * passes its global storage instead.
 */
export function defaultCacheDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if (env['NUGGETS_CACHE']) return env['NUGGETS_CACHE'];
  if (platform === 'win32') return win32.join(env['LOCALAPPDATA'] || win32.join(home, 'AppData', 'Local'), 'nuggets', 'Cache');
  if (platform === 'darwin') return posix.join(home, 'Library', 'Caches', 'nuggets');
  return posix.join(env['XDG_CACHE_HOME'] || posix.join(home, '.cache'), 'nuggets');
}

/** Feeds a file through `hash` in 4 MB chunks, so that multi-gigabyte graphs are never read into memory at once. */
export function hashFile<T extends Hash>(hash: T, path: string): T {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 22);
    let n: number;
    while ((n = readSync(fd, chunk, 0, chunk.length, null)) > 0) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash;
}

/** Refuses an output path that is one of the inputs: the dataset is never modified. */
export function assertNotInput(output: string, inputs: readonly string[]): void {
  const out = resolve(output);
  for (const input of inputs) {
    if (resolve(input) === out) {
      throw new NuggetsError(`Refusing to write ${output}: it is an input of this command and is never modified.`, 'Choose another --out path.');
    }
  }
}

/** Writes text (as UTF-8) or bytes to a temporary file beside the target, then renames: readers see the old file or the new one. */
export function writeFileAtomic(path: string, content: string | Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(temporary, content, 'utf8');
    renameSync(temporary, path);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw fileError(err, 'write', path);
  }
}
