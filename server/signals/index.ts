/**
 * Every per-record signal, in one list: what the store writes, the protocol carries, the views show,
 * the CLI summarises and selection ranks by. Signals computed from passes come after the ones they
 * read (ifd after the perplexities). The embedding is a vector, not a scalar: see embedding.ts.
 */
import { golden } from './golden';
import { ifd } from './ifd';
import { meanDelta } from './mean-delta';
import { pplCond } from './ppl-cond';
import { pplDirect } from './ppl-direct';
import type { Signal, SignalPasses, SignalValues } from './signal';

export const SIGNALS: readonly Signal[] = [golden, meanDelta, pplCond, pplDirect, ifd];

/** The signals computed from the passes (stored as fields of their own in the scores file). */
export const PASS_SIGNALS: readonly Signal[] = SIGNALS.filter((s) => s.compute);

export function signalNamed(name: string): Signal | undefined {
  return SIGNALS.find((s) => s.name === name);
}

export function computeSignals(passes: SignalPasses): SignalValues {
  const values: SignalValues = {};
  for (const signal of PASS_SIGNALS) values[signal.name] = signal.compute!(passes, values);
  return values;
}

export type { Signal, SignalPasses, SignalSummary, SignalValue, SignalValues } from './signal';
