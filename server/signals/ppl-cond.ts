/**
 * Perplexity of the response given the instruction: exp(nll_cond), nll_cond minus the mean log
 * probability over the response span of the candidate's own prefix pass. Costs no extra pass.
 */
import { formatNumber, meanNegativeLogprob, quantileSummary, type Signal } from './signal';

export const pplCond: Signal = {
  name: 'ppl_cond',
  label: 'PPL (cond.)',
  unit: '',
  description: 'perplexity of the response given the instruction (from the prefix pass)',
  better: 'lower',
  compute: (passes) => {
    const nll = meanNegativeLogprob(passes.conditional);
    return nll === null ? null : Math.exp(nll);
  },
  valueOf: (score) => score.signals?.['ppl_cond'] ?? null,
  format: formatNumber(4),
  summarize: quantileSummary,
};
