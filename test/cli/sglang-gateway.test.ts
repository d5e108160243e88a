/**
 * Scoring through the real SGLang Model Gateway (sglang-router, a Rust binary that needs no GPU; tools/setup.sh
 * installs it) in front of two stand-in SGLang workers (test/support/sglang-server.ts), as a user runs it on several
 * GPUs: `--model sglang+http://<gateway>`. The gateway re-serializes /generate (one logprob_start_len for a batch)
 * and routes by the X-SMG-Routing-Key header under its `manual` policy: the scores must still equal the local
 * engine's, every request of a record must reach one worker, and that worker's cache must serve its candidate.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeAnchors } from '../../server/records/anchors';
import { readDataset, recordId } from '../../server/records/dataset';
import { type CliRun, demoModel, repoRoot, runCli, scratchDir, sharedData } from '../helpers';
import { freePort, GATEWAY_VERSION, SglangGateway } from '../support/sglang-gateway';
import { FakeSglang } from '../support/sglang-server';

const RECORDS = 30;
const ANCHORS = 20;
let dir: string;
let dataset: string;
let anchors: string;
let records: { instruction: string; input: string; output: string }[];
let workers: FakeSglang[] = [];
let gateway: SglangGateway | undefined;

before(async () => {
  dir = scratchDir('cli-sglang-gateway');
  // The records of the SGLang protocol test: real records the demo model never saw (samples/README.md), every fourth.
  const sample = JSON.parse(readFileSync(join(repoRoot, 'samples', 'mixed-120.alpaca.json'), 'utf8')) as { instruction: string; input: string; output: string }[];
  records = sample.filter((_, i) => i % 4 === 0).slice(0, RECORDS);
  dataset = join(dir, 'records.json');
  writeFileSync(dataset, JSON.stringify(records));
  anchors = join(dir, 'anchors.json');
  writeAnchors(anchors, readDataset(sharedData('alpaca-seed-tasks.jsonl')).records.slice(0, ANCHORS));
  workers = await Promise.all([FakeSglang.start(demoModel, { servedModel: 'demo' }), FakeSglang.start(demoModel, { servedModel: 'demo' })]);
  gateway = await SglangGateway.start(workers.map((w) => w.url));
});

after(async () => {
  await gateway?.close();
  await Promise.all(workers.map((w) => w.close()));
});

/** The CLI in a child process, without blocking this one (the stand-in answers from here). */
const nuggets = (...args: string[]): Promise<CliRun> => runCli(dir, args);

interface Line {
  index: number;
  id: string;
  golden_score: number;
  deltas: (number | null)[];
}

function scoreLines(path: string): Line[] {
  return readFileSync(path, 'utf8').split('\n').slice(1).filter((l) => l.startsWith('{"index"')).map((l) => JSON.parse(l) as Line);
}

test(`through the SGLang gateway in front of two workers, golden scores equal the local engine's on ${RECORDS} records x ${ANCHORS} anchors; every request of a record reaches one worker, whose cache serves its candidate`, { timeout: 300_000 }, async () => {
  const local = await nuggets('score', dataset, '--anchors', anchors, '--out', 'local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  const served = await nuggets('score', dataset, '--anchors', anchors, '--model', `sglang+${gateway!.url}`, '--out', 'gateway.jsonl');
  assert.equal(served.code, 0, `${served.stderr}\ngateway:\n${gateway!.output.slice(-2000)}`);
  assert.match(served.stderr, /with demo \(SGLang, served at http:\/\/127\.0\.0\.1:\d+ \(gateway, 2 workers\)\)/);

  const expected = scoreLines(join(dir, 'local.jsonl'));
  const actual = scoreLines(join(dir, 'gateway.jsonl'));
  assert.equal(actual.length, RECORDS);
  expected.forEach((e, r) => {
    const a = actual[r]!;
    assert.equal(a.index, e.index);
    assert.equal(a.golden_score, e.golden_score, `golden score of record ${e.index}`);
    e.deltas.forEach((d, i) => assert.ok(d === null ? a.deltas[i] === null : Math.abs(d - a.deltas[i]!) <= 1e-3, `record ${e.index}, anchor ${i}: ${d} vs ${a.deltas[i]}`));
  });

  // What reached the workers, re-serialized by the gateway: one start per batch, the routing key the candidate's id.
  for (const worker of workers) {
    for (const body of worker.bodies) assert.equal(typeof body.logprob_start_len, 'number', 'a single logprob_start_len');
  }
  const ids = new Set(records.map((r) => recordId(r)));
  const workerOf = new Map<string, number>();
  let candidates = 0;
  let anchorItems = 0;
  let cachedOfCandidates = 0;
  let computed = 0;
  let sent = 0;
  workers.forEach((worker, w) => {
    const byKey = new Map<string, typeof worker.served>();
    worker.servedKeys.forEach((key, k) => {
      assert.ok(key !== undefined, 'every request has a routing key');
      byKey.set(key, [...(byKey.get(key) ?? []), worker.served[k]!]);
    });
    for (const [key, requests] of byKey) {
      if (key === 'anchors') continue; // the anchors alone, once
      assert.ok(ids.has(key), `routing key ${key} is a record's id`);
      assert.equal(workerOf.get(key) ?? w, w, `record ${key}'s requests reached both workers`);
      workerOf.set(key, w);
      // The record's prefix pass (full(c) and output(c) alone), then its anchors, each batch starting after full(c).
      const [prefix] = requests[0]!;
      assert.equal(requests.length, 2, `record ${key}: ${requests.length} requests`);
      for (const item of requests[1]!) {
        assert.ok(item.start >= prefix!.tokens, `start ${item.start} inside the candidate's ${prefix!.tokens} tokens`);
        cachedOfCandidates += Math.min(item.cached, prefix!.tokens);
        anchorItems++;
      }
      candidates += prefix!.tokens * requests[1]!.length;
      for (const item of requests.flat()) {
        computed += item.tokens - item.cached;
        sent += item.tokens;
      }
    }
  });
  assert.equal(workerOf.size, RECORDS, 'every record was scored through the gateway');
  const perWorker = [0, 1].map((w) => [...workerOf.values()].filter((v) => v === w).length);
  assert.ok(perWorker.every((n) => n > 0), `records per worker: ${perWorker.join(', ')}`);
  assert.equal(cachedOfCandidates, candidates, 'every anchor item found its whole candidate in its worker\'s cache');
  process.stdout.write(`# sglang-router ${GATEWAY_VERSION} (manual policy), 2 workers: records per worker ${perWorker.join(' / ')}; ${anchorItems} anchor items found their candidate cached `
    + `(${cachedOfCandidates} of ${candidates} candidate tokens); ${(computed / RECORDS).toFixed(0)} token positions computed per record of ${(sent / RECORDS).toFixed(0)} sent\n`);
  assert.match(served.stdout, /SGLang computed [\d,]+ token positions per record/);
});

test('a gateway with no healthy worker (its only worker not listening) ends the run with a message saying so, exit 1, no stack trace; the scores file is left as it was, and the run against a live gateway completes it', { timeout: 120_000 }, async () => {
  const seed = readDataset(sharedData('alpaca-seed-tasks.jsonl')).records;
  const first = join(dir, 'two.json');
  writeFileSync(first, JSON.stringify(seed.slice(30, 32).map((r) => r.original)));
  const whole = join(dir, 'four.json');
  writeFileSync(whole, JSON.stringify(seed.slice(30, 34).map((r) => r.original)));
  const few = join(dir, 'few-anchors.json');
  writeAnchors(few, seed.slice(0, 5));
  const out = join(dir, 'no-worker.jsonl');
  const started = await nuggets('score', first, '--anchors', few, '--model', `sglang+${gateway!.url}`, '--out', out);
  assert.equal(started.code, 0, started.stderr);
  const before = readFileSync(out, 'utf8');
  const down = `http://127.0.0.1:${await freePort()}`;
  const empty = await SglangGateway.start([down], 'manual', false);
  try {
    const run = await nuggets('score', whole, '--anchors', few, '--model', `sglang+${empty.url}`, '--out', out);
    assert.equal(run.code, 1, run.stderr);
    const at = empty.url.replace(/[.:/]/g, '\\$&');
    assert.match(run.stderr, new RegExp(`The SGLang gateway at ${at} lists no healthy worker \\(GET ${at}\\/workers\\)\\.\\n\\s+Start the workers`));
    assert.doesNotMatch(run.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  } finally {
    await empty.close();
  }
  assert.equal(readFileSync(out, 'utf8'), before, 'the scores file is as it was');
  assert.equal(existsSync(`${out}.lock`), false, 'no lock left behind');
  const resumed = await nuggets('score', whole, '--anchors', few, '--model', `sglang+${gateway!.url}`, '--out', out);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /2 already in .*skipped/);
  assert.deepEqual(scoreLines(out).map((l) => l.index), [0, 1, 2, 3]);
});

test('a worker behind the gateway that dies mid-run ends the run with a message naming the record, exit 1, no stack trace; the records before are kept and the run resumes once it is back', { timeout: 180_000 }, async () => {
  const seed = readDataset(sharedData('alpaca-seed-tasks.jsonl')).records;
  const four = join(dir, 'died-four.json');
  writeFileSync(four, JSON.stringify(seed.slice(34, 38).map((r) => r.original)));
  const few = join(dir, 'died-anchors.json');
  writeAnchors(few, seed.slice(0, 5));
  const out = join(dir, 'died.jsonl');
  const worker = await FakeSglang.start(demoModel, { servedModel: 'demo' });
  const own = await SglangGateway.start([worker.url]);
  try {
    // Requests: the anchors alone, then two per record; the worker dies on the third record's anchors.
    worker.dieAfter = 1 + 2 * 2 + 1;
    const started = Date.now();
    const run = await nuggets('score', four, '--anchors', few, '--model', `sglang+${own.url}`, '--records-in-flight', '1', '--out', out);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 1, `${run.stderr}\ngateway:\n${own.output.slice(-2000)}`);
    assert.equal(worker.dropped, 1);
    // The gateway answers for the dead worker, and is named: 503, no available workers.
    assert.match(run.stderr, new RegExp(`No answer from the serving endpoints after \\d+ attempts \\(anchor 0 after record 2 … anchor 4 after record 2\\): ${own.url.replace(/[.:/]/g, '\\$&')}\\/generate answered 503`));
    assert.doesNotMatch(run.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
    assert.deepEqual(scoreLines(out).map((l) => l.index), [0, 1], 'the records before are kept');
    process.stdout.write(`# a worker behind the gateway died on record 2: exit 1 after ${seconds.toFixed(1)} s: ${run.stderr.trim().split('\n').filter((l) => !l.startsWith('warning')).slice(-2).join(' / ')}\n`);
    await worker.revive();
    let rerun = await nuggets('score', four, '--anchors', few, '--model', `sglang+${own.url}`, '--out', out);
    for (const deadline = Date.now() + 60_000; rerun.code !== 0 && Date.now() < deadline;) {
      // The gateway takes the worker back at its next health check.
      await new Promise((r) => setTimeout(r, 2000));
      rerun = await nuggets('score', four, '--anchors', few, '--model', `sglang+${own.url}`, '--out', out);
    }
    assert.equal(rerun.code, 0, `${rerun.stderr}\ngateway:\n${own.output.slice(-2000)}`);
    assert.match(rerun.stderr, /2 already in .*skipped/);
    assert.deepEqual(scoreLines(out).map((l) => l.index), [0, 1, 2, 3]);
  } finally {
    await own.close();
    await worker.close();
  }
});

test('conversations through the gateway: the ShareGPT sample x conversation anchors with chatml score as the local engine does, every request of a record on one worker', { timeout: 300_000 }, async () => {
  const chats = join(repoRoot, 'samples', 'identity-15.sharegpt.json');
  const sample = new Set(readDataset(chats).records.map((r) => r.id));
  const chatAnchors = join(dir, 'chat-anchors.json');
  writeAnchors(chatAnchors, readDataset(sharedData('fastchat-identity.sharegpt.json')).records.filter((r) => !sample.has(r.id)).filter((_, i) => i % 41 === 3).slice(0, 8));
  const local = await nuggets('score', chats, '--anchors', chatAnchors, '--template', 'chatml', '--out', 'chat-local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  const seen = workers.map((w) => w.servedKeys.length);
  const served = await nuggets('score', chats, '--anchors', chatAnchors, '--template', 'chatml', '--model', `sglang+${gateway!.url}`, '--out', 'chat-gateway.jsonl');
  assert.equal(served.code, 0, `${served.stderr}\ngateway:\n${gateway!.output.slice(-2000)}`);
  const expected = scoreLines(join(dir, 'chat-local.jsonl'));
  const actual = scoreLines(join(dir, 'chat-gateway.jsonl'));
  assert.equal(actual.length, sample.size);
  expected.forEach((e, r) => {
    assert.equal(actual[r]!.golden_score, e.golden_score, `golden score of record ${e.index}`);
    e.deltas.forEach((d, i) => assert.ok(d === null ? actual[r]!.deltas[i] === null : Math.abs(d - actual[r]!.deltas[i]!) <= 1e-3, `record ${e.index}, anchor ${i}`));
  });
  const workerOf = new Map<string, number>();
  workers.forEach((worker, w) => {
    for (const key of worker.servedKeys.slice(seen[w])) {
      if (key === undefined || key === 'anchors') continue;
      assert.ok(sample.has(key), `routing key ${key} is a conversation's id`);
      assert.equal(workerOf.get(key) ?? w, w, `record ${key}'s requests reached both workers`);
      workerOf.set(key, w);
    }
  });
  assert.equal(workerOf.size, sample.size, 'every conversation was routed by its id');
});
