/**
 * Every message between the dashboard webview (webview/) and the extension (extension/dashboard.ts).
 * Both sides import this file; the data types are the server's (server/protocol.ts), relayed as they are.
 * The webview asks, the extension answers; only `state` is also pushed when scores change.
 */
import type { AnchorEffectsResult, DistributionResult, Range, ScatterResult, TablePageResult, TableSortKey } from './protocol-types';

export type { AnchorEffectsResult, DistributionResult, Range, ScatterResult, SignalChart, TablePageResult, TableRow, TableSortKey } from './protocol-types';

/** What the table shows: one page, sorted, optionally only records at or above a golden score. */
export interface TableQuery {
  offset: number;
  limit: number;
  sortBy: TableSortKey;
  descending: boolean;
  minScore?: number;
}

/** Extension -> webview. */
export type HostMessage =
  /** The dataset's distribution and anchor effects: sent after `ready` and whenever its scores change. */
  | { type: 'state'; dataset: string; distribution: DistributionResult; anchorEffects: AnchorEffectsResult; scatter: ScatterResult }
  /** The answer to a `page` request with the same `seq`. */
  | { type: 'page'; seq: number; query: TableQuery; page: TablePageResult }
  /** The dataset was closed or is no longer an Alpaca file, or a request failed. */
  | { type: 'error'; message: string };

/** Webview -> extension. */
export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'page'; seq: number; query: TableQuery }
  /** Show the record in the editor; `range` is the row's, used when the extension holds no newer one (none from the scatter plot). */
  | { type: 'reveal'; index: number; range?: Range };

export const PAGE_SIZE = 25;
export const HISTOGRAM_BINS = 20;
