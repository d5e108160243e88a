import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DatasetRecord } from '../../server/dataset';
import { compareRows, distributionOf, goldenIfdScatter, signalCells, signalChart } from '../../server/lsp/dashboard-queries';
import type { CandidateScore } from '../../server/scoring/golden';
import { signalNamed } from '../../server/signals';

function score(index: number, golden: number, ifd: number | null, meanDelta = 0): CandidateScore {
  return { index, id: String(index), goldenScore: golden, wins: golden * 10, anchors: 10, meanDelta, deltas: [], truncated: false, signals: { ppl_cond: 4, ppl_direct: ifd === null ? null : 4 / ifd, ifd } };
}
const records = Array.from({ length: 5 }, (_, index) => ({ index, id: String(index), instruction: '', input: '', output: '' }) as DatasetRecord);
const scores = [score(0, 0.5, 0.8), undefined, score(2, 0.9, null), score(3, 0.1, 1.2), score(4, 0.5, 0.4, 1)];

test('the distribution counts golden scores per bin and charts each signal over its own range', () => {
  const d = distributionOf(5, scores, 1, 10);
  assert.deepEqual([d.total, d.scored, d.stale, d.goldenScores], [5, 4, 1, [0.9, 0.5, 0.5, 0.1]]);
  assert.equal(d.counts[5], 2);
  assert.deepEqual(d.signals.map((s) => s.name), ['ppl_cond', 'ppl_direct', 'ifd']);
  const ifd = signalChart(signalNamed('ifd')!, scores, 4);
  assert.deepEqual([ifd.from, ifd.to, ifd.missing, ifd.counts], [0.4, 1.2, 1, [1, 0, 1, 1]]);
  assert.equal(ifd.summary.median, 0.8);
});

test('the scatter has one point per record with both a golden score and IFD', () => {
  assert.deepEqual(goldenIfdScatter(records, scores), [{ index: 0, x: 0.5, y: 0.8 }, { index: 3, x: 0.1, y: 1.2 }, { index: 4, x: 0.5, y: 0.4 }]);
});

test('table cells are formatted by each signal\'s declaration, and rows sort by any signal with missing values last', () => {
  assert.deepEqual(signalCells(scores[0]), { ppl_cond: '4', ppl_direct: '5', ifd: '0.8' });
  assert.deepEqual(signalCells(undefined), { ppl_cond: '—', ppl_direct: '—', ifd: '—' });
  const rows = records.map((r, i) => ({ index: r.index, ...(scores[i] ? { score: scores[i] } : {}) }));
  assert.deepEqual([...rows].sort(compareRows('ifd', true)).map((r) => r.index), [3, 0, 4, 1, 2]);
  assert.deepEqual([...rows].sort(compareRows('goldenScore', true)).map((r) => r.index), [2, 4, 0, 3, 1], 'ties by mean delta');
  assert.deepEqual([...rows].sort(compareRows('index', false)).map((r) => r.index), [0, 1, 2, 3, 4]);
});
