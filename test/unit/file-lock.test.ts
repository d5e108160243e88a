/**
 * One writer per scores file (server/io/lock.ts): a lock held by a live process is never taken, one left by a
 * process that is gone is, one from another host is only reported, and a writer removes only its own lock.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileLock, type LockOwner } from '../../server/io/lock';
import { scratchDir } from '../helpers';

const dir = scratchDir('file-lock');

/** The pid of a process that has exited (a pid that runs nothing, as a killed run's lock names). */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

function writeLock(target: string, owner: LockOwner): string {
  const text = JSON.stringify(owner) + '\n';
  writeFileSync(FileLock.pathOf(target), text);
  return text;
}

test('a lock held by a live process is not taken: the holder is named and its lock file is left as it was', () => {
  const target = join(dir, 'held.jsonl');
  // The test runner that started this process: alive, on this host, and not this process.
  const text = writeLock(target, { pid: process.ppid, host: hostname(), since: '2026-01-01T00:00:00.000Z' });
  assert.deepEqual(FileLock.tryAcquire(target), { pid: process.ppid, host: hostname(), since: '2026-01-01T00:00:00.000Z' });
  assert.equal(readFileSync(FileLock.pathOf(target), 'utf8'), text);
});

test('a lock left by a process that is gone is taken over; releasing it removes the lock file', () => {
  const target = join(dir, 'stale.jsonl');
  writeLock(target, { pid: deadPid(), host: hostname(), since: '2026-01-01T00:00:00.000Z' });
  const lock = FileLock.tryAcquire(target);
  assert.ok(lock instanceof FileLock, `not taken over: ${JSON.stringify(lock)}`);
  assert.equal((JSON.parse(readFileSync(FileLock.pathOf(target), 'utf8')) as LockOwner).pid, process.pid);
  lock.release();
  assert.equal(existsSync(FileLock.pathOf(target)), false);
});

test('a lock from another host is never judged, even when its pid runs nothing here', () => {
  const target = join(dir, 'foreign.jsonl');
  const owner = { pid: deadPid(), host: 'other-machine', since: '2026-01-01T00:00:00.000Z' };
  const text = writeLock(target, owner);
  assert.deepEqual(FileLock.tryAcquire(target), owner);
  assert.equal(readFileSync(FileLock.pathOf(target), 'utf8'), text);
});

test('a writer whose lock was taken from it does not remove the new holder\'s lock when it releases', () => {
  const target = join(dir, 'taken.jsonl');
  const lock = FileLock.tryAcquire(target);
  assert.ok(lock instanceof FileLock);
  const text = writeLock(target, { pid: process.ppid, host: hostname(), since: '2026-01-01T00:00:00.000Z' });
  lock.release();
  assert.equal(readFileSync(FileLock.pathOf(target), 'utf8'), text);
});

test('a lock file Nuggets did not write is reported as held by nobody known and never removed', () => {
  const target = join(dir, 'unreadable.jsonl');
  writeFileSync(FileLock.pathOf(target), 'not a lock');
  assert.deepEqual(FileLock.tryAcquire(target), { pid: 0, host: '(an unreadable lock file)', since: 'unknown' });
  assert.equal(readFileSync(FileLock.pathOf(target), 'utf8'), 'not a lock');
});
