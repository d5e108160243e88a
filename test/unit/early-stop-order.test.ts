/**
 * Exact early stop with anchors ordered to stop sooner (server/scoring/anchor-order.ts), on real records with the
 * demo model: the same outcomes against the threshold as full scores and as the fixed order, the same golden
 * scores for every record scored in full, fewer one-shot passes, and the same results when resumed or with several
 * records in flight.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chooseKMeans } from '../../server/records/anchors';
import type { DatasetRecord } from '../../server/records/dataset';
import { AnchorOrder, storedWin } from '../../server/scoring/anchor-order';
import type { PreparedAnchors, ScoringBackend } from '../../server/scoring/backend';
import { scoreRecords, type CandidateScore, type EarlyStop } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { demoModel, sharedRecords } from '../helpers';

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);
/** 48 real records from three Alpaca files, and 24 k-means anchors from other records of the same files. */
const candidates: DatasetRecord[] = ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json']
  .map((file) => sharedRecords(file, range(1000, 16)))
  .flatMap((records, f) => records.map((r, k) => ({ ...r, index: f * 16 + k })));
const pool: DatasetRecord[] = ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json']
  .flatMap((file) => sharedRecords(file, range(2000, 60))).map((r, index) => ({ ...r, index }));
const BATCH = 8;

let backend: LocalBackend;
let prepared: PreparedAnchors;
let full: CandidateScore[];

before(async () => {
  backend = await LocalBackend.open(demoModel, { path: 'cached', threads: 1 });
  prepared = await backend.prepareAnchors(chooseKMeans(pool, 24, 0), { maxAnchorTokens: 200, separator: '', batchSize: BATCH });
  full = await run(undefined);
});
after(async () => backend.dispose());

async function run(stop: EarlyStop | undefined, records: readonly DatasetRecord[] = candidates, inFlight = 1, scoring: ScoringBackend = backend): Promise<CandidateScore[]> {
  const scores: CandidateScore[] = [];
  await scoreRecords(scoring, prepared, records, (s) => scores.push(s), undefined, stop, inFlight);
  return scores;
}

/**
 * The demo model with one straggler: record 3's prefix pass waits until record 20 starts (or 3 s), so that records
 * after it end first. A record whose order learns from record 3 must wait for it.
 */
function withStraggler(): ScoringBackend {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
    setTimeout(resolve, 3000);
  });
  return {
    identity: backend.identity,
    prepareAnchors: (anchors, options, signal) => backend.prepareAnchors(anchors, options, signal),
    candidatePasses: async (candidate, anchors) => {
      if (candidate.instruction === candidates[20]!.instruction) release();
      if (candidate.instruction === candidates[3]!.instruction) await released;
      return backend.candidatePasses(candidate, anchors);
    },
    oneShot: (candidate, anchors, indices, signal) => backend.oneShot(candidate, anchors, indices, signal),
    dispose: () => Promise.resolve(),
  };
}

const passes = (scores: CandidateScore[]): number => scores.reduce((n, s) => n + s.deltas.filter((d) => !Number.isNaN(d)).length, 0);
const above = (s: CandidateScore, t: number): boolean => (s.bound ? s.bound.above : s.goldenScore >= t);

for (const threshold of [0.3, 0.85]) {
  test(`at ${threshold}: ordered and fixed early stop decide every record as full scores do, keep full scores exact, and the order spends fewer passes`, async () => {
    const fixed = await run({ threshold, batchSize: BATCH });
    const ordered = await run({ threshold, batchSize: BATCH, ordering: new AnchorOrder(prepared.count) });
    for (const [k, f] of full.entries()) {
      for (const [name, early] of [['fixed', fixed[k]!], ['ordered', ordered[k]!]] as const) {
        assert.equal(early.id, f.id);
        assert.equal(above(early, threshold), f.goldenScore >= threshold, `${name}: record ${f.index} (golden ${f.goldenScore}) on the wrong side of ${threshold}`);
        if (!early.bound) {
          assert.equal(early.goldenScore, f.goldenScore, `${name}: record ${f.index} scored in full`);
          assert.deepEqual(early.deltas, f.deltas);
        } else {
          assert.ok(early.bound.low <= f.goldenScore && f.goldenScore <= early.bound.high, `${name}: record ${f.index}: ${f.goldenScore} outside [${early.bound.low}, ${early.bound.high}]`);
          // What it did score is what a full run scores.
          early.deltas.forEach((d, i) => assert.ok(Number.isNaN(d) || d === f.deltas[i], `${name}: record ${f.index}, anchor ${i}`));
        }
      }
    }
    const [none, today, sooner] = [passes(full), passes(fixed), passes(ordered)];
    process.stdout.write(`# at ${threshold}: ${sooner} passes ordered, ${today} in the fixed order, ${none} without early stop\n`);
    assert.ok(sooner < today, `ordered ${sooner} vs fixed ${today}`);
    assert.ok(sooner < none && today <= none);
  });
}

test('a resumed run, and a run with records in flight (one of them a straggler), try the same anchors in the same order as one uninterrupted run', async () => {
  const stop = (inFlight = 1): EarlyStop => ({ threshold: 0.85, batchSize: BATCH, ordering: new AnchorOrder(prepared.count, inFlight) });
  const whole = await run(stop());
  // Interrupted after 21 records: the resumed run learns them as the scores file stores them (deltas to 1e-4).
  const first = await run(stop(), candidates.slice(0, 21));
  const resumed = stop();
  for (const s of first) resumed.ordering!.learn(s.deltas.map((d) => (Number.isNaN(d) ? NaN : Math.round(d * 1e4) / 1e4)));
  const rest = await run(resumed, candidates.slice(21));
  assert.deepEqual([...first, ...rest].map(({ embedding: _e, ...s }) => s), whole.map(({ embedding: _e, ...s }) => s));
  const inFlight = await run(stop(3), candidates, 3, withStraggler());
  assert.deepEqual(inFlight.map(({ embedding: _e, ...s }) => s), whole.map(({ embedding: _e, ...s }) => s));
  // The order did change as the run learned: later records skip other anchors than the first ones.
  const skipped = (s: CandidateScore): string => s.deltas.map((d) => (Number.isNaN(d) ? '-' : '+')).join('');
  assert.ok(new Set(whole.filter((s) => s.bound).map(skipped)).size > 1);
});

test('the order puts the anchors lost most often first, learns a delta as the scores file stores it, and waits for what it learns from', () => {
  const order = new AnchorOrder(3);
  assert.deepEqual(order.orderFor(0, [0, 1, 2]), [0, 1, 2]);
  for (let k = 0; k < 8; k++) order.learn([1, -1, k < 4 ? -1 : NaN]);
  // Anchor 1: 8 losses of 8; anchor 2: 4 of 4; anchor 0: none.
  assert.deepEqual(order.orderFor(16, [0, 1, 2]), [1, 2, 0]);
  assert.deepEqual(order.orderFor(16, [0, 2]), [2, 0]);
  // Records 8 to 15 learn from nothing yet (the window before their own), record 16 from the first 8.
  assert.deepEqual(order.orderFor(15, [0, 1, 2]), [0, 1, 2]);
  assert.throws(() => order.orderFor(24, [0, 1, 2]), /needs the first 16 records learned \(8 are\)/);
  assert.equal(storedWin(0.00004), false); // stored as 0
  assert.equal(storedWin(0.00006), true);
  assert.equal(storedWin(-0.2), false);
});
