/** How a subset is chosen: the engine's type (select.ts applies it), carried type-only by the protocol. */

/** A bound on one signal: min inclusive, max exclusive (so `ifd < 1` is `{ signal: 'ifd', max: 1 }`). */
export interface SignalBound {
  signal: string;
  min?: number;
  max?: number;
}

export type SelectionRule = (
  | { kind: 'min-score'; minScore: number }
  | { kind: 'top'; count: number }
  | { kind: 'top-percent'; percent: number }
  /** Every record within the bounds. */
  | { kind: 'all' }
) & {
  /** The signal records are ranked by, best end first (default: golden). */
  by?: string;
  /** Bounds on signals a kept record must lie within. */
  bounds?: SignalBound[];
  /** Diversity-aware: keep a record only when its cosine similarity to every kept record is below this (ALGORITHM.md). */
  diverse?: number;
  /**
   * Problem records (server/records/problems.ts: an empty instruction or output, an exact duplicate of an earlier record):
   * 'left-out' (the default) or 'kept' (`--keep-problems`). A card written before this rule has none: it kept them.
   */
  problems?: 'left-out' | 'kept';
};

