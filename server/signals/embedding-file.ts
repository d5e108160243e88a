/**
 * The embeddings sidecar, `<scores>.embeddings`: a JSON header line (model fingerprint, dimension),
 * then fixed-size binary entries, each a record id (8 bytes, the id's 16 hex digits) and its
 * embedding as float16. 50,000 x 576 takes about 58 MB where JSON would take about 300 MB. Entries are
 * appended as records finish, keyed like the scores; a rerun keeps the complete entries and drops an
 * entry cut short by a killed run.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { fileError, NuggetsError, outOfSpace } from '../io/errors';
import { writeFileAtomic } from '../io/files';
import { fromHalf, toHalf } from './embedding';

export interface EmbeddingsHeader {
  nuggets_embeddings: 1;
  /** The model the hidden states come from. */
  model: string;
  dimension: number;
  dtype: 'float16';
}

const ID_BYTES = 8;

export function embeddingsPathFor(scoresPath: string): string {
  return `${scoresPath}.embeddings`;
}

function entryBytes(dimension: number): number {
  return ID_BYTES + 2 * dimension;
}

/** The embeddings of a sidecar, by record id; undefined when there is no sidecar. */
export function readEmbeddings(path: string): { header: EmbeddingsHeader; vectors: Map<string, Float32Array> } | undefined {
  if (!existsSync(path)) return undefined;
  const { header, entries } = readSidecar(path);
  const vectors = new Map<string, Float32Array>();
  for (const entry of entries) {
    const vector = new Float32Array(header.dimension);
    for (let d = 0; d < header.dimension; d++) vector[d] = fromHalf(entry.readUInt16LE(ID_BYTES + 2 * d));
    vectors.set(entryId(entry), vector);
  }
  return { header, vectors };
}

/**
 * Drops the entries of `ids` from a sidecar (an entry cut short at its end goes too). The other entries are
 * copied byte for byte into a new file that replaces the old one in one rename, so a reader sees the old
 * file or the new one; a sidecar left without entries is removed. Nothing is written when no entry is dropped.
 */
export function rewriteEmbeddingsWithout(path: string, ids: ReadonlySet<string>): void {
  const content = embeddingsWithout(path, ids);
  if (content === null) rmSync(path, { force: true });
  else if (content) writeFileAtomic(path, content);
}

/**
 * What rewriteEmbeddingsWithout would write, without writing it: the sidecar's bytes without the entries of
 * `ids`; null when no entry is left (the sidecar goes); undefined when nothing changes (no sidecar, no entry dropped).
 */
export function embeddingsWithout(path: string, ids: ReadonlySet<string>): Buffer | null | undefined {
  if (!existsSync(path)) return undefined;
  const { bodyStart, bytes, entries } = readSidecar(path);
  const kept = entries.filter((entry) => !ids.has(entryId(entry)));
  if (kept.length === entries.length) return undefined;
  return kept.length === 0 ? null : Buffer.concat([bytes.subarray(0, bodyStart), ...kept]);
}

function entryId(entry: Buffer): string {
  return entry.subarray(0, ID_BYTES).toString('hex');
}

/** A sidecar's header, where its entries start, and its complete entries (views of its bytes); a cut-short last entry is left out. */
function readSidecar(path: string): { header: EmbeddingsHeader; bodyStart: number; bytes: Buffer; entries: Buffer[] } {
  const bytes = readFileSync(path);
  const found = headerOf(bytes, path);
  if (!found) throw notAnEmbeddingsFile(path);
  const { header, bodyStart } = found;
  const size = entryBytes(header.dimension);
  const entries = Array.from({ length: Math.floor((bytes.length - bodyStart) / size) }, (_, k) => bytes.subarray(bodyStart + k * size, bodyStart + (k + 1) * size));
  return { header, bodyStart, bytes, entries };
}

/**
 * The header a sidecar's bytes start with, and where its entries start; undefined when the header line was cut
 * short (no line break yet). A header line that is not an embeddings header is an error.
 */
function headerOf(bytes: Buffer, path: string): { header: EmbeddingsHeader; bodyStart: number } | undefined {
  const newline = bytes.indexOf(0x0a);
  if (newline < 0 && bytes.length < HEAD_BYTES) return undefined;
  let header: Partial<EmbeddingsHeader> | undefined;
  try {
    header = newline > 0 ? (JSON.parse(bytes.subarray(0, newline).toString('utf8')) as Partial<EmbeddingsHeader>) : undefined;
  } catch {
    header = undefined;
  }
  if (!header || header.nuggets_embeddings !== 1 || typeof header.model !== 'string' || !(Number(header.dimension) > 0) || header.dtype !== 'float16') {
    throw notAnEmbeddingsFile(path);
  }
  return { header: header as EmbeddingsHeader, bodyStart: newline + 1 };
}

function notAnEmbeddingsFile(path: string): NuggetsError {
  return new NuggetsError(`${path}: not a Nuggets embeddings file.`, 'It is written beside a scores file by `nuggets score`; move it aside to compute the embeddings again.');
}

/** How much of a sidecar's start holds its header line, at most (it is far shorter). */
const HEAD_BYTES = 1 << 16;

/** A sidecar's first bytes (up to HEAD_BYTES) and its size. */
function headOf(path: string): { head: Buffer; size: number } {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(HEAD_BYTES);
    const read = readSync(fd, head, 0, HEAD_BYTES, 0);
    return { head: head.subarray(0, read), size: fstatSync(fd).size };
  } finally {
    closeSync(fd);
  }
}

/** Appends embeddings beside a scores file, resuming one of the same model. */
export class EmbeddingsWriter {
  private constructor(private readonly fd: number, private readonly path: string, readonly dimension: number,
    private length: number, private readonly recordsSafe: () => number) {}

  /**
   * Opens `path` for appending, keeping its complete entries (an entry cut short at its end is cut off); only
   * its header is read. A file whose header line was cut short (a disk that filled up as it was created) holds
   * nothing and is started again, so that it never blocks a rerun.
   */
  static open(path: string, model: string, dimension: number, recordsSafe: () => number): EmbeddingsWriter {
    const { head, size } = existsSync(path) ? headOf(path) : { head: Buffer.alloc(0), size: 0 };
    const found = size > 0 ? headerOf(head, path) : undefined;
    if (found) {
      const { header, bodyStart } = found;
      if (header.model !== model || header.dimension !== dimension) {
        throw new NuggetsError(`${path} holds embeddings of another model (${header.model}, dimension ${header.dimension}).`, 'Embeddings are never mixed: move the file aside, or pass another --out.');
      }
      const length = bodyStart + Math.floor((size - bodyStart) / entryBytes(dimension)) * entryBytes(dimension);
      if (length < size) {
        const fd = openSync(path, 'r+');
        ftruncateSync(fd, length);
        closeSync(fd);
      }
      return new EmbeddingsWriter(openSync(path, 'a'), path, dimension, length, recordsSafe);
    }
    const header: EmbeddingsHeader = { nuggets_embeddings: 1, model, dimension, dtype: 'float16' };
    const writer = new EmbeddingsWriter(openSync(path, 'w'), path, dimension, 0, recordsSafe);
    writer.write(Buffer.from(JSON.stringify(header) + '\n'));
    return writer;
  }

  append(id: string, vector: Float32Array): void {
    if (vector.length !== this.dimension) throw new Error(`embedding of ${vector.length} values, expected ${this.dimension}`);
    const entry = Buffer.alloc(entryBytes(this.dimension));
    entry.write(id.padEnd(2 * ID_BYTES, '0').slice(0, 2 * ID_BYTES), 0, 'hex');
    for (let d = 0; d < vector.length; d++) entry.writeUInt16LE(toHalf(vector[d]!), ID_BYTES + 2 * d);
    this.write(entry);
  }

  /** Writes whole or not at all: a part that reached the disk is cut off again; a file left without its header is removed. */
  private write(bytes: Buffer): void {
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(this.fd, bytes, written);
    } catch (err) {
      try {
        if (this.length > 0) ftruncateSync(this.fd, this.length);
        else {
          closeSync(this.fd);
          rmSync(this.path, { force: true });
        }
      } catch {
        // A rerun drops an entry cut short in any case.
      }
      const reason = outOfSpace(err);
      if (reason) {
        throw new NuggetsError(`${reason} while writing ${this.path}; ${this.recordsSafe()} records are safe.`,
          'Free some space and run the same command again: it resumes after the records already written.');
      }
      throw fileError(err, 'write embeddings file', this.path);
    }
    this.length += bytes.length;
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // closed when its header could not be written
    }
  }
}

/**
 * Where a score run's embeddings go: the sidecar beside its scores file, opened when the first
 * embedding arrives (its dimension is the model's) and never created for a backend that has none.
 */
export class EmbeddingsSink {
  private writer: EmbeddingsWriter | undefined;
  /** @param recordsSafe how many records the scores file beside it holds, for the message when the disk fills up */
  constructor(readonly path: string, private readonly model: string, private readonly recordsSafe: () => number) {}

  /** Written before the record's score line, so that a record with a score always has its embedding. */
  append(id: string, embedding: Float32Array | undefined): void {
    if (!embedding) return;
    this.writer ??= EmbeddingsWriter.open(this.path, this.model, embedding.length, this.recordsSafe);
    this.writer.append(id, embedding);
  }

  close(): void {
    this.writer?.close();
  }
}
