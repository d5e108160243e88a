/**
 * The whole contract between the extension (extension/) and the Nuggets language server
 * (server/lsp/): every custom request and notification, with its parameters and result. Both
 * sides import this file and nothing else crosses the border; standard LSP (document sync,
 * hover, work-done progress, $/cancelRequest) carries the rest. The dashboard webview reaches
 * these requests only through the extension.
 *
 * Positions and ranges are LSP's (0-based lines, UTF-16 characters). Golden scores are in [0, 1];
 * deltas are in nats (natural-log probability of the anchor's response, one-shot minus zero-shot).
 * A score is "stale" when it was computed under another model, anchor set or setting than the ones
 * in effect now: it is shown, marked, and never mixed into selections or statistics.
 */
import {
  NotificationType,
  RequestType,
  RequestType0,
  type PartialResultParams,
  type Range,
  type TextDocumentIdentifier,
  type WorkDoneProgressParams,
} from 'vscode-languageserver-protocol';
import type { ScoreSummary } from './records/score';
import type { SelectionRule, SignalBound } from './selection/selection-rule';
import type { SignalSummary, SignalValues } from './signals/signal';

// ---------------------------------------------------------------------------------------------
// Start-up and settings

/** What the client resolved from the user's settings; the server never reads configuration itself. */
export interface ServerSettings {
  /**
   * Absolute path of the model folder (the bundled demo model when the setting is empty), or a model
   * specification the engine's openBackend understands that is not a path (for example hf:owner/name).
   */
  model: string;
  /** Absolute path of an Alpaca anchors file used for datasets without their own choice, or null. */
  anchors: string | null;
  maxAnchorTokens: number;
  batchSize: number;
  /** ONNX Runtime intra-op threads; 0 = automatic (one core is left for the editor). */
  threads: number;
  /**
   * Which ONNX export of the model to run (`fp32`, `quantized`, `q4`, …: onnx/model_<variant>.onnx; the
   * `nuggets.modelVariant` setting); null for fp32. Part of the model's identity: another variant is another model.
   */
  variant?: string | null;
  /** False in untrusted workspaces: stored scores are shown, but no model is run or downloaded. */
  scoringAllowed: boolean;
  /** The model is the bundled demo model: its scores are for trying the tool, not for curation (hovers say so). */
  demoModel?: boolean;
  /**
   * Records a serving engine (vLLM, SGLang) scores at once (`nuggets.recordsInFlight`, as the CLI's --records-in-flight;
   * default 4). Scores are still stored and shown in dataset order. A local model scores one record at a time.
   */
  recordsInFlight?: number;
  /**
   * A Score Dataset run whose probe estimates it at this many seconds or more asks before scoring the rest
   * (costEstimateRequest's `ask`; the `nuggets.askBeforeRunsLongerThan` setting). Absent: 60.
   */
  askAboveSeconds?: number;
  /**
   * Credentials from the editor's secret storage (never from settings files). The server hands them to
   * the engine and never writes or logs them; the client sends none in untrusted workspaces.
   */
  secrets?: ServerSecrets;
  /**
   * How the records of a dataset are written (`nuggets.format`): detected per file from its first record when
   * 'auto' or absent, as `nuggets score --format` does.
   */
  format?: RecordFormatSetting;
  /**
   * The template records are scored with (`nuggets.template`), as `nuggets score --template` names it: 'auto' (or
   * absent) is the paper's Alpaca template for Alpaca records and the model's own chat template ('chat') for
   * conversations; 'paper', 'chat', 'chatml', or the absolute path of a .jinja file. Untrusted workspaces send
   * only the user's own (global) value.
   */
  template?: string;
  /**
   * Which assistant turns of a conversation ppl_cond, ppl_direct and ifd read (`nuggets.turns`), as `nuggets score
   * --turns`: 'last' (or absent), the final one; 'all', every assistant turn pooled. Part of the scores key, as the
   * command line writes it, so the editor and `nuggets score --turns all` share one scores file.
   */
  turns?: 'last' | 'all';
}

export type RecordFormatSetting = 'auto' | 'alpaca' | 'messages' | 'sharegpt' | 'prompt-completion' | 'dolly';

/**
 * ResponseError data of a Score Dataset that needs a chat template the model does not have (the bundled demo
 * model has none): the client offers to score with the built-in ChatML template instead (`nuggets.template`).
 */
export interface NoChatTemplateData {
  noChatTemplate: true;
}

export interface ServerSecrets {
  /** Hugging Face access token, sent as a Bearer header to the hub only (not to the storage it redirects to). */
  hubToken?: string;
  /** API key of an OpenAI-compatible serving endpoint (vLLM --api-key). */
  apiKey?: string;
  /**
   * The origins (scheme://host:port) the API key may be sent to: the one it was entered for, then those
   * the user allowed when asked. An endpoint elsewhere gets no key.
   */
  apiKeyOrigins?: string[];
}

/** `initializationOptions` of the LSP initialize request. */
export interface InitializationOptions {
  /**
   * Where scores and anchor sets persist: the extension's globalStorageUri path. Hub models are downloaded
   * to its cache/hub folder and derived graphs kept in cache/graphs.
   */
  storagePath: string;
  settings: ServerSettings;
}

/** Client -> server: the effective settings changed (configuration edited, workspace trusted). */
export const didChangeSettings = new NotificationType<ServerSettings>('nuggets/didChangeSettings');

// ---------------------------------------------------------------------------------------------
// Scores of an open dataset

/**
 * A record's score without its per-anchor deltas: the engine's one definition (server/scoring/golden.ts),
 * golden score, wins, mean delta, truncation, an early-stop bound, and every signal by name (server/signals).
 */
export type { ScoreSummary, SignalValues };

export interface RecordScore {
  /** Position among the dataset's records, 0-based. */
  index: number;
  /** Content hash of the record: its identity in the store. */
  id: string;
  /** The record's text in the document. */
  range: Range;
  /** Absent: not scored (under any model or anchor set). */
  score?: ScoreSummary;
  /** The score was computed under another model/anchor set/settings, or for the record before an edit. */
  stale: boolean;
  /**
   * Set for a problem record (server/records/problems.ts), which no selection takes: `mark` for its badge ('empty',
   * 'duplicate', or 'unscorable' for a conversation the engine cannot score), `reason` for people ("empty output",
   * "repeats index 3", "cannot be scored: it has no assistant turn").
   */
  problem?: RecordProblemInfo;
}

export interface RecordProblemInfo {
  mark: 'empty' | 'duplicate' | 'unscorable';
  reason: string;
}

export interface ScoresParams {
  uri: string;
  /** Document version the ranges refer to. */
  version: number;
  /**
   * True: `records` lists every record of the document and replaces what the client holds. False:
   * `records` lists only the records whose score changed; ranges of the others are unchanged.
   */
  full: boolean;
  records: RecordScore[];
  /**
   * Records in the document that can be scored: a record that cannot (a conversation whose roles do not
   * alternate, say) is in `records` with its 'unscorable' problem mark, and is not waited for.
   */
  total: number;
  /** Records with a current (not stale) score. */
  scored: number;
  /** The model and anchor set the current scores belong to; null when not yet known. */
  model: string | null;
  anchorCount: number | null;
  /** How the document's anchor set was chosen ("k-means 100 of this file", "anchors.json"); null when it has none. */
  anchors: string | null;
  /** The model is the bundled demo model (ServerSettings.demoModel): its scores are for trying the tool, not for curation. */
  demoModel: boolean;
  /**
   * Set when the scores answer `fileOpening`: the ranges refer to the file as saved on disk, read before
   * the editor's document arrived, and `version` is 0. The client applies them only to a document that is
   * not dirty and has exactly this length (UTF-16 code units) and line count; the document's own didOpen
   * is answered with a full notification as usual, which replaces them.
   */
  savedFile?: { length: number; lineCount: number };
}

/**
 * Server -> client: scores of an Alpaca document, sent when it is opened or edited (full) and as
 * records are scored (partial). Files that are not Alpaca datasets never get one.
 */
export const scoresNotification = new NotificationType<ScoresParams>('nuggets/scores');

/**
 * Client -> server: an editor tab opened this file; its document follows with didOpen once the editor has
 * loaded it, which for a large file takes seconds. The server reads and parses the saved file meanwhile
 * and, for an Alpaca dataset, sends its scores at once (`ScoresParams.savedFile`), so that they can be
 * drawn the moment the document arrives.
 */
export const fileOpening = new NotificationType<{ uri: string }>('nuggets/fileOpening');

// ---------------------------------------------------------------------------------------------
// Parquet files in the table editor (extension/parquet_editor.ts)
//
// A `.parquet` file has no text document: it opens in a read-only custom editor, a table of its rows. The
// client names it with openTable; from then on every request that takes a `textDocument` takes its URI too
// (tablePage, recordEffects, scoreDataset, selectionPreview, selectSubset, the dashboard's). tablePage and
// recordEffects read the rows they answer from the file itself, a row group at a time, so that a 500 MB
// shard opens at once and is never held whole: its rows in file order at once, any other order or filter
// once the row index (each row's record id, read through the file once) is built. The commands that need
// every record (Score Dataset, Select Golden Subset, the dashboard, Compare Models) read the whole file as
// they read a JSON file, up to `TABLE_WHOLE_MAX_BYTES`; a larger file says to use the command line, whose
// scores the table shows. Scores notifications for the file carry row numbers as ranges (line = row).

/** What the file's footer says: known before any row is read. */
export interface TableInfo {
  uri: string;
  /** Rows in the file (or the folder's shards), those that cannot be scored included. */
  rows: number;
  rowGroups: number;
  /** Size on disk. */
  bytes: number;
  /** The top-level column names, in schema order. */
  columns: string[];
  /** Whether the editor's commands may read the file whole (bytes <= wholeMaxBytes). */
  wholeAllowed: boolean;
  /** The largest file the editor reads whole (TABLE_WHOLE_MAX_BYTES), for saying so. */
  wholeMaxBytes: number;
}

/** The largest Parquet file the editor reads whole, for Score Dataset, Select Golden Subset and the dashboard. */
export const TABLE_WHOLE_MAX_BYTES = 256 * 2 ** 20;

/** Client -> server: a Parquet file opened in the table editor. A file that is no readable Parquet is refused with what is wrong. */
export const openTable = new RequestType<{ textDocument: TextDocumentIdentifier }, TableInfo, void>('nuggets/openTable');

/** Client -> server: the file's last table editor closed. */
export const closeTable = new NotificationType<{ textDocument: TextDocumentIdentifier }>('nuggets/closeTable');

/** How far the row index of an open table is: sent as it is built (about once a row group) and when done. */
export interface TableIndexParams {
  uri: string;
  indexed: number;
  rows: number;
  done: boolean;
  /** Set when the index stopped: a damaged row group, say. Rows in file order still show. */
  problem?: string;
}

export const tableIndexNotification = new NotificationType<TableIndexParams>('nuggets/tableIndex');

/** Server -> client: the document is no longer an Alpaca dataset (or was closed): drop its scores. */
export const scoresClearedNotification = new NotificationType<{ uri: string }>('nuggets/scoresCleared');

/** Why a document that reads as an Alpaca dataset cannot be parsed as one now. */
export interface DatasetProblem {
  /** What is wrong, without the location: "malformed JSON (expected a comma)", "record 4 has no \"output\" field". */
  message: string;
  /** Where: the character at fault (JSON errors) or the start of the record's line. */
  range: Range;
  /** What to do, when there is more to say than "fix it". */
  hint?: string;
}

export interface DatasetProblemParams {
  uri: string;
  /** null: the document is a valid dataset again (or is closed). */
  problem: DatasetProblem | null;
}

/**
 * Server -> client: a document that reads as an Alpaca dataset (a JSON array or JSON Lines naming an
 * "instruction") does not parse as one, or parses again. Scores already sent for it stay, waiting for a valid
 * file; commands refuse to act on it and point at the problem.
 */
export const datasetProblemNotification = new NotificationType<DatasetProblemParams>('nuggets/datasetProblem');

export interface FileRename {
  oldUri: string;
  newUri: string;
}

/**
 * Client -> server: files or folders were renamed or moved in the editor. Anchor choices follow the files (a
 * folder's rename moves the choices of every file under it).
 */
export const filesRenamed = new NotificationType<{ files: FileRename[] }>('nuggets/filesRenamed');

export type ScoringPhase = 'preparing' | 'scoring' | 'done' | 'cancelled' | 'failed';

export interface ScoringStatus {
  uri: string;
  phase: ScoringPhase;
  /** Records scored in this run so far, and to score in this run. */
  done: number;
  todo: number;
  /** Records with a current score / in the document. */
  scored: number;
  total: number;
  /** Estimated seconds left in this run; null until one record has finished. */
  etaSeconds: number | null;
  /** Why the run failed (phase 'failed'); while preparing, the step under way ("opening the model…"). */
  message?: string;
}

/**
 * Server -> client: a scoring run's state, for the status bar. Sent for runs started by Score
 * Dataset and for the single-record runs that follow edits.
 */
export const scoringStatusNotification = new NotificationType<ScoringStatus>('nuggets/scoringStatus');

// ---------------------------------------------------------------------------------------------
// Commands

export interface ScoreDatasetParams extends WorkDoneProgressParams, PartialResultParams {
  textDocument: TextDocumentIdentifier;
}

export interface ScoreDatasetResult {
  /** Records scored by this run (the others already had a current score). */
  scoredNow: number;
  /** Records with a current score afterwards / in the document. */
  scored: number;
  total: number;
  cancelled: boolean;
  seconds: number;
  /** Records this run did not score: they already had a current score, or repeat a record scored in it. */
  skipped?: number;
  /** The model and anchor set of the run (absent when it stopped before they were known). */
  model?: { name: string; fingerprint: string; demo: boolean };
  anchors?: { description: string; count: number; hash: string };
  /** Set when this run chose the document's anchors first: how, and which records it skipped. */
  anchorsChosen?: AnchorSetInfo;
  /** Anchors left out of every golden score because no response token is left within maxAnchorTokens. */
  excludedAnchors?: string;
  /** What the run's probe estimated for the records after it (costEstimateRequest). */
  estimate?: CostEstimateInfo;
  /** The run stopped after its probe because the user chose this faster way (the client applies it). */
  fasterWay?: FasterWay;
}

/**
 * A faster way to score than the run's: the model's int8 variant (onnx/model_quantized.onnx), fewer anchors, a
 * serving endpoint. The exact early stop at a threshold is the CLI's (`nuggets score --min-score T`): the
 * estimate says what it would take.
 */
export type FasterWay = 'int8' | 'fewerAnchors' | 'endpoint';

/** What a run's probe (its first records, kept) estimates for the records after it. */
export interface CostEstimateInfo {
  uri: string;
  /** Records left after the probe, and the probe's records. */
  records: number;
  probed: number;
  /** Anchors each record is scored against. */
  anchors: number;
  /** Seconds for the records left, every anchor scored. */
  fullSeconds: number;
  /** With the exact early stop at `threshold`: seconds, and one-shot passes per record. */
  earlyStop: { threshold: number; seconds: number; passesPerRecord: number };
  /** The faster ways that apply to this run. */
  fasterWays: FasterWay[];
  /** The run waits for the answer: the estimate reaches askAboveSeconds. Otherwise it goes on, and the answer is not read. */
  ask: boolean;
}

export interface CostEstimateAnswer {
  choice: 'continue' | 'cancel' | FasterWay;
}

/**
 * Server -> client, once a Score Dataset run's probe (its first records, stored like any other) has ended and
 * records remain: the estimate for the rest. When `ask`, the run waits: 'continue' scores the rest; 'cancel', or a
 * faster way, ends it (ScoreDatasetResult.fasterWay names the way). A client that does not answer lets it go on.
 */
export const costEstimateRequest = new RequestType<CostEstimateInfo, CostEstimateAnswer, void>('nuggets/costEstimate');

/**
 * Scores every record of the document that has no current score. A hub model (hf:owner/name) that is
 * not in the cache yet is downloaded first: opening a document never downloads, Score Dataset does,
 * reporting each file's progress as messages of the same work-done progress, and cancelling stops the
 * download (a later run resumes it). Work-done progress (begin/report/end, cancellable) goes to `workDoneToken`; partial results (RecordScore[] of the records just
 * scored) to `partialResultToken`; each score is persisted before it is reported. Cancel with
 * $/cancelRequest or by cancelling the progress: completed records stay scored. If no anchor set
 * was chosen for the document, k-means anchors (up to 100) are chosen from it first.
 */
export const scoreDataset = new RequestType<ScoreDatasetParams, ScoreDatasetResult, void>('nuggets/scoreDataset');

export type AnchorChoice =
  | { method: 'file'; path: string }
  | { method: 'random'; count: number; seed?: number }
  | { method: 'kmeans'; count: number; seed?: number };

export interface ChooseAnchorsParams {
  textDocument: TextDocumentIdentifier;
  choice: AnchorChoice;
}

export interface AnchorSetInfo {
  /** Content hash of the anchor set: part of every score's key. */
  hash: string;
  count: number;
  /** The anchors file (in extension storage for random/k-means choices). */
  path: string;
  /** Records of the document whose scores became stale by this choice. */
  staleRecords: number;
  /** How the set was chosen: "k-means 100 of this file", "random 20 of this file", "anchors.json". */
  description: string;
  /** Records that could not be anchors and were skipped (empty response, exact repeat), described; absent when none. */
  skipped?: string;
}

/** Chooses the document's anchor set (random and k-means from the document's own records). */
export const chooseAnchors = new RequestType<ChooseAnchorsParams, AnchorSetInfo, void>('nuggets/chooseAnchors');

/** Removes every stored score of the document's records (under every model and anchor set). */
export const clearScores = new RequestType<{ textDocument: TextDocumentIdentifier }, { removed: number }, void>('nuggets/clearScores');

/** A rank or threshold on one signal, bounds on others, optionally diverse: the engine's own type (server/selection/select.ts). */
export type { SelectionRule, SignalBound };

export interface SelectionPreviewParams {
  textDocument: TextDocumentIdentifier;
  rules: SelectionRule[];
}

export interface SelectionPreviewResult {
  /** Records each rule would keep, in the order of `rules` (computed from current scores). */
  counts: number[];
  scored: number;
  total: number;
}

/** How many records each rule would keep. Answered from memory, no scoring. */
export const selectionPreview = new RequestType<SelectionPreviewParams, SelectionPreviewResult, void>('nuggets/selectionPreview');

export interface SelectSubsetParams {
  textDocument: TextDocumentIdentifier;
  rule: SelectionRule;
  /** Add each record's golden_score to the written records. */
  withScores?: boolean;
}

export interface SelectSubsetResult {
  /** The new file, beside the source (never the source itself). */
  path: string;
  uri: string;
  kept: number;
  total: number;
  /** The selection card written beside the subset (<subset>.card.json). */
  cardPath: string;
  /** Records a diverse rule skipped as near-duplicates of kept ones. */
  skippedAsDuplicates: number;
  /** Set when a diverse rule compared TF-IDF vectors because the model's embeddings were missing. */
  similarityNotice?: string;
  /** Set when the rule left problem records out (server/records/problems.ts): "2 problem records (2 with an empty instruction or output)". */
  problemsLeftOut?: string;
}

/** Writes the chosen records, as they are in the source, to a new JSON file beside it. Needs every record scored. */
export const selectSubset = new RequestType<SelectSubsetParams, SelectSubsetResult, void>('nuggets/selectSubset');

// ---------------------------------------------------------------------------------------------
// Dashboard data (the extension relays these for its webview)

export interface DistributionParams {
  textDocument: TextDocumentIdentifier;
  /** Histogram bins over [0, 1]; default 20. */
  bins?: number;
}

export interface DistributionResult {
  total: number;
  /** Records with a current score; only they enter the histogram. */
  scored: number;
  stale: number;
  /** counts[i] = records with golden score in [i/bins, (i+1)/bins); the last bin includes 1. */
  counts: number[];
  /** Every current golden score, descending: the client counts "at or above t" without asking again. */
  goldenScores: number[];
  meanGoldenScore: number | null;
  /** A chart per signal computed from the passes (server/signals), over the current scores. */
  signals: SignalChart[];
  /** The problem records (server/records/problems.ts), in dataset order: no selection takes them. */
  problems: ProblemRecord[];
}

export interface ProblemRecord extends RecordProblemInfo {
  index: number;
  /** Its current golden score, if it has one: the threshold's count leaves it out. */
  goldenScore: number | null;
  /** Plain text, shortened; render it as text, never as HTML. */
  instruction: string;
  range: Range;
}

/** A signal's declaration as views need it (server/signals). */
export interface SignalInfo {
  /** Key in ScoreSummary.signals and TableRow.signals, and a TableSortKey. */
  name: string;
  label: string;
  unit: string;
  description: string;
  better: 'higher' | 'lower';
}

export interface SignalChart extends SignalInfo {
  /**
   * counts[i] = records with the signal in bin i of [from, to]; the last bin includes `to`. Linear: bin i starts
   * at from + i (to - from) / bins; log (a long-tailed signal whose values are all positive): at from (to / from)^(i / bins).
   */
  counts: number[];
  from: number;
  to: number;
  scale: 'linear' | 'log';
  /** Scored records for which the signal is undefined. */
  missing: number;
  summary: SignalSummary;
}

/** One record in the golden-score-vs-IFD scatter plot. */
export interface ScatterPoint {
  index: number;
  x: number;
  y: number;
}

export interface ScatterResult {
  xLabel: string;
  yLabel: string;
  points: ScatterPoint[];
}

export interface NeighboursParams {
  textDocument: TextDocumentIdentifier;
  index: number;
  /** How many; default 5. */
  count?: number;
}

export interface NeighboursResult {
  index: number;
  /** Most similar first; empty when the records have no stored embeddings. */
  neighbours: { index: number; similarity: number; instruction: string }[];
  /** Why there are none, when there are none. */
  note?: string;
}

/** A record's nearest neighbours by model embedding (cosine similarity), among the document's records. */
export const nearestNeighbours = new RequestType<NeighboursParams, NeighboursResult, void>('nuggets/nearestNeighbours');

/** Golden score against IFD, one point per record that has both (the dashboard's scatter plot). */
export const goldenIfdScatter = new RequestType<{ textDocument: TextDocumentIdentifier }, ScatterResult, void>('nuggets/goldenIfdScatter');

export const distribution = new RequestType<DistributionParams, DistributionResult, void>('nuggets/distribution');

/** A column to sort by: these, or the name of a signal (SignalInfo.name). */
export type TableSortKey = 'index' | 'goldenScore' | 'meanDelta' | 'wins' | (string & {});

export interface TablePageParams {
  textDocument: TextDocumentIdentifier;
  offset: number;
  limit: number;
  sortBy?: TableSortKey;
  descending?: boolean;
  /** Keep only records with a current score at or above this. */
  minScore?: number;
  /** Keep only records within the ranges and containing the texts (a brushed chart, the column filters). */
  filter?: RecordFilter;
}

/**
 * Which records the dashboard's table shows: ranges on signals (a brushed chart range or region, a numeric
 * column's filter) and text the instruction or the output must contain. Write Subset and Export Scores take
 * the ranges (`bounds`); the text searches narrow only the table.
 */
export interface RecordFilter {
  /** Signal names (golden, mean_delta, ppl_cond, ppl_direct, ifd): min inclusive, max exclusive, as a rule's bounds. A record without the signal is outside. */
  bounds?: SignalBound[];
  /** Case-insensitive text the record's instruction or input must contain. */
  instruction?: string;
  /** Case-insensitive text the record's output must contain. */
  output?: string;
}

export interface TableRow {
  index: number;
  id: string;
  /** Plain text, shortened; render it as text, never as HTML. */
  instruction: string;
  input: string;
  output: string;
  /**
   * A conversation's turn count (absent for Alpaca records): then `instruction` is its last user turn and
   * `output` its scored (final assistant) turn.
   */
  turns?: number;
  range: Range;
  score?: ScoreSummary;
  stale: boolean;
  /** Each signal of the score, formatted by its declaration, by signal name ('—' when missing). */
  signals: Record<string, string>;
  /** Set for a problem record, which no selection takes. */
  problem?: RecordProblemInfo;
}

export interface TablePageResult {
  /** Rows matching the filter (before paging). */
  total: number;
  offset: number;
  rows: TableRow[];
}

/** One page of the record table; unscored and stale records sort after current ones. */
export const tablePage = new RequestType<TablePageParams, TablePageResult, void>('nuggets/tablePage');

export interface AnchorEffect {
  index: number;
  /** The anchor's instruction (and input), plain text, shortened. */
  instruction: string;
  input: string;
  /** Share of scored candidates that made this anchor's response more likely. */
  winRate: number;
  /** Mean delta over scored candidates, nats. */
  meanDelta: number;
  /** Scored candidates that changed this anchor's log-probability at all: 0 flags an anchor no record moves. */
  moved: number;
}

export interface AnchorEffectsResult {
  /** Candidates (current scores) the statistics are over. */
  candidates: number;
  anchors: AnchorEffect[];
  /** `label` names the set for people: its file name, or "k-means 100 of this file". */
  anchorSet: { hash: string; count: number; path: string; label: string } | null;
}

/** Per anchor: win rate and mean delta across the document's currently scored records. */
export const anchorEffects = new RequestType<{ textDocument: TextDocumentIdentifier }, AnchorEffectsResult, void>('nuggets/anchorEffects');

export interface RecordEffectsParams {
  textDocument: TextDocumentIdentifier;
  /** The record's position among the dataset's records, 0-based. */
  index: number;
}

export interface RecordAnchorEffect {
  index: number;
  /** The anchor's instruction and input, whole (plain text, whitespace folded). */
  instruction: string;
  input: string;
  /** One-shot minus zero-shot log-probability of the anchor's response, nats; null where not scored for this record. */
  delta: number | null;
}

export interface RecordEffectsResult {
  index: number;
  id: string;
  /** The whole record, plain text (render it as text, never as HTML); for a conversation, the final user turn and the scored reply. */
  instruction: string;
  input: string;
  output: string;
  /** A conversation's turns, whole, in order; absent for an Alpaca record. */
  turns?: { role: 'system' | 'user' | 'assistant'; content: string }[];
  /** The turn the golden score scores (the final assistant turn), an index into `turns`. */
  scoredTurn?: number;
  range: Range;
  /** Absent: the record has no score under any model or anchor set. */
  score?: ScoreSummary;
  stale: boolean;
  /** The anchor set of the score shown, and every anchor's delta in its order. */
  anchorSet: { hash: string; count: number; label: string } | null;
  effects: RecordAnchorEffect[];
  /** Set for a problem record, which no selection takes. */
  problem?: RecordProblemInfo;
}

/** One record's delta on every anchor (the dashboard's record view). Answered from memory, no scoring. */
export const recordEffects = new RequestType<RecordEffectsParams, RecordEffectsResult, void>('nuggets/recordEffects');

export interface ExportScoresParams {
  textDocument: TextDocumentIdentifier;
  /** Absolute path of the file to write (chosen by the user); never the dataset itself. */
  path: string;
  format: 'csv' | 'jsonl';
  /** Add each record's delta on every anchor (CSV: delta_1 … delta_m; JSON Lines: `deltas`). */
  withDeltas: boolean;
  /** Only the records within these ranges (the dashboard's brushed selection); absent: every record. */
  bounds?: SignalBound[];
}

export interface ExportScoresResult {
  path: string;
  /** Rows written (every record, or those within the ranges asked), and how many of them have a current score. */
  records: number;
  scored: number;
}

/**
 * Writes the document's current scores: index, id, golden_score, wins, mean_delta and every signal per
 * record, in dataset order (server/selection/export-scores.ts). Records without a current score have empty values.
 */
export const exportScores = new RequestType<ExportScoresParams, ExportScoresResult, void>('nuggets/exportScores');


// ---------------------------------------------------------------------------------------------
// Comparing two models

export interface CompareModelsParams {
  textDocument: TextDocumentIdentifier;
  /** The model to compare the current one with (a folder, hf:owner/name or a serving endpoint), and its ONNX export. */
  other: string;
  otherVariant?: string | null;
  /** Records drawn at random from the document (seed 0). */
  sample: number;
  /** The threshold whose decisions are compared (default 0.85). */
  minScore?: number;
}

export interface CompareModelsResult {
  sample: number;
  /** The two models as the report names them: the current one, then the other. */
  models: [string, string];
  /** Spearman rank correlation of the two models' golden scores; null when undefined (see goldenSpearmanUndefined). */
  goldenSpearman: number | null;
  /** Why goldenSpearman is undefined, in words (every golden score of one model equal, fewer than 3 records); absent when it is defined. */
  goldenSpearmanUndefined?: string;
  ifdSpearman: number | null;
  /** Records where both models define IFD: the IFD Spearman is computed over them. */
  ifdPairs: number;
  /** Share of the current model's top 10% that is also in the other's. */
  top10Overlap: number;
  /** Share of records on the same side of `threshold` for both models, and how many each keeps there. */
  decisionAgreement: number;
  threshold: number;
  kept: [number, number];
  /** Whether the current model can stand in for the other (golden Spearman >= 0.8 and >= 60% of the top 10% shared). */
  standsIn: boolean;
  /** The one-line verdict: whether the current model can stand in for the other. */
  verdict: string;
  /** The whole report, as `nuggets agree` prints it. */
  report: string;
}

/** Scores one random sample of the document with the current model and another, and compares their rankings. */
export const compareModels = new RequestType<CompareModelsParams, CompareModelsResult, void>('nuggets/compareModels');

// ---------------------------------------------------------------------------------------------
// Model choice

export interface SuggestedModel {
  /** A model specification for the `nuggets.model` setting, e.g. hf:HuggingFaceTB/SmolLM2-135M-Instruct. */
  spec: string;
  /** ONNX exports this engine runs, recommended first. */
  variants: string[];
  description: string;
}

/** Small hub models known to work with the engine, for the Choose Model picker. */
export const suggestedModels = new RequestType0<SuggestedModel[], void>('nuggets/suggestedModels');

export interface OllamaModels {
  /** Where Ollama keeps what it pulled, as the server sees it: $OLLAMA_MODELS or ~/.ollama/models. */
  store: string;
  /** One `nuggets.model` value per pulled model, `ollama:NAME:TAG` as `ollama list` names it; empty without a store. */
  models: string[];
}

/**
 * The models Ollama has pulled on this machine, for the Choose Model picker: read from Ollama's store
 * (no Ollama process needed), by the server, which resolves `ollama:` models from the same store.
 */
export const ollamaModels = new RequestType0<OllamaModels, void>('nuggets/ollamaModels');

// ---------------------------------------------------------------------------------------------
// Shared formatting

/**
 * One line of the Nuggets output channel, the same fields for every kind of work: `[kind] file: model NAME
 * (fingerprint F); anchors HOW, N anchors, set H; what was done; seconds; outcome`. The client writes Score
 * Dataset's `[run]` lines from its result; the server writes the others (rescores after edits, compares, subsets,
 * exports, model and anchor changes, refusals) through window/logMessage, which reaches the same channel.
 */
export function runLine(kind: string, file: string, facts: RunLineFacts): string {
  const { model, anchors } = facts;
  const modelText = model ? `${model.name} (fingerprint ${model.fingerprint}${model.demo ? ', bundled demo model' : ''})` : 'not known';
  const anchorsText = anchors ? `${anchors.description}, ${anchors.count} anchors, set ${anchors.hash}` : 'not known';
  return `[${kind}] ${file}: model ${modelText}; anchors ${anchorsText}; ${facts.done}; ${facts.seconds.toFixed(1)} s${facts.outcome ? `; ${facts.outcome}` : ''}`;
}

export interface RunLineFacts extends Pick<ScoreDatasetResult, 'model' | 'anchors'> {
  /** What was done: "scored 3 records, skipped 0 already scored; 8/8 current", "wrote 2 of 8 records to …". */
  done: string;
  seconds: number;
  /** How it ended, when not plainly: "cancelled, completed records kept", "refused: …". */
  outcome?: string;
}

/**
 * How a duration reads on both sides of the border (the server's progress messages, the status bar's
 * ETA, the command line): 42s, 3m 07s, 2h 05m. The one duration formatter.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
