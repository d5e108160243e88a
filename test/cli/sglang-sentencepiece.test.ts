/**
 * The SGLang backend on a SentencePiece-style model: the Llama-2 stand-in from tools/standins (Metaspace with the
 * "▁" prefix, byte fallback, BOS added by TemplateProcessing, as Xenova/llama2.c-stories15M), served by the SGLang
 * stand-in (test/support/sglang-server.ts: its own ONNX Runtime session and tokenizer, no code from server/). Such a
 * tokenizer puts "▁" before every text it encodes, so the candidate's and the anchor's ids must be encoded apart and
 * sent as ids, BOS once at the start; the byte-level BPE of the demo model (test/cli/sglang.test.ts) hides a mistake
 * there. A protocol test, as that one: the CLI in a child process, the scores against the local engine's.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeAnchors } from '../../server/records/anchors';
import { readDataset } from '../../server/records/dataset';
import { readModelFolder } from '../../server/model/folder';
import { type CliRun, runCli, scratchDir, sharedData, standins } from '../helpers';
import { FakeSglang } from '../support/sglang-server';

const RECORDS = 12;
const ANCHORS = 8;
let dir: string;
let model: string;
let dataset: string;
let anchors: string;
let sglang: FakeSglang;

before(async () => {
  dir = scratchDir('cli-sglang-sp');
  model = join(standins(), 'llama2-sp');
  const seed = readDataset(sharedData('alpaca-seed-tasks.jsonl')).records;
  dataset = join(dir, 'records.json');
  writeFileSync(dataset, JSON.stringify(seed.slice(40, 40 + RECORDS).map((r) => r.original)));
  anchors = join(dir, 'anchors.json');
  writeAnchors(anchors, seed.slice(0, ANCHORS));
  sglang = await FakeSglang.start(model, { servedModel: 'llama2-sp' });
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
}

function scoreLines(path: string): Line[] {
  return readFileSync(path, 'utf8').split('\n').slice(1).filter((l) => l.startsWith('{"index"')).map((l) => JSON.parse(l) as Line);
}

test(`a SentencePiece-style model (Metaspace, byte fallback, BOS by a template) through sglang+http://: golden scores equal the local engine's on ${RECORDS} records x ${ANCHORS} anchors, BOS once at the start of each record's sequences`, { timeout: 180_000 }, async () => {
  assert.match(JSON.stringify(readModelFolder(model).tokenizerJson), /"Metaspace"/, 'a Metaspace tokenizer');
  const bos = (JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as { bos_token_id: number }).bos_token_id;
  const local = await nuggets('score', dataset, '--anchors', anchors, '--model', model, '--out', 'local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  const served = await nuggets('score', dataset, '--anchors', anchors, '--model', `sglang+${sglang.url}`, '--records-in-flight', '1', '--out', 'sglang.jsonl');
  assert.equal(served.code, 0, served.stderr);
  assert.match(served.stderr, /with llama2-sp \(SGLang, served at http:\/\/127\.0\.0\.1:\d+\/v1\)/);

  const expected = scoreLines(join(dir, 'local.jsonl'));
  const actual = scoreLines(join(dir, 'sglang.jsonl'));
  assert.equal(expected.length, RECORDS);
  assert.equal(actual.length, RECORDS);
  let worst = 0;
  let pairs = 0;
  expected.forEach((e, r) => {
    const a = actual[r]!;
    assert.equal(a.index, e.index);
    assert.equal(a.golden_score, e.golden_score, `golden score of record ${e.index}`);
    e.deltas.forEach((d, i) => {
      const got = a.deltas[i]!;
      if (d === null && got === null) return;
      assert.ok(d !== null && got !== null && Math.abs(d - got) <= 1e-3, `delta of record ${e.index}, anchor ${i}: ${d} vs ${got}`);
      worst = Math.max(worst, Math.abs(d - got));
      pairs++;
    });
  });
  assert.ok(pairs >= RECORDS * (ANCHORS - 1), `${pairs} deltas compared`);
  // The ids sent: the anchors alone without special tokens (as the local engine encodes s0), then each record's
  // sequences with one BOS, at the start (the anchor's ids encoded apart, without special tokens, after the candidate's).
  const [zeroShot, ...records] = sglang.bodies.map((b) => b.input_ids as number[][]);
  assert.equal(zeroShot!.length, ANCHORS);
  for (const ids of zeroShot!) assert.equal(ids.indexOf(bos), -1, 'no BOS in an anchor alone');
  assert.equal(records.length, 2 * RECORDS);
  for (const ids of records.flat()) {
    assert.equal(ids[0], bos, 'a record\'s sequence starts with BOS');
    assert.equal(ids.lastIndexOf(bos), 0, 'BOS once');
  }
  process.stdout.write(`# llama2-sp through SGLang: ${RECORDS}/${RECORDS} golden scores equal, ${pairs} deltas, largest difference ${worst.toExponential(2)} nats\n`);
});
