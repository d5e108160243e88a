/**
 * Diversity-aware selection, score first and then diversity as in DEITA (ALGORITHM.md, "Selection with
 * several signals"): walk the records best first; keep a record when the cosine similarity of its
 * vector to every kept record's vector is below tau; stop when the rule's size is reached. The vectors
 * are the model's embeddings (unit length), or TF-IDF vectors of the record text when embeddings are
 * missing. The walk is deterministic because the ranking is.
 */
import { tfidf } from '../records/anchors';
import type { DatasetRecord } from '../records/dataset';
import { dot } from '../signals/embedding';
import { recordText } from '../scoring/template';

/** What the walk keeps: positions in the best-first list, and how many it skipped as near-duplicates. */
export interface Walk {
  kept: number[];
  skipped: number;
}

export interface SimilaritySource {
  readonly kind: 'embedding' | 'tfidf';
  /** Walks `records` (by id) best first, keeping each one not within `tau` of a kept one, until `size` are kept. */
  walk(records: readonly { id: string }[], tau: number, size: number): Walk;
}

/** Similarity of model embeddings (unit vectors, by record id): the kept vectors sit in one contiguous matrix. */
export function embeddingSimilarity(vectors: ReadonlyMap<string, Float32Array>): SimilaritySource {
  const dimension = vectors.values().next().value?.length ?? 0;
  return {
    kind: 'embedding',
    walk(records, tau, size) {
      const kept = new Float32Array(Math.max(1, Math.min(size, records.length)) * dimension);
      const walk: Walk = { kept: [], skipped: 0 };
      for (let i = 0; i < records.length && walk.kept.length < size; i++) {
        const v = vectors.get(records[i]!.id)!;
        let near = false;
        for (let row = 0; !near && row < walk.kept.length; row++) near = dot(v, kept, row * dimension) >= tau;
        if (near) {
          walk.skipped++;
          continue;
        }
        kept.set(v, walk.kept.length * dimension);
        walk.kept.push(i);
      }
      return walk;
    },
  };
}

/** Similarity of TF-IDF vectors of each record's text (the fallback when embeddings are missing). */
export function tfidfSimilarity(records: readonly DatasetRecord[]): SimilaritySource {
  return tfidfSimilarityOfTexts(records.map((r) => r.id), records.map((r) => recordText(r)));
}

/** TF-IDF similarity of texts given with their records' ids, in dataset order (recordText of each record). */
export function tfidfSimilarityOfTexts(ids: readonly string[], texts: string[]): SimilaritySource {
  const { vectors } = tfidf(texts);
  const byId = new Map(ids.map((id, i) => [id, vectors[i]!]));
  return {
    kind: 'tfidf',
    walk(ranked, tau, size) {
      // An inverted index of the kept vectors: a record meets only the kept records it shares a term with.
      const postings = new Map<number, { row: number; weight: number }[]>();
      const walk: Walk = { kept: [], skipped: 0 };
      for (let i = 0; i < ranked.length && walk.kept.length < size; i++) {
        const v = byId.get(ranked[i]!.id)!;
        const dots = new Map<number, number>();
        for (let k = 0; k < v.terms.length; k++) {
          for (const p of postings.get(v.terms[k]!) ?? []) dots.set(p.row, (dots.get(p.row) ?? 0) + p.weight * v.weights[k]!);
        }
        if ([...dots.values()].some((d) => d >= tau)) {
          walk.skipped++;
          continue;
        }
        for (let k = 0; k < v.terms.length; k++) {
          const list = postings.get(v.terms[k]!) ?? [];
          list.push({ row: walk.kept.length, weight: v.weights[k]! });
          postings.set(v.terms[k]!, list);
        }
        walk.kept.push(i);
      }
      return walk;
    },
  };
}

/** The model's embeddings when every record has one; otherwise TF-IDF, with the reason to tell the user. */
export function similarityFor(records: readonly DatasetRecord[], embeddings: ReadonlyMap<string, Float32Array> | undefined): { source: SimilaritySource; notice?: string } {
  const missing = embeddingsMissing(records, embeddings);
  if (missing === undefined) return { source: embeddingSimilarity(embeddings!) };
  return { source: tfidfSimilarity(records), notice: missing };
}

/** Undefined when every record has an embedding; otherwise why diversity falls back to TF-IDF, to tell the user. */
export function embeddingsMissing(records: readonly { id: string }[], embeddings: ReadonlyMap<string, Float32Array> | undefined): string | undefined {
  const missing = embeddings ? records.filter((r) => !embeddings.has(r.id)).length : records.length;
  if (embeddings && missing === 0) return undefined;
  const why = !embeddings || embeddings.size === 0 ? 'no embeddings were stored with these scores' : `${missing} of ${records.length} records have no stored embedding`;
  return `${why}; diversity uses TF-IDF vectors of the record text instead.`;
}
