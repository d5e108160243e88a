/**
 * The SGLang backend (--model sglang+http://…) as a user runs it: the built bundle in a child process, against
 * a stand-in SGLang server (test/support/sglang-server.ts) that runs the demo model with its own ONNX Runtime
 * session and tokenizer, whole sequences, no code shared with the engine. This is a PROTOCOL test: the stand-in
 * speaks SGLang's /generate (input_token_logprobs, the index rule, cached_tokens from a real prefix trie), so
 * equal scores show that the requests, the index arithmetic, the id checks and the spans are right, and the
 * cached_tokens show that the candidate's tokens were reused; not that SGLang's GPU numbers equal ONNX Runtime's.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeAnchors } from '../../server/records/anchors';
import { readDataset } from '../../server/records/dataset';
import { type CliRun, demoModel, repoRoot, runCli, scratchDir, sharedData } from '../helpers';
import { FakeSglang, TokenTrie, type SglangLie } from '../support/sglang-server';

const cli = join(repoRoot, 'dist', 'cli.js');
const RECORDS = 30;
const ANCHORS = 20;
let dir: string;
let dataset: string;
let anchors: string;
let smallDataset: string;
let smallAnchors: string;
let sglang: FakeSglang;

before(async () => {
  dir = scratchDir('cli-sglang');
  // Real records the demo model never saw: GSM8K, Toolformer and roleplay (samples/README.md), every fourth.
  const sample = JSON.parse(readFileSync(join(repoRoot, 'samples', 'mixed-120.alpaca.json'), 'utf8')) as unknown[];
  dataset = join(dir, 'records.json');
  writeFileSync(dataset, JSON.stringify(sample.filter((_, i) => i % 4 === 0).slice(0, RECORDS)));
  const seed = readDataset(sharedData('alpaca-seed-tasks.jsonl')).records;
  anchors = join(dir, 'anchors.json');
  writeAnchors(anchors, seed.slice(0, ANCHORS));
  smallDataset = join(dir, 'small.json');
  writeFileSync(smallDataset, JSON.stringify(seed.slice(30, 34).map((r) => r.original)));
  smallAnchors = join(dir, 'small-anchors.json');
  writeAnchors(smallAnchors, seed.slice(0, 5));
  sglang = await FakeSglang.start(demoModel, { servedModel: 'demo' });
});

after(async () => {
  await sglang.close();
});

/** The CLI in a child process, without blocking this one (the stand-in answers from here). */
const nuggets = (...args: string[]): Promise<CliRun> => runCli(dir, args);

interface Line {
  index: number;
  golden_score: number;
  deltas: (number | null)[];
  ppl_cond?: number | null;
  ppl_direct?: number | null;
  ifd?: number | null;
  truncated: boolean;
}

function scoreLines(path: string): Line[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').slice(1).filter((l) => l.startsWith('{"index"')).map((l) => JSON.parse(l) as Line) : [];
}

test(`protocol test: through sglang+http:// golden scores equal the local engine's on ${RECORDS} real records x ${ANCHORS} anchors, and the candidate's tokens are computed once`, { timeout: 300_000 }, async () => {
  const local = await nuggets('score', dataset, '--anchors', anchors, '--out', 'local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  const first = sglang.generateRequests;
  // One record at a time, so that the requests come in the order this test reads them.
  const served = await nuggets('score', dataset, '--anchors', anchors, '--model', `sglang+${sglang.url}`, '--records-in-flight', '1', '--out', 'sglang.jsonl');
  assert.equal(served.code, 0, served.stderr);
  assert.match(served.stderr, /with demo \(SGLang, served at http:\/\/127\.0\.0\.1:\d+\/v1\)/);

  const expected = scoreLines(join(dir, 'local.jsonl'));
  const actual = scoreLines(join(dir, 'sglang.jsonl'));
  assert.equal(actual.length, RECORDS);
  assert.deepEqual(actual.map((l) => l.index), expected.map((l) => l.index));
  let worst = 0;
  let smallest = Infinity;
  let pairs = 0;
  expected.forEach((e, r) => {
    const a = actual[r]!;
    assert.equal(a.truncated, false);
    assert.equal(a.golden_score, e.golden_score, `golden score of record ${e.index}`);
    e.deltas.forEach((d, i) => {
      const got = a.deltas[i]!;
      if (d === null && got === null) return; // an anchor with no response token within --max-anchor-tokens, excluded by both
      assert.ok(d !== null && got !== null && Math.abs(d - got) <= 1e-3, `delta of record ${e.index}, anchor ${i}: ${d} vs ${got}`);
      worst = Math.max(worst, Math.abs(d - got));
      smallest = Math.min(smallest, Math.abs(d));
      pairs++;
    });
    // The signals come from the same log-probabilities: the prefix pass and the output alone.
    for (const signal of ['ppl_cond', 'ppl_direct', 'ifd'] as const) {
      const x = e[signal];
      const y = a[signal];
      assert.ok(typeof x === 'number' && typeof y === 'number' && Math.abs(x - y) <= 1e-3 * x, `${signal} of record ${e.index}: ${x} vs ${y}`);
    }
  });
  assert.ok(new Set(actual.map((l) => l.golden_score)).size > 3, 'golden scores differ between records');

  // Requests: the anchors alone (one batch), then per record its prefix pass (full(c) and output(c) alone) and one batch of its anchors.
  const requests = sglang.served.slice(first);
  const bodies = sglang.bodies.slice(first);
  assert.equal(requests.length, 1 + 2 * RECORDS);
  // Anchors without a response token within 200 tokens are excluded (null deltas) and never sent.
  const m = requests[0]!.length;
  const excluded = expected[0]!.deltas.filter((d) => d === null).length;
  assert.equal(m, ANCHORS - excluded);
  for (const body of bodies) {
    assert.deepEqual(body.sampling_params, { max_new_tokens: 0, temperature: 0 });
    assert.equal(body.return_logprob, true);
    assert.ok(Array.isArray(body.logprob_start_len) && Array.isArray(body.input_ids) && Array.isArray((body.input_ids as unknown[])[0]), 'a batch, a start index per item');
  }
  let computed = 0;
  let sent = 0;
  let candidateTokens = 0;
  let anchorTokens = 0;
  for (let r = 0; r < RECORDS; r++) {
    const [prefix, alone] = requests[1 + 2 * r]!;
    const batch = requests[2 + 2 * r]!;
    assert.equal(batch.length, m);
    for (const item of batch) {
      // Each anchor starts its log-probabilities after the candidate and reuses all of it from the cache.
      assert.ok(item.start >= prefix!.tokens, `start ${item.start} inside the candidate's ${prefix!.tokens} tokens`);
      assert.ok(item.cached >= prefix!.tokens, `record ${r}: ${item.cached} cached of the candidate's ${prefix!.tokens} tokens`);
      anchorTokens += item.tokens - prefix!.tokens;
    }
    candidateTokens += prefix!.tokens;
    for (const item of [prefix!, alone!, ...batch]) {
      computed += item.tokens - item.cached;
      sent += item.tokens;
    }
  }
  const lc = candidateTokens / RECORDS;
  const la = anchorTokens / (RECORDS * m);
  const perRecord = computed / RECORDS;
  // L_c + L_o + m·L_a at most (the output alone is the signals' pass), less what anchors share after the candidate ("Instruction:\n").
  const ideal = lc + (sent - candidateTokens - anchorTokens - candidateTokens * m) / RECORDS + m * la;
  assert.ok(perRecord <= ideal + 1e-9 && perRecord >= ideal - m * 8, `${perRecord} positions per record, L_c + L_o + m·L_a = ${ideal}`);
  const vllm = m * (lc + la);
  assert.ok(perRecord < 0.6 * vllm, `${perRecord} vs vLLM's m·(L_c + L_a) = ${vllm}`);
  // The run's summary says the same, from the answers' prompt_tokens and cached_tokens.
  const note = /SGLang computed ([\d,]+) token positions per record \(prompt tokens minus cached tokens, mean over 30\) of ([\d,]+) sent/.exec(served.stdout);
  assert.ok(note, served.stdout);
  assert.equal(Number(note[1]!.replace(/,/g, '')), Math.round(perRecord));
  assert.equal(Number(note[2]!.replace(/,/g, '')), Math.round(sent / RECORDS));
  process.stdout.write(`# ${RECORDS} records x ${ANCHORS} anchors (${excluded} excluded by both): ${pairs} deltas, largest difference ${worst.toExponential(2)} nats, smallest |delta| ${smallest.toExponential(2)}; `
    + `golden scores equal for ${RECORDS}/${RECORDS}\n# L_c ${lc.toFixed(1)}, L_a ${la.toFixed(1)}: computed ${perRecord.toFixed(0)} positions per record (L_c + L_o + m·L_a = ${ideal.toFixed(0)}), `
    + `sent ${(sent / RECORDS).toFixed(0)}; vLLM would compute m·(L_c + L_a) = ${vllm.toFixed(0)}\n# ${served.stdout.split('\n').find((l) => l.startsWith('SGLang computed'))}\n`);
});

test('--min-score stops early through SGLang as through vLLM: anchors in batches, the same bounds as the local engine', { timeout: 120_000 }, async () => {
  const args = ['--min-score', '0.6', '--batch-size', '2'];
  const local = await nuggets('score', smallDataset, '--anchors', smallAnchors, ...args, '--out', 'stop-local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  const first = sglang.generateRequests;
  const served = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, ...args, '--out', 'stop-sglang.jsonl');
  assert.equal(served.code, 0, served.stderr);
  const expected = scoreLines(join(dir, 'stop-local.jsonl'));
  const actual = scoreLines(join(dir, 'stop-sglang.jsonl'));
  assert.equal(actual.length, expected.length);
  expected.forEach((e, r) => {
    const a = actual[r] as Line & { bound?: string };
    assert.equal(a.golden_score, e.golden_score);
    assert.equal(a.bound, (e as Line & { bound?: string }).bound);
    e.deltas.forEach((d, i) => assert.ok(d === null ? a.deltas[i] === null : Math.abs(d - a.deltas[i]!) <= 1e-3, `record ${e.index}, anchor ${i}: ${d} vs ${a.deltas[i]}`));
  });
  assert.ok(sglang.served.slice(first + 1).every((items) => items.length <= 2), 'anchors went two at a time');
  assert.ok(scoreLines(join(dir, 'stop-sglang.jsonl')).some((l) => l.deltas.includes(null)), 'some anchors were never scored');
});

test('with --tokenizer the ids are made here, checked once against the server\'s /tokenize on a probe, and score the same', { timeout: 60_000 }, async () => {
  const server = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, '--out', 'tok-server.jsonl');
  assert.equal(server.code, 0, server.stderr);
  const tokenizeRequests = sglang.tokenizeBodies.length;
  const local = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, '--tokenizer', demoModel, '--out', 'tok-local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  assert.equal(sglang.tokenizeBodies.length, tokenizeRequests + 1, 'only the probe went to /tokenize');
  const strip = (l: Line): unknown => ({ index: l.index, golden: l.golden_score, deltas: l.deltas });
  assert.deepEqual(scoreLines(join(dir, 'tok-local.jsonl')).map(strip), scoreLines(join(dir, 'tok-server.jsonl')).map(strip));
});

const LIES: { lie: SglangLie; message: RegExp }[] = [
  { lie: 'wrong-token-id', message: /\/generate gave token id \d+ at position \d+ where \d+ was sent \(anchor 4 after record 2\): its log-probabilities belong to other tokens/ },
  { lie: 'truncated', message: /\/generate answered \d+ input log-probabilities from position \d+ of the \d+ tokens sent \(anchor 4 after record 2\)/ },
  { lie: 'null-inside', message: /\/generate gave null as the log-probability of token \d+ \(anchor 4 after record 2\): not a log-probability\.\n\s+SGLang writes NaN and infinities as null/ },
  { lie: 'nan', message: /\/generate gave "NaN" as the log-probability of token \d+ \(anchor 4 after record 2\): not a log-probability/ },
  { lie: '-inf', message: /\/generate gave "-Infinity" as the log-probability of token \d+ \(anchor 4 after record 2\): not a log-probability/ },
  { lie: 'refuse-start', message: /\/generate answered 400 \(anchor 0 after record 2 … anchor 4 after record 2\): req\.logprob_start_len=\d+ is higher than the number of input tokens/ },
];

for (const { lie, message } of LIES) {
  test(`an SGLang answer with ${lie} ends the run with a message naming the record and the anchor, exit 1; the records before are kept and a rerun resumes`, { timeout: 60_000 }, async () => {
    const out = join(dir, `lie-${lie}.jsonl`);
    // Requests: the anchors alone, then two per record; the third record's anchors are damaged.
    sglang.lie = lie;
    sglang.lieAfter = sglang.generateRequests + 1 + 2 * 2 + 1;
    try {
      const run = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, '--records-in-flight', '1', '--out', out);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
    } finally {
      sglang.lie = undefined;
    }
    assert.equal(scoreLines(out).length, 2, 'the two records scored before are kept');
    const rerun = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, '--out', out);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, /2 already in .*skipped/);
    assert.equal(scoreLines(out).length, 4);
  });
}

test('a hung SGLang request ends after --timeout and one retry with a message naming the record and anchors, exit 1; the record before is kept', { timeout: 120_000 }, async () => {
  const out = join(dir, 'hang.jsonl');
  sglang.stallAfter = sglang.generateRequests + 1 + 2 + 1; // the second record's anchors
  const started = Date.now();
  try {
    const run = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, '--timeout', '0.3', '--records-in-flight', '1', '--out', out);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /warning: .*\/generate gave no answer within 300 ms .*trying once more/);
    assert.match(run.stderr, /No answer from the serving endpoints after 2 attempts \(anchor 0 after record 1 … anchor 4 after record 1\): http:\/\/127\.0\.0\.1:\d+\/generate gave no answer within 300 ms/);
    assert.doesNotMatch(run.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  } finally {
    sglang.stallAfter = Infinity;
  }
  assert.equal(scoreLines(out).length, 1);
  process.stdout.write(`# hung: exit 1 after ${((Date.now() - started) / 1000).toFixed(1)} s (2 attempts of 0.3 s)\n`);
});

test('an SGLang worker that dies mid-run (its connection dropped, its port closed) ends the run with a message naming the record, exit 1, no stack trace; the records before are kept and a rerun against the live server completes the file', { timeout: 120_000 }, async () => {
  const out = join(dir, 'died.jsonl');
  const dropped = sglang.dropped;
  // Requests: the anchors alone, then two per record; the worker dies on the third record's anchors.
  sglang.dieAfter = sglang.generateRequests + 1 + 2 * 2 + 1;
  const started = Date.now();
  try {
    const run = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, '--records-in-flight', '1', '--out', out);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(sglang.dropped, dropped + 1, 'the request under way was dropped, the retries found nothing listening');
    assert.match(run.stderr, /No answer from the serving endpoints after \d+ attempts \(anchor 0 after record 2 … anchor 4 after record 2\): .*http:\/\/127\.0\.0\.1:\d+\/generate/);
    assert.match(run.stderr, /Check that the servers are up/);
    assert.doesNotMatch(run.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  } finally {
    await sglang.revive();
  }
  const seconds = (Date.now() - started) / 1000;
  assert.deepEqual(scoreLines(out).map((l) => l.index), [0, 1], 'the two records scored before are kept');
  const rerun = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, '--out', out);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.match(rerun.stderr, /2 already in .*skipped/);
  const whole = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, '--out', 'died-whole.jsonl');
  assert.equal(whole.code, 0, whole.stderr);
  const strip = (l: Line): unknown => ({ index: l.index, golden: l.golden_score, deltas: l.deltas });
  assert.deepEqual(scoreLines(out).map(strip), scoreLines(join(dir, 'died-whole.jsonl')).map(strip), 'the resumed file scores as one run');
  process.stdout.write(`# a worker that died on record 2: exit 1 after ${seconds.toFixed(1)} s (the retries' backoff), 2 records kept, the rerun completed the file\n`);
});

test('SGLang requests go through the HTTP layer: a 503 is retried; the first SIGINT aborts a hung /generate (the server sees it closed) and exits 130, keeping the records before', { timeout: 60_000 }, async () => {
  const out = join(dir, 'interrupted.jsonl');
  sglang.failNext(503, 2);
  sglang.stallAfter = sglang.generateRequests + 2 + 1 + 2 * 2 + 1; // the two 503s, then the third record's anchors
  const stalledBefore = sglang.stalled;
  const closedBefore = sglang.stalledClosed;
  try {
    const child = spawn(process.execPath, [cli, 'score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url}`, '--records-in-flight', '1', '--out', out], { cwd: dir });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exit = new Promise<{ code: number | null; at: number }>((resolve) => child.on('exit', (code) => resolve({ code, at: Date.now() })));
    for (const deadline = Date.now() + 30_000; sglang.stalled === stalledBefore;) {
      assert.ok(Date.now() < deadline, 'no hung request');
      await new Promise((r) => setTimeout(r, 20));
    }
    const sent = Date.now();
    child.kill('SIGINT');
    const { code, at } = await exit;
    assert.equal(code, 130, stderr);
    assert.ok(at - sent < 1000, `exited ${at - sent} ms after SIGINT`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sglang.stalledClosed, closedBefore + 1, 'the hung request was closed');
    assert.match(stderr, /interrupted: stopping; completed records are on disk/);
  } finally {
    sglang.stallAfter = Infinity;
  }
  assert.equal(scoreLines(out).length, 2, 'the two records before, scored after two 503s were retried');
});

/** The score lines of a scores file, as written (its header, which holds the time it was created, left out). */
function scoreText(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').slice(1).filter((l) => l !== '');
}

test('--records-in-flight 4 keeps four records\' requests at the server at once and writes the same scores file, byte for byte and in dataset order, as one at a time', { timeout: 300_000 }, async () => {
  const one = await nuggets('score', dataset, '--anchors', anchors, '--model', `sglang+${sglang.url}`, '--records-in-flight', '1', '--out', 'inflight-1.jsonl');
  assert.equal(one.code, 0, one.stderr);
  sglang.maxInFlight = 0;
  const first = sglang.generateRequests;
  const started = Date.now();
  const four = await nuggets('score', dataset, '--anchors', anchors, '--model', `sglang+${sglang.url}`, '--records-in-flight', '4', '--out', 'inflight-4.jsonl');
  assert.equal(four.code, 0, four.stderr);
  const seconds = (Date.now() - started) / 1000;
  assert.ok(sglang.maxInFlight > 1 && sglang.maxInFlight <= 4, `at most ${sglang.maxInFlight} /generate requests at once`);
  assert.equal(sglang.generateRequests - first, 1 + 2 * RECORDS, 'the same requests, no retries');
  const expected = scoreText(join(dir, 'inflight-1.jsonl'));
  assert.equal(expected.length, RECORDS);
  assert.deepEqual(scoreText(join(dir, 'inflight-4.jsonl')), expected);
  assert.deepEqual(scoreLines(join(dir, 'inflight-4.jsonl')).map((l) => l.index), [...Array(RECORDS).keys()], 'in dataset order');
  process.stdout.write(`# --records-in-flight 4: ${sglang.maxInFlight} /generate requests at once at most, ${RECORDS} records in ${seconds.toFixed(1)} s, the scores file equal to one at a time's\n`);
});

test('with records in flight, SIGINT closes every hung request and keeps a prefix of the records in dataset order; the rerun completes the same file as one at a time', { timeout: 300_000 }, async () => {
  const out = join(dir, 'inflight-interrupted.jsonl');
  const stalledBefore = sglang.stalled;
  const closedBefore = sglang.stalledClosed;
  sglang.stallAfter = sglang.generateRequests + 1 + 2 * 5; // the anchors alone, then some ten requests of records
  try {
    const child = spawn(process.execPath, [cli, 'score', dataset, '--anchors', anchors, '--model', `sglang+${sglang.url}`, '--records-in-flight', '4', '--out', out], { cwd: dir });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Every lane holds a hung request: four records in flight, none can end.
    for (const deadline = Date.now() + 60_000; sglang.stalled < stalledBefore + 4;) {
      assert.ok(Date.now() < deadline, `${sglang.stalled - stalledBefore} hung requests`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGINT');
    assert.equal(await exit, 130, stderr);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sglang.stalledClosed - closedBefore, sglang.stalled - stalledBefore, 'every hung request was closed');
  } finally {
    sglang.stallAfter = Infinity;
  }
  const kept = scoreLines(out).map((l) => l.index);
  assert.ok(kept.length >= 1 && kept.length < RECORDS, `${kept.length} records kept`);
  assert.deepEqual(kept, [...Array(kept.length).keys()], 'a prefix of the records, in dataset order');
  const rerun = await nuggets('score', dataset, '--anchors', anchors, '--model', `sglang+${sglang.url}`, '--records-in-flight', '4', '--out', out);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.match(rerun.stderr, new RegExp(`${kept.length} already in .*skipped`));
  assert.deepEqual(scoreText(out), scoreText(join(dir, 'inflight-1.jsonl')), 'the resumed file equals one scored one record at a time');
  process.stdout.write(`# interrupted with 4 records in flight: ${kept.length} kept, the rerun completed the same file\n`);
});

test('several SGLang servers are refused before any request: a record\'s anchors must reach the server that cached its candidate', async () => {
  const run = await nuggets('score', smallDataset, '--anchors', smallAnchors, '--model', `sglang+${sglang.url},http://127.0.0.1:9`, '--out', 'two.jsonl');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /2 SGLang servers were given .*; scoring through SGLang talks to one.*\n\s+Give one server \(--model sglang\+http:\/\/host:30000\); for several GPUs put the SGLang gateway in front of them .* or run one nuggets per server on a shard/);
  assert.doesNotMatch(run.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  assert.equal(existsSync(join(dir, 'two.jsonl')), false);
});

test('the stand-in answers as SGLang does: the index rule, null first entry, cached_tokens up to logprob_start_len, the 400 past the input', async () => {
  const tokenize = await (await fetch(`${sglang.url}/tokenize`, { method: 'POST', body: JSON.stringify({ prompt: 'Instruction:\nSay hello.\nResponse:\nHello there', add_special_tokens: true }) })).json() as { tokens: number[]; count: number; max_model_len: number };
  const ids = tokenize.tokens;
  assert.equal(tokenize.count, ids.length);
  assert.equal(tokenize.max_model_len, 1024);
  const generate = async (body: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${sglang.url}/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  const single = await generate({ input_ids: ids, sampling_params: { max_new_tokens: 0 }, return_logprob: true, logprob_start_len: 3 });
  assert.equal(single.status, 200);
  const meta = single.body.meta_info;
  assert.equal(meta.prompt_tokens, ids.length);
  assert.equal(meta.input_token_logprobs.length, ids.length - 3);
  assert.deepEqual(meta.input_token_logprobs[0], [null, ids[3], null]);
  assert.deepEqual(meta.input_token_logprobs.map((e: unknown[]) => e[1]), ids.slice(3));
  assert.ok(meta.input_token_logprobs.slice(1).every((e: unknown[]) => typeof e[0] === 'number' && (e[0] as number) < 0 && e[2] === null));
  // Again: the whole sequence is cached, but only logprob_start_len tokens of it may be reused.
  const again = await generate({ input_ids: [ids, ids], sampling_params: { max_new_tokens: 0 }, return_logprob: true, logprob_start_len: [5, ids.length - 1] });
  assert.ok(Array.isArray(again.body));
  assert.deepEqual(again.body.map((a: any) => a.meta_info.cached_tokens), [5, ids.length - 1]);
  assert.deepEqual(again.body[0].meta_info.input_token_logprobs.slice(1), meta.input_token_logprobs.slice(3), 'the same numbers from another start');
  const past = await generate({ input_ids: ids, sampling_params: { max_new_tokens: 0 }, return_logprob: true, logprob_start_len: ids.length });
  assert.equal(past.status, 400);
  assert.match(past.body.error.message, new RegExp(`logprob_start_len=${ids.length} is higher than the number of input tokens`));
  const defaults = await generate({ input_ids: ids, return_logprob: true, logprob_start_len: 0 });
  assert.equal(defaults.status, 400, 'max_new_tokens defaults to 128, which a scorer must not leave');
  assert.equal((await fetch(`${sglang.url}/health`)).status, 200);
  assert.equal(((await (await fetch(`${sglang.url}/get_model_info`)).json()) as { is_generation: boolean }).is_generation, true);
  assert.equal(((await (await fetch(`${sglang.url}/v1/models`)).json()) as { data: { max_model_len: number }[] }).data[0]!.max_model_len, 1024);
});

test('the stand-in\'s prefix trie evicts the least recently used tokens beyond its capacity', () => {
  const trie = new TokenTrie(10);
  trie.insert([1, 2, 3, 4, 5, 6]);
  trie.insert([1, 2, 3, 7, 8]);
  assert.equal(trie.size, 8);
  assert.equal(trie.match([1, 2, 3, 4, 5, 6, 9]), 6);
  trie.insert([20, 21, 22, 23]); // 12 tokens: the least recently used leaves go, [7, 8] first
  assert.equal(trie.size, 10);
  assert.equal(trie.match([1, 2, 3, 7, 8]), 3);
  assert.equal(trie.match([1, 2, 3, 4, 5, 6]), 6);
  assert.equal(trie.match([20, 21, 22, 23]), 4);
});
