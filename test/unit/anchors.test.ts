import assert from 'node:assert/strict';
import { test } from 'node:test';
import { anchorSet, chooseKMeans, chooseRandom, sampleRecords, tfidf } from '../../server/records/anchors';
import { readDataset, recordId } from '../../server/records/dataset';
import { sharedData } from '../helpers';

const records = readDataset(sharedData('gpteacher-toolformer.alpaca.json')).records.slice(0, 1500);

test('k-means anchors are the same for the same seed and differ for another', () => {
  const a = chooseKMeans(records, 20, 0).map((r) => r.index);
  const b = chooseKMeans(records, 20, 0).map((r) => r.index);
  const c = chooseKMeans(records, 20, 1).map((r) => r.index);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.equal(new Set(a).size, 20, 'each anchor is a distinct record');
});

test('k-means spreads anchors over the data better than chance', () => {
  // Mix two very different real datasets; k-means anchors must come from both in rough proportion.
  const maths = readDataset(sharedData('gsm8k-train.alpaca.json')).records.slice(0, 300);
  const mixed = [...maths, ...records.slice(0, 300)].map((r, index) => ({ ...r, index }));
  const chosen = chooseKMeans(mixed, 10, 0);
  const fromMaths = chosen.filter((r) => r.index < 300).length;
  assert.ok(fromMaths >= 3 && fromMaths <= 7, `anchors from the maths half: ${fromMaths} of 10`);
});

test('random anchors are seeded and distinct', () => {
  const a = chooseRandom(records, 50, 7).map((r) => r.index);
  assert.deepEqual(a, chooseRandom(records, 50, 7).map((r) => r.index));
  assert.notDeepEqual(a, chooseRandom(records, 50, 8).map((r) => r.index));
  assert.equal(new Set(a).size, 50);
});

test('a sample that is not of anchors keeps every record: empty responses and repeats too; random anchors skip them', () => {
  const five = records.slice(0, 5).map((r, index) => ({ ...r, index }));
  const withBad = [...five, { ...five[0]!, output: '', index: 5 }, { ...five[1]!, index: 6 }].map((r) => ({ ...r, id: recordId(r) }));
  // A comparison's sample (nuggets agree, Compare Models) and a selection's random baseline draw from every record.
  assert.deepEqual(sampleRecords(withBad, 7, 0).map((r) => r.index), [0, 1, 2, 3, 4, 5, 6]);
  // The same seed gives the same draw as random anchors where nothing is screened out.
  assert.deepEqual(sampleRecords(records, 50, 7).map((r) => r.index), chooseRandom(records, 50, 7).map((r) => r.index));
  // Anchors leave out the empty response and the repeat.
  assert.throws(() => chooseRandom(withBad, 7, 0), /only 5 of the dataset's 7 records can be anchors/);
  assert.deepEqual(chooseRandom(withBad, 5, 0).map((r) => r.index), [0, 1, 2, 3, 4]);
  assert.throws(() => sampleRecords(withBad, 8, 0), /Cannot draw 8 of 7 records/);
});

test('asking for more anchors than records is a clear error', () => {
  assert.throws(() => chooseKMeans(records.slice(0, 5), 10, 0), /Asked for 10 anchors but the dataset has only 5 records/);
});

test('tf-idf vectors are unit length and the anchor-set hash follows content and order', () => {
  const { vectors } = tfidf(records.slice(0, 50).map((r) => r.instruction + ' ' + r.output));
  for (const v of vectors) {
    const norm = Math.hypot(...v.weights);
    assert.ok(v.weights.length === 0 || Math.abs(norm - 1) < 1e-9);
  }
  const set = anchorSet(records.slice(0, 3));
  assert.equal(set.hash, anchorSet(records.slice(0, 3)).hash);
  assert.notEqual(set.hash, anchorSet([records[1]!, records[0]!, records[2]!]).hash);
});
