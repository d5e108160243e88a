import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDataset } from '../../server/records/dataset';
import { hoverMarkdown } from '../../server/lsp/markdown';
import type { CandidateScore } from '../../server/scoring/golden';
import { findProblems } from '../../server/records/problems';
import { pairScores, select, writeSubset } from '../../server/selection/select';
import { describeKeyDifference, readScores, sameKey, ScoresWriter, type ScoresHeader } from '../../server/records/store';
import { scratchDir } from '../helpers';

const records = parseDataset(JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ instruction: `task ${i}`, input: '', output: `answer ${i}`, note: i }))), 'ten.json').records;
const scoreOf = (i: number, golden: number): CandidateScore => ({
  index: i, id: records[i]!.id, goldenScore: golden, wins: Math.round(golden * 4), anchors: 4, meanDelta: golden - 0.5, deltas: [0.1, -0.2, 0.3, golden], truncated: false,
});
const scores = new Map(records.map((r, i) => [r.id, scoreOf(i, [0.25, 1, 0.5, 0.75, 0, 1, 0.5, 0.25, 0.85, 0.9][i]!)]));
const header: ScoresHeader = {
  nuggets_scores: 1, model: { name: 'demo', fingerprint: 'f1' }, anchors: { hash: 'a1', count: 4 }, template: 't', maxAnchorTokens: 200,
  separator: '', dataset: 'ten.json', shard: null, created: 'now',
};

test('threshold, top-k and top-percent pick the right records', () => {
  const scored = pairScores(records, scores, 'scores');
  assert.deepEqual(select(scored, { kind: 'min-score', minScore: 0.85 }).chosen.map((s) => s.record.index).sort(), [1, 5, 8, 9]);
  assert.deepEqual(select(scored, { kind: 'top', count: 2 }).chosen.map((s) => s.record.index).sort(), [1, 5]);
  assert.equal(select(scored, { kind: 'top-percent', percent: 25 }).chosen.length, 3); // ceil(10 * 25%)
});

test('problem records: an empty or whitespace-only instruction or output, and exact repeats of an earlier record (not the first copy)', () => {
  const text = JSON.stringify([
    { instruction: 'a', input: '', output: 'b' }, { instruction: ' \t', input: 'x', output: 'b' }, { instruction: 'c', output: '\n' },
    { instruction: '', output: '' }, { instruction: 'a ', input: '', output: ' b' }, { instruction: 'a', input: 'other', output: 'b' },
  ]);
  assert.deepEqual(findProblems(parseDataset(text, 'p.json').records), [
    { index: 1, reason: 'empty-instruction' }, { index: 2, reason: 'empty-output' }, { index: 3, reason: 'empty' }, { index: 4, reason: { duplicateOf: 0 } },
  ]);
});

test('a problem record never enters a selection, however it scores, unless the rule keeps problems', () => {
  const withEmpty = parseDataset(JSON.stringify([...records.map((r) => r.original), { instruction: '', input: '', output: '' }]), 'eleven.json').records;
  const empty = withEmpty[10]!;
  const scored = pairScores(withEmpty, new Map([...scores, [empty.id, { ...scoreOf(0, 1), index: 10, id: empty.id, meanDelta: 9 }]]), 'scores');
  const top = select(scored, { kind: 'top', count: 1 });
  assert.equal(top.chosen[0]!.record.index, 1);
  assert.deepEqual(top.problemsLeftOut, [{ index: 10, reason: 'empty' }]);
  assert.equal(select(scored, { kind: 'top', count: 1, problems: 'kept' }).chosen[0]!.record.index, 10);
  assert.ok(!select(scored, { kind: 'min-score', minScore: 0.5 }).chosen.some((s) => s.record.index === 10));
});

test('with scores, the subset is the chosen records in dataset order, each as it was with its golden_score added last', () => {
  const dir = scratchDir('select');
  const { chosen } = select(pairScores(records, scores, 'scores'), { kind: 'top', count: 3 });
  writeSubset(join(dir, 'golden.json'), chosen, true);
  const expected = [1, 5, 9].map((i) => ({ ...records[i]!.original, golden_score: scores.get(records[i]!.id)!.goldenScore }));
  assert.equal(readFileSync(join(dir, 'golden.json'), 'utf8'), JSON.stringify(expected, null, 2) + '\n');
});

test('without scores, the subset is the chosen records exactly as they were: every field in its order, nothing added', () => {
  const dir = scratchDir('select');
  const raw = [
    { output: 'first answer', instruction: 'first', extra: { nested: [1, 'two', null, { deep: true }], 'ключ': 'значение ✓' } },
    { instruction: 'second', input: '', output: 'second answer' },
    { instruction: 'third, no input', output: 'third answer\n\twith "quotes"', golden: 0.5, tags: [], id: 'mine' },
  ];
  const odd = parseDataset(JSON.stringify(raw), 'odd.json').records;
  const oddScores = new Map(odd.map((r, i) => [r.id, { ...scoreOf(i, [0.5, 0, 1][i]!), id: r.id }]));
  const { chosen } = select(pairScores(odd, oddScores, 'scores'), { kind: 'top', count: 2 });
  writeSubset(join(dir, 'plain.json'), chosen, false);
  assert.equal(readFileSync(join(dir, 'plain.json'), 'utf8'), JSON.stringify([raw[0], raw[2]], null, 2) + '\n');
});

test('scores from another dataset are refused', () => {
  const other = parseDataset(JSON.stringify([{ instruction: 'x', output: 'y' }]), 'other.json').records;
  assert.throws(() => pairScores(other, scores, 'scores.jsonl'), /no score for any record of this dataset/);
  assert.throws(() => pairScores([...records, ...other].map((r, index) => ({ ...r, index })), scores, 'scores.jsonl'), /1 of 11 records have no score/);
});

test('the store appends, resumes after a cut line, and refuses another model', () => {
  const path = join(scratchDir('store'), 'scores.jsonl');
  const writer = ScoresWriter.open(path, header);
  writer.append(scoreOf(0, 0.25));
  writer.append(scoreOf(1, 1));
  writer.close();
  writeFileSync(path, readFileSync(path, 'utf8') + '{"index":2,"id":"abc","golden', { flag: 'w' }); // a killed writer's half line
  const resumed = ScoresWriter.open(path, header);
  assert.deepEqual([...resumed.existing.keys()], [records[0]!.id, records[1]!.id]);
  resumed.append(scoreOf(2, 0.5));
  resumed.close();
  const content = readScores(path);
  assert.equal(content.scores.size, 3);
  assert.equal(content.scores.get(records[2]!.id)!.goldenScore, 0.5);
  assert.throws(() => ScoresWriter.open(path, { ...header, model: { name: 'other', fingerprint: 'f2' } }), /holds scores computed with model demo \(f1\) instead of other \(f2\)/);
  assert.throws(() => ScoresWriter.open(path, { ...header, anchors: { hash: 'a2', count: 4 } }), /another anchor set/);
});

test('the scoring path is part of the key: cached and naive scores are never mixed, and a header without it reads as cached', () => {
  const cached: ScoresHeader = { ...header, scoringPath: 'cached' };
  const naive: ScoresHeader = { ...header, scoringPath: 'naive' };
  const { scoringPath: _none, ...old } = cached; // a header written before the path was recorded
  assert.equal(sameKey(cached, naive), false);
  assert.equal(sameKey(naive, cached), false);
  assert.equal(sameKey(cached, { ...cached }), true);
  assert.equal(sameKey(naive, { ...naive }), true);
  assert.equal(sameKey(old, cached), true, 'a missing path is the cached path');
  assert.equal(sameKey(cached, old), true);
  assert.equal(sameKey(old, naive), false);
  assert.equal(describeKeyDifference('s.jsonl', cached, naive), 's.jsonl holds scores computed with the cached path instead of the naive path (--reference).');
  assert.equal(describeKeyDifference('s.jsonl', naive, cached), 's.jsonl holds scores computed with the naive path (--reference) instead of the cached path.');
  assert.match(describeKeyDifference('s.jsonl', old, naive), /with the cached path \(its header predates the path's record: read as cached\) instead of the naive path/);
  assert.match(describeKeyDifference('s.jsonl', { ...naive, maxAnchorTokens: 100 }, cached), /maxAnchorTokens 100, the naive path \(--reference\) instead of the cached path\.$/);

  // Through the writer, both when it reads the file whole (open) and when it checks only the header (resume).
  for (const [first, second] of [[cached, naive], [naive, cached]] as const) {
    const path = join(scratchDir('store'), 'scores.jsonl');
    const writer = ScoresWriter.open(path, first);
    writer.append(scoreOf(0, 0.25));
    writer.close();
    const bytes = readFileSync(path);
    assert.throws(() => ScoresWriter.open(path, second), new RegExp(`holds scores computed with the ${first.scoringPath} path`));
    assert.throws(() => ScoresWriter.resume(path, second, new Map(), bytes.length), new RegExp(`holds scores computed with the ${first.scoringPath} path`));
    assert.deepEqual(readFileSync(path), bytes);
    assert.equal(ScoresWriter.open(path, first).existing.size, 1);
  }
});

test('scores read back as written: bounds, skipped anchors, and lines written by other tools', () => {
  const path = join(scratchDir('store'), 'scores.jsonl');
  const writer = ScoresWriter.open(path, { ...header, earlyStopAt: 0.85 });
  const full = { ...scoreOf(0, 0.25), meanDelta: -0.0625, deltas: [0.1234, -2, 0.0001, 0] };
  const bounded: CandidateScore = {
    ...scoreOf(1, 0.5), deltas: [0.5, -0.25, NaN, NaN], truncated: true, bound: { threshold: 0.85, above: false, low: 0.25, high: 0.75 },
  };
  writer.append(full);
  writer.append(bounded);
  writer.close();
  // The same fields in another order, as a script might write them: read through JSON.parse.
  const handWritten = { id: records[2]!.id, index: 2, wins: 1, anchors: 4, golden_score: 0.25, mean_delta: 0, truncated: false, deltas: [1, -1, -1, -1] };
  writeFileSync(path, `${JSON.stringify(handWritten)}\n`, { flag: 'a' });

  const read = readScores(path).scores;
  const copy = (s: CandidateScore): CandidateScore => ({ ...s, deltas: [...s.deltas] });
  assert.deepEqual(copy(read.get(full.id)!), full);
  assert.deepEqual(copy(read.get(bounded.id)!), { ...bounded, goldenScore: 0.75 }); // below the bound: its high end
  assert.deepEqual(read.get(records[2]!.id)!.deltas, [1, -1, -1, -1]);

  // Deltas damaged after the summary: the record still shows, and reading its deltas says where the damage is.
  const text = readFileSync(path, 'utf8').replace('"deltas":[0.1234,', '"deltas":[0.1234,,');
  writeFileSync(path, text);
  const damaged = readScores(path).scores.get(full.id)!;
  assert.equal(damaged.goldenScore, 0.25);
  assert.throws(() => damaged.deltas, /scores\.jsonl:2: malformed scores line/);
  assert.match(hoverMarkdown({ score: damaged, stale: false, anchors: undefined }),
    /Golden score 0\.25\*\*.*\n\n\*Its per-anchor deltas cannot be read: .*scores\\\.jsonl\\:2\\: malformed scores line/);
});
