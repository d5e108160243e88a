/**
 * The command line against servers that hang, as a user meets them: the built bundle in a child
 * process, local stand-ins on 127.0.0.1. A hung request ends after --timeout; the first SIGINT or
 * SIGTERM aborts what is in flight and exits 130 within 2 s (a serving request: within 1 s, the
 * abort itself, not the fallback timer), keeping every completed record.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { writeAnchors } from '../../server/records/anchors';
import { readDataset } from '../../server/records/dataset';
import { demoModel, repoRoot, scratchDir, sharedData } from '../helpers';
import { DEMO_ONNX, demoRepository, FakeHub } from '../support/hub-server';
import { StallingServer } from '../support/stalling-server';
import { FakeVllm } from '../support/vllm-server';

const cli = join(repoRoot, 'dist', 'cli.js');
let dir: string;
let dataset: string;
let anchors: string;
const RECORDS = 6;

before(() => {
  dir = scratchDir('cli-network');
  const records = readDataset(sharedData('alpaca-seed-tasks.jsonl')).records;
  dataset = join(dir, 'records.json');
  writeFileSync(dataset, JSON.stringify(records.slice(20, 20 + RECORDS).map((r) => r.original)));
  anchors = join(dir, 'anchors.json');
  writeAnchors(anchors, records.slice(0, 3));
});

interface Run {
  child: ReturnType<typeof spawn>;
  stderr: () => string;
  exit: Promise<{ code: number | null; at: number }>;
}

function start(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [cli, ...args], { cwd: dir, env: { ...process.env, ...env, NUGGETS_API_KEY: '', OPENAI_API_KEY: '' } });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<{ code: number | null; at: number }>((resolve) => child.on('exit', (code) => resolve({ code, at: Date.now() })));
  return { child, stderr: () => stderr, exit };
}

async function until(condition: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function recordLines(file: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('{"index"')).length : 0;
}

test('--timeout ends a request to a server that never answers, with a message and exit 1', { timeout: 30_000 }, async () => {
  const server = await StallingServer.start(['no-headers']);
  try {
    const started = Date.now();
    const run = start(['score', dataset, '--anchors', anchors, '--model', `${server.url}/v1`, '--timeout', '0.5', '--out', join(dir, 'timeout.jsonl')]);
    const { code, at } = await run.exit;
    assert.equal(code, 1);
    assert.match(run.stderr(), /Cannot reach the serving endpoint http:\/\/127\.0\.0\.1:\d+\/v1: .*gave no answer within 500 ms/);
    assert.match(run.stderr(), /nuggets: warning: .*\/models gave no answer within 500 ms \(the model list\); trying once more: a second timeout ends the run\./);
    assert.doesNotMatch(run.stderr(), /\n\s+at .+:\d+:\d+/, 'no stack trace');
    assert.ok(at - started < 10_000, `${at - started} ms`);
  } finally {
    await server.close();
  }
  const bad = start(['score', dataset, '--anchors', anchors, '--timeout', '0', '--out', join(dir, 'bad-timeout.jsonl')]);
  assert.equal((await bad.exit).code, 2);
  assert.match(bad.stderr(), /--timeout expects seconds above 0 \(got 0\)/);
});

test('--timeout bounds the whole wait on a serving endpoint that hangs on every scoring request, retries included: a warning at the first timeout, then exit 1 within 2 x T', { timeout: 60_000 }, async () => {
  const vllm = await FakeVllm.start(demoModel, { servedModel: 'demo' });
  const out = join(dir, 'hung-serving.jsonl');
  try {
    const run = start(['score', dataset, '--anchors', anchors, '--model', vllm.url, '--batch-size', '4', '--timeout', '1', '--out', out]);
    await until(() => recordLines(out) >= 2, 'two scored records');
    vllm.stall = true;
    const stalledBefore = vllm.stalled;
    await until(() => vllm.stalled > stalledBefore, 'a hung request');
    const hungAt = Date.now();
    const { code, at } = await run.exit;
    process.stdout.write(`# exit ${code} ${at - hungAt} ms after the first hung request\n`);
    assert.equal(code, 1, run.stderr());
    // One timeout (1 s), the retry at once and its timeout (1 s): the six retries with backoff took over 60 s.
    assert.ok(at - hungAt < 3000, `ended ${at - hungAt} ms after the hang`);
    const warnings = run.stderr().match(/nuggets: warning: .*gave no answer within 1 s .*trying once more: a second timeout ends the run\./g) ?? [];
    assert.equal(warnings.length, 1, run.stderr());
    assert.match(run.stderr(), /No answer from the serving endpoints after 2 attempts \(.*\): .*gave no answer within 1 s/);
    assert.ok(recordLines(out) >= 2, 'the records scored before the hang are kept');
  } finally {
    vllm.stall = false;
    await vllm.close();
  }
});

test('the first SIGINT aborts a hung serving request (the server sees it closed) and exits 130 within 1 s; completed records are kept and the rerun resumes', { timeout: 60_000 }, async () => {
  const vllm = await FakeVllm.start(demoModel, { servedModel: 'demo' });
  const out = join(dir, 'served.jsonl');
  try {
    // One record in flight: the hung request is then the only unfinished work, so the records on disk when it hangs
    // are exactly those kept (records in flight under SIGINT: test/cli/sglang.test.ts).
    const run = start(['score', dataset, '--anchors', anchors, '--model', vllm.url, '--batch-size', '4', '--records-in-flight', '1', '--out', out]);
    await until(() => recordLines(out) >= 2, 'two scored records');
    vllm.stall = true;
    const stalledBefore = vllm.stalled;
    await until(() => vllm.stalled > stalledBefore, 'a hung request');
    const kept = recordLines(out);
    assert.equal(vllm.stalledClosed, 0);
    const sent = Date.now();
    run.child.kill('SIGINT');
    const { code, at } = await run.exit;
    assert.equal(code, 130);
    process.stdout.write(`# exit ${code} ${at - sent} ms after SIGINT, ${kept} of ${RECORDS} records kept\n`);
    // The abort itself ends the run: the fallback that exits whatever happens waits 1.8 s.
    assert.ok(at - sent < 1000, `exited ${at - sent} ms after SIGINT`);
    await until(() => vllm.stalledClosed === vllm.stalled, 'the hung requests closed', 1000);
    assert.match(run.stderr(), /interrupted: stopping; completed records are on disk/);
    assert.equal(recordLines(out), kept, 'every completed record is kept, nothing half-written');
    assert.ok(kept >= 2 && kept < RECORDS);

    vllm.stall = false;
    const rerun = start(['score', dataset, '--anchors', anchors, '--model', vllm.url, '--batch-size', '4', '--out', out]);
    assert.equal((await rerun.exit).code, 0, rerun.stderr());
    assert.match(rerun.stderr(), new RegExp(`${kept} already in .*skipped`));
    assert.equal(recordLines(out), RECORDS);
  } finally {
    await vllm.close();
  }
});

test('vLLM with --records-in-flight 3: three records\' requests at the server at once, the scores file byte for byte as one at a time, in dataset order', { timeout: 120_000 }, async () => {
  const vllm = await FakeVllm.start(demoModel, { servedModel: 'demo' });
  const lines = (file: string): string[] => readFileSync(join(dir, file), 'utf8').split('\n').slice(1).filter((l) => l !== '');
  try {
    // --batch-size above the anchors: each pass of a record is one request, so only other records overlap it.
    const one = start(['score', dataset, '--anchors', anchors, '--model', vllm.url, '--batch-size', '16', '--records-in-flight', '1', '--out', 'vllm-1.jsonl']);
    assert.equal((await one.exit).code, 0, one.stderr());
    assert.equal(vllm.maxInFlight, 1);
    const three = start(['score', dataset, '--anchors', anchors, '--model', vllm.url, '--batch-size', '16', '--records-in-flight', '3', '--out', 'vllm-3.jsonl']);
    assert.equal((await three.exit).code, 0, three.stderr());
    assert.ok(vllm.maxInFlight > 1 && vllm.maxInFlight <= 3, `${vllm.maxInFlight} requests at once`);
    assert.equal(lines('vllm-1.jsonl').length, RECORDS);
    assert.deepEqual(lines('vllm-3.jsonl'), lines('vllm-1.jsonl'));
    assert.deepEqual(lines('vllm-3.jsonl').map((l) => (JSON.parse(l) as { index: number }).index), [...Array(RECORDS).keys()]);
  } finally {
    await vllm.close();
  }
});

test('SIGTERM during a stalled hub download exits 130 within 2 s and keeps the partial file for the next run', { timeout: 60_000 }, async () => {
  const hub = await FakeHub.start({ 'nuggets/demo': demoRepository(demoModel) });
  const cache = join(dir, 'cache');
  try {
    hub.arm(DEMO_ONNX, 'stall');
    const run = start(['score', dataset, '--anchors', anchors, '--model', 'hf:nuggets/demo', '--cache-dir', cache, '--out', join(dir, 'hub.jsonl')], { HF_ENDPOINT: hub.endpoint });
    await until(() => hub.requests.some((r) => r.method === 'GET' && r.url.startsWith('/lfs/')), 'the graph download');
    await new Promise((r) => setTimeout(r, 300));
    const sent = Date.now();
    run.child.kill('SIGTERM');
    const { code, at } = await run.exit;
    assert.equal(code, 130, run.stderr());
    process.stdout.write(`# exit ${code} ${at - sent} ms after SIGTERM\n`);
    assert.ok(at - sent < 2000, `exited ${at - sent} ms after SIGTERM`);
    assert.match(run.stderr(), /cancelled/);
    assert.doesNotMatch(run.stderr(), /\n\s+at .+:\d+:\d+/, 'no stack trace');
    assert.ok(existsSync(join(cache, 'hub', 'nuggets', 'demo', 'main', `${DEMO_ONNX}.part`)), 'the partial download is kept');
  } finally {
    await hub.close();
  }
});
