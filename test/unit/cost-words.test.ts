/** The question before a long run (extension/cost_words.ts): what it says, and a button per faster way that applies. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CostEstimateInfo } from '../../server/protocol';
import { costQuestion } from '../../extension/cost_words';

const estimate: CostEstimateInfo = {
  uri: 'file:///w/data.json', records: 397, probed: 3, anchors: 100, fullSeconds: 5 * 3600 + 8 * 60,
  earlyStop: { threshold: 0.85, seconds: 3600 + 2 * 60, passesPerRecord: 19.5 }, fasterWays: ['int8', 'fewerAnchors', 'endpoint'], ask: true,
};

test('the question names the time for the rest, with and without the early stop, and the probe it comes from', () => {
  const q = costQuestion(estimate, 'data.json');
  assert.equal(q.message, 'Nuggets: scoring the other 397 records of data.json will take about 5h 08m.');
  const lines = q.detail.split('\n');
  assert.equal(lines[0], 'Estimated from the first 3 records (kept), 100 anchors each.');
  assert.equal(lines[1], 'With the exact early stop at 0.85 it would take about 1h 02m (19.5 of 100 anchors per record): from the command line, nuggets score --min-score 0.85.');
  assert.equal(lines.length, 5);
});

test('one button per faster way that applies, after Go On', () => {
  assert.deepEqual(costQuestion(estimate, 'data.json').buttons.map((b) => b.choice), ['continue', 'int8', 'fewerAnchors', 'endpoint']);
  const served = costQuestion({ ...estimate, fasterWays: ['fewerAnchors'] }, 'data.json');
  assert.deepEqual(served.buttons.map((b) => b.title), ['Go On', 'Choose Fewer Anchors']);
  assert.equal(served.detail.split('\n').length, 3);
});
