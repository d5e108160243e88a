/**
 * A GGUF file turned, once, into a model folder the engine runs like any other: model.onnx and its
 * weights (graph.ts), tokenizer.json and tokenizer_config.json rebuilt from the file's tokenizer
 * (tokenizer-files.ts, with the chat template), config.json, and gguf-import.json saying where it came
 * from and how each tensor type is held. The folder lives under the cache root, in gguf/, named by the
 * file's content hash (sha256), so renaming or copying the file reuses it, and changed bytes are
 * another model. The hash of a file is remembered by its path, size and modification time, so that a
 * second open reads no weights before the session is created.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { NuggetsError } from '../../io/errors';
import { defaultCacheDir, hashFile } from '../../io/files';
import { ggmlTypeName, readGguf, type GgufFile } from './file';
import { writeGraph, type WeightStorage } from './graph';
import { assertSupportedType, isBlockType } from './quants';
import { configJson, modelShape } from './shape';
import { tokenizerFiles } from './tokenizer-files';

/** Raised when the import's output changes, so that folders written by an older importer are not reused. */
const IMPORT_VERSION = 1;

export interface GgufImportSettings {
  /** The cache root (default ~/.cache/nuggets); imports go to its gguf/ folder. */
  cacheDir?: string;
  /** 'stored' (default): the file's blocks as MatMulNBits; 'float32': every weight dequantized. */
  weights?: WeightStorage;
  /** The name the model is shown under (default the file's name). */
  displayName?: string;
  /** The sha256 the file must have (an Ollama blob's digest): a file that differs is refused as damaged. */
  expectedSha256?: string;
  onProgress?: (progress: GgufImportProgress) => void;
}

export interface GgufImportProgress {
  phase: 'hashing' | 'importing' | 'cached';
  done: number;
  total: number;
}

export interface ImportedGguf {
  folder: string;
  /** The GGUF file's sha256. */
  sha256: string;
  /** True when the folder was imported earlier and reused. */
  cached: boolean;
}

/** How the import holds each GGUF tensor type: the README's table, and gguf-import.json's. */
export function storageOf(type: number, weights: WeightStorage): string {
  if (!isBlockType(type)) return 'float32';
  if (weights === 'float32') return 'dequantized to float32';
  return ['Q4_1', 'Q5_1', 'Q4_K', 'Q5_K'].includes(ggmlTypeName(type)) ? 'MatMulNBits codes and scales, plus the block offsets as a float product (exact)' : 'MatMulNBits codes, scales and zero points (exact)';
}

export function isGgufPath(model: string): boolean {
  return /\.gguf$/i.test(model.trim());
}

export function importGguf(path: string, settings: GgufImportSettings = {}): ImportedGguf {
  const cacheRoot = join(settings.cacheDir ?? defaultCacheDir(), 'gguf');
  const weights = settings.weights ?? 'stored';
  // Reading the header first refuses a broken or unsupported file before its bytes are hashed.
  const file = readGguf(path);
  const shape = modelShape(file);
  for (const tensor of file.tensors.values()) assertSupportedType(file, tensor);
  const sha256 = contentHash(path, cacheRoot, settings.onProgress);
  if (settings.expectedSha256 !== undefined && settings.expectedSha256 !== sha256) {
    throw new NuggetsError(`${path} is damaged: its sha256 is ${sha256.slice(0, 16)}…, not the ${settings.expectedSha256.slice(0, 16)}… its manifest names.`, 'Fetch or pull the model again.');
  }
  const folder = join(cacheRoot, `${sha256.slice(0, 32)}-${weights}-v${IMPORT_VERSION}`);
  if (existsSync(join(folder, RECORD))) {
    settings.onProgress?.({ phase: 'cached', done: 1, total: 1 });
    return { folder, sha256, cached: true };
  }
  const temporary = `${folder}.tmp-${process.pid}`;
  rmSync(temporary, { recursive: true, force: true });
  mkdirSync(temporary, { recursive: true });
  try {
    const tokenizer = tokenizerFiles(file);
    writeGraph(file, shape, temporary, weights, (done, total) => settings.onProgress?.({ phase: 'importing', done, total }));
    writeFileSync(join(temporary, 'tokenizer.json'), JSON.stringify(tokenizer.tokenizerJson));
    writeFileSync(join(temporary, 'tokenizer_config.json'), JSON.stringify(tokenizer.tokenizerConfig, null, 2) + '\n');
    writeFileSync(join(temporary, 'config.json'), JSON.stringify(configJson(file, shape), null, 2) + '\n');
    // Written last: its presence marks a complete import.
    writeFileSync(join(temporary, RECORD), JSON.stringify(importRecord(file, sha256, weights, settings.displayName), null, 2) + '\n');
    rmSync(folder, { recursive: true, force: true });
    renameSync(temporary, folder);
  } catch (err) {
    rmSync(temporary, { recursive: true, force: true });
    throw err;
  }
  return { folder, sha256, cached: false };
}

const RECORD = 'gguf-import.json';

function importRecord(file: GgufFile, sha256: string, weights: WeightStorage, displayName: string | undefined): Record<string, unknown> {
  const counts = new Map<number, number>();
  for (const t of file.tensors.values()) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
  return {
    source: { file: basename(file.path), name: displayName ?? basename(file.path), sha256, bytes: file.size, generalName: file.metadata.get('general.name') ?? null },
    importer: IMPORT_VERSION,
    weights,
    tensorTypes: Object.fromEntries([...counts].map(([type, tensors]) => [ggmlTypeName(type), { tensors, heldAs: storageOf(type, weights) }])),
  };
}

/** The file's sha256, remembered (in the cache) by its real path, size and modification time. */
function contentHash(path: string, cacheRoot: string, onProgress: GgufImportSettings['onProgress']): string {
  const real = realpathSync(path);
  const { size, mtimeMs, ino } = statSync(real);
  const key = createHash('sha256').update(`${real}\u0000${size}\u0000${mtimeMs}\u0000${ino}`).digest('hex').slice(0, 32);
  const memo = join(cacheRoot, 'hashes', `${key}.txt`);
  try {
    const known = readFileSync(memo, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(known)) return known;
  } catch {
    // not hashed before
  }
  onProgress?.({ phase: 'hashing', done: 0, total: size });
  const sha256 = hashFile(createHash('sha256'), real).digest('hex');
  mkdirSync(join(cacheRoot, 'hashes'), { recursive: true });
  writeFileSync(memo, `${sha256}\n`);
  return sha256;
}

/**
 * For a folder this importer wrote: what its weights were made from (the GGUF's sha256, the importer's
 * version and the weight storage), which the folder's fingerprint takes instead of hashing the weights.
 */
export function ggufImportKey(folder: string): string | undefined {
  let record: { source?: { sha256?: unknown }; importer?: unknown; weights?: unknown };
  try {
    record = JSON.parse(readFileSync(join(folder, RECORD), 'utf8')) as typeof record;
  } catch {
    return undefined;
  }
  if (typeof record.source?.sha256 !== 'string' || record.importer !== IMPORT_VERSION) return undefined;
  return `gguf ${record.source.sha256} importer ${IMPORT_VERSION} ${String(record.weights)}`;
}

/** Refuses, with the reason, a variant a GGUF model does not have. */
export function ggufWeights(variant: string | undefined, path: string): WeightStorage {
  if (variant === undefined || variant === 'stored') return 'stored';
  if (variant === 'fp32' || variant === 'float32') return 'float32';
  throw new NuggetsError(`A GGUF model (${path}) has no "${variant}" variant.`, 'Without --variant it runs the file\'s weights as stored; --variant fp32 runs them dequantized to float32.');
}
