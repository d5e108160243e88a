/** The golden score (ALGORITHM.md): the share of anchors whose response became more likely. Held by the score itself. */
import { quantileSummary, type Signal } from './signal';

export const golden: Signal = {
  name: 'golden',
  label: 'Golden',
  unit: '',
  description: 'share of anchors whose response became more likely with the record as a one-shot demonstration',
  better: 'higher',
  valueOf: (score) => score.goldenScore,
  format: (value) => (value === null ? '—' : value.toFixed(2)),
  summarize: quantileSummary,
};
