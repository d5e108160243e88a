import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readDataset, type DatasetRecord, type Example } from '../../server/records/dataset';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { goldenFrom } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { fullText, queryText } from '../../server/scoring/template';
import { demoModel, sharedData, sharedRecords } from '../helpers';

let cached: LocalBackend;
let naive: LocalBackend;
before(async () => {
  cached = await LocalBackend.open(demoModel, { path: 'cached' });
  naive = await LocalBackend.open(demoModel, { path: 'naive' });
});
after(async () => {
  await cached.dispose();
  await naive.dispose();
});

/** A few real records of each shape: maths, tool use (with input), role play. */
function realRecords(): DatasetRecord[] {
  return [
    ...sharedRecords('gsm8k-train.alpaca.json', [3, 40, 41]),
    ...sharedRecords('gpteacher-toolformer.alpaca.json', [5, 77]),
    ...sharedRecords('gpteacher-roleplay.alpaca.json', [12, 300]),
  ];
}

test('the template is the paper\'s, with and without input', () => {
  assert.equal(queryText({ instruction: 'Add.', input: '' }), 'Instruction:\nAdd.\nResponse:\n');
  assert.equal(queryText({ instruction: 'Add.', input: '2 3' }), 'Instruction:\nAdd.\nInput:\n2 3\nResponse:\n');
  assert.equal(fullText({ instruction: 'Add.', input: '2 3', output: '5' }), 'Instruction:\nAdd.\nInput:\n2 3\nResponse:\n5');
});

test('anchors are tokenized without special tokens, candidates with them; the response span is the output', () => {
  const record: Example = { instruction: 'Name a colour.', input: '', output: 'Blue is a colour of the sky.' };
  const anchor = cached.anchorTokens(record, 200);
  assert.deepEqual(anchor.tokens, cached.tokenizer.encode(fullText(record), false));
  assert.equal(anchor.responseFrom, cached.tokenizer.encode(queryText(record), false).length);
  assert.equal(cached.tokenizer.decode(anchor.tokens.slice(anchor.responseFrom)), record.output);
  assert.notEqual(anchor.tokens[0], 0, 'no BOS on an anchor');
  const withSpecial = cached.tokenizer.encode(fullText(record), true);
  assert.equal(withSpecial[0], 0, 'the candidate prefix starts with the BOS <|endoftext|>');
  assert.deepEqual(withSpecial.slice(1), anchor.tokens);
});

test('maxAnchorTokens cuts the anchor and clips its response span', () => {
  const long = realRecords()[0]!;
  const full = cached.tokenizer.encode(fullText(long), false);
  const query = cached.tokenizer.encode(queryText(long), false);
  const cut = cached.anchorTokens(long, query.length + 5);
  assert.equal(cut.tokens.length, query.length + 5);
  assert.equal(cut.tokens.length - cut.responseFrom, 5);
  assert.ok(full.length > cut.tokens.length);
  const empty = cached.anchorTokens(long, query.length - 2);
  assert.equal(empty.tokens.length - empty.responseFrom, 0, 'a query longer than the cut leaves an empty span');
});

test('cached and naive paths give the same golden scores and deltas within 1e-3 nats on real records', async () => {
  const records = realRecords();
  const anchors = readDataset(sharedData('gsm8k-train.alpaca.json')).records.slice(100, 106)
    .concat(readDataset(sharedData('gpteacher-toolformer.alpaca.json')).records.slice(200, 204));
  const options = { ...DEFAULT_OPTIONS, batchSize: 4 }; // batches mix anchor lengths, so padding is exercised
  const preparedCached = await cached.prepareAnchors(anchors, options);
  const preparedNaive = await naive.prepareAnchors(anchors, { ...options, batchSize: 1 });
  for (let i = 0; i < anchors.length; i++) {
    assert.ok(Math.abs(preparedCached.zeroShot[i]! - preparedNaive.zeroShot[i]!) < 1e-3, `zero-shot of anchor ${i}: padded batch equals batch of one`);
  }
  for (const record of records) {
    const a = await cached.oneShot(record, preparedCached);
    const b = await naive.oneShot(record, preparedNaive);
    const ga = goldenFrom(preparedCached, a.oneShot);
    const gb = goldenFrom(preparedNaive, b.oneShot);
    assert.equal(ga.goldenScore, gb.goldenScore, `golden score of record ${record.index}`);
    ga.deltas.forEach((d, i) => assert.ok(Math.abs(d - gb.deltas[i]!) < 1e-3, `record ${record.index} anchor ${i}: ${d} vs ${gb.deltas[i]}`));
    assert.equal(a.truncated, b.truncated);
  }
});

test('a candidate longer than the context is cut from the left and marked, on both paths alike', async () => {
  const anchors = readDataset(sharedData('gsm8k-train.alpaca.json')).records.slice(0, 3);
  const base = readDataset(sharedData('gpteacher-roleplay.alpaca.json')).records[0]!;
  const huge: Example = { ...base, output: Array.from({ length: 40 }, () => base.output).join(' ') };
  assert.ok(cached.tokenizer.encode(fullText(huge), true).length > cached.identity.contextLength);
  const pc = await cached.prepareAnchors(anchors, DEFAULT_OPTIONS);
  const pn = await naive.prepareAnchors(anchors, DEFAULT_OPTIONS);
  const a = await cached.oneShot(huge, pc);
  const b = await naive.oneShot(huge, pn);
  assert.equal(a.truncated, true);
  assert.equal(b.truncated, true);
  a.oneShot.forEach((s, i) => assert.ok(Math.abs(s - b.oneShot[i]!) < 1e-3));
  const short = await cached.oneShot(anchors[0]!, pc);
  assert.equal(short.truncated, false);
});

test('a requested subset of anchors gets the same one-shot scores as the full set', async () => {
  const anchors = readDataset(sharedData('gsm8k-train.alpaca.json')).records.slice(10, 16);
  const prepared = await cached.prepareAnchors(anchors, DEFAULT_OPTIONS);
  const candidate = realRecords()[3]!;
  const all = await cached.oneShot(candidate, prepared);
  const some = await cached.oneShot(candidate, prepared, [4, 1]);
  assert.ok(Math.abs(some.oneShot[0]! - all.oneShot[4]!) < 1e-4);
  assert.ok(Math.abs(some.oneShot[1]! - all.oneShot[1]!) < 1e-4);
});

test('a cancelled call stops before its next batch of anchors, and the backend scores the same afterwards', async () => {
  const anchors = readDataset(sharedData('gsm8k-train.alpaca.json')).records.slice(100, 116);
  const prepared = await cached.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, batchSize: 1 }); // one pass per anchor
  const [record] = realRecords();
  const whole = await cached.oneShot(record!, prepared);
  const abort = new AbortController();
  const call = cached.oneShot(record!, prepared, undefined, abort.signal);
  abort.abort(); // while the first pass runs
  await assert.rejects(call, /Scoring cancelled/);
  assert.deepEqual(await cached.oneShot(record!, prepared), whole);
  await assert.rejects(cached.prepareAnchors(anchors, DEFAULT_OPTIONS, abort.signal), /Scoring cancelled/);
});
