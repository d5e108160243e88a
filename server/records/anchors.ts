/**
 * The anchor set: the "predefined tasks" every candidate is scored against. From an Alpaca file, N
 * random records, or N records chosen by k-means (the paper's best): records embedded as TF-IDF
 * vectors, k-means++ seeding and Lloyd iterations with a seeded generator, then the record nearest
 * each centre. Same dataset and seed, same anchors.
 */
import { createHash } from 'node:crypto';
import { NoRecordsError, parseDataset, readUtf8, type DatasetRecord, type Example, type RejectedRecord } from './dataset';
import { NuggetsError } from '../io/errors';
import { writeFileAtomic } from '../io/files';
import { recordText } from '../scoring/template';

export interface AnchorSet {
  anchors: Example[];
  /** Identity of the set (its records' content, in order): part of every score's key. */
  hash: string;
  /** Records of the anchors file left out (readAnchors): they could not serve as anchors. */
  skipped?: SkippedAnchor[];
  /** Records of the anchors file that cannot be scored (a conversation whose roles do not alternate, ...): left out. */
  rejected?: RejectedRecord[];
}

/** A record that cannot serve as an anchor: nothing of an empty response can become more likely, and a duplicate would count twice. */
export interface SkippedAnchor {
  /** Position of the record in its file, 0-based. */
  index: number;
  instruction: string;
  /** 'empty': the response is empty; otherwise the position of the earlier record it repeats. */
  reason: 'empty' | { duplicateOf: number };
}

/**
 * The records that can be anchors, in order, and those that cannot: an empty response (no response span to
 * score) or an exact repeat of an earlier record. Records over maxAnchorTokens that keep no response token
 * are found when the anchors are tokenized (scoring/golden.ts excludedAnchors). Records are named by their
 * index and compared by their content id, as parsed (dataset.ts).
 */
export function screenAnchors<T extends Example & { id: string; index: number }>(records: readonly T[]): { kept: T[]; skipped: SkippedAnchor[] } {
  const screen = new AnchorScreen();
  const kept = records.filter((record) => screen.admits(record));
  return { kept, skipped: screen.skipped };
}

/**
 * screenAnchors one record at a time, in dataset order (`nuggets anchors` on a file it walks, never holding it whole):
 * of a record it keeps only its id while it can be an anchor, or its skip; `previewChars` keeps only the start of a
 * skipped record's instruction (describeSkipped shows 40 characters).
 */
export class AnchorScreen {
  readonly skipped: SkippedAnchor[] = [];
  private readonly firstById = new Map<string, number>();

  constructor(private readonly previewChars = Infinity) {}

  /** Whether the record can be an anchor; if not, it joins `skipped`. */
  admits(record: Example & { id: string; index: number }): boolean {
    const { index, id } = record;
    const earlier = this.firstById.get(id);
    const instruction = record.instruction.slice(0, this.previewChars);
    if (record.output.trim() === '') this.skipped.push({ index, instruction, reason: 'empty' });
    else if (earlier !== undefined) this.skipped.push({ index, instruction, reason: { duplicateOf: earlier } });
    else {
      this.firstById.set(id, index);
      return true;
    }
    return false;
  }
}

/** As many characters of a skipped record's instruction as describeSkipped shows. */
export const SKIPPED_PREVIEW_CHARS = 40;

/** "2 records skipped: index 4 ("Say hi…") has an empty response; index 8 ("Add…") repeats index 1" (0-based, as the dashboard, scores file and exports number records). */
export function describeSkipped(skipped: readonly SkippedAnchor[]): string {
  const named = skipped.slice(0, 5).map((s) => {
    const what = s.reason === 'empty' ? 'has an empty response' : `repeats index ${s.reason.duplicateOf}`;
    return `index ${s.index} ("${s.instruction.slice(0, SKIPPED_PREVIEW_CHARS).replace(/\s+/g, ' ')}…") ${what}`;
  });
  return `${skipped.length} ${skipped.length === 1 ? 'record' : 'records'} skipped as anchors: ${named.join('; ')}${skipped.length > 5 ? '; …' : ''}`;
}

export function anchorSet(anchors: Example[]): AnchorSet {
  const hash = createHash('sha256');
  for (const a of anchors) {
    // Alpaca anchors hash as they always have; a conversation anchor hashes its roles and contents.
    if (a.turns) hash.update(`\u0002${a.turns.map((t) => `${t.role}\u0000${t.content}`).join('\u0000')}\u0001`);
    else hash.update(`${a.instruction}\u0000${a.input}\u0000${a.output}\u0001`);
  }
  return { anchors, hash: hash.digest('hex').slice(0, 16) };
}

export function readAnchors(path: string): AnchorSet {
  const text = readUtf8(path, 'anchors file');
  try {
    const dataset = parseDataset(text, path);
    const { kept, skipped } = screenAnchors(dataset.records);
    if (kept.length === 0) throw new NuggetsError(`${path}: no record can be an anchor (${[describeSkipped(skipped), ...dataset.rejected.map((r) => `${r.where}: ${r.why}`)].join('; ')}).`);
    const set = anchorSet(kept.map(({ instruction, input, output, turns }) => ({ instruction, input, output, ...(turns ? { turns } : {}) })));
    return { ...set, ...(skipped.length > 0 ? { skipped } : {}), ...(dataset.rejected.length > 0 ? { rejected: dataset.rejected } : {}) };
  } catch (err) {
    // `[]` is an Alpaca file without records, not another kind of file.
    if (err instanceof NoRecordsError) throw new NuggetsError(new NoRecordsError(err.source, 'anchors file').message, 'Anchors are Alpaca records; write them with `nuggets anchors`.');
    if (err instanceof NuggetsError) {
      throw new NuggetsError(`The anchors file is not a usable Alpaca file: ${err.message}`, 'Anchors are Alpaca records; write them with `nuggets anchors`.');
    }
    throw err;
  }
}

/** Writes anchors as an Alpaca file; records chosen from a dataset keep their position as `source_index`. */
export function writeAnchors(path: string, records: ReadonlyArray<Example & { index?: number }>): void {
  // Conversation anchors are written as messages records.
  const out = records.map((r) => ({
    ...(r.turns ? { messages: r.turns } : { instruction: r.instruction, input: r.input, output: r.output }), ...(r.index !== undefined ? { source_index: r.index } : {}),
  }));
  writeFileAtomic(path, JSON.stringify(out, null, 2) + '\n');
}

/** mulberry32: small, fast, and the same sequence in every Node version. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The records that can be anchors (screenAnchors), at least n of them. */
function anchorPool(records: DatasetRecord[], n: number): DatasetRecord[] {
  const pool = screenAnchors(records).kept;
  assertAnchorCount(n, pool.length, records.length);
  return pool;
}

/** n anchors can be drawn from `pool` records that can be anchors, of the dataset's `records`; else what is short. */
export function assertAnchorCount(n: number, pool: number, records: number): void {
  if (!Number.isInteger(n) || n < 1) throw new NuggetsError(`The anchor count must be a positive integer (got ${n}).`);
  if (n > pool) {
    throw new NuggetsError(pool === records
      ? `Asked for ${n} anchors but the dataset has only ${records} records.`
      : `Asked for ${n} anchors but only ${pool} of the dataset's ${records} records can be anchors (the others have an empty response or repeat an earlier record).`);
  }
}

/** N random records among those that can be anchors (screenAnchors). */
export function chooseRandom(all: DatasetRecord[], n: number, seed: number): DatasetRecord[] {
  return sampleRecords(anchorPool(all, n), n, seed);
}

/**
 * N of `records` drawn at random (a seeded shuffle), in their order: anchors (chooseRandom), and the samples that
 * are not anchors and keep every record (a model comparison's sample, the random baseline of a selection).
 */
export function sampleRecords<T>(records: readonly T[], n: number, seed: number): T[] {
  if (!Number.isInteger(n) || n < 1 || n > records.length) throw new NuggetsError(`Cannot draw ${n} of ${records.length} records: give a whole number from 1 to ${records.length}.`);
  const random = seededRandom(seed);
  const order = records.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, n).sort((a, b) => a - b).map((i) => records[i]!);
}

/** A sparse, L2-normalised TF-IDF vector. */
export interface SparseVector {
  terms: Int32Array;
  weights: Float64Array;
}

const MAX_TERMS = 20000;

/** A text's words as TF-IDF counts them: runs of letters and digits, lower-cased. */
export function textWords(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Counts one more document's words (each once) into `documentFrequency`. */
export function countDocument(documentFrequency: Map<string, number>, words: readonly string[]): void {
  for (const w of new Set(words)) documentFrequency.set(w, (documentFrequency.get(w) ?? 0) + 1);
}

/** The vocabulary and its weights, from the document frequencies of `documents` texts. */
export interface TfidfTerms {
  termIndex: Map<string, number>;
  idf: number[];
  dimensions: number;
}

export function tfidfTerms(documentFrequency: ReadonlyMap<string, number>, documents: number): TfidfTerms {
  // Terms seen in at least two records, most common first (ties by spelling, for determinism).
  const vocabulary = [...documentFrequency.entries()].filter(([, df]) => df >= 2)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, MAX_TERMS);
  return {
    termIndex: new Map(vocabulary.map(([w], i) => [w, i])),
    idf: vocabulary.map(([, df]) => Math.log((1 + documents) / (1 + df)) + 1),
    dimensions: vocabulary.length,
  };
}

/** One text's vector (its words, textWords) over the vocabulary of tfidfTerms. */
export function tfidfVector(words: readonly string[], { termIndex, idf }: TfidfTerms): SparseVector {
  const counts = new Map<number, number>();
  for (const w of words) {
    const t = termIndex.get(w);
    if (t !== undefined) counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  const terms = Int32Array.from([...counts.keys()].sort((a, b) => a - b));
  const weights = Float64Array.from(terms, (t) => counts.get(t)! * idf[t]!);
  const norm = Math.hypot(...weights) || 1;
  for (let i = 0; i < weights.length; i++) weights[i]! /= norm;
  return { terms, weights };
}

export function tfidf(texts: string[]): { vectors: SparseVector[]; dimensions: number } {
  const tokenized = texts.map(textWords);
  const documentFrequency = new Map<string, number>();
  for (const words of tokenized) countDocument(documentFrequency, words);
  const terms = tfidfTerms(documentFrequency, texts.length);
  return { vectors: tokenized.map((words) => tfidfVector(words, terms)), dimensions: terms.dimensions };
}

/** Squared distance between a unit sparse vector and a dense centre with known squared norm. */
function distance(v: SparseVector, centre: Float64Array, centreNorm2: number): number {
  let dot = 0;
  for (let i = 0; i < v.terms.length; i++) dot += v.weights[i]! * centre[v.terms[i]!]!;
  const self = v.terms.length > 0 ? 1 : 0;
  return Math.max(0, self - 2 * dot + centreNorm2);
}

/** N records nearest the centres of N clusters, among those that can be anchors (screenAnchors). */
export function chooseKMeans(all: DatasetRecord[], n: number, seed: number, iterations = 20): DatasetRecord[] {
  const records = anchorPool(all, n);
  const { vectors, dimensions } = tfidf(records.map((r) => recordText(r)));
  return kmeansChoice(vectors, dimensions, n, seed, iterations).map((i) => records[i]!);
}

/**
 * The positions, in order, of the n vectors nearest the centres of n clusters: k-means++ seeding and Lloyd
 * iterations with a generator seeded by `seed`, then the vector nearest each centre, each used once.
 */
export function kmeansChoice(vectors: readonly SparseVector[], dimensions: number, n: number, seed: number, iterations = 20): number[] {
  const random = seededRandom(seed);
  const dense = (v: SparseVector): Float64Array => {
    const c = new Float64Array(dimensions);
    v.terms.forEach((t, i) => (c[t] = v.weights[i]!));
    return c;
  };
  const norm2 = (c: Float64Array): number => c.reduce((s, x) => s + x * x, 0);

  // k-means++ seeding.
  const centres: Float64Array[] = [dense(vectors[Math.floor(random() * vectors.length)]!)];
  const nearest = vectors.map((v) => distance(v, centres[0]!, norm2(centres[0]!)));
  while (centres.length < n) {
    const total = nearest.reduce((s, d) => s + d, 0);
    let pick = 0;
    if (total > 0) {
      let r = random() * total;
      while (pick < nearest.length - 1 && (r -= nearest[pick]!) > 0) pick++;
    } else {
      pick = Math.floor(random() * vectors.length);
    }
    const c = dense(vectors[pick]!);
    const cn = norm2(c);
    centres.push(c);
    vectors.forEach((v, i) => (nearest[i] = Math.min(nearest[i]!, distance(v, c, cn))));
  }

  // Lloyd iterations.
  const assignment = new Int32Array(vectors.length).fill(-1);
  for (let iter = 0; iter < iterations; iter++) {
    const norms = centres.map(norm2);
    let changed = 0;
    vectors.forEach((v, i) => {
      let best = 0;
      let bestDistance = Infinity;
      for (let k = 0; k < centres.length; k++) {
        const d = distance(v, centres[k]!, norms[k]!);
        if (d < bestDistance) [best, bestDistance] = [k, d];
      }
      if (assignment[i] !== best) changed++;
      assignment[i] = best;
    });
    if (changed === 0) break;
    const sums = centres.map(() => new Float64Array(dimensions));
    const sizes = new Int32Array(centres.length);
    vectors.forEach((v, i) => {
      const k = assignment[i]!;
      sizes[k]!++;
      v.terms.forEach((t, j) => (sums[k]![t]! += v.weights[j]!));
    });
    sums.forEach((s, k) => {
      if (sizes[k]! > 0) {
        for (let d = 0; d < dimensions; d++) s[d]! /= sizes[k]!;
        centres[k] = s;
      }
    });
  }

  // The record nearest each centre, each record used once.
  const norms = centres.map(norm2);
  const chosen = new Set<number>();
  for (let k = 0; k < centres.length; k++) {
    let best = -1;
    let bestDistance = Infinity;
    vectors.forEach((v, i) => {
      if (chosen.has(i)) return;
      const d = distance(v, centres[k]!, norms[k]!);
      if (d < bestDistance) [best, bestDistance] = [i, d];
    });
    chosen.add(best);
  }
  return [...chosen].sort((a, b) => a - b);
}
