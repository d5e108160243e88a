/**
 * The editor's scores, persisted in extension storage with the engine's store: one scores file per
 * scoring key (model fingerprint, anchor set, template, maxAnchorTokens, separator), records keyed
 * by content hash, so that any file holding the same record finds its score. A score found only
 * under another key is returned as stale, never as current. Anchor sets are kept by hash beside
 * them, so that a hover can name the anchors of any stored score.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readAnchors, writeAnchors, type AnchorSet } from '../anchors';
import type { CandidateScore } from '../scoring/golden';
import { EmbeddingsSink, embeddingsPathFor, readEmbeddings } from '../signals/embedding-file';
import { readScores, ScoresWriter, type ScoresHeader, type ScoringKey } from '../store';

export interface FoundScore {
  score: CandidateScore;
  key: ScoringKey;
  stale: boolean;
}

export function keyName(key: ScoringKey): string {
  const text = JSON.stringify([key.model.fingerprint, key.anchors.hash, key.template, key.maxAnchorTokens, key.separator]);
  return createHash('sha256').update(text).digest('hex').slice(0, 20);
}

export class ScoreBook {
  private readonly scoresDir: string;
  private readonly anchorsDir: string;
  /** Open writers by key name; their `existing` maps are the in-memory scores of that key. */
  private readonly writers = new Map<string, { writer: ScoresWriter; key: ScoringKey }>();
  /** Scores files of other keys, read once. */
  private readonly others = new Map<string, { header: ScoresHeader; scores: Map<string, CandidateScore> }>();
  private othersLoaded = false;
  private readonly anchorSets = new Map<string, AnchorSet>();
  /** Embedding sidecars beside the open scores files, by key name. */
  private readonly embeddingSinks = new Map<string, EmbeddingsSink>();

  constructor(readonly storagePath: string) {
    this.scoresDir = join(storagePath, 'scores');
    this.anchorsDir = join(storagePath, 'anchors');
    mkdirSync(this.scoresDir, { recursive: true });
    mkdirSync(this.anchorsDir, { recursive: true });
  }

  private writerFor(key: ScoringKey): ScoresWriter {
    const name = keyName(key);
    let open = this.writers.get(name);
    if (!open) {
      const header: ScoresHeader = { nuggets_scores: 1, ...key, dataset: 'vscode', shard: null, created: new Date().toISOString() };
      open = { writer: ScoresWriter.open(join(this.scoresDir, `${name}.jsonl`), header), key };
      this.writers.set(name, open);
      this.others.delete(name);
    }
    return open.writer;
  }

  /** Current scores of `key` (opening its file on first use). */
  scoresOf(key: ScoringKey): Map<string, CandidateScore> {
    return this.writerFor(key).existing;
  }

  append(key: ScoringKey, score: CandidateScore): void {
    const name = keyName(key);
    let sink = this.embeddingSinks.get(name);
    if (!sink) this.embeddingSinks.set(name, (sink = new EmbeddingsSink(embeddingsPathFor(this.scoresPathOf(key)), key.model.fingerprint)));
    sink.append(score.id, score.embedding);
    this.writerFor(key).append(score);
  }

  /** The scores file of `key` (selection cards name it). */
  scoresPathOf(key: ScoringKey): string {
    return join(this.scoresDir, `${keyName(key)}.jsonl`);
  }

  /** The stored embeddings of `key`'s records, by record id (none for a backend without hidden states). */
  embeddingsOf(key: ScoringKey): Map<string, Float32Array> | undefined {
    return readEmbeddings(embeddingsPathFor(this.scoresPathOf(key)))?.vectors;
  }

  /** The record's score under `key`, or else under any other key (stale). */
  find(id: string, key: ScoringKey | null): FoundScore | undefined {
    if (key) {
      const score = this.scoresOf(key).get(id);
      if (score) return { score, key, stale: false };
    }
    const current = key ? keyName(key) : '';
    for (const [name, open] of this.writers) {
      if (name === current) continue;
      const score = open.writer.existing.get(id);
      if (score) return { score, key: open.key, stale: true };
    }
    this.loadOthers();
    for (const other of this.others.values()) {
      const score = other.scores.get(id);
      if (score) return { score, key: other.header, stale: true };
    }
    return undefined;
  }

  private loadOthers(): void {
    if (this.othersLoaded) return;
    this.othersLoaded = true;
    for (const file of readdirSync(this.scoresDir).filter((f) => f.endsWith('.jsonl'))) {
      const name = file.slice(0, -'.jsonl'.length);
      if (this.writers.has(name)) continue;
      try {
        const content = readScores(join(this.scoresDir, file));
        this.others.set(name, { header: content.header, scores: content.scores });
      } catch {
        // A damaged file from an earlier session: its scores are simply not shown.
      }
    }
  }

  /** Removes the given records from every scores file; returns how many scores were removed. */
  clear(ids: ReadonlySet<string>): number {
    this.loadOthers();
    let removed = 0;
    const files = readdirSync(this.scoresDir).filter((f) => f.endsWith('.jsonl'));
    for (const file of files) {
      const name = file.slice(0, -'.jsonl'.length);
      const path = join(this.scoresDir, file);
      const open = this.writers.get(name);
      let header: ScoresHeader;
      let scores: Map<string, CandidateScore>;
      if (open) {
        open.writer.close();
        this.writers.delete(name);
        ({ header, scores } = readScores(path));
      } else {
        const other = this.others.get(name);
        if (!other) continue;
        ({ header, scores } = other);
      }
      const kept = [...scores.values()].filter((s) => !ids.has(s.id));
      removed += scores.size - kept.length;
      if (kept.length === scores.size && !open) continue;
      // Rewrite through the engine's writer so the file keeps its format.
      rmSync(path, { force: true });
      const writer = ScoresWriter.open(path, header);
      for (const s of kept) writer.append(s);
      if (open) {
        this.writers.set(name, { writer, key: open.key });
      } else {
        writer.close();
        this.others.set(name, { header, scores: new Map(kept.map((s) => [s.id, s])) });
      }
    }
    return removed;
  }

  /** Keeps a copy of the anchor set by hash, so that hovers can name the anchors of any stored score. */
  rememberAnchors(set: AnchorSet): string {
    const path = join(this.anchorsDir, `${set.hash}.json`);
    if (!existsSync(path)) writeAnchors(path, set.anchors);
    this.anchorSets.set(set.hash, set);
    return path;
  }

  anchorsPath(hash: string): string {
    return join(this.anchorsDir, `${hash}.json`);
  }

  /** The anchor set with this hash, if it was ever used here. */
  anchorsByHash(hash: string): AnchorSet | undefined {
    const known = this.anchorSets.get(hash);
    if (known) return known;
    const path = this.anchorsPath(hash);
    if (!existsSync(path)) return undefined;
    try {
      const set = readAnchors(path);
      this.anchorSets.set(hash, set);
      return set;
    } catch {
      return undefined;
    }
  }

  close(): void {
    for (const open of this.writers.values()) open.writer.close();
    this.writers.clear();
    for (const sink of this.embeddingSinks.values()) sink.close();
    this.embeddingSinks.clear();
  }
}
