/**
 * The server's data types the dashboard draws, re-exported as types only: nothing of server/ (nor of
 * vscode-languageserver-protocol) ends up in the browser bundle.
 */
export type {
  AnchorEffect,
  AnchorEffectsResult,
  CompareModelsResult,
  DistributionResult,
  NeighboursResult,
  ProblemRecord,
  RecordAnchorEffect,
  RecordFilter,
  RecordProblemInfo,
  RecordEffectsResult,
  ScatterResult,
  ScoreSummary,
  SignalBound,
  SignalChart,
  TableIndexParams,
  TableInfo,
  TablePageResult,
  TableRow,
  TableSortKey,
} from '../server/protocol';

/** LSP's range (0-based lines, UTF-16 characters), as the protocol's rows carry it. */
export interface Range {
  start: { line: number; character: number };
  end: { line: number; character: number };
}
