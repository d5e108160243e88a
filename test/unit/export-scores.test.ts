import assert from 'node:assert/strict';
import { test } from 'node:test';
import { anchorEffectsOf, recordEffectsOf } from '../../server/lsp/anchor-effects';
import { exportColumns, formatScores, type ExportRecord } from '../../server/selection/export-scores';
import type { CandidateScore } from '../../server/scoring/golden';

function score(index: number, deltas: number[], signals: CandidateScore['signals'] = { ppl_cond: 4, ppl_direct: 8, ifd: 0.5 }): CandidateScore {
  const wins = deltas.filter((d) => d > 0).length;
  const counted = deltas.filter((d) => !Number.isNaN(d));
  return {
    index, id: `id${index}`, goldenScore: wins / deltas.length, wins, anchors: deltas.length,
    meanDelta: counted.reduce((a, b) => a + b, 0) / counted.length, deltas, truncated: false, ...(signals ? { signals } : {}),
  };
}

const records: ExportRecord[] = [
  { index: 0, id: 'id0', score: score(0, [0.5, -0.25, 1]) },
  { index: 1, id: 'id1', score: undefined },
  { index: 2, id: 'a,"quoted" id', score: score(2, [-1, NaN, 2], { ppl_cond: 3, ppl_direct: null, ifd: null }) },
];

test('the columns are index, id, golden_score, wins, mean_delta, the signals, then one delta per anchor when asked', () => {
  assert.deepEqual(exportColumns(3, false), ['index', 'id', 'golden_score', 'wins', 'mean_delta', 'ppl_cond', 'ppl_direct', 'ifd']);
  assert.deepEqual(exportColumns(3, true).slice(-3), ['delta_1', 'delta_2', 'delta_3']);
});

test('CSV: a header line, a row per record in dataset order, empty cells where a value is missing, quoting per RFC 4180', () => {
  const csv = formatScores(records, 3, 'csv', true);
  const lines = csv.split('\n');
  assert.equal(lines.length, 5, 'header, three records, final newline');
  assert.equal(lines[0], 'index,id,golden_score,wins,mean_delta,ppl_cond,ppl_direct,ifd,delta_1,delta_2,delta_3');
  assert.equal(lines[1], `0,id0,${2 / 3},2,0.4166666666666667,4,8,0.5,0.5,-0.25,1`);
  assert.equal(lines[2], '1,id1,,,,,,,,,', 'an unscored record keeps its row');
  assert.equal(lines[3], `2,"a,""quoted"" id",${1 / 3},1,0.5,3,,,-1,,2`, 'an anchor an early stop skipped and an undefined signal are empty');
  assert.equal(lines[4], '');
  assert.equal(formatScores(records, 3, 'csv', false).split('\n')[0], 'index,id,golden_score,wins,mean_delta,ppl_cond,ppl_direct,ifd');
});

test('JSON Lines: one object per record, nulls where a value is missing, deltas as one array when asked', () => {
  const lines = formatScores(records, 3, 'jsonl', true).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines[0], { index: 0, id: 'id0', golden_score: 2 / 3, wins: 2, mean_delta: 0.4166666666666667, ppl_cond: 4, ppl_direct: 8, ifd: 0.5, deltas: [0.5, -0.25, 1] });
  assert.deepEqual(lines[1], { index: 1, id: 'id1', golden_score: null, wins: null, mean_delta: null, ppl_cond: null, ppl_direct: null, ifd: null, deltas: [null, null, null] });
  assert.deepEqual(lines[2]!.deltas, [-1, null, 2]);
  const plain = JSON.parse(formatScores(records, 3, 'jsonl', false).split('\n')[0]!) as Record<string, unknown>;
  assert.equal('deltas' in plain, false);
  assert.equal(formatScores([], 3, 'jsonl', false), '');
});

const anchors = [
  { instruction: 'Add two numbers', input: '2 and 3', output: '5' },
  { instruction: 'An anchor whose response is empty', input: '', output: '' },
  { instruction: `A long anchor ${'word '.repeat(100)}`, input: '', output: 'x' },
];

test('anchor effects: win rate and mean delta over distinct records; an anchor no record moves has moved 0', () => {
  const scores = [score(0, [0.5, 0, -1]), score(1, [-0.5, 0, NaN]), { ...score(0, [0.5, 0, -1]), index: 5 }];
  const effects = anchorEffectsOf(anchors, scores);
  assert.deepEqual(effects.map((e) => [e.winRate, e.meanDelta, e.moved]), [[0.5, 0, 2], [0, 0, 0], [0, -1, 1]]);
  assert.equal(effects[2]!.instruction, `A long anchor ${'word '.repeat(100)}`.trim(), 'the anchor\'s whole text');
  assert.deepEqual(anchorEffectsOf(anchors, []).map((e) => e.moved), [0, 0, 0]);
});

test('record effects: every anchor\'s delta in anchor order, null where it was not scored', () => {
  assert.deepEqual(recordEffectsOf(score(0, [0.5, NaN, -1]), anchors).map((e) => [e.index, e.instruction.slice(0, 15), e.input, e.delta]),
    [[0, 'Add two numbers', '2 and 3', 0.5], [1, 'An anchor whose', '', null], [2, 'A long anchor w', '', -1]]);
});
