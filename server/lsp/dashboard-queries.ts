/**
 * The dashboard's queries as pure functions of a document's records and their current scores (no
 * connection, no store): the golden-score distribution, a chart per signal, the golden-vs-IFD scatter,
 * and the table's order and signal cells. server.ts gathers the inputs and answers with these.
 */
import type { DatasetRecord } from '../dataset';
import type * as protocol from '../protocol';
import type { CandidateScore, ScoreSummary } from '../scoring/golden';
import { PASS_SIGNALS, signalNamed, type Signal } from '../signals';
import { dot } from '../signals/embedding';

/** Scores in record order; undefined where a record has no current score. */
export type CurrentScores = readonly (CandidateScore | undefined)[];

export function distributionOf(total: number, scores: CurrentScores, stale: number, bins: number, problems: protocol.ProblemRecord[] = []): protocol.DistributionResult {
  const counts = new Array<number>(bins).fill(0);
  const goldenScores = scores.flatMap((s) => (s ? [s.goldenScore] : [])).sort((a, b) => b - a);
  for (const g of goldenScores) counts[Math.min(bins - 1, Math.floor(g * bins))]!++;
  return {
    total, scored: goldenScores.length, stale, counts, goldenScores,
    meanGoldenScore: goldenScores.length ? goldenScores.reduce((a, b) => a + b, 0) / goldenScores.length : null,
    signals: PASS_SIGNALS.map((signal) => signalChart(signal, scores, bins)),
    problems,
  };
}

export function signalInfo(signal: Signal): protocol.SignalInfo {
  return { name: signal.name, label: signal.label, unit: signal.unit, description: signal.description, better: signal.better };
}

/** A histogram of one signal over [min, max] of its values, and how many records lack it. */
export function signalChart(signal: Signal, scores: CurrentScores, bins: number): protocol.SignalChart {
  const values = scores.flatMap((s) => (s ? [signal.valueOf(s)] : []));
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const from = present.length ? Math.min(...present) : 0;
  const to = present.length ? Math.max(...present) : 0;
  const counts = new Array<number>(bins).fill(0);
  for (const v of present) counts[to > from ? Math.min(bins - 1, Math.floor(((v - from) / (to - from)) * bins)) : 0]!++;
  return { ...signalInfo(signal), counts, from, to, missing: values.length - present.length, summary: signal.summarize(values) };
}

/** Golden score against IFD for every record that has both, with what reveals the record. */
export function goldenIfdScatter(records: readonly DatasetRecord[], scores: CurrentScores): protocol.ScatterPoint[] {
  const ifd = signalNamed('ifd')!;
  return records.flatMap((r, i) => {
    const s = scores[i];
    const y = s ? ifd.valueOf(s) : null;
    return s && y !== null ? [{ index: r.index, x: s.goldenScore, y }] : [];
  });
}

/**
 * A record's text in the table: an Alpaca record's three fields; for a conversation, its last user turn as the
 * instruction, its scored (final assistant) turn as the output, and how many turns it has. Shortened plain text.
 */
export function tablePreview(record: DatasetRecord, shorten: (text: string, max: number) => string): Pick<protocol.TableRow, 'instruction' | 'input' | 'output' | 'turns'> {
  if (record.turns) {
    const lastUser = [...record.turns].reverse().find((t) => t.role === 'user');
    return { instruction: shorten(lastUser?.content ?? '', 200), input: '', output: shorten(record.turns[record.turns.length - 1]!.content, 200), turns: record.turns.length };
  }
  return { instruction: shorten(record.instruction, 200), input: shorten(record.input, 120), output: shorten(record.output, 200) };
}

/** Each pass signal of a score, formatted by its declaration (the table's cells). */
export function signalCells(score: ScoreSummary | undefined): Record<string, string> {
  return Object.fromEntries(PASS_SIGNALS.map((signal) => [signal.name, score ? signal.format(signal.valueOf(score)) : '—']));
}

/**
 * The table's order: by index, wins, or any signal (golden score, mean delta, the pass signals);
 * unscored records and records without the signal last; ties as selection breaks them.
 */
export function compareRows(sortBy: protocol.TableSortKey, descending: boolean): (a: { index: number; score?: CandidateScore }, b: { index: number; score?: CandidateScore }) => number {
  const sign = descending ? -1 : 1;
  const signal = sortBy === 'goldenScore' ? signalNamed('golden') : sortBy === 'meanDelta' ? signalNamed('mean_delta') : signalNamed(sortBy);
  const value = (s: CandidateScore): number | null => (signal ? signal.valueOf(s) : s.wins);
  return (a, b) => {
    if (sortBy === 'index') return sign * (a.index - b.index);
    const va = a.score ? value(a.score) : null;
    const vb = b.score ? value(b.score) : null;
    if (va === null || vb === null) return va !== null ? -1 : vb !== null ? 1 : a.index - b.index;
    return sign * (va - vb) || sign * (a.score!.meanDelta - b.score!.meanDelta) || a.index - b.index;
  };
}

/** The `count` records whose embeddings are most similar to record `index`'s (cosine of unit vectors), most similar first. */
export function nearestNeighbours(records: readonly DatasetRecord[], embeddings: ReadonlyMap<string, Float32Array>, index: number, count: number): { index: number; similarity: number }[] {
  const own = embeddings.get(records[index]?.id ?? '');
  if (!own) return [];
  return records.flatMap((r) => {
    const v = r.index !== index ? embeddings.get(r.id) : undefined;
    return v ? [{ index: r.index, similarity: dot(own, v) }] : [];
  }).sort((a, b) => b.similarity - a.similarity || a.index - b.index).slice(0, count);
}
