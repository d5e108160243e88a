/**
 * Two `score` runs on one --out, and runs killed at random moments. A second writer refuses (naming the
 * first's pid, host and lock file) or waits with --wait; a lock left by a killed run is taken over; kill -9
 * at any moment loses no completed record and duplicates none, and the final file equals an
 * uninterrupted run's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { scratchDir } from '../helpers';
import { assertFails, assertSameScores, delay, nuggets, scoreLines, startNuggets, until, writeRecords } from './harness';

const RECORDS = 60;
const dir = scratchDir('chaos-writers');
const dataset = join(dir, 'data.json');
const anchors = join(dir, 'anchors.json');
const reference = join(dir, 'reference.jsonl');
const score = (out: string, ...more: string[]): string[] => ['score', dataset, '--anchors', anchors, '--out', out, ...more];

/** The pid of a process that has exited (a pid that runs nothing, as a killed run's lock names). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('two writers on one scores file', () => {
  before(() => {
    writeRecords(dataset, 'gpteacher-toolformer.alpaca.json', RECORDS);
    writeRecords(anchors, 'gsm8k-train.alpaca.json', 3, 200);
    const r = nuggets(dir, ...score(reference));
    assert.equal(r.code, 0, r.stderr);
  });

  test('a second run refuses, naming the first run and the lock file; --wait waits and then skips what the first scored', async () => {
    const out = join(dir, 'two.jsonl');
    const first = startNuggets(dir, ...score(out));
    await until(() => existsSync(out) && scoreLines(out).length >= 2, 'the first run to write records');
    const lock = JSON.parse(readFileSync(`${out}.lock`, 'utf8')) as { pid: number; host: string };
    assert.equal(lock.pid, first.child.pid);
    assert.equal(lock.host, hostname());

    const second = nuggets(dir, ...score(out));
    assertFails(second, 1, new RegExp(`two\\.jsonl is being written by another nuggets run \\(pid ${first.child.pid} on ${hostname()}, since .*\\); lock file .*two\\.jsonl\\.lock`));
    assert.match(second.stderr, /pass --wait/);

    const waiting = startNuggets(dir, ...score(out, '--wait'));
    const firstDone = await first.done;
    assert.equal(firstDone.code, 0, firstDone.stderr);
    const waited = await waiting.done;
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stderr, new RegExp(`waiting: .*two\\.jsonl is being written by pid ${first.child.pid}`));
    assert.match(waited.stderr, new RegExp(`scoring 0 records .*; ${RECORDS} already in`));
    assertSameScores(out, reference, RECORDS);
    assert.equal(existsSync(`${out}.lock`), false);
  });

  test('a lock left by a process that is gone is taken over; one from another host is reported, never judged', () => {
    const out = join(dir, 'stale.jsonl');
    const pid = deadPid();
    writeFileSync(`${out}.lock`, JSON.stringify({ pid, host: hostname(), since: new Date().toISOString() }));
    const r = nuggets(dir, ...score(out));
    assert.equal(r.code, 0, r.stderr);
    assertSameScores(out, reference, RECORDS);
    assert.equal(existsSync(`${out}.lock`), false);

    const foreign = join(dir, 'foreign.jsonl');
    writeFileSync(`${foreign}.lock`, JSON.stringify({ pid: 1, host: 'other-machine', since: '2026-01-01T00:00:00.000Z' }));
    assertFails(nuggets(dir, ...score(foreign)), 1, /foreign\.jsonl is being written by another nuggets run \(pid 1 on other-machine, since 2026-01-01T00:00:00\.000Z\); lock file .*foreign\.jsonl\.lock/);
    assert.match(nuggets(dir, ...score(foreign)).stderr, /If no such run exists any more, delete the lock file/);
    assert.equal(existsSync(foreign), false);
  });

  test('kill -9 at random moments mid-run: each kill lands after the run scored some records and before it scored all, keeps every record stored before it byte for byte, and the rerun completes the file as an uninterrupted run', async (t) => {
    const out = join(dir, 'killed.jsonl');
    /** The file up to its last complete line: what a kill cannot take back (a line it cut short is dropped by the next run). */
    const stored = (): string => {
      const text = existsSync(out) ? readFileSync(out, 'utf8') : '';
      return text.slice(0, text.lastIndexOf('\n') + 1);
    };
    const kept: number[] = [];
    for (let kill = 1; kill <= 6; kill++) {
      const before = stored();
      const countBefore = kept.at(-1) ?? 0;
      const run = startNuggets(dir, ...score(out));
      // Mid-run: once this run has stored a record of its own, at a random moment within the next 150 ms.
      await until(() => existsSync(out) && scoreLines(out).length > countBefore, `run ${kill} to store a record`);
      await delay(Math.floor(Math.random() * 150));
      run.child.kill('SIGKILL');
      const ended = await run.done;
      assert.equal(ended.code, null, `run ${kill} was killed, it did not end by itself: ${ended.stderr}`);
      const lines = scoreLines(out);
      kept.push(lines.length);
      assert.ok(lines.length > countBefore && lines.length < RECORDS, `kill ${kill} landed mid-run: ${countBefore} records stored before the run, ${lines.length} after the kill, of ${RECORDS}`);
      assert.equal(new Set(lines.map((l) => l.id)).size, lines.length, 'no duplicate after a kill');
      assert.ok(stored().startsWith(before), `kill ${kill}: the records stored before the run are kept byte for byte`);
    }
    t.diagnostic(`records on disk after each kill: ${kept.join(', ')}`);
    const before = stored();
    const last = nuggets(dir, ...score(out));
    assert.equal(last.code, 0, last.stderr);
    assert.match(last.stderr, new RegExp(`scoring ${RECORDS - kept.at(-1)!} records .*; ${kept.at(-1)} already in .*killed\\.jsonl, skipped`));
    assert.ok(stored().startsWith(before), 'the rerun keeps what was stored');
    assertSameScores(out, reference, RECORDS);
  });
});
