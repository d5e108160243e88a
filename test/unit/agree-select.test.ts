import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agreement, ranks, spearman } from '../../server/selection/agree';
import type { DatasetRecord } from '../../server/records/dataset';
import { embeddingSimilarity, tfidfSimilarity } from '../../server/selection/diverse';
import type { CandidateScore } from '../../server/scoring/golden';
import { select, type ScoredRecord } from '../../server/selection/select';

function record(index: number, text = `task ${index}`): DatasetRecord {
  return { instruction: text, input: '', output: `answer ${index}`, index, id: index.toString(16).padStart(16, '0'), start: 0, end: 0, original: {} } as DatasetRecord;
}

function score(index: number, golden: number, signals: Record<string, number | null> = {}, meanDelta = 0): CandidateScore {
  return { index, id: index.toString(16).padStart(16, '0'), goldenScore: golden, wins: Math.round(golden * 10), anchors: 10, meanDelta, deltas: [], truncated: false, signals };
}

test('Spearman: average ranks for ties, 1 for the same order, -1 for the reverse, as computed by hand', () => {
  assert.deepEqual(ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1]);
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  // ranks a = 1..5, b = 2,1,4,3,5: sum d^2 = 4, rho = 1 - 6*4/(5*24) = 0.8
  assert.ok(Math.abs(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])! - 0.8) < 1e-12);
  assert.equal(spearman([1, 1, 1], [1, 2, 3]), null, 'a constant side has no rank correlation');
});

test('agreement: top-10% overlap, threshold decisions and the verdict', () => {
  const records = Array.from({ length: 20 }, (_, i) => record(i));
  const first = records.map((r) => score(r.index, r.index / 20, { ifd: r.index / 40 }));
  const same = agreement(records, first, first, 0.5, ['small', 'large']);
  assert.deepEqual([same.goldenSpearman, same.top10Overlap, same.decisionAgreement, same.ifdPairs], [1, 1, 1, 20]);
  assert.match(same.verdict, /^small can stand in for large/);
  const reversed = records.map((r) => score(r.index, (19 - r.index) / 20, { ifd: null }));
  const other = agreement(records, first, reversed, 0.5, ['small', 'large']);
  assert.equal(other.goldenSpearman, -1);
  assert.equal(other.top10Overlap, 0);
  assert.equal(other.ifdSpearman, null);
  assert.equal(other.decisionAgreement, 0, 'records >= 0.5 for one are below it for the other');
  assert.match(other.verdict, /^small cannot stand in for large/);
});

test('rank by a signal follows its better end; bounds are min-inclusive, max-exclusive; missing values never pass', () => {
  const records = Array.from({ length: 6 }, (_, i) => record(i));
  const ifds = [0.5, 1, 0.9, null, 0.2, 0.95];
  const scored: ScoredRecord[] = records.map((r, i) => ({ record: r, score: score(i, [0.9, 0.8, 0.7, 0.95, 0.5, 0.6][i]!, { ifd: ifds[i]!, ppl_cond: 10 - i }) }));
  const byIfd = select(scored, { kind: 'top', count: 3, by: 'ifd', bounds: [{ signal: 'ifd', max: 1 }] });
  assert.deepEqual(byIfd.chosen.map((s) => s.record.index), [5, 2, 0]);
  const byPpl = select(scored, { kind: 'top', count: 2, by: 'ppl_cond' });
  assert.deepEqual(byPpl.chosen.map((s) => s.record.index), [5, 4], 'lower perplexity first');
  const bounded = select(scored, { kind: 'min-score', minScore: 0.7, bounds: [{ signal: 'ifd', min: 0.5 }] });
  assert.deepEqual(bounded.chosen.map((s) => s.record.index), [0, 1, 2], 'record 3 (golden 0.95) has no IFD');
  assert.throws(() => select(scored, { kind: 'all', by: 'nonsense' }), /no signal "nonsense"/);
});

test('diverse selection keeps the best of each group of near-duplicates, with embeddings or TF-IDF alike', () => {
  const texts = ['add two numbers', 'add two numbers please', 'write a poem about the sea', 'write a poem about the sea now', 'name three colours'];
  const records = texts.map((t, i) => record(i, t));
  const scored = records.map((r, i) => ({ record: r, score: score(i, [0.9, 0.8, 0.7, 0.95, 0.1][i]!) }));
  const unit = (v: number[]): Float32Array => Float32Array.from(v, (x) => x / Math.hypot(...v));
  const vectors = new Map(records.map((r, i) => [r.id, unit([[1, 0, 0], [1, 0.05, 0], [0, 1, 0], [0.02, 1, 0], [0, 0, 1]][i]!)]));
  const byEmbedding = select(scored, { kind: 'top', count: 3, diverse: 0.9 }, embeddingSimilarity(vectors));
  assert.deepEqual(byEmbedding.chosen.map((s) => s.record.index), [3, 0, 4]);
  assert.equal(byEmbedding.skippedAsDuplicates, 2);
  assert.equal(byEmbedding.similarity, 'embedding');
  const byText = select(scored, { kind: 'top', count: 3, diverse: 0.7 }, tfidfSimilarity(records));
  assert.deepEqual(byText.chosen.map((s) => s.record.index), [3, 0, 4]);
  assert.equal(byText.similarity, 'tfidf');
  const stopped = select(scored, { kind: 'top', count: 1, diverse: 0.9 }, embeddingSimilarity(vectors));
  assert.deepEqual([stopped.chosen.length, stopped.skippedAsDuplicates], [1, 0], 'the walk stops once the size is reached');
});
