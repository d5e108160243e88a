/**
 * Scores out of the editor: a dataset's records with their current scores as CSV or JSON Lines (the
 * dashboard's Export Scores). One row per record in dataset order; a record without a current score
 * keeps its row with empty values, so that the export joins back onto the dataset by index or id.
 */
import type { CandidateScore } from '../scoring/golden';
import { PASS_SIGNALS } from '../signals';

export type ExportFormat = 'csv' | 'jsonl';

export interface ExportRecord {
  index: number;
  id: string;
  /** The record's current score; undefined when it has none. */
  score: CandidateScore | undefined;
}

/** The columns, in order: index, id, golden_score, wins, mean_delta, each pass signal, then delta_1 … delta_m when asked. */
export function exportColumns(anchorCount: number, withDeltas: boolean): string[] {
  const deltas = withDeltas ? Array.from({ length: anchorCount }, (_, k) => `delta_${k + 1}`) : [];
  return ['index', 'id', 'golden_score', 'wins', 'mean_delta', ...PASS_SIGNALS.map((s) => s.name), ...deltas];
}

/** A record's values under exportColumns; null where it has no value (unscored, a signal undefined, an anchor not scored). */
function values(record: ExportRecord, anchorCount: number, withDeltas: boolean): (string | number | null)[] {
  const s = record.score;
  const finite = (x: number | null | undefined): number | null => (x === null || x === undefined || !Number.isFinite(x) ? null : x);
  const deltas = withDeltas ? Array.from({ length: anchorCount }, (_, k) => finite(s?.deltas[k])) : [];
  return [
    record.index, record.id, finite(s?.goldenScore), finite(s?.wins), finite(s?.meanDelta),
    ...PASS_SIGNALS.map((signal) => finite(s ? signal.valueOf(s) : null)), ...deltas,
  ];
}

const csvCell = (value: string | number | null): string => {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/** The whole export as text: CSV with a header line, or one JSON object per line. */
export function formatScores(records: readonly ExportRecord[], anchorCount: number, format: ExportFormat, withDeltas: boolean): string {
  const columns = exportColumns(anchorCount, withDeltas);
  if (format === 'csv') {
    const lines = [columns.join(','), ...records.map((r) => values(r, anchorCount, withDeltas).map(csvCell).join(','))];
    return lines.join('\n') + '\n';
  }
  return records.map((r) => {
    const row = values(r, anchorCount, withDeltas);
    const object: Record<string, unknown> = {};
    columns.forEach((column, i) => {
      if (!column.startsWith('delta_')) object[column] = row[i];
    });
    if (withDeltas) object.deltas = row.slice(columns.length - anchorCount);
    return JSON.stringify(object);
  }).join('\n') + (records.length ? '\n' : '');
}
