/**
 * The exit codes the README promises for what no bad input can cause, with the built CLI in a child
 * process: 70 and a stack trace for an internal error (a bug), injected with NUGGETS_TEST_FAULT into the
 * tests' own build (out/cli-faults.js, tools/build.mjs --tests), which the shipped build (dist/cli.js)
 * ignores; and 130 about 2 s after a SIGINT that lands in a local pass that cannot be stopped.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { readDataset } from '../../server/dataset';
import { repoRoot, scratchDir, sharedData, smollm2Gguf } from '../helpers';

const shipped = join(repoRoot, 'dist', 'cli.js');
const withFaults = join(repoRoot, 'out', 'cli-faults.js');
let dir: string;
let dataset: string;

function run(cli: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  dir = scratchDir('cli-exit-codes');
  dataset = join(dir, 'data.json');
  writeFileSync(dataset, JSON.stringify(JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')).slice(0, 6), null, 2));
});

test('an internal error (a bug) exits 70 with "internal error" and its stack trace, and writes nothing', () => {
  const r = run(withFaults, ['anchors', dataset, '--random', '2', '--out', 'anchors.json'], { NUGGETS_TEST_FAULT: 'internal-error' });
  assert.equal(r.code, 70, r.stderr);
  assert.match(r.stderr, /^nuggets: internal error: Error: a fault injected by NUGGETS_TEST_FAULT=internal-error\n/);
  assert.match(r.stderr, /\n\s+at main \(.*cli-faults\.js:\d+:\d+\)/, 'the stack trace, naming where it was thrown');
  assert.equal(existsSync(join(dir, 'anchors.json')), false);
  // The same build without the variable runs as usual: the fault is the variable's doing.
  const plain = run(withFaults, ['anchors', dataset, '--random', '2', '--out', 'anchors.json']);
  assert.equal(plain.code, 0, plain.stderr);
});

test('the shipped build (dist/cli.js) ignores NUGGETS_TEST_FAULT: it never reads the variable', () => {
  const r = run(shipped, ['anchors', dataset, '--random', '2', '--out', 'shipped.json'], { NUGGETS_TEST_FAULT: 'internal-error' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /wrote 2 anchors/);
  assert.doesNotMatch(readFileSync(shipped, 'utf8'), /process\.env\[?\.?["']?NUGGETS_TEST_FAULT/);
});

/** How long the CLI waits, after the first SIGINT, before it exits whatever a local pass is doing (server/cli/main.ts). */
const FALLBACK_MS = 1800;

test('a SIGINT during a local pass that cannot be stopped midway exits 130 about 2 s later, cut off by the fallback before the pass ends', {
  timeout: 120_000,
  todo: 'broken: onnxruntime-node runs a pass synchronously on the main thread (its run() is a setImmediate around the native call), '
    + 'so neither the SIGINT handler nor the 1.8 s timer runs until the pass ends; here the run exits 130 some 8-12 s after the SIGINT, when the pass ends. '
    + 'Passes must leave the main thread (a worker or a child process) for the README\'s "cut off at 2 s" to hold',
}, async (t) => {
  // One pass that takes seconds: the real SmolLM2-135M weights, one thread, and one anchor of 3,000 tokens,
  // whose zero-shot pass is the first pass of the run (about 10 s here; no machine does it in under 2 s).
  const anchor = join(dir, 'long-anchor.json');
  const gsm8k = readDataset(sharedData('gsm8k-train.alpaca.json')).records;
  writeFileSync(anchor, JSON.stringify([{ instruction: 'Solve every problem below, showing the working.', input: '', output: gsm8k.slice(0, 60).map((r) => r.output).join('\n\n') }]));
  const child = spawn(process.execPath, [shipped, 'score', dataset, '--anchors', anchor, '--max-anchor-tokens', '3000', '--threads', '1',
    '--model', smollm2Gguf(), '--cache-dir', join(dir, 'cache'), '--out', join(dir, 'cut-off.jsonl')], { cwd: dir });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on('exit', (code) => resolve({ code, at: Date.now() })));
  const deadline = Date.now() + 90_000;
  while (!/scoring \d+ records against 1 anchors/.test(stderr)) {
    if (Date.now() > deadline || child.exitCode !== null) assert.fail(`the run never started scoring: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 300)); // well inside the anchor's pass
  const sent = Date.now();
  child.kill('SIGINT');
  const bound = 3000;
  const late = setTimeout(() => child.kill('SIGKILL'), bound + 1000); // a run past the bound has failed already: no need to wait for its pass
  const { code, at } = await exited;
  clearTimeout(late);
  t.diagnostic(`exit ${code} ${at - sent} ms after SIGINT`);
  assert.ok(at - sent <= bound, `exited ${at - sent} ms after SIGINT (the bound: ${bound} ms): ${stderr}`);
  assert.equal(code, 130, stderr);
  assert.ok(at - sent >= FALLBACK_MS - 100, `exited ${at - sent} ms after SIGINT: before the fallback, so not cut off by it`);
  assert.match(stderr, /interrupted: stopping; completed records are on disk/);
  // Cut off mid-pass: the run never got past the pass to stop by itself.
  assert.doesNotMatch(stderr, /Scoring cancelled|stopped with/, 'the pass ended before the cut-off');
});
