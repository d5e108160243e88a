/**
 * The dashboard's view of anchors as pure functions: each anchor's effect across the scored records
 * (win rate, mean delta, and whether any record moves it at all), and one record's delta on every
 * anchor (the record view).
 */
import type { Example } from '../records/dataset';
import type * as protocol from '../protocol';
import type { CandidateScore } from '../scoring/golden';
import { shorten } from './markdown';

/** A delta smaller than this (nats) does not move an anchor: an anchor with no response to score gets exactly 0. */
export const MOVE_EPSILON = 1e-6;
/** Anchor text longer than this is cut (the dashboard shows it whole on hover up to this length). */
const ANCHOR_TEXT_MAX = 2000;

/** Win rate, mean delta and how many records move each anchor, over distinct scored records. */
export function anchorEffectsOf(anchors: readonly Example[], scores: readonly CandidateScore[]): protocol.AnchorEffect[] {
  const seen = new Set<string>();
  const unique = scores.filter((s) => (seen.has(s.id) ? false : (seen.add(s.id), true)));
  return anchors.map((a, k) => {
    let wins = 0;
    let sum = 0;
    let counted = 0; // records that scored this anchor (not an early stop's skipped one, nor an excluded anchor)
    let moved = 0;
    for (const s of unique) {
      const d = s.deltas[k] ?? NaN;
      if (Number.isNaN(d)) continue;
      counted++;
      if (d > 0) wins++;
      if (Math.abs(d) > MOVE_EPSILON) moved++;
      sum += d;
    }
    return {
      index: k, instruction: shorten(a.instruction, ANCHOR_TEXT_MAX), input: shorten(a.input, ANCHOR_TEXT_MAX),
      winRate: counted ? wins / counted : 0, meanDelta: counted ? sum / counted : 0, moved,
    };
  });
}

/** One record's delta on every anchor, in anchor order; null where the anchor was not scored for it. */
export function recordEffectsOf(score: CandidateScore, anchors: readonly Example[]): protocol.RecordAnchorEffect[] {
  return anchors.map((a, k) => {
    const d = score.deltas[k];
    return {
      index: k, instruction: shorten(a.instruction, ANCHOR_TEXT_MAX), input: shorten(a.input, ANCHOR_TEXT_MAX),
      delta: d === undefined || Number.isNaN(d) ? null : d,
    };
  });
}
