/**
 * What a long run will cost, from its first records (the probe): the time for the records left, without early stop
 * and with the exact early stop at a threshold (golden.ts, anchors ordered by anchor-order.ts). The probe's records
 * are the run's own, kept like any other.
 *
 * A record costs its prefix pass(es) (candidatePasses: the same with or without early stop) and its one-shot passes,
 * one per anchor scored. The probe times both (CostProbe); the early stop's passes per record are the passes the
 * probe's early-stopped records ran, and for records scored in full, the passes the ordered early stop would have run
 * on their outcomes, each in the order learned from the other probe records (learning from itself would flatter it).
 */
import { formatDuration } from '../protocol';
import { AnchorOrder, storedWin } from './anchor-order';
import type { PreparedAnchors, ScoringBackend } from './backend';
import { orderedStep, settled, winsNeeded, type CandidateScore } from './golden';

/** One probe record: its timed passes and its outcomes. */
export interface ProbeRecord {
  /** Seconds in its prefix pass(es), and in its one-shot passes. */
  prefixSeconds: number;
  oneShotSeconds: number;
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
  private readonly timings = new Map<string, { prefixSeconds: number; oneShotSeconds: number }>();

  wrap(backend: ScoringBackend): ScoringBackend {
    const timed = async <T>(id: string, part: 'prefixSeconds' | 'oneShotSeconds', call: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await call();
      } finally {
        const t = this.timings.get(id) ?? { prefixSeconds: 0, oneShotSeconds: 0 };
        t[part] += (performance.now() - started) / 1000;
        this.timings.set(id, t);
      }
    };
    const recordId = (candidate: { id?: string; instruction: string }): string => candidate.id ?? candidate.instruction;
    return {
      identity: backend.identity,
      prepareAnchors: (anchors, options, signal) => backend.prepareAnchors(anchors, options, signal),
      candidatePasses: (candidate, anchors, signal) => timed(recordId(candidate), 'prefixSeconds', () => backend.candidatePasses(candidate, anchors, signal)),
      oneShot: (candidate, anchors, indices, signal) => timed(recordId(candidate), 'oneShotSeconds', () => backend.oneShot(candidate, anchors, indices, signal)),
      ...(backend.costNote ? { costNote: () => backend.costNote!() } : {}),
      dispose: () => backend.dispose(),
    };
  }

  /** The record `score` as a probe record (its timings are then forgotten). */
  take(score: CandidateScore): ProbeRecord {
    const t = this.timings.get(score.id) ?? { prefixSeconds: 0, oneShotSeconds: 0 };
    this.timings.delete(score.id);
    return { ...t, deltas: score.deltas, bounded: score.bound !== undefined };
  }
}

/** The anchors a record is scored against: those with a response token, its own anchor (a NaN delta in full scores) left out. */
function countedAnchors(prepared: Pick<PreparedAnchors, 'responseTokens'>, record: ProbeRecord): number[] {
  return [...prepared.responseTokens.keys()].filter((i) => prepared.responseTokens[i]! > 0 && !Number.isNaN(record.deltas[i]!));
}

/**
 * The one-shot passes the ordered exact early stop at `threshold` runs on a record scored in full, trying its anchors
 * in `order` (golden.ts scoreCandidate's steps, on the record's known outcomes).
 */
export function earlyStopPasses(deltas: readonly number[], order: readonly number[], threshold: number, batchSize: number): number {
  const m = order.length;
  const needed = winsNeeded(threshold, m);
  let wins = 0;
  let scored = 0;
  while (scored < m) {
    const step = order.slice(scored, scored + orderedStep(batchSize, needed, m, wins, scored));
    wins += step.filter((a) => storedWin(deltas[a]!)).length;
    scored += step.length;
    if (settled(needed, m, wins, scored)) break;
  }
  return scored;
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
  const passesRun = probe.reduce((n, r) => n + r.deltas.filter((d) => !Number.isNaN(d)).length, 0);
  const timed = probe.reduce((s, r) => s + r.prefixSeconds + r.oneShotSeconds, 0);
  const overlap = wallSeconds !== undefined && timed > wallSeconds && wallSeconds > 0 ? wallSeconds / timed : 1;
  const prefixPerRecord = (overlap * probe.reduce((s, r) => s + r.prefixSeconds, 0)) / probe.length;
  const perPass = passesRun > 0 ? (overlap * probe.reduce((s, r) => s + r.oneShotSeconds, 0)) / passesRun : 0;
  const earlyPasses = probe.map((r, k) => {
    if (r.bounded) return r.deltas.filter((d) => !Number.isNaN(d)).length;
    const order = new AnchorOrder(prepared.count);
    probe.forEach((other, j) => j !== k && order.learn(other.deltas));
    return earlyStopPasses(r.deltas, order.orderNow(countedAnchors(prepared, r)), threshold, batchSize);
  });
  const passesPerRecord = earlyPasses.reduce((a, b) => a + b, 0) / probe.length;
  return {
    records, probed: probe.length, anchors,
    fullSeconds: records * (prefixPerRecord + anchors * perPass),
    earlyStop: { threshold, seconds: records * (prefixPerRecord + passesPerRecord * perPass), passesPerRecord },
  };
}

/** The estimate in one line, as the CLI prints it on stderr: "estimate: 400 records in about 5h 08m; …". */
export function describeEstimate(estimate: CostEstimate, earlyStopFlag: boolean): string {
  const { records, probed, fullSeconds, earlyStop } = estimate;
  const early = `${formatDuration(earlyStop.seconds)} with exact early stop at ${earlyStop.threshold} (${earlyStop.passesPerRecord.toFixed(1)} of ${estimate.anchors} anchors per record)`;
  return `estimate: ${records} more records in about ${earlyStopFlag ? `${early}; ${formatDuration(fullSeconds)} without it` : `${formatDuration(fullSeconds)}; ${early}, --min-score ${earlyStop.threshold}`}`
    + ` (from the first ${probed} ${probed === 1 ? 'record' : 'records'})`;
}

/** A probe ends after this many records, or at the first record that ends after PROBE_SECONDS. */
export const PROBE_RECORDS = 3;
export const PROBE_SECONDS = 15;
/** A run estimated to take less than this is not worth asking about (the editor goes on without a question). */
export const LONG_RUN_SECONDS = 60;

/** A run's probe: its first records, timed through `wrap`'s backend, until PROBE_RECORDS or PROBE_SECONDS. */
export class RunProbe {
  private readonly timer = new CostProbe();
  private readonly records: ProbeRecord[] = [];
  private readonly started = performance.now();
  private ended = false;

  wrap(backend: ScoringBackend): ScoringBackend {
    return this.timer.wrap(backend);
  }

  /** Takes the run's next score; the probe's records and its time when the probe ends with it, else undefined. */
  add(score: CandidateScore): { records: ProbeRecord[]; seconds: number } | undefined {
    if (this.ended) return undefined;
    this.records.push(this.timer.take(score));
    const seconds = (performance.now() - this.started) / 1000;
    if (this.records.length < PROBE_RECORDS && seconds < PROBE_SECONDS) return undefined;
    this.ended = true;
    return { records: this.records, seconds };
  }
}
