/**
 * The order an exact early stop tries anchors in (golden.ts scoreCandidate): the anchors records have lost most
 * often so far in the run (by share of the records that scored them) first, so that a record below the threshold
 * shows enough losses after fewer passes. A record's outcome against the threshold, and the score of every record
 * scored in full, do not depend on the order; only the passes spent, and which anchors an early-stopped record
 * leaves unscored, do.
 *
 * The order is deterministic for a run: the order of the record at position p (in the run's record order, the
 * records already stored before a resume included) depends only on the outcomes of the records at the positions
 * before `learnedBefore(p)`, whatever the order in which records in flight end. A resumed run learns its stored
 * records first (`learn`, in the same order), so it tries the same anchors in the same order as an uninterrupted
 * one. Outcomes are read as the scores file stores deltas (rounded to 1e-4 nats), so a delta read back from the
 * file teaches what the delta in memory taught.
 */

/** Deltas as the scores file stores them: a win is a delta that stays above 0 once rounded to 1e-4 (store.ts). */
export function storedWin(delta: number): boolean {
  return Math.round(delta * 1e4) > 0;
}

export class AnchorOrder {
  /** Per anchor: records that scored it, and lost it (s1 <= s0). */
  private readonly tried: Int32Array;
  private readonly lost: Int32Array;
  /** Records learned so far. */
  private learnedCount = 0;
  /** The counts after the first k records (k a multiple of the window), for the k a record may still ask for. */
  private readonly snapshots = new Map<number, { tried: Int32Array; lost: Int32Array }>();

  /** `recordsInFlight`: records scored at once (a serving engine), which sets the window (learnedBefore). */
  constructor(readonly anchorCount: number, readonly recordsInFlight = 1) {
    this.tried = new Int32Array(anchorCount);
    this.lost = new Int32Array(anchorCount);
  }

  get learned(): number {
    return this.learnedCount;
  }

  /**
   * How many records (in the run's order) the record at `position` learns from: those before the start of the
   * window before its own. Windows are 8 records, or twice the records in flight when more: a local model and a
   * serving engine with up to 4 records in flight try the same anchors in the same order, and a record in flight
   * seldom waits for the records it learns from.
   */
  learnedBefore(position: number): number {
    return Math.max(0, Math.floor(position / this.window) * this.window - this.window);
  }

  private get window(): number {
    return Math.max(8, 2 * this.recordsInFlight);
  }

  /** Takes the next record's outcomes (its deltas, NaN where an early stop skipped an anchor), in the run's order. */
  learn(deltas: readonly number[]): void {
    for (let i = 0; i < this.anchorCount; i++) {
      const delta = deltas[i];
      if (delta === undefined || Number.isNaN(delta)) continue;
      this.tried[i]!++;
      if (!storedWin(delta)) this.lost[i]!++;
    }
    this.learnedCount++;
    if (this.learnedCount % this.window === 0) {
      this.snapshots.set(this.learnedCount, { tried: this.tried.slice(), lost: this.lost.slice() });
      // A record starting now learns from at most two windows back: older counts are never asked for again.
      for (const k of this.snapshots.keys()) if (k < this.learnedCount - 2 * this.window) this.snapshots.delete(k);
    }
  }

  /**
   * The anchors `counted` in the order the record at `position` tries them: the highest share of losses first,
   * (lost + 1) / (tried + 2), so that an anchor no record has tried yet counts as even; ties by anchor position.
   * Throws when the records it learns from are not all learned yet (a caller waits for them first).
   */
  orderFor(position: number, counted: readonly number[]): number[] {
    const before = this.learnedBefore(position);
    const counts = before === this.learnedCount ? { tried: this.tried, lost: this.lost } : before === 0 ? undefined : this.snapshots.get(before);
    if (before > this.learnedCount || (before > 0 && !counts)) {
      throw new Error(`anchor order for record ${position} needs the first ${before} records learned (${this.learnedCount} are)`);
    }
    return counts ? rank(counts, counted) : [...counted];
  }

  /** The anchors `counted` in the order learned from every record learned so far (a cost estimate's). */
  orderNow(counted: readonly number[]): number[] {
    return rank({ tried: this.tried, lost: this.lost }, counted);
  }
}

function rank(counts: { tried: Int32Array; lost: Int32Array }, counted: readonly number[]): number[] {
  const share = (i: number): number => (counts.lost[i]! + 1) / (counts.tried[i]! + 2);
  return [...counted].sort((a, b) => share(b) - share(a) || a - b);
}
