/**
 * The dashboard's requests: each reads a document's current scores and answers with the pure queries of
 * dashboard-queries.ts and anchor-effects.ts (where the logic, and its unit tests, live).
 */
import { fileURLToPath } from 'node:url';
import { ErrorCodes, ResponseError } from 'vscode-languageserver/node';
import { NuggetsError } from '../io/errors';
import { formatScores } from '../selection/export-scores';
import { assertNotInput, writeFileAtomic } from '../io/files';
import type * as protocol from '../protocol';
import { problemInfo } from '../records/problems';
import { summaryOf, type CandidateScore } from '../scoring/golden';
import { anchorEffectsOf, recordEffectsOf } from './anchor-effects';
import { checkedBounds, compareRows, distributionOf, goldenIfdScatter, nearestNeighbours, recordFilter, signalCells, tablePreview, wholeRecord, withinBounds } from './dashboard-queries';
import type { OpenDocuments } from './documents';
import { shorten } from './markdown';
import { scorableCount } from './parsed';
import type { ScoreBook } from './score-book';
import type { ScoringKeys } from './scoring-keys';
import type { ParquetTables } from './parquet-tables';
import { TablePages } from './table-pages';

export class DashboardRequests {
  /** Pages and record views of Parquet files open in the table editor and not read whole. */
  private readonly tablePages: TablePages;

  constructor(
    private readonly documents: OpenDocuments,
    private readonly keys: ScoringKeys,
    private readonly book: ScoreBook,
    private readonly tables: ParquetTables,
  ) {
    this.tablePages = new TablePages(tables, keys, book);
  }

  /** Whether the document is a table read from its file a row group at a time (not read whole for a command). */
  private readsRows(uri: string): boolean {
    return this.tables.has(uri) && this.documents.get(uri) === undefined;
  }

  async distribution(params: protocol.DistributionParams): Promise<protocol.DistributionResult> {
    const { parsed, keyed, scores } = await this.documents.currentOf(params.textDocument.uri);
    const bins = Math.max(1, Math.min(200, Math.floor(params.bins ?? 20)));
    const stale = parsed.records.filter((r, i) => !scores[i] && this.documents.shown(parsed, r.index, keyed)).length;
    const problems = [...parsed.problems].map(([index, reason]): protocol.ProblemRecord => ({
      index, ...problemInfo(reason), goldenScore: scores[index]?.goldenScore ?? null,
      instruction: shorten(parsed.records[index]!.instruction, 120), range: parsed.ranges[index]!,
    }));
    return distributionOf(scorableCount(parsed), scores, stale, bins, problems);
  }

  async nearestNeighbours(params: protocol.NeighboursParams): Promise<protocol.NeighboursResult> {
    const { parsed, keyed } = await this.documents.currentOf(params.textDocument.uri);
    const embeddings = keyed ? this.book.embeddingsOf(keyed.key) : undefined;
    if (!embeddings || !parsed.records[params.index] || !embeddings.has(parsed.records[params.index]!.id)) {
      return { index: params.index, neighbours: [], note: 'No embedding is stored for this record: score it with a local model.' };
    }
    const found = nearestNeighbours(parsed.records, embeddings, params.index, Math.max(1, Math.min(50, params.count ?? 5)));
    return { index: params.index, neighbours: found.map((n) => ({ ...n, instruction: shorten(parsed.records[n.index]!.instruction, 120) })) };
  }

  async goldenIfdScatter(uri: string): Promise<protocol.ScatterResult> {
    const { parsed, scores } = await this.documents.currentOf(uri);
    return { xLabel: 'Golden score', yLabel: 'IFD', points: goldenIfdScatter(parsed.records, scores) };
  }

  async tablePage(params: protocol.TablePageParams): Promise<protocol.TablePageResult> {
    if (this.readsRows(params.textDocument.uri)) return this.tablePages.page(params);
    const { parsed, keyed, scores } = await this.documents.currentOf(params.textDocument.uri);
    const kept = refusedAsInvalid(() => recordFilter(params.filter, 'The table\'s filter'));
    let rows = parsed.records.flatMap((r, i) => (kept(r, scores[i]) ? [{ r, index: r.index, ...(scores[i] ? { score: scores[i] } : {}) }] : []));
    if (params.minScore !== undefined) rows = rows.filter(({ score }) => score !== undefined && score.goldenScore >= params.minScore!);
    rows.sort(compareRows(params.sortBy ?? 'index', params.descending === true));
    const offset = Math.max(0, Math.floor(params.offset));
    const limit = Math.max(0, Math.min(1000, Math.floor(params.limit)));
    return {
      total: rows.length, offset,
      rows: rows.slice(offset, offset + limit).map(({ r }) => {
        const shown = this.documents.recordScore(parsed, r.index, keyed);
        return {
          index: r.index, id: r.id, ...tablePreview(r, shorten),
          range: shown.range, stale: shown.stale, ...(shown.score ? { score: shown.score } : {}), signals: signalCells(shown.score),
          ...(shown.problem ? { problem: shown.problem } : {}),
        };
      }),
    };
  }

  async anchorEffects(uri: string): Promise<protocol.AnchorEffectsResult> {
    const { keyed, scores } = await this.documents.currentOf(uri);
    if (!keyed) return { candidates: 0, anchors: [], anchorSet: null };
    const present = scores.filter((s): s is CandidateScore => s !== undefined);
    const anchors = anchorEffectsOf(keyed.anchors.anchors, present);
    const { hash } = keyed.anchors;
    const count = keyed.anchors.anchors.length;
    return {
      candidates: new Set(present.map((s) => s.id)).size, anchors,
      anchorSet: { hash, count, path: this.book.anchorsPath(hash), label: this.keys.anchors.label(uri, hash, count) },
    };
  }

  async recordEffects(params: protocol.RecordEffectsParams): Promise<protocol.RecordEffectsResult> {
    const uri = params.textDocument.uri;
    if (this.readsRows(uri)) return this.tablePages.recordEffects(params);
    const parsed = await this.documents.ready(uri);
    const record = parsed.records[params.index];
    if (!record) throw new ResponseError(ErrorCodes.InvalidParams, `The dataset has no record at index ${params.index} (its ${parsed.records.length} records have indexes 0 to ${parsed.records.length - 1}).`);
    const shown = this.documents.shown(parsed, params.index, await this.keys.keyFor(uri));
    const anchors = shown?.key ? this.book.anchorsByHash(shown.key.anchors.hash) : undefined;
    return {
      index: record.index, id: record.id, ...wholeRecord(record), range: parsed.ranges[record.index]!,
      stale: shown?.stale ?? false, ...(shown ? { score: summaryOf(shown.score) } : {}),
      anchorSet: anchors ? { hash: anchors.hash, count: anchors.anchors.length, label: this.keys.anchors.label(uri, anchors.hash, anchors.anchors.length) } : null,
      effects: shown && anchors ? recordEffectsOf(shown.score, anchors.anchors) : [],
      ...(parsed.problems.has(record.index) ? { problem: problemInfo(parsed.problems.get(record.index)!) } : {}),
    };
  }

  async exportScores(params: protocol.ExportScoresParams): Promise<protocol.ExportScoresResult> {
    const uri = params.textDocument.uri;
    const { parsed, keyed, scores } = await this.documents.currentOf(uri);
    // With ranges (the dashboard's brushed selection), only the records within them; without, every record.
    const bounds = refusedAsInvalid(() => checkedBounds(params.bounds, 'Export Scores'));
    const records = parsed.records.flatMap((r, i) => (withinBounds(scores[i], bounds) ? [{ index: r.index, id: r.id, score: scores[i] }] : []));
    try {
      if (uri.startsWith('file:')) assertNotInput(params.path, [fileURLToPath(uri)]);
      writeFileAtomic(params.path, formatScores(records, keyed?.anchors.anchors.length ?? 0, params.format, params.withDeltas));
    } catch (err) {
      throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.message) : err;
    }
    return { path: params.path, records: records.length, scored: records.filter((r) => r.score !== undefined).length };
  }
}

/** Runs `check`, refusing the request as invalid (with the check's own words) when it throws a NuggetsError. */
function refusedAsInvalid<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidParams, err.message) : err;
  }
}
