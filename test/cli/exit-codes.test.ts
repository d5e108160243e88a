/**
 * The exit codes the README promises for what no bad input can cause, with the built CLI in a child
 * process: 70 and a stack trace for an internal error (a bug), injected with NUGGETS_TEST_FAULT into the
 * tests' own build (out/cli-faults.js, tools/build.mjs --tests), which the shipped build (dist/cli.js)
 * ignores.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { repoRoot, scratchDir, sharedData } from '../helpers';

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
