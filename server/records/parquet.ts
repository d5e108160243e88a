/**
 * Parquet datasets for the command line: a `.parquet` file, or a folder of shards
 * (`data/train-00000-of-00004.parquet`, ...) read in name order. Rows become records exactly as JSON objects
 * would (dataset.ts: same format detection, same ids), one row group at a time, so that a shard's column bytes
 * are never all in memory at once. A subset of a Parquet dataset is written back as Parquet with the source's
 * own schema (nested list<struct> columns included) by hyparquet-writer.
 */
import { statSync } from 'node:fs';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type FileMetaData, type SchemaElement } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { NoRecordsError, readDataset, recordOf, type Dataset, type DatasetFormat, type DatasetRecord, type Reading, type RecordFormat, type RejectedRecord } from './dataset';
import { NuggetsError, fileError } from '../io/errors';
import { writeFileAtomic } from '../io/files';
import { parquetShards } from './shards';

/** A `.parquet` file, or a folder holding `.parquet` shards. */
export function isParquetDataset(path: string): boolean {
  if (/\.parquet$/i.test(path)) return true;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Any dataset the command line reads: Parquet (a file or a folder of shards), else JSON or JSON Lines. */
export async function loadDataset(path: string, format?: RecordFormat): Promise<Dataset> {
  return isParquetDataset(path) ? readParquetDataset(path, format) : readDataset(path, format);
}

/** Where a Parquet record comes from, in messages: the file, its row group and its row in the file (both 0-based). */
export function parquetWhere(file: string, rowGroup: number, row: number): string {
  return `${file} (row group ${rowGroup}, row ${row})`;
}

export async function readParquetDataset(path: string, recordFormat?: RecordFormat): Promise<Dataset> {
  const batches = await openParquetBatches(path, recordFormat);
  const records: DatasetRecord[] = [];
  const rejected: RejectedRecord[] = [];
  for await (const batch of batches.batches()) {
    records.push(...batch.records);
    rejected.push(...batch.rejected);
  }
  if (records.length === 0 && rejected.length === 0) throw new NoRecordsError(path);
  const dataset: Dataset = { source: path, format: 'parquet', recordFormat: batches.recordFormat() ?? 'alpaca', records, rejected };
  return batches.schema ? { ...dataset, parquetSchema: batches.schema } : dataset;
}

/** Records read together, and the records of the same rows that cannot be scored (never dropped silently). */
export interface RecordBatch {
  records: DatasetRecord[];
  rejected: RejectedRecord[];
}

/** A dataset read a part at a time: what `score` walks, so that a shard larger than memory is scored all the same. */
export interface RecordBatches {
  source: string;
  format: DatasetFormat;
  /** Rows (Parquet) or records (JSON), those that cannot be scored included: `--shard` bounds are taken over this count. */
  size: number;
  /** The record format, once the first record is read (or as named). */
  recordFormat(): RecordFormat | undefined;
  /** The records in order, one Parquet row group (or a whole JSON file) at a time; each batch's rejected records with it. */
  batches(): AsyncGenerator<RecordBatch>;
}

/** Any dataset as batches: a JSON or JSON Lines file is read whole (one batch); Parquet one row group at a time. */
export async function openRecordBatches(path: string, format?: RecordFormat): Promise<RecordBatches> {
  if (isParquetDataset(path)) return openParquetBatches(path, format);
  const dataset = readDataset(path, format);
  return {
    source: path, format: dataset.format, size: dataset.records.length + dataset.rejected.length, recordFormat: () => dataset.recordFormat,
    batches: async function* () {
      yield { records: dataset.records, rejected: dataset.rejected };
    },
  };
}

/**
 * A Parquet dataset's row groups as batches of records. Every shard's footer is read first (a damaged file is named
 * before any work), then one row group is decoded at a time and nothing of it is kept once its records are handed on.
 * `schema` is the shards' common schema, absent when they differ.
 */
async function openParquetBatches(path: string, recordFormat?: RecordFormat): Promise<RecordBatches & { schema?: readonly SchemaElement[] }> {
  const files: Array<{ file: string; buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>; metadata: FileMetaData }> = [];
  for (const file of parquetShards(path)) files.push({ file, ...(await openParquet(file)) });
  const schema = files[0]!.metadata.schema;
  const sameSchema = files.every((f) => schemaText(f.metadata.schema) === schemaText(schema));
  const reading: Reading = { format: recordFormat, rejected: [], count: 0 };
  return {
    source: path,
    format: 'parquet',
    size: files.reduce((n, f) => n + Number(f.metadata.num_rows), 0),
    recordFormat: () => reading.format,
    ...(sameSchema ? { schema } : {}),
    batches: async function* () {
      for (const { file, buffer, metadata } of files) {
        let rowStart = 0;
        for (const [g, group] of metadata.row_groups.entries()) {
          const rowEnd = rowStart + Number(group.num_rows);
          let rows: Record<string, unknown>[];
          try {
            rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors });
          } catch (err) {
            throw new NuggetsError(`${file}: row group ${g} cannot be read: ${(err as Error).message}.`, 'The file is damaged or uses an encoding Nuggets cannot read; it was not modified.');
          }
          const records: DatasetRecord[] = [];
          const rejectedBefore = reading.rejected.length;
          for (const [k, row] of rows.entries()) {
            const at = rowStart + k;
            const global = reading.count;
            const record = recordOf(plainValue(row), global, () => parquetWhere(file, g, at), global, global + 1, reading);
            if (record) records.push(record);
          }
          // Handed on with the batch, not kept: a shard of many rejected rows holds no list of them.
          const rejected = reading.rejected.splice(rejectedBefore);
          yield { records, rejected };
          rowStart = rowEnd;
        }
      }
    },
  };
}

/** A Parquet file's bytes, read as needed, and its footer; a file that is no readable Parquet is named with what is wrong. */
export async function openParquet(file: string): Promise<{ buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>; metadata: FileMetaData }> {
  let buffer;
  try {
    buffer = await asyncBufferFromFile(file);
  } catch (err) {
    throw fileError(err, 'read dataset', file);
  }
  try {
    return { buffer, metadata: await parquetMetadataAsync(buffer) };
  } catch (err) {
    throw new NuggetsError(`${file} is not a readable Parquet file: ${(err as Error).message}.`, 'Check that the file is complete (a download cut short loses its footer); it was not modified.');
  }
}

function schemaText(schema: readonly SchemaElement[]): string {
  return JSON.stringify(schema, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** Plain JS values, as JSON.parse would give: 64-bit integers as numbers (as strings beyond 2^53), nested lists and structs as arrays and objects. */
export function plainValue(value: unknown): unknown {
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (Array.isArray(value)) return value.map(plainValue);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plainValue(v);
    return out;
  }
  return value;
}

/** The top-level columns of a Parquet schema (the root's children, each with its subtree skipped). */
function topLevelColumns(schema: readonly SchemaElement[]): SchemaElement[] {
  const columns: SchemaElement[] = [];
  let i = 1;
  const skip = (): void => {
    const element = schema[i++]!;
    for (let c = 0; c < (element.num_children ?? 0); c++) skip();
  };
  for (let c = 0; c < (schema[0]?.num_children ?? 0); c++) {
    columns.push(schema[i]!);
    skip();
  }
  return columns;
}

/**
 * Writes records (their originals, in the order given) as Parquet with the source's schema, every column kept,
 * nested ones included; `goldenScores`, when given, adds a `golden_score` DOUBLE column.
 */
export function writeParquetRecords(path: string, schema: readonly SchemaElement[] | undefined, originals: readonly Record<string, unknown>[], goldenScores?: readonly number[]): void {
  if (!schema) {
    throw new NuggetsError(
      `Cannot write ${path} as Parquet: the dataset is not Parquet, or its shards have different schemas.`,
      'Write the subset as JSON instead (--out subset.json).',
    );
  }
  const columns = topLevelColumns(schema);
  const columnData = columns.map((column) => ({
    name: column.name,
    data: originals.map((o) => {
      const v = o[column.name] ?? null;
      // Read as numbers (plainValue); INT64 columns are written back as 64-bit integers.
      return column.type === 'INT64' && typeof v === 'number' ? BigInt(v) : column.type === 'INT64' && typeof v === 'string' ? BigInt(v) : v;
    }),
  }));
  const elements = schema.map((e) => ({ ...e }));
  if (goldenScores) {
    if (columns.some((c) => c.name === 'golden_score')) throw new NuggetsError(`Cannot add a golden_score column to ${path}: the dataset already has one.`, 'Select without --with-scores.');
    elements[0] = { ...elements[0]!, num_children: (elements[0]!.num_children ?? 0) + 1 };
    elements.push({ name: 'golden_score', type: 'DOUBLE', repetition_type: 'OPTIONAL' });
    columnData.push({ name: 'golden_score', data: [...goldenScores] });
  }
  let bytes: ArrayBuffer;
  try {
    // The writer bundles its own copy of hyparquet's types, which differ only in newer logical types.
    bytes = parquetWriteBuffer({ columnData, schema: elements as Parameters<typeof parquetWriteBuffer>[0]['schema'] });
  } catch (err) {
    throw new NuggetsError(`Cannot write ${path} as Parquet: ${(err as Error).message}.`, 'Write the subset as JSON instead (--out subset.json).');
  }
  writeFileAtomic(path, Buffer.from(bytes));
}
