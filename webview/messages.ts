/**
 * Every message between the dashboard webview (webview/) and the extension (extension/dashboard.ts).
 * Both sides import this file; the data types are the server's (server/protocol.ts), relayed as they are.
 * The webview asks, the extension answers; only `state` is also pushed when scores change.
 */
import type { AnchorEffectsResult, CompareModelsResult, DistributionResult, NeighboursResult, Range, RecordEffectsResult, RecordFilter, ScatterResult, SignalBound, TablePageResult, TableSortKey } from './protocol-types';

export type {
  AnchorEffectsResult, CompareModelsResult, DistributionResult, NeighboursResult, ProblemRecord, Range, RecordAnchorEffect, RecordFilter, RecordProblemInfo, RecordEffectsResult, ScatterResult, SignalBound, SignalChart,
  TablePageResult, TableRow, TableSortKey,
} from './protocol-types';

/** The model the current scores come from, for the header; `demo`: the bundled demo model, whose scores are for trying the tool. */
export interface ModelInfo {
  name: string | null;
  demo: boolean;
}

/** Why the dataset's file does not parse now (a missing comma): where, and what is wrong. Its last scores stay shown. */
export interface FileProblem {
  message: string;
  /** 1-based, as the editor shows them. */
  line: number;
  column: number;
}

/** What the table asks for: a block of rows, sorted, optionally only records at or above a golden score, within the selection and the column filters. */
export interface TableQuery {
  offset: number;
  limit: number;
  sortBy: TableSortKey;
  descending: boolean;
  minScore?: number;
  filter?: RecordFilter;
}

/** Extension -> webview. */
export type HostMessage =
  /** The dataset's distribution and anchor effects: sent after `ready` and whenever its scores change. */
  | { type: 'state'; dataset: string; model: ModelInfo; distribution: DistributionResult; anchorEffects: AnchorEffectsResult; scatter: ScatterResult; fileProblem?: FileProblem | null }
  /** The answer to a `page` request with the same `seq`. */
  | { type: 'page'; seq: number; query: TableQuery; page: TablePageResult }
  /** The answer to a `neighbours` request. */
  | { type: 'neighbours'; result: NeighboursResult }
  /** One record's delta on every anchor: the record view (asked by `showRecord`, or sent when the dashboard opens on a record). */
  | { type: 'record'; record: RecordEffectsResult }
  /** The last Compare Models of this dataset (webview/compare.ts): sent when it ends, and again after each `state`. */
  | { type: 'comparison'; comparison: CompareModelsResult }
  /** The dataset was closed or is no longer an Alpaca file, or a request failed. */
  | { type: 'error'; message: string };

/** Webview -> extension. */
export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'page'; seq: number; query: TableQuery }
  /** Show the record in the editor; `range` is the row's, used when the extension holds no newer one (none from the scatter plot). */
  | { type: 'reveal'; index: number; range?: Range }
  /** The record's nearest neighbours by embedding. */
  | { type: 'neighbours'; index: number }
  /** Open the record view on this record. */
  | { type: 'showRecord'; index: number }
  /** The record view was closed: refreshes no longer bring it back. */
  | { type: 'closeRecord' }
  /** Run Nuggets: Choose Model (offered while the demo model scores). */
  | { type: 'chooseModel' }
  /** Write the records at or above the threshold (and within the selection's ranges, if any) beside the dataset, as Select Golden Subset does. */
  | { type: 'writeSubset'; threshold: number; withScores: boolean; bounds?: SignalBound[] }
  /** Ask where to save, then write the scores of every record (or of those within the selection's ranges). */
  | { type: 'exportScores'; format: 'csv' | 'jsonl'; withDeltas: boolean; bounds?: SignalBound[] };

/** Rows the table asks for at a time, as they come into view. */
export const BLOCK_SIZE = 100;
export const HISTOGRAM_BINS = 20;
