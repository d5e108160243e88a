/**
 * The chaos suite's common ground: the built command line in child processes, small real datasets cut
 * from ../shared/data, and the checks every failure must pass (its exit code, a message naming the
 * file, and no stack trace).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, sharedData } from '../helpers';

export const cli = join(repoRoot, 'dist', 'cli.js');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `nuggets ...args` in `cwd` and waits for it. */
export function nuggets(cwd: string, ...args: string[]): Ran {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `nuggets ...args` in `cwd`; its output is collected. */
export function startNuggets(cwd: string, ...args: string[]): { child: ChildProcess; done: Promise<Ran> } {
  const child = spawn(process.execPath, [cli, ...args], { cwd });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Ran>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

/** A stack frame as Node prints one ("    at f (file.js:1:2)"). */
const STACK_FRAME = /^\s+at .+/m;

/** The run ended with `code`, a message matching `message`, and no stack trace. */
export function assertFails(r: Ran, code: number, message: RegExp, what = ''): void {
  const context = `${what}\nexit ${r.code}\nstderr: ${r.stderr}`;
  assert.equal(r.code, code, context);
  assert.match(r.stderr, message, context);
  assert.doesNotMatch(r.stderr, STACK_FRAME, `no stack trace: ${context}`);
  assert.doesNotMatch(r.stderr, /internal error/, context);
}

/** The first `count` records of a shared dataset, written as an Alpaca JSON file at `path`. */
export function writeRecords(path: string, file: string, count: number, from = 0): void {
  const records = JSON.parse(readFileSync(sharedData(file), 'utf8')) as unknown[];
  writeFileSync(path, JSON.stringify(records.slice(from, from + count), null, 2));
}

export interface ScoreLine {
  id: string;
  golden_score: number | null;
  anchors: number;
  wins: number;
  deltas: Array<number | null>;
}

/** The complete score lines of a scores file (its header and a line cut short left out). */
export function scoreLines(path: string): ScoreLine[] {
  const text = readFileSync(path, 'utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l) as ScoreLine);
}

/** Every record scored exactly once, with the same deltas as an uninterrupted run's. */
export function assertSameScores(path: string, reference: string, count: number): void {
  const lines = scoreLines(path);
  assert.equal(lines.length, count, `${path} holds ${lines.length} score lines`);
  assert.equal(new Set(lines.map((l) => l.id)).size, count, `${path} has no duplicate`);
  const expected = new Map(scoreLines(reference).map((l) => [l.id, l]));
  for (const l of lines) assert.deepEqual(l.deltas, expected.get(l.id)?.deltas, `record ${l.id}`);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every 20 ms until it holds (or fails after `timeoutMs`). */
export async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}
