/**
 * Golden scores from a backend's s0 and s1 (ALGORITHM.md): delta = s1 - s0 per anchor, golden = share
 * of anchors with s1 > s0. Backend-agnostic: the same code scores through ONNX or a serving engine.
 */
import type { DatasetRecord } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import { computeSignals } from '../signals';
import type { CandidateScore, ScoreSummary } from '../records/score';
import type { AnchorOrder } from './anchor-order';
import type { PreparedAnchors, ScoringBackend } from './backend';

export type { CandidateScore, ScoreBound, ScoreSummary } from '../records/score';

/**
 * Anchors left without a response token once cut to maxAnchorTokens (the query alone fills the cut).
 * Nothing of theirs can become more or less likely, so they are excluded: their delta is NaN (null in
 * a scores file) and a golden score counts only the other anchors. Throws when no anchor is left.
 */
export function excludedAnchors(prepared: PreparedAnchors, maxAnchorTokens: number): number[] {
  const excluded = [...prepared.responseTokens.keys()].filter((i) => prepared.responseTokens[i] === 0);
  if (excluded.length === prepared.count) {
    throw new NuggetsError(
      `No anchor has a response token left after cutting anchors to ${maxAnchorTokens} tokens: every anchor's query fills the cut.`,
      'Raise the maximum anchor tokens (--max-anchor-tokens, or the nuggets.maxAnchorTokens setting).',
    );
  }
  return excluded;
}

/** How an excluded anchor is named in a warning: its position (1-based, as hovers show) and its instruction's start. */
export function describeExcluded(excluded: readonly number[], anchors: readonly { instruction: string }[], maxAnchorTokens: number): string {
  const named = excluded.slice(0, 5).map((i) => `${i + 1} ("${anchors[i]?.instruction.slice(0, 40).replace(/\s+/g, ' ') ?? ''}…")`).join(', ');
  return `${excluded.length === 1 ? 'anchor' : `${excluded.length} anchors:`} ${named}${excluded.length > 5 ? ', …' : ''} ${excluded.length === 1 ? 'has' : 'have'} no response token left `
    + `within ${maxAnchorTokens} tokens and ${excluded.length === 1 ? 'is' : 'are'} excluded: golden scores count the other ${anchors.length - excluded.length} of ${anchors.length} anchors.`;
}

/** The score without its per-anchor deltas or embedding: what crosses to the client. */
export function summaryOf(score: CandidateScore): ScoreSummary {
  const { goldenScore, wins, anchors, meanDelta, truncated, bound, signals, selfAnchor } = score;
  return {
    goldenScore, wins, anchors, meanDelta, truncated, ...(bound ? { bound } : {}), ...(signals ? { signals } : {}),
    ...(selfAnchor !== undefined ? { selfAnchor } : {}),
  };
}

/** How a score reads to a user: "0.87", or "≥ 0.85" / "< 0.85" for a bound. */
export function formatGolden(score: Pick<CandidateScore, 'goldenScore' | 'bound'>): string {
  if (!score.bound) return score.goldenScore.toFixed(2);
  return `${score.bound.above ? '≥' : '<'} ${score.bound.threshold}`;
}

/**
 * Golden score, wins and mean delta from the one-shot scores. Anchors without a response token (excludedAnchors)
 * and the candidate's own anchor (`selfAnchor`: the candidate is that anchor, and a record is not scored against
 * itself) are left out: their delta is NaN and the golden score counts the other anchors.
 */
export function goldenFrom(prepared: PreparedAnchors, oneShot: Float64Array, selfAnchor?: number): Pick<CandidateScore, 'goldenScore' | 'wins' | 'anchors' | 'meanDelta' | 'deltas'> {
  const deltas: number[] = [];
  let wins = 0;
  let total = 0;
  let scored = 0;
  let counted = 0;
  for (let i = 0; i < prepared.count; i++) {
    if (prepared.responseTokens[i] === 0 || i === selfAnchor) {
      deltas.push(NaN); // excluded: no response token to score (excludedAnchors), or the candidate itself
      continue;
    }
    counted++;
    const delta = oneShot[i]! - prepared.zeroShot[i]!;
    if (oneShot[i]! > prepared.zeroShot[i]!) wins++;
    // NaN marks an anchor an early stop never scored: the mean is over the anchors that were.
    if (!Number.isNaN(delta)) {
      total += delta;
      scored++;
    }
    deltas.push(delta);
  }
  return { goldenScore: counted ? wins / counted : 0, wins, anchors: counted, meanDelta: scored ? total / scored : 0, deltas };
}

/** The anchor that `record` is (same instruction, input and output), if any: its self-pair is left out of its score. */
export function selfAnchorOf(prepared: PreparedAnchors, record: { id: string }): number | undefined {
  return prepared.anchorById?.get(record.id);
}

/** Wins needed for golden >= threshold with m anchors (tolerant of floating-point thresholds like 0.85 * 20). */
export function winsNeeded(threshold: number, anchors: number): number {
  return Math.ceil(threshold * anchors - 1e-9);
}

/**
 * With an ordering, the next step of an exact early stop: the fewest passes that could settle the outcome (the wins
 * still needed, or the losses still allowed plus one), at most batchSize, so that no pass is spent once it is settled.
 */
export function orderedStep(batchSize: number, needed: number, m: number, wins: number, scored: number): number {
  return Math.max(1, Math.min(batchSize, needed - wins, m - needed + 1 - (scored - wins)));
}

/** Whether a record's outcome against the threshold can no longer change with anchors left to score. */
export function settled(needed: number, m: number, wins: number, scored: number): boolean {
  return scored < m && (wins >= needed || wins + (m - scored) < needed);
}

/**
 * The record's score; `signal` aborts the backend's requests in flight (ScoringBackend), and then the score rejects.
 * With an early stop that has an ordering, `position` is the record's place in the run's order (anchor-order.ts).
 */
export async function scoreCandidate(backend: ScoringBackend, prepared: PreparedAnchors, record: DatasetRecord, stop?: EarlyStop, signal?: AbortSignal, position?: number): Promise<CandidateScore> {
  // The prefix pass first: the one-shot passes reuse its key/values.
  const passes = await backend.candidatePasses(record, prepared, signal);
  const self = selfAnchorOf(prepared, record);
  const extra = { signals: computeSignals(passes), ...(passes.embedding ? { embedding: passes.embedding } : {}), ...(self !== undefined ? { selfAnchor: self } : {}) };
  if (!stop) {
    const { oneShot, truncated } = await backend.oneShot(record, prepared, undefined, signal);
    return { index: record.index, id: record.id, ...goldenFrom(prepared, oneShot, self), truncated, ...extra };
  }
  // Exact early stop: score anchors a batch at a time until the threshold decision cannot change.
  const counted = [...prepared.responseTokens.keys()].filter((i) => prepared.responseTokens[i]! > 0 && i !== self);
  const m = counted.length;
  const needed = winsNeeded(stop.threshold, m);
  const ordered = stop.ordering !== undefined && position !== undefined;
  const order = ordered ? stop.ordering!.orderFor(position!, counted) : counted;
  const oneShot = new Float64Array(prepared.count).fill(NaN);
  let wins = 0;
  let scored = 0;
  let truncated = false;
  while (scored < m) {
    const step = ordered ? orderedStep(stop.batchSize, needed, m, wins, scored) : stop.batchSize;
    const indices = order.slice(scored, scored + step);
    const part = await backend.oneShot(record, prepared, indices, signal);
    truncated = part.truncated;
    indices.forEach((a, k) => {
      oneShot[a] = part.oneShot[k]!;
      if (part.oneShot[k]! > prepared.zeroShot[a]!) wins++;
    });
    scored += indices.length;
    if (settled(needed, m, wins, scored)) break;
  }
  const score = { index: record.index, id: record.id, ...goldenFrom(prepared, oneShot, self), truncated, ...extra };
  if (scored === m) return score;
  const low = wins / m;
  const high = (wins + m - scored) / m;
  const above = wins >= needed;
  return { ...score, goldenScore: above ? low : high, bound: { threshold: stop.threshold, above, low, high } };
}

export interface EarlyStop {
  threshold: number;
  /** Anchors scored between decisions (with an ordering: at most this many). */
  batchSize: number;
  /**
   * The run's anchor order (anchor-order.ts): anchors are tried in it, each step the fewest passes that could
   * settle the outcome. Without it, anchors are tried in their own order, batchSize at a time.
   */
  ordering?: AnchorOrder;
}

/**
 * Scores `records`, handing each result to `onScore` in the records' order as soon as it and every record before it
 * exist (so a caller can persist a prefix of the records before the next ones end). `inFlight` records are scored at
 * once (a serving engine batches their requests; a local backend runs one pass at a time and gains nothing): a record
 * that ends before one ahead of it waits for it. Once `signal` aborts, stops starting records, or rejects where a
 * serving backend's requests in flight were abandoned (the records before the first unfinished one are handed over
 * already). A record that fails cancels the records after it and rejects with its error once the records before it end.
 * With an early stop's ordering, each record handed over is learned (after `onScore`), the records being the run's
 * next ones after those it learned already (a resumed run's stored records); with several in flight, a record waits
 * to start until the records its order learns from are handed over (AnchorOrder.learnedBefore).
 */
export async function scoreRecords(
  backend: ScoringBackend,
  prepared: PreparedAnchors,
  records: readonly DatasetRecord[],
  onScore: (score: CandidateScore) => void,
  signal?: AbortSignal,
  stop?: EarlyStop,
  inFlight = 1,
): Promise<void> {
  const ordering = stop?.ordering;
  const first = ordering?.learned ?? 0;
  if (inFlight <= 1) {
    for (const [k, record] of records.entries()) {
      if (signal?.aborted) return;
      const score = await scoreCandidate(backend, prepared, record, stop, signal, first + k);
      onScore(score);
      ordering?.learn(score.deltas);
    }
    return;
  }
  // Lanes waiting for the records their order learns from: woken at each hand-over, failure or abort.
  let waiting: Array<() => void> = [];
  const wake = (): void => {
    const woken = waiting;
    waiting = [];
    woken.forEach((resume) => resume());
  };
  signal?.addEventListener('abort', wake, { once: true });
  const done: (CandidateScore | undefined)[] = new Array(records.length);
  const cancels: AbortController[] = [];
  const failures = new Map<number, unknown>();
  let started = 0;
  let handed = 0;
  // The first record that failed (or Infinity): nothing after it starts or is handed over.
  let failedAt = Infinity;
  const fail = (index: number, err: unknown): void => {
    failures.set(index, err);
    if (index >= failedAt) return;
    failedAt = index;
    cancels.slice(index + 1).forEach((c) => c?.abort());
    wake();
  };
  const handOver = (): void => {
    while (handed < failedAt && done[handed]) {
      const score = done[handed]!;
      done[handed] = undefined;
      try {
        onScore(score);
      } catch (err) {
        fail(handed, err); // the store refused it (a full disk): nothing after it may be written
        return;
      }
      handed++;
      ordering?.learn(score.deltas);
    }
    wake();
  };
  const lane = async (): Promise<void> => {
    while (started < records.length && started < failedAt && !signal?.aborted) {
      const index = started++;
      if (ordering) {
        while (ordering.learned < ordering.learnedBefore(first + index) && index < failedAt && !signal?.aborted) {
          await new Promise<void>((resume) => waiting.push(resume));
        }
        if (index >= failedAt || signal?.aborted) return;
      }
      const cancel = new AbortController();
      cancels[index] = cancel;
      const abort = (): void => cancel.abort();
      signal?.addEventListener('abort', abort, { once: true });
      try {
        done[index] = await scoreCandidate(backend, prepared, records[index]!, stop, cancel.signal, first + index);
        handOver();
      } catch (err) {
        fail(index, err);
      } finally {
        signal?.removeEventListener('abort', abort);
        delete cancels[index];
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, records.length) }, lane));
  signal?.removeEventListener('abort', wake);
  if (failures.size > 0) throw failures.get(Math.min(...failures.keys()));
}
