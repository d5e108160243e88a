/**
 * Every message between the Parquet table page (webview/parquet-table.ts) and its editor
 * (extension/parquet_editor.ts). Both sides import this file; the data types are the server's
 * (server/protocol.ts: openTable's TableInfo, the row index's progress, tablePage, recordEffects), relayed as
 * they are. The page asks, the editor answers; `index` and `scores` are also pushed as the server sends them.
 */
import type { RecordEffectsResult, TableQuery } from './messages';
import type { TableIndexParams, TableInfo, TablePageResult } from './protocol-types';

export type { TableIndexParams, TableInfo } from './protocol-types';

/** The editor's buttons: the commands they run on this file. */
export type TableCommand = 'scoreDataset' | 'selectGoldenSubset' | 'showDashboard';

/** Extension -> table page. */
export type TableHostMessage =
  /** What the file's footer says (openTable's answer): sent after `ready`. `name` is the file's name. */
  | { type: 'info'; name: string; info: TableInfo }
  /** The file is no readable Parquet (openTable refused it): what is wrong. */
  | { type: 'refused'; name: string; message: string }
  /** How far the row index is: sorting and filters wait for it. */
  | { type: 'index'; index: TableIndexParams }
  /** The file's scores changed (a run, Clear Scores): the rows in view are asked for again. */
  | { type: 'scores' }
  /** The answer to a `page` request with the same `seq`. */
  | { type: 'page'; seq: number; page: TablePageResult }
  /** The record view's record (asked by `showRecord`, and sent again when scores change while it is open). */
  | { type: 'record'; record: RecordEffectsResult }
  /** A request failed. */
  | { type: 'error'; message: string };

/** Table page -> extension. */
export type TableWebviewMessage =
  | { type: 'ready' }
  | { type: 'page'; seq: number; query: TableQuery }
  | { type: 'showRecord'; index: number }
  | { type: 'closeRecord' }
  | { type: 'command'; command: TableCommand };
