/**
 * The Parquet files open in the table editor (protocol openTable): each file's footer, read at once, and the rows
 * the table asks for read from the file as they are asked for (the data pages that hold them), never the whole file. Once open, a row
 * index is built in the background (each row's record id, and why it cannot be scored when it cannot),
 * one row group at a time: what any order other than the file's, and any filter, need. Nothing of the rows' text
 * is kept beyond a few decoded row groups. The commands that need every record read the file whole (readWhole),
 * up to a limit.
 *
 * Rows become records exactly as the command line reads them (parquet.ts, dataset.ts recordOf): the same ids and
 * record numbers; a row that cannot be scored keeps its place, as an empty record with an id no score has.
 */
import { hash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parquetReadObjects, type FileMetaData, type SchemaElement } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { recordOf, type DatasetRecord, type Reading, type RecordFormat } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import { openParquet, parquetWhere, plainValue } from '../records/parquet';
import { TABLE_WHOLE_MAX_BYTES, type TableIndexParams, type TableInfo } from '../protocol';
import { nameOf } from './anchor-choice';

/** Decoded row groups kept per table, most recently used last (the first one, and those a search or the index read). */
const GROUPS_KEPT = 3;
/**
 * Rows of a page this close together in one row group are read in one range; farther apart, each in its own. A
 * range reads only the data pages holding it (50 rows of a 100,000-row group: 0.05 s, against 1.6 s for the group).
 */
const RUN_GAP = 64;
/** Rows read at openTable (the record format, whether the file holds conversations, the first page): the first row group's first rows. */
const OPEN_ROWS = 1000;
/** Rows the index reads at a time, between which a page's request is answered. */
const INDEX_CHUNK = 25_000;

/** A row read from the file: its record, and why it cannot be scored when it cannot. */
export interface TableRow {
  record: DatasetRecord;
  unscorable?: string;
}

/** The row index: each row's record id; the rows that cannot be scored and why. */
export interface RowIndex {
  ids: readonly string[];
  unscorable: ReadonlyMap<number, string>;
  /** The first row of each record id: a later row with the same id repeats it. */
  firstById: ReadonlyMap<string, number>;
}

interface OpenTable {
  uri: string;
  path: string;
  buffer: Awaited<ReturnType<typeof openParquet>>['buffer'];
  metadata: FileMetaData;
  info: TableInfo;
  /** The first row of each row group, and the row count after the last. */
  groupStarts: number[];
  /** The record format of the file's rows (the setting's, or the first row's). */
  format: RecordFormat | undefined;
  /**
   * Whether the first row group holds a conversation that can be scored, as far as it has been read (its first rows
   * at open): the scoring template depends on it, as on the command line, which looks at its first batch.
   */
  conversations: boolean;
  ids: string[];
  unscorable: Map<number, string>;
  firstById: Map<string, number>;
  indexed: number;
  done: boolean;
  problem?: string;
  closed: boolean;
  /** Resolves when the index is built or has stopped. */
  indexFinished: Promise<void>;
  groups: Map<number, Promise<TableRow[]>>;
  /** The last text search's rows (1 where a row matches), by its search terms. */
  search?: { terms: string; matches: Promise<Uint8Array> } | undefined;
}

export class ParquetTables {
  /** Rows decoded from Parquet since the server started: a sort or a filter reads only the rows it shows. */
  rowsDecoded = 0;
  private readonly tables = new Map<string, OpenTable>();

  constructor(
    /** Sends the row index's progress (protocol tableIndexNotification). */
    private readonly notify: (params: TableIndexParams) => void,
    /** The record format setting (undefined: the first row's format decides). */
    private readonly recordFormat: () => RecordFormat | undefined,
    /** The largest file read whole for the commands (TABLE_WHOLE_MAX_BYTES; the tests lower it through NUGGETS_TABLE_WHOLE_MAX_BYTES). */
    readonly wholeMaxBytes = wholeLimit(),
  ) {}

  has(uri: string): boolean {
    return this.tables.has(uri);
  }

  info(uri: string): TableInfo {
    return this.table(uri).info;
  }

  /** The file's own Parquet schema, for a subset written back as Parquet. */
  schemaOf(uri: string): readonly SchemaElement[] {
    return this.table(uri).metadata.schema;
  }

  /** Whether the file's first row group holds conversations that can be scored (as far as it has been read). */
  holdsConversations(uri: string): boolean {
    return this.tables.get(uri)?.conversations ?? false;
  }

  /**
   * Opens the file: its footer and first rows (for the record format, and whether it holds conversations);
   * a file that is no readable Parquet is refused with what is wrong. Starts the row index. Opened again (a second
   * editor), the table already open answers.
   */
  async open(uri: string): Promise<TableInfo> {
    const open = this.tables.get(uri);
    if (open) return open.info;
    if (!uri.startsWith('file:') || !/\.parquet$/i.test(uri)) throw new NuggetsError(`${nameOf(uri)} is not a .parquet file on disk: the table editor opens one Parquet file.`);
    const path = fileURLToPath(uri);
    const { buffer, metadata } = await openParquet(path);
    const groupStarts = [0];
    for (const group of metadata.row_groups) groupStarts.push(groupStarts.at(-1)! + Number(group.num_rows));
    const rows = Number(metadata.num_rows);
    if (groupStarts.at(-1) !== rows) throw new NuggetsError(`${path} is not a readable Parquet file: its row groups hold ${groupStarts.at(-1)} rows, its footer says ${rows}.`, 'Check that the file is complete; it was not modified.');
    const columns = topLevelNames(metadata.schema);
    const info: TableInfo = { uri, rows, rowGroups: metadata.row_groups.length, bytes: buffer.byteLength, columns, wholeAllowed: buffer.byteLength <= this.wholeMaxBytes, wholeMaxBytes: this.wholeMaxBytes };
    const table: OpenTable = {
      uri, path, buffer, metadata, info, groupStarts, format: this.recordFormat(), conversations: false,
      ids: [], unscorable: new Map(), firstById: new Map(), indexed: 0, done: false, closed: false,
      indexFinished: Promise.resolve(), groups: new Map(),
    };
    if (metadata.row_groups.length > 0) {
      const headEnd = Math.min(groupStarts[1]!, OPEN_ROWS);
      const head = await this.decode(table, 0, 0, headEnd);
      if (headEnd === groupStarts[1]) table.groups.set(0, Promise.resolve(head)); // the whole row group
    }
    if (this.tables.has(uri)) return this.tables.get(uri)!.info; // opened twice at once: the first one stays
    this.tables.set(uri, table);
    table.indexFinished = this.buildIndex(table);
    return info;
  }

  /**
   * The record format setting changed: every open table's rows are read again under it (the rows kept, the last
   * search and the index let go), and its index is built again. A format the rows are not in is named by the
   * requests that read them, and stops the index with why.
   */
  reformat(): void {
    for (const [uri, table] of this.tables) {
      table.closed = true; // its index stops
      const fresh: OpenTable = {
        ...table, format: this.recordFormat(), conversations: false, ids: [], unscorable: new Map(), firstById: new Map(),
        indexed: 0, done: false, closed: false, groups: new Map(), search: undefined,
      };
      delete fresh.problem;
      this.tables.set(uri, fresh);
      fresh.indexFinished = this.buildIndex(fresh);
    }
  }

  /** The file's last editor closed: the index stops, and everything read of the file is let go. */
  close(uri: string): void {
    const table = this.tables.get(uri);
    if (!table) return;
    table.closed = true;
    table.groups.clear();
    this.tables.delete(uri);
  }

  /** The row index once built; refused with why when it stopped (a damaged row group). */
  async index(uri: string): Promise<RowIndex> {
    const table = this.table(uri);
    await table.indexFinished;
    if (table.problem !== undefined) throw new NuggetsError(`${nameOf(uri)}: the rows cannot be sorted or filtered: ${table.problem}`, 'The rows still show in the file\'s order.');
    return { ids: table.ids, unscorable: table.unscorable, firstById: table.firstById };
  }

  /** The row index as far as it is built (no wait): for the rows already indexed, whether a row repeats an earlier one. */
  firstRowOf(uri: string, id: string): number | undefined {
    return this.tables.get(uri)?.firstById.get(id);
  }

  /** The open tables' URIs. */
  uris(): string[] {
    return [...this.tables.keys()];
  }

  /** The rows indexed so far whose record id passes `test` (scored by another window or the command line, say). */
  rowsWithIds(uri: string, test: (id: string) => boolean): { row: number; id: string }[] {
    const table = this.tables.get(uri);
    if (!table) return [];
    return table.ids.flatMap((id, row) => (test(id) ? [{ row, id }] : []));
  }

  /** How many of the rows indexed so far cannot be scored. */
  unscorableCount(uri: string): number {
    return this.tables.get(uri)?.unscorable.size ?? 0;
  }

  /**
   * The rows at `rows` (row numbers in the file), by row number; rows past the end are left out. Rows of a row group
   * kept decoded are taken from it; the others are read from the file in ranges of rows close together.
   */
  async rows(uri: string, rows: readonly number[]): Promise<Map<number, TableRow>> {
    const table = this.table(uri);
    const wanted = [...new Set(rows)].filter((row) => Number.isInteger(row) && row >= 0 && row < table.info.rows).sort((a, b) => a - b);
    const found = new Map<number, TableRow>();
    for (let k = 0; k < wanted.length;) {
      const g = groupOf(table, wanted[k]!);
      const groupEnd = table.groupStarts[g + 1]!;
      const kept = table.groups.get(g);
      if (kept) {
        const decoded = await this.group(table, g);
        for (; k < wanted.length && wanted[k]! < groupEnd; k++) found.set(wanted[k]!, decoded[wanted[k]! - table.groupStarts[g]!]!);
        continue;
      }
      const run = [wanted[k++]!];
      while (k < wanted.length && wanted[k]! < groupEnd && wanted[k]! - run.at(-1)! <= RUN_GAP) run.push(wanted[k++]!);
      const decoded = await this.decode(table, g, run[0]!, run.at(-1)! + 1);
      for (const row of run) found.set(row, decoded[row - run[0]!]!);
    }
    return found;
  }

  /**
   * Which rows the table's text searches match (1 where a row does), the file read a row group at a time; the
   * last search's answer is kept, so that scrolling through its rows reads nothing again.
   */
  matching(uri: string, terms: string, test: (record: DatasetRecord) => boolean): Promise<Uint8Array> {
    const table = this.table(uri);
    if (table.search?.terms === terms) return table.search.matches;
    const matches = (async (): Promise<Uint8Array> => {
      const found = new Uint8Array(table.info.rows);
      for (let g = 0; g < table.metadata.row_groups.length; g++) {
        if (table.closed) break;
        const rows = await (table.groups.get(g) ?? this.decode(table, g));
        for (const [k, row] of rows.entries()) if (test(row.record)) found[table.groupStarts[g]! + k] = 1;
        await yieldToEvents();
      }
      return found;
    })();
    table.search = { terms, matches };
    matches.catch(() => {
      if (table.search?.matches === matches) table.search = undefined;
    });
    return matches;
  }

  /**
   * Every row of the file, for the commands that need them all (Score Dataset, Select Golden Subset, the
   * dashboard); a file larger than wholeMaxBytes is refused, saying to score it with the command line.
   */
  async readWhole(uri: string): Promise<{ records: DatasetRecord[]; unscorable: Map<number, string> }> {
    const table = this.table(uri);
    if (!table.info.wholeAllowed) {
      const name = nameOf(uri);
      throw new NuggetsError(
        `${name} is ${megabytes(table.info.bytes)}, more than the ${megabytes(this.wholeMaxBytes)} the editor reads whole for Score Dataset, Select Golden Subset and the dashboard.`,
        `Score it with the command line (nuggets score ${name} --anchors ANCHORS.json ...): the table shows those scores, and sorts by them, as it shows a JSON file's.`,
      );
    }
    const records: DatasetRecord[] = [];
    const unscorable = new Map<number, string>();
    for (let g = 0; g < table.metadata.row_groups.length; g++) {
      if (table.closed) throw new NuggetsError(`${nameOf(uri)} was closed while it was read.`);
      const rows = await (table.groups.get(g) ?? this.decode(table, g));
      for (const row of rows) {
        if (row.unscorable !== undefined) unscorable.set(row.record.index, row.unscorable);
        records.push(row.record);
      }
      await yieldToEvents();
    }
    return { records, unscorable };
  }

  private table(uri: string): OpenTable {
    const table = this.tables.get(uri);
    if (!table) throw new NuggetsError(`${nameOf(uri)} is not open in the table editor.`);
    return table;
  }

  /** A row group's rows, decoded once while it is among the GROUPS_KEPT most recently used. */
  private group(table: OpenTable, g: number): Promise<TableRow[]> {
    let rows = table.groups.get(g);
    if (rows) table.groups.delete(g);
    else {
      rows = this.decode(table, g);
      rows.catch(() => table.groups.delete(g));
    }
    table.groups.set(g, rows);
    for (const oldest of table.groups.keys()) if (table.groups.size > GROUPS_KEPT) table.groups.delete(oldest);
    return rows;
  }

  /** Rows [rowStart, rowEnd) of row group `g` (all of it by default) as records, as the command line reads them (parquet.ts openParquetBatches). */
  private async decode(table: OpenTable, g: number, rowStart = table.groupStarts[g]!, rowEnd = table.groupStarts[g + 1]!): Promise<TableRow[]> {
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: table.buffer, metadata: table.metadata, rowStart, rowEnd, compressors });
    } catch (err) {
      throw new NuggetsError(`${table.path}: row group ${g} cannot be read: ${(err as Error).message}.`, 'The file is damaged or uses an encoding Nuggets cannot read; it was not modified.');
    }
    this.rowsDecoded += rows.length;
    const reading: Reading = { format: table.format, rejected: [], count: rowStart };
    const decoded = rows.map((row, k): TableRow => {
      const at = rowStart + k;
      const value = plainValue(row);
      const record = recordOf(value, at, () => parquetWhere(table.path, g, at), at, at + 1, reading);
      if (record) return { record };
      const rejected = reading.rejected.pop()!;
      return {
        record: { instruction: '', input: '', output: '', ...(rejected.turns ? { turns: rejected.turns } : {}), index: at, id: unscorableId(value), start: at, end: at + 1, original: {} },
        unscorable: rejected.why,
      };
    });
    table.format ??= reading.format;
    if (g === 0 && decoded.some((r) => r.record.turns !== undefined && r.unscorable === undefined)) table.conversations = true;
    return decoded;
  }

  /** Walks the row groups once, keeping each row's id, kind and problem; tells the client as it goes. */
  private async buildIndex(table: OpenTable): Promise<void> {
    const progress = (): void => this.notify({
      uri: table.uri, indexed: table.indexed, rows: table.info.rows, done: table.done, ...(table.problem !== undefined ? { problem: table.problem } : {}),
    });
    try {
      for (let g = 0; g < table.metadata.row_groups.length; g++) {
        const kept = table.groups.get(g);
        const groupEnd = table.groupStarts[g + 1]!;
        for (let from = table.groupStarts[g]!; from < groupEnd; from += INDEX_CHUNK) {
          await yieldToEvents();
          if (table.closed) return;
          const rows = kept ? (await kept).slice(from - table.groupStarts[g]!, from - table.groupStarts[g]! + INDEX_CHUNK) : await this.decode(table, g, from, Math.min(groupEnd, from + INDEX_CHUNK));
          if (table.closed) return;
          for (const row of rows) {
            const at = row.record.index;
            table.ids.push(row.record.id);
            if (row.unscorable !== undefined) table.unscorable.set(at, row.unscorable);
            else if (!table.firstById.has(row.record.id)) table.firstById.set(row.record.id, at);
          }
        }
        table.indexed = groupEnd;
        if (g < table.metadata.row_groups.length - 1) progress();
      }
      table.done = true;
    } catch (err) {
      table.problem = err instanceof NuggetsError ? err.message : String((err as Error)?.message ?? err);
    }
    if (!table.closed) progress();
  }
}

/** The largest file the editor reads whole: TABLE_WHOLE_MAX_BYTES, or NUGGETS_TABLE_WHOLE_MAX_BYTES when set (tests). */
function wholeLimit(): number {
  const set = Number(process.env.NUGGETS_TABLE_WHOLE_MAX_BYTES);
  return Number.isFinite(set) && set > 0 ? set : TABLE_WHOLE_MAX_BYTES;
}

/** The row group holding `row`: the last whose first row is at or before it. */
function groupOf(table: OpenTable, row: number): number {
  let lo = 0;
  let hi = table.groupStarts.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (table.groupStarts[mid]! <= row) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A row that cannot be scored: "unscorable:" and a hash of its values, an id no score has (as parsed.ts names them). */
function unscorableId(value: unknown): string {
  return `unscorable:${hash('sha256', JSON.stringify(value) ?? '', 'hex').slice(0, 16)}`;
}

/** The schema's top-level column names, in order (the root's children). */
function topLevelNames(schema: readonly SchemaElement[]): string[] {
  const names: string[] = [];
  let i = 1;
  const skip = (): void => {
    const element = schema[i++];
    for (let c = 0; c < (element?.num_children ?? 0); c++) skip();
  };
  for (let c = 0; c < (schema[0]?.num_children ?? 0) && i < schema.length; c++) {
    names.push(schema[i]!.name);
    skip();
  }
  return names;
}

/** A size for people: "312 MB", "4.2 MB", "31 KB". */
function megabytes(bytes: number): string {
  if (bytes < 2 ** 20) return `${Math.ceil(bytes / 1024)} KB`;
  return `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;
}

function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
