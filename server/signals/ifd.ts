/**
 * Instruction-Following Difficulty (Cherry LLM; Superfiltering): ppl_cond / ppl_direct. Below 1 the
 * instruction helps predict the response; those tools discard records at 1 or more and prefer high IFD
 * below 1. Missing (never 0) when either perplexity is.
 */
import { formatNumber, quantileSummary, type Signal } from './signal';

export const ifd: Signal = {
  name: 'ifd',
  label: 'IFD',
  unit: '',
  description: 'instruction-following difficulty, ppl_cond / ppl_direct (below 1: the instruction helps)',
  better: 'higher',
  compute: (_passes, earlier) => {
    const cond = earlier['ppl_cond'] ?? null;
    const direct = earlier['ppl_direct'] ?? null;
    return cond === null || direct === null ? null : cond / direct;
  },
  valueOf: (score) => score.signals?.['ifd'] ?? null,
  format: formatNumber(3),
  summarize: quantileSummary,
};
