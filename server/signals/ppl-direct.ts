/**
 * Perplexity of the response alone: exp(nll_direct) over tokenize(output(c)) with special tokens,
 * every output token that has a token before it. One extra short pass per record.
 */
import { formatNumber, meanNegativeLogprob, quantileSummary, type Signal } from './signal';

export const pplDirect: Signal = {
  name: 'ppl_direct',
  label: 'PPL (direct)',
  unit: '',
  description: 'perplexity of the response alone, without the instruction (one short extra pass)',
  better: 'lower',
  compute: (passes) => {
    const nll = meanNegativeLogprob(passes.direct);
    return nll === null ? null : Math.exp(nll);
  },
  valueOf: (score) => score.signals?.['ppl_direct'] ?? null,
  format: formatNumber(4),
  summarize: quantileSummary,
};
