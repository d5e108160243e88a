/**
 * Diversity-aware selection, score first and then diversity as in DEITA (ALGORITHM.md, "Selection with
 * several signals"): walk the records best first; keep a record when the cosine similarity of its
 * vector to every kept record's vector is below tau; stop when the rule's size is reached. The vectors
 * are the model's embeddings (unit length), or TF-IDF vectors of the record text when embeddings are
 * missing. The walk is deterministic because the ranking is.
 */
import { tfidf } from './anchors';
import type { DatasetRecord } from './dataset';
import { dot } from './signals/embedding';
import { fullText } from './scoring/template';

/** The records kept so far, answering whether another record is a near-duplicate of any of them. */
export interface KeptSet {
  nearDuplicate(record: DatasetRecord): boolean;
  keep(record: DatasetRecord): void;
}

export interface SimilaritySource {
  readonly kind: 'embedding' | 'tfidf';
  keptSet(tau: number, capacity: number): KeptSet;
}

/** Positions in `records` (best first) that the walk keeps, and how many it skipped as near-duplicates. */
export function diverseWalk(records: readonly DatasetRecord[], similarity: SimilaritySource, tau: number, size: number): { kept: number[]; skipped: number } {
  const kept: number[] = [];
  let skipped = 0;
  const set = similarity.keptSet(tau, Math.min(size, records.length));
  for (let i = 0; i < records.length && kept.length < size; i++) {
    if (set.nearDuplicate(records[i]!)) {
      skipped++;
      continue;
    }
    set.keep(records[i]!);
    kept.push(i);
  }
  return { kept, skipped };
}

/** Similarity of model embeddings (unit vectors, by record id): the kept vectors sit in one contiguous matrix. */
export function embeddingSimilarity(vectors: ReadonlyMap<string, Float32Array>): SimilaritySource {
  const dimension = vectors.values().next().value?.length ?? 0;
  return {
    kind: 'embedding',
    keptSet(tau, capacity) {
      const matrix = new Float32Array(Math.max(1, capacity) * dimension);
      let rows = 0;
      return {
        nearDuplicate(record) {
          const v = vectors.get(record.id)!;
          for (let r = 0; r < rows; r++) if (dot(v, matrix, r * dimension) >= tau) return true;
          return false;
        },
        keep(record) {
          matrix.set(vectors.get(record.id)!, rows * dimension);
          rows++;
        },
      };
    },
  };
}

/** Similarity of TF-IDF vectors of each record's text (the fallback when embeddings are missing). */
export function tfidfSimilarity(records: readonly DatasetRecord[]): SimilaritySource {
  const { vectors } = tfidf(records.map((r) => fullText(r)));
  const byId = new Map(records.map((r, i) => [r.id, vectors[i]!]));
  return {
    kind: 'tfidf',
    keptSet(tau) {
      // An inverted index of the kept vectors: a record meets only the kept records it shares a term with.
      const postings = new Map<number, { row: number; weight: number }[]>();
      let rows = 0;
      return {
        nearDuplicate(record) {
          const v = byId.get(record.id)!;
          const dots = new Map<number, number>();
          for (let k = 0; k < v.terms.length; k++) {
            for (const p of postings.get(v.terms[k]!) ?? []) dots.set(p.row, (dots.get(p.row) ?? 0) + p.weight * v.weights[k]!);
          }
          for (const d of dots.values()) if (d >= tau) return true;
          return false;
        },
        keep(record) {
          const v = byId.get(record.id)!;
          for (let k = 0; k < v.terms.length; k++) {
            const list = postings.get(v.terms[k]!) ?? [];
            list.push({ row: rows, weight: v.weights[k]! });
            postings.set(v.terms[k]!, list);
          }
          rows++;
        },
      };
    },
  };
}

/** The model's embeddings when every record has one; otherwise TF-IDF, with the reason to tell the user. */
export function similarityFor(records: readonly DatasetRecord[], embeddings: ReadonlyMap<string, Float32Array> | undefined): { source: SimilaritySource; notice?: string } {
  const missing = embeddings ? records.filter((r) => !embeddings.has(r.id)).length : records.length;
  if (embeddings && missing === 0) return { source: embeddingSimilarity(embeddings) };
  const why = !embeddings || embeddings.size === 0 ? 'no embeddings were stored with these scores' : `${missing} of ${records.length} records have no stored embedding`;
  return { source: tfidfSimilarity(records), notice: `${why}; diversity uses TF-IDF vectors of the record text instead.` };
}
