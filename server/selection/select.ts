/**
 * The golden subset: records ranked by one signal (golden score by default), cut to a threshold, the
 * top k or the top p percent, within bounds on other signals, optionally kept diverse (diverse.ts),
 * and written as a new Alpaca JSON file with the records exactly as they were (optionally with their score).
 */
import type { DatasetRecord, Example } from '../records/dataset';
import type { SimilaritySource } from './diverse';
import { NuggetsError } from '../io/errors';
import { writeFileAtomic } from '../io/files';
import { findProblems, type RecordProblem } from '../records/problems';
import type { CandidateScore } from '../scoring/golden';
import { golden } from '../signals/golden';
import { SIGNALS, signalNamed, type Signal, type SignalValue } from '../signals';
import type { SelectionRule, SignalBound } from './selection-rule';

export type { SelectionRule, SignalBound } from './selection-rule';

/**
 * What selection reads of a record: its index and id, and its instruction and output as far as problems.ts reads
 * them (empty or not). A DatasetRecord, or a record kept without its text by a pass over a large dataset (select-pass.ts).
 */
export type SelectableRecord = Example & { index: number; id: string };

export interface ScoredRecord<R extends SelectableRecord = DatasetRecord> {
  record: R;
  score: CandidateScore;
}

export interface Selection<R extends SelectableRecord = DatasetRecord> {
  /** Best first. */
  chosen: ScoredRecord<R>[];
  /** Records within the rule that diversity skipped as near-duplicates of a kept one. */
  skippedAsDuplicates: number;
  /** What similarity diversity used: the model's embeddings, or TF-IDF when embeddings are missing. */
  similarity?: 'embedding' | 'tfidf';
  /** Problem records the rule left out of consideration (none when it keeps them), in dataset order. */
  problemsLeftOut: RecordProblem[];
}

/** Pairs each record with its score; every record must have one (a scores file of this dataset). */
export function pairScores<R extends SelectableRecord>(records: R[], scores: Map<string, CandidateScore>, scoresSource: string): ScoredRecord<R>[] {
  const missing = records.filter((r) => !scores.has(r.id));
  if (missing.length === records.length) {
    throw new NuggetsError(`${scoresSource} has no score for any record of this dataset: it was computed for another dataset.`);
  }
  if (missing.length > 0) {
    const first = missing[0]!;
    throw new NuggetsError(
      `${missing.length} of ${records.length} records have no score in ${scoresSource} (first: index ${first.index}).`,
      'Finish the score run (rerun `nuggets score` to resume), or pass every shard\'s scores file with --scores.',
    );
  }
  return records.map((record) => ({ record, score: scores.get(record.id)! }));
}

/** Best first by `signal` (missing values last), then mean delta, then dataset order. */
export function rank<T extends { record: { index: number }; score: CandidateScore }>(scored: T[], signal: Signal = golden): T[] {
  const sign = signal.better === 'higher' ? -1 : 1;
  const keyed = scored.map((s) => ({ s, v: signal.valueOf(s.score) }));
  keyed.sort((a, b) => compareValues(a.v, b.v, sign) || b.s.score.meanDelta - a.s.score.meanDelta || a.s.record.index - b.s.record.index);
  return keyed.map((k) => k.s);
}

function compareValues(a: SignalValue, b: SignalValue, sign: number): number {
  if (a === null || b === null) return (a === null ? 1 : 0) - (b === null ? 1 : 0);
  return sign * (a - b);
}

export function signalFor(name: string | undefined): Signal {
  if (name === undefined) return golden;
  const signal = signalNamed(name);
  if (!signal) throw new NuggetsError(`There is no signal "${name}" to select by.`, `Choose one of ${SIGNALS.map((s) => s.name).join(', ')}.`);
  return signal;
}

/** The rule's bounds, with --min-score as a bound on the golden score. */
function boundsOf(rule: SelectionRule): SignalBound[] {
  const bounds = [...(rule.bounds ?? [])];
  if (rule.kind === 'min-score') {
    if (!(rule.minScore >= 0 && rule.minScore <= 1)) throw new NuggetsError(`--min-score must be between 0 and 1 (got ${rule.minScore}).`);
    bounds.push({ signal: golden.name, min: rule.minScore });
  }
  return bounds;
}

function within(score: CandidateScore, bounds: readonly { signal: Signal; min?: number; max?: number }[]): boolean {
  return bounds.every(({ signal, min, max }) => {
    const v = signal.valueOf(score);
    return v !== null && (min === undefined || v >= min) && (max === undefined || v < max);
  });
}

/** How many records the rule keeps at most: undefined for every record within the bounds. */
function sizeOf(rule: SelectionRule, total: number): number | undefined {
  switch (rule.kind) {
    case 'top':
      if (!Number.isInteger(rule.count) || rule.count < 1) throw new NuggetsError(`--top must be a positive integer (got ${rule.count}).`);
      return rule.count;
    case 'top-percent':
      if (!(rule.percent > 0 && rule.percent <= 100)) throw new NuggetsError(`--top-percent must be in (0, 100] (got ${rule.percent}).`);
      return Math.ceil((total * rule.percent) / 100);
    default:
      return undefined;
  }
}

/**
 * The records the rule keeps, best first. With `diverse`, the walk keeps a record only when it is not
 * a near-duplicate of one already kept (`similarity` gives the vectors; see diverse.ts).
 */
export function select<R extends SelectableRecord>(scored: ScoredRecord<R>[], rule: SelectionRule, similarity?: SimilaritySource): Selection<R> {
  const by = signalFor(rule.by);
  const bounds = boundsOf(rule).map((b) => ({ ...b, signal: signalFor(b.signal) }));
  // A top-percent rule's size counts every record of the dataset, as the paper's "top 1%" does.
  const size = sizeOf(rule, scored.length);
  const problemsLeftOut = rule.problems === 'kept' ? [] : problemsOf(scored);
  const leftOut = new Set(problemsLeftOut.map((p) => p.index));
  const ranked = rank(scored.filter((s) => !leftOut.has(s.record.index) && within(s.score, bounds)), by)
    .filter((s) => by.valueOf(s.score) !== null);
  if (rule.diverse === undefined) return { chosen: size === undefined ? ranked : ranked.slice(0, size), skippedAsDuplicates: 0, problemsLeftOut };
  if (!(rule.diverse > 0 && rule.diverse <= 1)) throw new NuggetsError(`--diverse must be a cosine similarity in (0, 1] (got ${rule.diverse}).`);
  if (!similarity) throw new Error('diverse selection needs a similarity source');
  const walk = similarity.walk(ranked.map((s) => s.record), rule.diverse, size ?? ranked.length);
  return { chosen: walk.kept.map((k) => ranked[k]!), skippedAsDuplicates: walk.skipped, similarity: similarity.kind, problemsLeftOut };
}

/** The problem records among `scored` (problems.ts), judged in dataset order. */
export function problemsOf(scored: readonly ScoredRecord<SelectableRecord>[]): RecordProblem[] {
  return findProblems([...scored].map((s) => s.record).sort((a, b) => a.index - b.index));
}

/** A short name for a rule, for file names: min0.85, top100, top10pct, by-ifd, diverse0.9. */
export function ruleLabel(rule: SelectionRule): string {
  const size = rule.kind === 'min-score' ? `min${rule.minScore}` : rule.kind === 'top' ? `top${rule.count}` : rule.kind === 'top-percent' ? `top${rule.percent}pct` : 'all';
  const by = rule.by && rule.by !== golden.name ? `-by-${rule.by}` : '';
  const bounds = (rule.bounds ?? []).map((b) => `-${b.signal}${b.min !== undefined ? `-min${b.min}` : ''}${b.max !== undefined ? `-max${b.max}` : ''}`).join('');
  return `${size}${by}${bounds}${rule.diverse !== undefined ? `-diverse${rule.diverse}` : ''}${rule.problems === 'kept' ? '-with-problems' : ''}`;
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
