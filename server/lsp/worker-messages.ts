/**
 * Messages between the language server's main thread and its scoring worker (worker_threads). Internal
 * to server/: the client never sees them. The worker owns everything heavy (the model, anchor choice,
 * model fingerprints) so that the main thread keeps answering LSP messages.
 */
import type { Example } from '../dataset';
import type { ScoringOptions } from '../scoring/backend';
import type { CandidateScore } from '../scoring/golden';

export interface Candidate extends Example {
  index: number;
  id: string;
}

export type WorkerRequest =
  | { id: number; kind: 'identify'; model: string; threads: number }
  | {
    id: number; kind: 'score'; model: string; threads: number; anchorsHash: string; anchors: Example[];
    options: ScoringOptions; records: Candidate[];
  }
  | { id: number; kind: 'chooseAnchors'; method: 'random' | 'kmeans'; count: number; seed: number; records: Candidate[] }
  | { id: number; kind: 'cancel'; target: number };

export type WorkerReply =
  | { id: number; kind: 'identity'; name: string; fingerprint: string }
  | { id: number; kind: 'prepared'; seconds: number }
  | { id: number; kind: 'score'; score: CandidateScore }
  | { id: number; kind: 'done'; cancelled: boolean }
  | { id: number; kind: 'anchors'; indices: number[] }
  | { id: number; kind: 'error'; message: string; userError: boolean };
