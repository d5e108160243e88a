/**
 * The table's pages and its record view for a Parquet file open in the table editor that has not been read whole
 * (parquet-tables.ts): the rows of the page read from the file, shaped as the dashboard shapes a JSON file's
 * (dashboard-queries.ts). The file's own order answers at once; any other order, a range or a minimum score waits
 * for the row index (ids, with the scores they have, give the order); a text search reads the file a row group at a
 * time. Scores are shown as for an open document: current under the file's key, else a stale stored one.
 */
import { ErrorCodes, ResponseError } from 'vscode-languageserver/node';
import type { DatasetRecord } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import type * as protocol from '../protocol';
import { findProblems, problemInfo, type ProblemReason } from '../records/problems';
import { summaryOf, type CandidateScore } from '../scoring/golden';
import { recordEffectsOf } from './anchor-effects';
import { checkedBounds, compareRows, recordFilter, signalCells, tablePreview, wholeRecord, withinBounds } from './dashboard-queries';
import { shorten } from './markdown';
import type { ParquetTables, TableRow } from './parquet-tables';
import type { ScoreBook } from './score-book';
import type { ScoringKeys } from './scoring-keys';

export class TablePages {
  constructor(
    private readonly tables: ParquetTables,
    private readonly keys: ScoringKeys,
    private readonly book: ScoreBook,
  ) {}

  async page(params: protocol.TablePageParams): Promise<protocol.TablePageResult> {
    const uri = params.textDocument.uri;
    const where = 'The table\'s filter';
    const bounds = refusedAsInvalid(() => checkedBounds(params.filter?.bounds, where));
    // The text searches alone (the ranges are tested against the scores, without reading the rows).
    const textOnly = refusedAsInvalid(() => recordFilter({ ...(params.filter?.instruction !== undefined ? { instruction: params.filter.instruction } : {}), ...(params.filter?.output !== undefined ? { output: params.filter.output } : {}) }, where));
    const terms = JSON.stringify([(params.filter?.instruction ?? '').trim().toLocaleLowerCase(), (params.filter?.output ?? '').trim().toLocaleLowerCase()]);
    const searching = terms !== JSON.stringify(['', '']);
    if (params.minScore !== undefined && (typeof params.minScore !== 'number' || !Number.isFinite(params.minScore))) {
      throw new ResponseError(ErrorCodes.InvalidParams, `The table's minimum score is not a finite number: ${JSON.stringify(params.minScore)}.`);
    }
    const sortBy = params.sortBy ?? 'index';
    const descending = params.descending === true;
    const offset = Math.max(0, Math.floor(params.offset));
    const limit = Math.max(0, Math.min(1000, Math.floor(params.limit)));
    const keyed = await this.keys.keyFor(uri);
    const info = refused(() => this.tables.info(uri));
    let total: number;
    let shown: number[];
    if (sortBy === 'index' && !descending && bounds.length === 0 && !searching && params.minScore === undefined) {
      // The file's order, unfiltered: the page's rows are known without the index.
      total = info.rows;
      shown = range(offset, Math.min(info.rows, offset + limit));
    } else {
      const index = await refusedAsync(() => this.tables.index(uri));
      const matches = searching ? await refusedAsync(() => this.tables.matching(uri, terms, (record) => textOnly(record, undefined))) : undefined;
      const current = keyed ? this.book.scoresOf(keyed.key) : new Map<string, CandidateScore>();
      const rows: { index: number; score?: CandidateScore }[] = [];
      for (let i = 0; i < index.ids.length; i++) {
        if (matches && !matches[i]) continue;
        const score = current.get(index.ids[i]!);
        if (!withinBounds(score, bounds)) continue;
        if (params.minScore !== undefined && (score === undefined || score.goldenScore < params.minScore)) continue;
        rows.push({ index: i, ...(score ? { score } : {}) });
      }
      rows.sort(compareRows(sortBy, descending));
      total = rows.length;
      shown = rows.slice(offset, offset + limit).map((r) => r.index);
    }
    const read = await refusedAsync(() => this.tables.rows(uri, shown));
    return {
      total, offset,
      rows: shown.flatMap((i) => {
        const row = read.get(i);
        if (!row) return [];
        const found = this.book.find(row.record.id, keyed?.key ?? null);
        const score = found && summaryOf(found.score);
        const problem = this.problemOf(uri, row);
        return [{
          index: i, id: row.record.id, ...tablePreview(row.record, shorten), range: rowRange(i), stale: found?.stale ?? false,
          ...(score ? { score } : {}), signals: signalCells(score), ...(problem ? { problem: problemInfo(problem) } : {}),
        }];
      }),
    };
  }

  /** The record view of one row: the row read from the file, its score and each anchor's effect as for a JSON file. */
  async recordEffects(params: protocol.RecordEffectsParams): Promise<protocol.RecordEffectsResult> {
    const uri = params.textDocument.uri;
    const info = refused(() => this.tables.info(uri));
    const row = (await refusedAsync(() => this.tables.rows(uri, [params.index]))).get(params.index);
    if (!row) throw new ResponseError(ErrorCodes.InvalidParams, `The dataset has no record at index ${params.index} (its ${info.rows} rows have indexes 0 to ${info.rows - 1}).`);
    const record: DatasetRecord = row.record;
    const found = this.book.find(record.id, (await this.keys.keyFor(uri))?.key ?? null);
    const anchors = found?.key ? this.book.anchorsByHash(found.key.anchors.hash) : undefined;
    const problem = this.problemOf(uri, row);
    return {
      index: record.index, id: record.id, ...wholeRecord(record), range: rowRange(record.index),
      stale: found?.stale ?? false, ...(found ? { score: summaryOf(found.score) } : {}),
      anchorSet: anchors ? { hash: anchors.hash, count: anchors.anchors.length, label: this.keys.anchors.label(uri, anchors.hash, anchors.anchors.length) } : null,
      effects: found && anchors ? recordEffectsOf(found.score, anchors.anchors) : [],
      ...(problem ? { problem: problemInfo(problem) } : {}),
    };
  }

  /** Why a row is never selected: it cannot be scored, is empty, or repeats an earlier row (known once the index has reached it). */
  private problemOf(uri: string, row: TableRow): ProblemReason | undefined {
    if (row.unscorable !== undefined) return { unscorable: row.unscorable };
    const empty = findProblems([row.record])[0]?.reason;
    if (empty) return empty;
    const first = this.tables.firstRowOf(uri, row.record.id);
    return first !== undefined && first < row.record.index ? { duplicateOf: first } : undefined;
  }
}

/** A row's range: its row number as the line, as scores notifications for the file carry it. */
function rowRange(row: number): protocol.TableRow['range'] {
  return { start: { line: row, character: 0 }, end: { line: row, character: 0 } };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, k) => from + k);
}

/** Runs `check`, refusing the request as invalid (with the check's own words) when it throws a NuggetsError. */
function refusedAsInvalid<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidParams, err.message) : err;
  }
}

/** A NuggetsError (a closed table, a damaged row group) as a refusal with its words. */
function refused<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.describe()) : err;
  }
}

async function refusedAsync<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.describe()) : err;
  }
}
