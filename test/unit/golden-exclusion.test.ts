/** Anchors without a response token (the query fills maxAnchorTokens) are excluded from golden scores, never counted as losses. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PreparedAnchors } from '../../server/scoring/backend';
import { describeExcluded, excludedAnchors, goldenFrom } from '../../server/scoring/golden';

const prepared = (responseTokens: number[], zeroShot: number[]): PreparedAnchors => ({
  count: responseTokens.length, responseTokens: Int32Array.from(responseTokens), zeroShot: Float64Array.from(zeroShot),
});

test('an anchor with an empty response span is left out of wins, the denominator and the mean delta', () => {
  // Anchor 1 has no response token: both its s0 and s1 are sums over nothing (0), which used to count as a loss.
  const anchors = prepared([4, 0, 6], [-10, 0, -20]);
  const score = goldenFrom(anchors, Float64Array.from([-8, 0, -19]));
  assert.equal(score.anchors, 2);
  assert.equal(score.wins, 2);
  assert.equal(score.goldenScore, 1);
  assert.ok(Number.isNaN(score.deltas[1]!));
  assert.equal(score.meanDelta, 1.5);
  assert.deepEqual(excludedAnchors(anchors, 200), [1]);
});

test('no excluded anchor: golden scores as before', () => {
  const anchors = prepared([4, 5], [-10, -20]);
  assert.deepEqual(excludedAnchors(anchors, 200), []);
  assert.equal(goldenFrom(anchors, Float64Array.from([-11, -19])).goldenScore, 0.5);
});

test('when every anchor is excluded the run stops and says to raise the limit', () => {
  assert.throws(() => excludedAnchors(prepared([0, 0], [0, 0]), 8), /No anchor has a response token left after cutting anchors to 8 tokens.*/);
});

test('the warning names the excluded anchors and the denominator', () => {
  const text = describeExcluded([0, 2], [{ instruction: 'First' }, { instruction: 'Second' }, { instruction: 'Third' }], 16);
  assert.equal(text, '2 anchors: 1 ("First…"), 3 ("Third…") have no response token left within 16 tokens and are excluded: golden scores count the other 1 of 3 anchors.');
});
