/**
 * What a long run will cost, from its first records (the probe): the time for the records left, without early stop
 * and with the exact early stop at a threshold (golden.ts, anchors ordered by anchor-order.ts). The probe's records
 * are the run's own, kept like any other.
 *
 * A record costs its prefix pass(es) (candidatePasses: the same with or without early stop) and its one-shot calls,
 * each an overhead and one pass per anchor scored. The probe times both (CostProbe, fitCallCost). The early stop's
 * passes per record are the passes the probe's early-stopped records ran, and for records scored in full, the
 * passes the ordered early stop would have run on their outcomes, each in the order learned from the other probe
 * records (learning from itself would flatter it).
 */
import { formatDuration } from '../protocol';
import { AnchorOrder, storedWin } from './anchor-order';
import type { PreparedAnchors, ScoringBackend } from './backend';
import { orderedStep, settled, winsNeeded, type CandidateScore } from './golden';

/** One probe record: its timed passes and its outcomes. */
export interface ProbeRecord {
  /** Seconds in its prefix pass(es). */
  prefixSeconds: number;
  /** Its one-shot calls: anchors in each, and seconds. */
  calls: Array<{ anchors: number; seconds: number }>;
  /** s1 - s0 per anchor, NaN where it was not scored (an early stop, an excluded anchor, its own anchor). */
  deltas: readonly number[];
  /** Stopped early (its NaN deltas include anchors it never scored). */
  bounded: boolean;
}

export interface CostEstimate {
  /** Records the estimate is for (those left after the probe). */
  records: number;
  /** Probe records it comes from. */
  probed: number;
  /** Anchors each record is scored against (excluded anchors left out). */
  anchors: number;
  /** Seconds for `records`, every anchor scored. */
  fullSeconds: number;
  /** With the exact early stop at `threshold`: seconds, and one-shot passes per record. */
  earlyStop: { threshold: number; seconds: number; passesPerRecord: number };
}

/**
 * Times a backend's passes per record: wrap the backend, score through the wrapper, then `take` each record's
 * timings with its score. Records in flight at once are timed each on its own.
 */
export class CostProbe {
  private readonly timings = new Map<string, Pick<ProbeRecord, 'prefixSeconds' | 'calls'>>();

  wrap(backend: ScoringBackend): ScoringBackend {
    /** Times `call` for the record `id`: a prefix pass, or a one-shot call of `anchors` anchors. */
    const timed = async <T>(id: string, anchors: number | undefined, call: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      const result = await call();
      const seconds = (performance.now() - started) / 1000;
      const t = this.timings.get(id) ?? { prefixSeconds: 0, calls: [] };
      if (anchors === undefined) t.prefixSeconds += seconds;
      else t.calls.push({ anchors, seconds });
      this.timings.set(id, t);
      return result;
    };
    const recordId = (candidate: { id?: string; instruction: string }): string => candidate.id ?? candidate.instruction;
    return {
      identity: backend.identity,
      prepareAnchors: (anchors, options, signal) => backend.prepareAnchors(anchors, options, signal),
      candidatePasses: (candidate, anchors, signal) => timed(recordId(candidate), undefined, () => backend.candidatePasses(candidate, anchors, signal)),
      oneShot: (candidate, anchors, indices, signal) => timed(recordId(candidate), indices?.length ?? anchors.count, () => backend.oneShot(candidate, anchors, indices, signal)),
      ...(backend.costNote ? { costNote: () => backend.costNote!() } : {}),
      dispose: () => backend.dispose(),
    };
  }

  /** The record `score` as a probe record (its timings are then forgotten). */
  take(score: CandidateScore): ProbeRecord {
    const t = this.timings.get(score.id) ?? { prefixSeconds: 0, calls: [] };
    this.timings.delete(score.id);
    return { ...t, deltas: score.deltas, bounded: score.bound !== undefined };
  }
}

/** The anchors a record is scored against: those with a response token, its own anchor (a NaN delta in full scores) left out. */
function countedAnchors(prepared: Pick<PreparedAnchors, 'responseTokens'>, record: ProbeRecord): number[] {
  return [...prepared.responseTokens.keys()].filter((i) => prepared.responseTokens[i]! > 0 && !Number.isNaN(record.deltas[i]!));
}

/**
 * The one-shot passes, and calls, the ordered exact early stop at `threshold` runs on a record scored in full,
 * trying its anchors in `order` (golden.ts scoreCandidate's steps, on the record's known outcomes).
 */
export function earlyStopPasses(deltas: readonly number[], order: readonly number[], threshold: number, batchSize: number): { passes: number; calls: number } {
  const m = order.length;
  const needed = winsNeeded(threshold, m);
  let wins = 0;
  let scored = 0;
  let calls = 0;
  while (scored < m) {
    const step = order.slice(scored, scored + orderedStep(batchSize, needed, m, wins, scored));
    wins += step.filter((a) => storedWin(deltas[a]!)).length;
    scored += step.length;
    calls++;
    if (settled(needed, m, wins, scored)) break;
  }
  return { passes: scored, calls };
}

/**
 * A one-shot call's seconds as `perCall + perAnchor x anchors`, fitted (least squares) to the probe's calls: small
 * steps of an early stop pay the call's overhead more often. Calls all of one size (a probe scored in full) cannot
 * tell the overhead apart: it is then 0, as it is when the fit makes either part negative.
 */
export function fitCallCost(calls: ReadonlyArray<{ anchors: number; seconds: number }>): { perCall: number; perAnchor: number } {
  const n = calls.length;
  const anchors = calls.reduce((s, c) => s + c.anchors, 0);
  const seconds = calls.reduce((s, c) => s + c.seconds, 0);
  const proportional = { perCall: 0, perAnchor: anchors > 0 ? seconds / anchors : 0 };
  const meanX = anchors / n;
  const meanY = seconds / n;
  const sxx = calls.reduce((s, c) => s + (c.anchors - meanX) ** 2, 0);
  if (n < 2 || sxx === 0) return proportional;
  const perAnchor = calls.reduce((s, c) => s + (c.anchors - meanX) * (c.seconds - meanY), 0) / sxx;
  const perCall = meanY - perAnchor * meanX;
  return perAnchor > 0 && perCall >= 0 ? { perCall, perAnchor } : proportional;
}

/**
 * The estimate for `records` more records from the probe's records. `wallSeconds`, the probe's own time, caps the
 * timings' sum where records ran in flight at once (a serving engine). Throws without a probe record.
 */
export function estimateCost(
  probe: readonly ProbeRecord[], prepared: Pick<PreparedAnchors, 'count' | 'responseTokens'>, records: number,
  threshold: number, batchSize: number, wallSeconds?: number,
): CostEstimate {
  if (probe.length === 0) throw new Error('a cost estimate needs at least one probe record');
  const anchors = [...prepared.responseTokens].filter((n) => n > 0).length;
  const calls = probe.flatMap((r) => r.calls);
  const timed = probe.reduce((s, r) => s + r.prefixSeconds, 0) + calls.reduce((s, c) => s + c.seconds, 0);
  const overlap = wallSeconds !== undefined && timed > wallSeconds && wallSeconds > 0 ? wallSeconds / timed : 1;
  const prefixPerRecord = (overlap * probe.reduce((s, r) => s + r.prefixSeconds, 0)) / probe.length;
  const fit = fitCallCost(calls);
  const callSeconds = (count: number, passes: number): number => overlap * (count * fit.perCall + passes * fit.perAnchor);
  const early = probe.map((r, k) => {
    if (r.bounded) return { passes: r.deltas.filter((d) => !Number.isNaN(d)).length, calls: r.calls.length };
    const order = new AnchorOrder(prepared.count);
    probe.forEach((other, j) => j !== k && order.learn(other.deltas));
    return earlyStopPasses(r.deltas, order.orderNow(countedAnchors(prepared, r)), threshold, batchSize);
  });
  const passesPerRecord = early.reduce((a, b) => a + b.passes, 0) / probe.length;
  const callsPerRecord = early.reduce((a, b) => a + b.calls, 0) / probe.length;
  return {
    records, probed: probe.length, anchors,
    // A record scored in full: one call over all its anchors.
    fullSeconds: records * (prefixPerRecord + callSeconds(1, anchors)),
    earlyStop: { threshold, seconds: records * (prefixPerRecord + callSeconds(callsPerRecord, passesPerRecord)), passesPerRecord },
  };
}

/** The estimate in one line, as the CLI prints it on stderr: "estimate: 400 records in about 5h 08m; …". */
export function describeEstimate(estimate: CostEstimate, earlyStopFlag: boolean): string {
  const { records, probed, fullSeconds, earlyStop } = estimate;
  const early = `${formatDuration(earlyStop.seconds)} with exact early stop at ${earlyStop.threshold} (${earlyStop.passesPerRecord.toFixed(1)} of ${estimate.anchors} anchors per record)`;
  return `estimate: ${records} more records in about ${earlyStopFlag ? `${early}; ${formatDuration(fullSeconds)} without it` : `${formatDuration(fullSeconds)}; ${early}, --min-score ${earlyStop.threshold}`}`
    + ` (from the first ${probed} ${probed === 1 ? 'record' : 'records'})`;
}

/** A probe ends after this many records, or at the first record that brings its passes' time to PROBE_SECONDS. */
export const PROBE_RECORDS = 3;
export const PROBE_SECONDS = 15;
/** A run estimated to take less than this is not worth asking about (the editor goes on without a question). */
export const LONG_RUN_SECONDS = 60;

/**
 * A run's probe: its first records, until PROBE_RECORDS or until their passes took PROBE_SECONDS (the model's
 * opening and the anchors' preparation before them do not count).
 */
export class RunProbe {
  private readonly records: ProbeRecord[] = [];
  private readonly started = performance.now();
  private passSeconds = 0;
  private ended = false;

  /**
   * Takes the run's next record; when the probe ends with it, the probe's records and the wall time since the
   * probe was made (estimateCost's `wallSeconds`), else undefined.
   */
  add(record: ProbeRecord): { records: ProbeRecord[]; seconds: number } | undefined {
    if (this.ended) return undefined;
    this.records.push(record);
    this.passSeconds += record.prefixSeconds + record.calls.reduce((sum, c) => sum + c.seconds, 0);
    const seconds = (performance.now() - this.started) / 1000;
    if (this.records.length < PROBE_RECORDS && this.passSeconds < PROBE_SECONDS) return undefined;
    this.ended = true;
    return { records: this.records, seconds };
  }
}
