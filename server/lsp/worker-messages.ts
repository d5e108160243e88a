/**
 * Messages between the language server's main thread and its scoring worker (worker_threads). Internal
 * to server/: the client never sees them. The worker owns everything heavy (the model, anchor choice,
 * model fingerprints) so that the main thread keeps answering LSP messages.
 */
import type { Agreement } from '../selection/agree';
import type { Example } from '../records/dataset';
import type { GgufImportProgress } from '../model/gguf/import';
import type { DownloadProgress } from '../model/hub';
import type { ScoringOptions } from '../scoring/backend';
import type { BackendSettings } from '../scoring/open';
import type { CandidateScore } from '../scoring/golden';
import type { ProbeRecord } from '../scoring/cost-estimate';

export interface Candidate extends Example {
  index: number;
  id: string;
}

/**
 * How the worker opens a model: openBackend's own settings, the ones the server decides (from the client's
 * ServerSettings and ServerSecrets, whose names they share). `threads` 0: all cores but one.
 */
export type ModelOptions = Pick<BackendSettings, 'threads' | 'variant' | 'cacheDir' | 'hubToken' | 'apiKey' | 'apiKeyOrigins'>;

export type WorkerRequest =
  /** `download`: a hub model missing from the cache may be fetched; without it only the cache is used. */
  | { id: number; kind: 'identify'; model: string; options: ModelOptions; download: boolean }
  | {
    id: number; kind: 'score'; model: string; modelOptions: ModelOptions; anchorsHash: string; anchors: Example[];
    options: ScoringOptions; records: Candidate[];
    /** The chat template to score through, as `nuggets score --template` names it ('chat', 'chatml', a .jinja path); absent: the paper's. */
    template?: string;
    /** Records in flight at once against a serving engine (default DEFAULT_RECORDS_IN_FLIGHT); a local model takes one. */
    recordsInFlight?: number;
    /** Time each record's passes: its score reply carries them (a run's probe, cost-estimate.ts). */
    probe?: boolean;
  }
  /** The chat template `name` ('chat': the model's own, 'chatml', a .jinja path) resolves to for `model`, as the command line resolves it. */
  | { id: number; kind: 'chatTemplate'; model: string; options: ModelOptions; name: string }
  | { id: number; kind: 'chooseAnchors'; method: 'random' | 'kmeans'; count: number; seed: number; records: Candidate[] }
  /** Scores `records` with each of two models and compares their rankings (server/selection/agree.ts). */
  | { id: number; kind: 'agree'; models: [string, string]; modelOptions: [ModelOptions, ModelOptions]; anchors: Example[]; options: ScoringOptions; records: Candidate[]; threshold: number }
  | { id: number; kind: 'cancel'; target: number }
  /**
   * The server is shutting down: every job is cancelled, the passes under way end, the model's sessions are
   * released, and the worker thread ends by itself (never terminated with live sessions, see ScoringWorker.dispose).
   */
  | { id: number; kind: 'close' };

export type WorkerReply =
  | { id: number; kind: 'identity'; name: string; fingerprint: string }
  /** A hub model is not (completely) in the cache and `download` was not given. */
  | { id: number; kind: 'notDownloaded'; message: string }
  | { id: number; kind: 'download'; progress: DownloadProgress }
  /** A GGUF model's one-time import into the cache while it opens (`model`: the name it is shown under). */
  | { id: number; kind: 'import'; model: string; progress: GgufImportProgress }
  /** `excluded`: anchors left without a response token by maxAnchorTokens (golden.ts excludedAnchors). */
  | { id: number; kind: 'prepared'; seconds: number; excluded: number[] }
  | { id: number; kind: 'score'; score: CandidateScore; probe?: ProbeRecord }
  /** A score request's step before its first record: opening the model, scoring the anchors alone. */
  | { id: number; kind: 'stage'; stage: string }
  | { id: number; kind: 'done'; cancelled: boolean }
  | { id: number; kind: 'anchors'; indices: number[] }
  /** `names`: the models as the report names them; `constant`: whether each gave every record the same golden score. */
  | { id: number; kind: 'agreement'; agreement: Agreement; report: string; names: [string, string]; constant: [boolean, boolean] }
  /** The template's text and what it renders with: the server builds the same ChatTemplate from it (its key is the scores key's template). */
  | { id: number; kind: 'chatTemplate'; text: string; source: string; key: string; specialTokens: Record<string, string> }
  /** The model has no chat template of its own (chat-template.ts NoChatTemplateError): the message says so and what to name instead. */
  | { id: number; kind: 'noChatTemplate'; message: string }
  | { id: number; kind: 'error'; message: string; userError: boolean }
  /** Not an answer to a request (id 0): what the user should know when a backend opens (an API key withheld). */
  | { id: 0; kind: 'warning'; message: string };
