/**
 * One writer per scores file, across processes: a lock file beside it (`<file>.lock`) naming the
 * process that writes (pid, host, since when). The lock file is created whole in one step (written
 * under a temporary name, then hard-linked into place, which fails when a lock exists), so a reader
 * never sees half a lock. A lock whose process is gone (same host, pid not running) is taken over;
 * a lock from another host is never judged, only reported.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { sleep } from './abort';
import { fileError, NuggetsError } from './errors';

export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
}

export class FileLock {
  private readonly onExit = (): void => this.release();

  private constructor(readonly path: string) {
    process.once('exit', this.onExit); // a normal exit, or process.exit() after a signal, leaves no lock
  }

  /** The lock file of `target`. */
  static pathOf(target: string): string {
    return `${target}.lock`;
  }

  /** Takes the lock of `target`, or returns the live process that holds it. */
  static tryAcquire(target: string): FileLock | LockOwner {
    const path = FileLock.pathOf(target);
    const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    for (let attempt = 0; ; attempt++) {
      const temporary = `${path}.${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        writeFileSync(temporary, JSON.stringify(me) + '\n');
        linkSync(temporary, path);
        return new FileLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(err, 'create the lock file', path);
      } finally {
        rmSync(temporary, { force: true });
      }
      const held = readLock(path);
      if (!held) continue; // released meanwhile
      if (!isStale(held.owner) || attempt >= 3) return held.owner;
      takeOverStale(path, held.inode);
    }
  }

  /**
   * Takes the lock of `target`. When another live process holds it: with `wait`, polls until it is
   * released (telling `onWaiting` once); otherwise throws a message naming the holder and the lock file.
   */
  static async acquire(target: string, options: { wait?: boolean; signal?: AbortSignal; onWaiting?: (owner: LockOwner) => void } = {}): Promise<FileLock> {
    let told = false;
    for (;;) {
      const got = FileLock.tryAcquire(target);
      if (got instanceof FileLock) return got;
      if (!options.wait) throw heldError(target, got);
      if (!told) options.onWaiting?.(got);
      told = true;
      await sleep(250, options.signal, () => new NuggetsError(`Stopped waiting for ${FileLock.pathOf(target)}.`));
    }
  }

  /** Removes the lock file, if it is still this process's. */
  release(): void {
    process.off('exit', this.onExit);
    const held = readLock(this.path);
    if (held && held.owner.pid === process.pid && held.owner.host === hostname()) rmSync(this.path, { force: true });
  }
}

/** "FILE is being written by another nuggets run (pid 123 on host, since ...)" with what to do. */
export function heldError(target: string, owner: LockOwner): NuggetsError {
  return new NuggetsError(
    `${target} is being written by another nuggets run (pid ${owner.pid} on ${owner.host}, since ${owner.since}); lock file ${FileLock.pathOf(target)}.`,
    'Wait for that run to finish (or pass --wait to start when it does): two writers would score the same records twice. If no such run exists any more, delete the lock file.',
  );
}

function readLock(path: string): { owner: LockOwner; inode: number } | undefined {
  try {
    const inode = statSync(path).ino;
    const text = readFileSync(path, 'utf8');
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string') throw new SyntaxError('not a lock');
    return { owner: { pid: value.pid, host: value.host, since: String(value.since) }, inode };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // Not written by Nuggets: reported as held by nobody known, never removed.
    return { owner: { pid: 0, host: '(an unreadable lock file)', since: 'unknown' }, inode: -1 };
  }
}

/** The process that took the lock is gone: it ran on this host and its pid runs nothing (or it is this very process). */
function isStale(owner: LockOwner): boolean {
  if (owner.host !== hostname() || owner.pid <= 0) return false;
  if (owner.pid === process.pid) return true;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Moves a stale lock aside. Renaming is atomic, so of several processes that found the same stale lock
 * one moves it; one that moved a lock taken meanwhile by another (another inode) puts it back.
 */
function takeOverStale(path: string, inode: number): void {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else moved it first
  }
  try {
    if (statSync(aside).ino !== inode) linkSync(aside, path);
  } catch {
    // Taken again meanwhile: the next attempt reads the new owner.
  } finally {
    rmSync(aside, { force: true });
  }
}
