/**
 * The files of a Parquet dataset, without reading them: kept apart from parquet.ts so that hashing a dataset
 * (card.ts, which the language server bundles) does not bring in the Parquet reader and writer.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NuggetsError, fileError } from '../io/errors';

/** The shards of a Parquet dataset, in order: the file itself, or a folder's `.parquet` files by name (numbers compared as numbers). */
export function parquetShards(path: string): string[] {
  let isFolder: boolean;
  try {
    isFolder = statSync(path).isDirectory();
  } catch (err) {
    throw fileError(err, 'read dataset', path);
  }
  if (!isFolder) return [path];
  const names = readdirSync(path).filter((n) => /\.parquet$/i.test(n)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (names.length === 0) throw new NuggetsError(`${path} is a folder with no .parquet files.`, 'Give a dataset file (JSON, JSON Lines or Parquet) or a folder of Parquet shards.');
  return names.map((n) => join(path, n));
}
