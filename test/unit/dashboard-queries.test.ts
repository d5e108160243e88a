import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { parseDataset, type DatasetRecord } from '../../server/records/dataset';
import { checkedBounds, compareRows, distributionOf, goldenIfdScatter, nearestNeighbours, recordFilter, signalCells, signalChart, wholeRecord, withinBounds } from '../../server/lsp/dashboard-queries';
import type { CandidateScore } from '../../server/scoring/golden';
import { signalNamed } from '../../server/signals';
import { sharedData } from '../helpers';

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

test('nearest neighbours by embedding: most similar first, never the record itself, only records with an embedding', () => {
  const unit = (v: number[]): Float32Array => Float32Array.from(v, (x) => x / Math.hypot(...v));
  const embeddings = new Map([['0', unit([1, 0])], ['1', unit([0.9, 0.1])], ['2', unit([0, 1])], ['4', unit([1, 1])]]);
  const found = nearestNeighbours(records, embeddings, 0, 2);
  assert.deepEqual(found.map((n) => n.index), [1, 4]);
  assert.ok(Math.abs(found[1]!.similarity - Math.SQRT1_2) < 1e-6);
  assert.deepEqual(nearestNeighbours(records, embeddings, 3, 2), [], 'a record without an embedding has none');
});

test('a long-tailed signal is binned on a log scale: one outlier keeps its own bin without squeezing the rest into the first', () => {
  // 399 IFDs between 0.5 and 1.2, and one of 9.45 (the real file that flattened the old linear chart).
  const many = Array.from({ length: 400 }, (_, i) => score(i, 0.5, i === 17 ? 9.45 : 0.5 + (0.7 * i) / 399));
  const chart = signalChart(signalNamed('ifd')!, many, 20);
  assert.equal(chart.scale, 'log');
  assert.deepEqual([chart.from, chart.to], [0.5, 9.45]);
  assert.equal(chart.counts[19], 1, 'the outlier alone in the last bin');
  assert.ok(chart.counts.filter((c) => c > 0).length >= 7, `the other 399 spread over several bins: ${chart.counts.join(' ')}`);
  assert.equal(chart.counts.reduce((a, b) => a + b, 0), 400);
  // A linear bin of the same range would put all 399 in the first two bins.
  assert.equal(signalChart(signalNamed('mean_delta')!, many, 20).scale, 'linear', 'a signal that can be negative stays linear');
});

test('the table filter keeps records within every range (min inclusive, max exclusive) and containing both texts, case-insensitively', () => {
  const texts = [['Sum two numbers', '', 'The SUM is 5'], ['Name a colour', 'bright', 'Red'], ['Sum a list', '', 'six'], ['Translate', 'Hola', 'Hello'], ['', '', '']];
  const recs = texts.map(([instruction, input, output], index) => ({ index, id: String(index), instruction, input, output }) as DatasetRecord);
  const kept = (filter: Parameters<typeof recordFilter>[0]): number[] => recs.filter((r, i) => recordFilter(filter, 'test')(r, scores[i])).map((r) => r.index);
  assert.deepEqual(kept(undefined), [0, 1, 2, 3, 4]);
  assert.deepEqual(kept({ bounds: [{ signal: 'golden', min: 0.5 }] }), [0, 2, 4], 'unscored record 1 is outside any range');
  assert.deepEqual(kept({ bounds: [{ signal: 'golden', min: 0.5, max: 0.9 }] }), [0, 4], 'max is exclusive');
  assert.deepEqual(kept({ bounds: [{ signal: 'golden', min: 0.5 }, { signal: 'ifd', max: 1 }] }), [0, 4], 'record 2 has no IFD: outside a range on it');
  assert.deepEqual(kept({ instruction: 'sum' }), [0, 2]);
  assert.deepEqual(kept({ instruction: 'HOLA' }), [3], 'the instruction search covers the input');
  assert.deepEqual(kept({ instruction: 'sum', output: 'sum is' }), [0]);
  assert.deepEqual(kept({ instruction: '   ' }), [0, 1, 2, 3, 4], 'blank search: no filter');
  assert.equal(withinBounds(undefined, []), true, 'no range keeps even an unscored record');
});

test('a bad range is refused, naming the request, the range and what is wrong', () => {
  assert.throws(() => checkedBounds([{ signal: 'wins', min: 1 }], 'The table\'s filter'), /The table's filter: range 1 names no signal a range can take \("wins"\); use one of golden, mean_delta/);
  assert.throws(() => checkedBounds([{ signal: 'golden' }, { signal: 'ifd', min: 2, max: 2 }], 'Export Scores'), /Export Scores: range 2 \(ifd\) is empty: its min 2 is not below its max 2/);
  assert.throws(() => checkedBounds([{ signal: 'ifd', max: Number.NaN }], 'x'), /the max of range 1 \(ifd\) is not a finite number/);
  assert.throws(() => checkedBounds([{ signal: 'ifd', min: '1' as unknown as number }], 'x'), /the min of range 1 \(ifd\) is not a finite number: "1"/);
  assert.throws(() => recordFilter({ output: 5 as unknown as string }, 'x'), /the output search is not text: 5/);
});

test('the record view\'s whole record: an Alpaca record\'s three fields; a conversation\'s turns with roles, the final assistant turn scored', () => {
  const path = sharedData('fastchat-identity.sharegpt.json');
  const conversation = parseDataset(readFileSync(path, 'utf8'), path).records[0]!;
  const source = (JSON.parse(readFileSync(path, 'utf8')) as { conversations: { from: string; value: string }[] }[])[0]!.conversations;
  const whole = wholeRecord(conversation);
  assert.deepEqual(whole.turns, source.map((t) => ({ role: t.from === 'human' ? 'user' : 'assistant', content: t.value.trim() })));
  assert.equal(whole.scoredTurn, source.length - 1);
  assert.equal(whole.turns![whole.scoredTurn!]!.role, 'assistant');
  assert.equal(whole.output, source.at(-1)!.value.trim(), 'the output is the scored turn, whole');
  const three = (JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')) as unknown[]).slice(0, 3);
  const alpaca = parseDataset(JSON.stringify(three, null, 2), 'gsm8k-3.alpaca.json').records[2]!;
  assert.deepEqual(wholeRecord(alpaca), { instruction: alpaca.instruction, input: alpaca.input, output: alpaca.output });
  assert.ok(alpaca.output.includes('\n'), 'kept whole, line breaks and all');
});
