/** The cost estimate before a long run (server/scoring/cost-estimate.ts), on recorded timings and outcomes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeEstimate, earlyStopPasses, estimateCost, fitCallCost, type ProbeRecord } from '../../server/scoring/cost-estimate';

const prepared = { count: 10, responseTokens: Int32Array.from({ length: 10 }, () => 5) };
/** A record scored in full against 10 anchors that loses the anchors `lost`, timed at 1 s of prefix and 1 s a pass. */
const fullRecord = (lost: number[]): ProbeRecord => ({
  prefixSeconds: 1, calls: [{ anchors: 10, seconds: 10 }], bounded: false, deltas: Array.from({ length: 10 }, (_, i) => (lost.includes(i) ? -0.5 : 0.5)),
});

test('without early stop: the records left times the probe\'s prefix and one pass per anchor', () => {
  const estimate = estimateCost([fullRecord([0, 1]), fullRecord([0, 1]), fullRecord([0, 1, 2])], prepared, 100, 0.85, 16);
  assert.equal(estimate.fullSeconds, 100 * (1 + 10 * 1));
  assert.equal(estimate.anchors, 10);
  assert.equal(estimate.probed, 3);
});

test('with early stop: the passes the ordered stop would run on each probe record, learned from the others', () => {
  // At 0.85 of 10 anchors a record needs 9 wins: 2 losses settle it. Each record's order, learned from the other two,
  // puts anchors 0 and 1 (lost by both) first: 2 passes each.
  const estimate = estimateCost([fullRecord([0, 1]), fullRecord([0, 1]), fullRecord([0, 1, 2])], prepared, 100, 0.85, 16);
  assert.equal(estimate.earlyStop.passesPerRecord, 2);
  assert.equal(estimate.earlyStop.seconds, 100 * (1 + 2 * 1));
  // A record that loses anchors no other probe record lost is tried in anchor order: 0..6 won (wins can still
  // reach 9 until its second loss at anchor 8), then 7 and 8 lost: 9 passes.
  assert.equal(estimateCost([fullRecord([7, 8]), fullRecord([])], prepared, 1, 0.85, 16).earlyStop.passesPerRecord, (9 + 9) / 2);
  // At 0.5 a record that wins everything settles after 5 wins, in one step of 5.
  assert.deepEqual(earlyStopPasses(fullRecord([]).deltas, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 0.5, 16), { passes: 5, calls: 1 });
});

test('a probe stopped early counts the passes it ran; records in flight at once are timed by the probe\'s wall time', () => {
  const bounded: ProbeRecord = { prefixSeconds: 1, calls: [{ anchors: 2, seconds: 2 }, { anchors: 1, seconds: 1 }], bounded: true, deltas: [-1, -1, 0.5, NaN, NaN, NaN, NaN, NaN, NaN, NaN] };
  const estimate = estimateCost([bounded, bounded], prepared, 10, 0.85, 16);
  assert.equal(estimate.earlyStop.passesPerRecord, 3);
  assert.equal(estimate.earlyStop.seconds, 10 * (1 + 3 * 1));
  assert.equal(estimate.fullSeconds, 10 * (1 + 10 * 1));
  // Two records timed at 4 s each that ran side by side in 4 s of wall time: half as long.
  assert.equal(estimateCost([bounded, bounded], prepared, 10, 0.85, 16, 4).earlyStop.seconds, 10 * (1 + 3 * 1) / 2);
  assert.throws(() => estimateCost([], prepared, 10, 0.85, 16), /at least one probe record/);
});

test('a call\'s overhead is told apart from its passes when the probe\'s calls differ in size', () => {
  assert.deepEqual(fitCallCost([{ anchors: 2, seconds: 0.5 + 2 * 0.1 }, { anchors: 8, seconds: 0.5 + 8 * 0.1 }, { anchors: 16, seconds: 0.5 + 16 * 0.1 }]).perCall.toFixed(6), '0.500000');
  // Steps of 2 anchors with 0.5 s overhead each: a full record (one call of 10) costs 0.5 + 10 x 0.1 s, 5 calls of 2 cost 5 x 0.7.
  const stepped: ProbeRecord = { prefixSeconds: 0, bounded: true, calls: [{ anchors: 2, seconds: 0.7 }, { anchors: 8, seconds: 1.3 }], deltas: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1] };
  assert.equal(estimateCost([stepped], prepared, 10, 0.85, 16).fullSeconds.toFixed(6), (10 * 1.5).toFixed(6));
  // All calls of one size: no overhead can be told apart, seconds are per anchor.
  assert.deepEqual(fitCallCost([{ anchors: 4, seconds: 2 }, { anchors: 4, seconds: 2 }]), { perCall: 0, perAnchor: 0.5 });
});

test('the CLI\'s line names both times, and --min-score when the run has none', () => {
  const estimate = estimateCost([fullRecord([0, 1]), fullRecord([0, 1]), fullRecord([0, 1, 2])], prepared, 400, 0.85, 16);
  assert.equal(describeEstimate(estimate, false),
    'estimate: 400 more records in about 1h 13m; 20m 00s with exact early stop at 0.85 (2.0 of 10 anchors per record), --min-score 0.85 (from the first 3 records)');
  assert.equal(describeEstimate(estimate, true),
    'estimate: 400 more records in about 20m 00s with exact early stop at 0.85 (2.0 of 10 anchors per record); 1h 13m without it (from the first 3 records)');
});
