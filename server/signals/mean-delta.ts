/** The mean per-anchor delta, s1 - s0, in nats: the tie-breaker of plain selection. Held by the score itself. */
import { quantileSummary, type Signal } from './signal';

export const meanDelta: Signal = {
  name: 'mean_delta',
  label: 'Mean Δ',
  unit: 'nats',
  description: 'mean change of the anchors\' response log-probability with the record as demonstration',
  better: 'higher',
  valueOf: (score) => score.meanDelta,
  format: (value) => (value === null ? '—' : value.toFixed(3)),
  summarize: quantileSummary,
};
