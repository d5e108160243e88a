/**
 * The dashboard's queries as pure functions of a document's records and their current scores (no
 * connection, no store): the golden-score distribution, a chart per signal, the golden-vs-IFD scatter,
 * and the table's order and signal cells. server.ts gathers the inputs and answers with these.
 */
import type { DatasetRecord } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import type * as protocol from '../protocol';
import type { CandidateScore, ScoreSummary } from '../scoring/golden';
import type { SignalBound } from '../selection/selection-rule';
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

/** Signals with long right tails (perplexities, their ratio): charted on a log scale when every value is positive. */
const LONG_TAILED = new Set(['ppl_cond', 'ppl_direct', 'ifd']);

/**
 * A histogram of one signal over [min, max] of its values, and how many records lack it. A long-tailed
 * signal gets log-spaced bins (edge i = from·(to/from)^(i/bins)), so that one outlier (an IFD of 9.45 among
 * values near 1) keeps its own bin without squeezing the rest into the first.
 */
export function signalChart(signal: Signal, scores: CurrentScores, bins: number): protocol.SignalChart {
  const values = scores.flatMap((s) => (s ? [signal.valueOf(s)] : []));
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v));
  let from = Infinity;
  let to = -Infinity;
  for (const v of present) {
    if (v < from) from = v;
    if (v > to) to = v;
  }
  if (present.length === 0) from = to = 0;
  const scale = LONG_TAILED.has(signal.name) && from > 0 ? 'log' : 'linear';
  const position = scale === 'log' ? (v: number): number => Math.log(v / from) / Math.log(to / from) : (v: number): number => (v - from) / (to - from);
  const counts = new Array<number>(bins).fill(0);
  for (const v of present) counts[to > from ? Math.min(bins - 1, Math.max(0, Math.floor(position(v) * bins))) : 0]!++;
  return { ...signalInfo(signal), counts, from, to, scale, missing: values.length - present.length, summary: signal.summarize(values) };
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

/** The signals a range may name, as the table's numeric columns and the charts name them. */
const RANGE_SIGNALS = ['golden', 'mean_delta', 'ppl_cond', 'ppl_direct', 'ifd'];

/**
 * The ranges of a filter, checked: each names a signal and has finite bounds, min below max. `where` names
 * the request in the error, so that a bad range is refused with what is wrong and where.
 */
export function checkedBounds(bounds: readonly SignalBound[] | undefined, where: string): { signal: Signal; min?: number; max?: number }[] {
  return (bounds ?? []).map((bound, k) => {
    const signal = RANGE_SIGNALS.includes(bound?.signal) ? signalNamed(bound.signal) : undefined;
    if (!signal) throw new NuggetsError(`${where}: range ${k + 1} names no signal a range can take (${JSON.stringify(bound?.signal)}); use one of ${RANGE_SIGNALS.join(', ')}.`);
    for (const side of ['min', 'max'] as const) {
      const value = bound[side];
      if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) throw new NuggetsError(`${where}: the ${side} of range ${k + 1} (${bound.signal}) is not a finite number: ${JSON.stringify(value)}.`);
    }
    if (bound.min !== undefined && bound.max !== undefined && !(bound.min < bound.max)) {
      throw new NuggetsError(`${where}: range ${k + 1} (${bound.signal}) is empty: its min ${bound.min} is not below its max ${bound.max}.`);
    }
    return { signal, ...(bound.min !== undefined ? { min: bound.min } : {}), ...(bound.max !== undefined ? { max: bound.max } : {}) };
  });
}

/** Whether a score lies within every range (min inclusive, max exclusive, as a selection rule's bounds); no score, or no value of the signal, is outside. */
export function withinBounds(score: CandidateScore | undefined, bounds: readonly { signal: Signal; min?: number; max?: number }[]): boolean {
  if (bounds.length === 0) return true;
  if (!score) return false;
  return bounds.every(({ signal, min, max }) => {
    const v = signal.valueOf(score);
    return v !== null && Number.isFinite(v) && (min === undefined || v >= min) && (max === undefined || v < max);
  });
}

/** The table's filter as a test of one record and its current score: every range, and both text searches (case-insensitive). */
export function recordFilter(filter: protocol.RecordFilter | undefined, where: string): (record: DatasetRecord, score: CandidateScore | undefined) => boolean {
  const bounds = checkedBounds(filter?.bounds, where);
  const needle = (text: unknown, what: string): string => {
    if (text !== undefined && typeof text !== 'string') throw new NuggetsError(`${where}: the ${what} search is not text: ${JSON.stringify(text)}.`);
    return (text ?? '').trim().toLocaleLowerCase();
  };
  const instruction = needle(filter?.instruction, 'instruction');
  const output = needle(filter?.output, 'output');
  return (record, score) => withinBounds(score, bounds)
    && (instruction === '' || record.instruction.toLocaleLowerCase().includes(instruction) || record.input.toLocaleLowerCase().includes(instruction))
    && (output === '' || record.output.toLocaleLowerCase().includes(output));
}

/**
 * The whole record for the record view, as plain text: instruction, input and output, and for a conversation
 * (DatasetRecord.turns) every turn with its role and which one is scored (the final assistant turn).
 */
export function wholeRecord(record: DatasetRecord): Pick<protocol.RecordEffectsResult, 'instruction' | 'input' | 'output' | 'turns' | 'scoredTurn'> {
  return {
    instruction: record.instruction, input: record.input, output: record.output,
    ...(record.turns ? { turns: record.turns.map((t) => ({ role: t.role, content: t.content })), scoredTurn: record.turns.length - 1 } : {}),
  };
}
