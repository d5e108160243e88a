/**
 * Golden scores from a backend's s0 and s1 (ALGORITHM.md): delta = s1 - s0 per anchor, golden = share
 * of anchors with s1 > s0. Backend-agnostic: the same code scores through ONNX or a serving engine.
 */
import type { DatasetRecord } from '../dataset';
import type { PreparedAnchors, ScoringBackend } from './backend';

export interface CandidateScore {
  index: number;
  id: string;
  goldenScore: number;
  wins: number;
  anchors: number;
  meanDelta: number;
  /** s1 - s0 per anchor, in anchor order, in nats. */
  deltas: number[];
  /** The candidate was cut from the left to fit the model's context. */
  truncated: boolean;
}

export function goldenFrom(prepared: PreparedAnchors, oneShot: Float64Array): Pick<CandidateScore, 'goldenScore' | 'wins' | 'anchors' | 'meanDelta' | 'deltas'> {
  const deltas: number[] = [];
  let wins = 0;
  let total = 0;
  for (let i = 0; i < prepared.count; i++) {
    const delta = oneShot[i]! - prepared.zeroShot[i]!;
    if (oneShot[i]! > prepared.zeroShot[i]!) wins++;
    total += delta;
    deltas.push(delta);
  }
  return { goldenScore: wins / prepared.count, wins, anchors: prepared.count, meanDelta: total / prepared.count, deltas };
}

export async function scoreCandidate(backend: ScoringBackend, prepared: PreparedAnchors, record: DatasetRecord): Promise<CandidateScore> {
  const { oneShot, truncated } = await backend.oneShot(record, prepared);
  return { index: record.index, id: record.id, ...goldenFrom(prepared, oneShot), truncated };
}

/**
 * Scores `records` one after another, handing each result to `onScore` as soon as it exists (so a
 * caller can persist it before the next begins). Stops between records once `signal` aborts.
 */
export async function scoreRecords(
  backend: ScoringBackend,
  prepared: PreparedAnchors,
  records: readonly DatasetRecord[],
  onScore: (score: CandidateScore) => void,
  signal?: AbortSignal,
): Promise<void> {
  for (const record of records) {
    if (signal?.aborted) return;
    onScore(await scoreCandidate(backend, prepared, record));
  }
}
