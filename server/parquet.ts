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
import { NoRecordsError, readDataset, recordOf, type Dataset, type DatasetRecord, type Reading, type RecordFormat } from './dataset';
import { NuggetsError, fileError } from './errors';
import { writeFileAtomic } from './files';
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
  const reading: Reading = { format: recordFormat, rejected: [], count: 0 };
  const records: DatasetRecord[] = [];
  let schema: SchemaElement[] | undefined;
  let schemasDiffer = false;
  for (const file of parquetShards(path)) {
    const { buffer, metadata } = await openParquet(file);
    if (schema === undefined) schema = metadata.schema;
    else if (schemaText(schema) !== schemaText(metadata.schema)) schemasDiffer = true;
    let rowStart = 0;
    for (const [g, group] of metadata.row_groups.entries()) {
      const rowEnd = rowStart + Number(group.num_rows);
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors });
      } catch (err) {
        throw new NuggetsError(`${file}: row group ${g} cannot be read: ${(err as Error).message}.`, 'The file is damaged or uses an encoding Nuggets cannot read; it was not modified.');
      }
      for (const [k, row] of rows.entries()) {
        const at = rowStart + k;
        const global = records.length + reading.rejected.length;
        const record = recordOf(plainValue(row), records.length, () => parquetWhere(file, g, at), global, global + 1, reading);
        if (record) records.push(record);
      }
      rowStart = rowEnd;
    }
  }
  if (records.length === 0 && reading.rejected.length === 0) throw new NoRecordsError(path);
  const dataset: Dataset = { source: path, format: 'parquet', recordFormat: reading.format ?? 'alpaca', records, rejected: reading.rejected };
  return schemasDiffer ? dataset : { ...dataset, parquetSchema: schema };
}

async function openParquet(file: string): Promise<{ buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>; metadata: FileMetaData }> {
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
function plainValue(value: unknown): unknown {
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
