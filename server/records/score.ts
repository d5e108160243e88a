/**
 * A record's score: the one definition, which the store reads and writes, the protocol carries
 * (type-only: this file imports nothing at run time) and every view shows.
 */
import type { SignalValues } from '../signals/signal';

/** How a local model computes one-shot scores: the prefix's key/values reused (cached), or a full sequence per pair (naive, --reference). Part of the scores key. */
export type ScoringPath = 'cached' | 'naive';

/**
 * A score decided only relative to a threshold (exact early stop): the candidate's wins could no
 * longer reach the threshold, or could no longer fall below it. The golden score lies in [low, high].
 */
export interface ScoreBound {
  threshold: number;
  /** golden >= threshold. */
  above: boolean;
  low: number;
  high: number;
}

/** A record's score as views show it; CandidateScore adds the per-anchor deltas. */
export interface ScoreSummary {
  /**
   * Share of anchors with s1 > s0. For a bounded score, the side of the bound that decides the
   * threshold (low when above it, high when below), so that selecting at that threshold stays exact.
   */
  goldenScore: number;
  wins: number;
  anchors: number;
  meanDelta: number;
  /** The candidate was cut from the left to fit the model's context. */
  truncated: boolean;
  /** Present when scoring stopped early at a threshold. */
  bound?: ScoreBound;
  /** The signals computed from the passes (server/signals), by name; absent in scores from before them. */
  signals?: SignalValues;
  /**
   * The record is itself this anchor (0-based): that pair is left out of its golden score, which counts the
   * other anchors (its delta is NaN). Absent for records that are no anchor.
   */
  selfAnchor?: number;
}

export interface CandidateScore extends ScoreSummary {
  index: number;
  id: string;
  /** s1 - s0 per anchor, in anchor order, in nats; NaN for anchors an early stop skipped. */
  deltas: number[];
  /** The L2-normalised embedding, while it goes to its sidecar; never in the scores file. */
  embedding?: Float32Array;
}

