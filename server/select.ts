/**
 * The golden subset: records at or above a score threshold, the top k, or the top p percent, written
 * as a new Alpaca JSON file with the records exactly as they were (optionally with their score).
 */
import type { DatasetRecord } from './dataset';
import { NuggetsError } from './errors';
import { writeFileAtomic } from './files';
import type { CandidateScore } from './scoring/golden';

export type SelectionRule =
  | { kind: 'min-score'; minScore: number }
  | { kind: 'top'; count: number }
  | { kind: 'top-percent'; percent: number };

export interface ScoredRecord {
  record: DatasetRecord;
  score: CandidateScore;
}

/** Pairs each record with its score; every record must have one (a scores file of this dataset). */
export function pairScores(records: DatasetRecord[], scores: Map<string, CandidateScore>, scoresSource: string): ScoredRecord[] {
  const missing = records.filter((r) => !scores.has(r.id));
  if (missing.length === records.length) {
    throw new NuggetsError(`${scoresSource} has no score for any record of this dataset: it was computed for another dataset.`);
  }
  if (missing.length > 0) {
    const first = missing[0]!;
    throw new NuggetsError(
      `${missing.length} of ${records.length} records have no score in ${scoresSource} (first: record ${first.index}).`,
      'Finish the score run (rerun `nuggets score` to resume), or pass every shard\'s scores file with --scores.',
    );
  }
  return records.map((record) => ({ record, score: scores.get(record.id)! }));
}

/** Best first: golden score, then mean delta, then dataset order. */
export function rank(scored: ScoredRecord[]): ScoredRecord[] {
  return [...scored].sort((a, b) => b.score.goldenScore - a.score.goldenScore || b.score.meanDelta - a.score.meanDelta || a.record.index - b.record.index);
}

export function select(scored: ScoredRecord[], rule: SelectionRule): ScoredRecord[] {
  const ranked = rank(scored);
  switch (rule.kind) {
    case 'min-score':
      if (!(rule.minScore >= 0 && rule.minScore <= 1)) throw new NuggetsError(`--min-score must be between 0 and 1 (got ${rule.minScore}).`);
      return ranked.filter((s) => s.score.goldenScore >= rule.minScore);
    case 'top':
      if (!Number.isInteger(rule.count) || rule.count < 1) throw new NuggetsError(`--top must be a positive integer (got ${rule.count}).`);
      return ranked.slice(0, rule.count);
    case 'top-percent':
      if (!(rule.percent > 0 && rule.percent <= 100)) throw new NuggetsError(`--top-percent must be in (0, 100] (got ${rule.percent}).`);
      return ranked.slice(0, Math.ceil((scored.length * rule.percent) / 100));
  }
}

/** Writes the chosen records in dataset order, as they were in the source. */
export function writeSubset(path: string, chosen: ScoredRecord[], withScores: boolean): void {
  const records = [...chosen].sort((a, b) => a.record.index - b.record.index)
    .map((s) => (withScores ? { ...s.record.original, golden_score: s.score.goldenScore } : s.record.original));
  writeFileAtomic(path, stringifyRecords(path, records, chosen) + '\n');
}

/** JSON.stringify recurses once per nesting level: a record nested thousands deep is named instead of overflowing the stack. */
function stringifyRecords(path: string, records: unknown[], chosen: ScoredRecord[]): string {
  try {
    return JSON.stringify(records, null, 2);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    const sorted = [...chosen].sort((a, b) => a.record.index - b.record.index);
    const deep = sorted.find((s) => {
      try {
        JSON.stringify(s.record.original);
        return false;
      } catch {
        return true;
      }
    });
    throw new NuggetsError(
      `Cannot write ${path}: record ${deep?.record.index ?? '?'} of the dataset is nested too deeply to be written back as JSON.`,
      'Flatten or remove its deeply nested extra fields, then select again.',
    );
  }
}
