/**
 * What a per-record signal is: one declaration that the store, the protocol, the hover, the dashboard,
 * the CLI summary and selection all read, so that adding a signal means adding one file here (and its
 * entry in index.ts). ALGORITHM.md ("Signals beside the golden score") defines each one exactly.
 */

/** What the passes over a candidate yield for its signals. */
export interface SignalPasses {
  /**
   * log p of each token of the response span of the candidate's prefix pass (tokenize(full(c)) with
   * special tokens, span [len(tokenize(query(c))), len(tokenize(full(c))))), after any left cut.
   */
  conditional: Float64Array;
  /** log p of each output token that has a token before it, in one pass over tokenize(output(c)). */
  direct: Float64Array;
}

/** A signal's value for one record; null when it is undefined for it (for example an empty span). */
export type SignalValue = number | null;

/** The scalar signals a backend computed for a record, by signal name. */
export type SignalValues = Record<string, SignalValue>;

/** The parts of a record's score a signal may read (golden score and mean delta live there). */
export interface ScoreFields {
  goldenScore: number;
  meanDelta: number;
  signals?: SignalValues;
}

export interface Signal {
  /** The field name in the scores file, the key in the protocol, the `--by` value and flag stem. */
  name: string;
  /** Short title for columns and charts. */
  label: string;
  /** Unit, or '' for a plain number. */
  unit: string;
  /** One sentence for hovers, the README and help. */
  description: string;
  /** Which end is better: ranking walks from it. */
  better: 'higher' | 'lower';
  /**
   * How it is computed from the passes and the signals computed before it (index.ts lists the order);
   * absent for signals the golden score already holds.
   */
  compute?: (passes: SignalPasses, earlier: SignalValues) => SignalValue;
  /** The record's value. */
  valueOf: (score: ScoreFields) => SignalValue;
  /** How one value reads to a user. */
  format: (value: SignalValue) => string;
  /** How a set of values is summarised (CLI summary, selection card, dashboard). */
  summarize: (values: readonly SignalValue[]) => SignalSummary;
}

export interface SignalSummary {
  /** Records with a value. */
  count: number;
  /** Records for which the signal is undefined. */
  missing: number;
  mean: number | null;
  p10: number | null;
  median: number | null;
  p90: number | null;
}

/** The summary every signal uses: mean and quantiles over the records that have a value. */
export function quantileSummary(values: readonly SignalValue[]): SignalSummary {
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  const at = (q: number): number | null => (present.length ? present[Math.min(present.length - 1, Math.floor(q * present.length))]! : null);
  return {
    count: present.length,
    missing: values.length - present.length,
    mean: present.length ? present.reduce((s, v) => s + v, 0) / present.length : null,
    p10: at(0.1),
    median: at(0.5),
    p90: at(0.9),
  };
}

/** Minus the mean of natural-log probabilities; null over an empty span. */
export function meanNegativeLogprob(logprobs: Float64Array): SignalValue {
  if (logprobs.length === 0) return null;
  let sum = 0;
  for (const v of logprobs) sum += v;
  return -sum / logprobs.length;
}

/** A number with a fixed count of significant digits, or an em dash for a missing value. */
export function formatNumber(digits: number): (value: SignalValue) => string {
  return (value) => (value === null ? '—' : value.toPrecision(digits).replace(/\.?0+$/, '').replace(/\.?0+e/, 'e'));
}
