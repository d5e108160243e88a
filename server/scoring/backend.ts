/**
 * What a model must answer for Nuggets scoring, whatever runs it: a local ONNX model (local.ts) or a
 * remote serving engine. Both compute, for an anchor set, the zero-shot response log-probabilities s0
 * once, and for each candidate the one-shot s1 with the candidate as demonstration. The golden score
 * (golden.ts) is computed from these numbers alone, so every backend yields comparable scores.
 */
import { recordId, type Example } from '../records/dataset';
import type { SignalPasses } from '../signals';
import type { TurnsScored } from './chat-render';
import type { ChatTemplate } from './chat-template';

export interface ScoringOptions {
  /** Anchors are cut to this many tokens; the response span is clipped to what remains (paper: 200). */
  maxAnchorTokens: number;
  /** Text between the candidate and the anchor; empty in the paper. */
  separator: string;
  /** Anchors per forward pass. */
  batchSize: number;
  /** Score through this chat template (ALGORITHM.md, "Conversations and chat templates") instead of the paper's. */
  chatTemplate?: ChatTemplate;
  /**
   * Which assistant turns the signals (ppl_cond, ppl_direct, ifd) read under a chat template (--turns): the final
   * one (default), or all of them pooled. Alpaca records under the paper's template have one either way.
   */
  turns?: TurnsScored;
}

export const DEFAULT_OPTIONS: ScoringOptions = { maxAnchorTokens: 200, separator: '', batchSize: 16 };

/**
 * Records a serving engine scores at once unless told otherwise (--records-in-flight, nuggets.recordsInFlight): it
 * batches the requests of several records, and would idle between one record's requests and the next's.
 */
export const DEFAULT_RECORDS_IN_FLIGHT = 4;

export interface ModelIdentity {
  /** Human-readable name (folder, hub id or endpoint model). */
  name: string;
  /** Changes whenever the weights or tokenizer change: part of every score's key. */
  fingerprint: string;
  contextLength: number;
}

export interface PreparedAnchors {
  readonly count: number;
  /** s0 per anchor: summed log-probability of its response span, anchor alone. */
  readonly zeroShot: Float64Array;
  /** Tokens in each anchor's response span after truncation (0 when the query fills maxAnchorTokens). */
  readonly responseTokens: Int32Array;
  /**
   * Each anchor's position by its content id (dataset.ts recordId; the first of duplicates): a candidate that
   * is itself an anchor is not scored against itself (golden.ts). Absent in hand-made test preparations.
   */
  readonly anchorById?: ReadonlyMap<string, number>;
}

/** A candidate's prompt prefix: ids(full(c), special) + ids(separator), cut from the left to fit (cutPrefix). */
export interface CandidatePrefix {
  prefix: number[];
  /** The candidate was cut from the left to fit the model's context. */
  truncated: boolean;
  /** How many tokens were cut from the left (0 when it fits). */
  cut: number;
}

/** ids(full(c)) + separator, cut from the left to at most `room` tokens, so that the longest anchor still fits after it. */
export function cutPrefix(full: readonly number[], separator: readonly number[], room: number): CandidatePrefix {
  const whole = [...full, ...separator];
  if (whole.length <= room) return { prefix: whole, truncated: false, cut: 0 };
  const prefix = whole.slice(whole.length - room);
  return { prefix, truncated: true, cut: whole.length - prefix.length };
}

/**
 * Where the candidate's response lies in its prefix, [from, to): after the tokens of query(c) with special
 * tokens, before the separator, shifted by the cut. Empty when the cut took the whole response.
 */
export function responseSpan({ prefix, cut }: CandidatePrefix, queryLength: number, separatorLength: number): { from: number; to: number } {
  const to = Math.max(0, prefix.length - separatorLength);
  return { from: Math.min(Math.max(1, queryLength - cut), to), to };
}

export interface OneShotResult {
  /** s1 per requested anchor, in the order of `anchorIndices` (or all anchors). */
  oneShot: Float64Array;
  /** The candidate was cut from the left to fit the model's context. */
  truncated: boolean;
}

/** A candidate's passes for its signals (ALGORITHM.md, "Signals beside the golden score"). */
export interface CandidatePasses extends SignalPasses {
  /** The L2-normalised mean final hidden state; undefined where the backend cannot see hidden states. */
  embedding: Float32Array | undefined;
}

/**
 * Each scoring call takes an optional `signal`: once it aborts, a serving backend abandons the call's requests
 * in flight and the call rejects (http.ts RequestCancelled), leaving the backend ready for the next call. A
 * local backend cannot stop an ONNX pass midway: it rejects the same way before its next batch of anchors.
 */
export interface ScoringBackend {
  readonly identity: ModelIdentity;
  prepareAnchors(anchors: readonly Example[], options: ScoringOptions, signal?: AbortSignal): Promise<PreparedAnchors>;
  /** One-shot scores of the given anchors (default: all) with `candidate` as the demonstration. */
  oneShot(candidate: Example, anchors: PreparedAnchors, anchorIndices?: readonly number[], signal?: AbortSignal): Promise<OneShotResult>;
  /** The passes the candidate's signals come from (the prefix pass, shared with oneShot where it can be, and the output pass). */
  candidatePasses(candidate: Example, anchors: PreparedAnchors, signal?: AbortSignal): Promise<CandidatePasses>;
  /** What the run computed, for its summary, where the backend can tell (SGLang: token positions per record). */
  costNote?(): string | undefined;
  dispose(): Promise<void>;
}

/** Each anchor's position by its content id (the first of duplicates): PreparedAnchors.anchorById. */
export function anchorIndexById(anchors: readonly Example[]): Map<string, number> {
  const byId = new Map<string, number>();
  anchors.forEach((a, i) => {
    const id = recordId(a);
    if (!byId.has(id)) byId.set(id, i);
  });
  return byId;
}
