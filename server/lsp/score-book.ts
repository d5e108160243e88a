/**
 * The editor's scores, persisted in extension storage with the engine's store: one scores file per
 * scoring key (model fingerprint, anchor set, template, maxAnchorTokens, separator, turns), records keyed
 * by content hash, so that any file holding the same record finds its score. A score found only
 * under another key is returned as stale, never as current. Anchor sets are kept by hash beside
 * them, so that a hover can name the anchors of any stored score.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { readAnchors, writeAnchors, type AnchorSet } from '../records/anchors';
import type { CandidateScore } from '../scoring/golden';
import { NuggetsError } from '../io/errors';
import { FileLock, type LockOwner } from '../io/lock';
import { EmbeddingsSink, embeddingsPathFor, embeddingsWithout, readEmbeddings } from '../signals/embedding-file';
import { readAppendedScores, readScores, ScoresWriter, type ScoresHeader, type ScoringKey } from '../records/store';

export interface FoundScore {
  score: CandidateScore;
  key: ScoringKey;
  stale: boolean;
}

/** The header of a scores file this window starts for `key`. */
function newHeader(key: ScoringKey): ScoresHeader {
  return { nuggets_scores: 1, ...key, dataset: 'vscode', shard: null, created: new Date().toISOString() };
}

/**
 * A run's writers: its scores file, and beside it the embeddings sidecar (whose full-disk message counts the scores).
 * The scores file is read whole and checked, unless `read` holds all of it already.
 */
function runWriters(path: string, header: ScoresHeader, read?: StoredFile): { writer: ScoresWriter; embeddings: EmbeddingsSink } {
  const writer = read ? ScoresWriter.resume(path, header, read.scores, read.read) : ScoresWriter.open(path, header);
  return { writer, embeddings: new EmbeddingsSink(embeddingsPathFor(path), header.model.fingerprint, () => writer.existing.size) };
}

/**
 * The file name of a key's scores. The scoring path is left out: the editor scores on the default path
 * only (scoring-keys.ts), and so the files stored before the path was recorded keep their names.
 */
export function keyName(key: ScoringKey): string {
  // --turns all is named only when given, so that the files of the default keep their names.
  const text = JSON.stringify([key.model.fingerprint, key.anchors.hash, key.template, key.maxAnchorTokens, key.separator, ...((key.turns ?? 'last') !== 'last' ? [key.turns] : [])]);
  return createHash('sha256').update(text).digest('hex').slice(0, 20);
}

/** What a refresh found: records that got a score, and whether scores may also have gone (`whole`). */
export interface Changes {
  added: Set<string>;
  whole: boolean;
}

/** A scores file as this process last read it. */
interface StoredFile {
  /** The key it was asked for under, or its header's. */
  key: ScoringKey;
  scores: Map<string, CandidateScore>;
  /** The file read: its inode (0: no file) and the bytes of complete lines read. */
  inode: number;
  read: number;
}

/** A run of this process writing one key's file: it holds the file's lock. */
interface Run {
  lock: FileLock;
  writer: ScoresWriter;
  /** The embeddings sidecar beside the scores file, written under the same lock. */
  embeddings: EmbeddingsSink;
  header: ScoresHeader;
}

/**
 * Several editor windows (language-server processes) may share one storage folder. Each reads every
 * scores file, and reads again what changed on disk (refresh: lines another window appended, or a file a
 * Clear Scores replaced); only a process holding a file's lock (lock.ts) writes to it. A scoring run holds
 * the lock of its key's file from start to end, so no record is computed by two windows at once; Clear
 * Scores takes the locks of the files it rewrites, and refuses while another window scores into one.
 */
export class ScoreBook {
  private readonly scoresDir: string;
  private readonly anchorsDir: string;
  /** Files read, by key name: those of the keys asked for, and once any stale score was looked for, all of them. */
  private readonly files = new Map<string, StoredFile>();
  private othersLoaded = false;
  /**
   * Files that could not be read (damaged by an earlier session), with the inode and size they had:
   * their scores are simply not shown, and they are read again only once they change.
   */
  private readonly unreadable = new Map<string, string>();
  private readonly runs = new Map<string, Run>();
  private readonly anchorSets = new Map<string, AnchorSet>();

  constructor(readonly storagePath: string) {
    this.scoresDir = join(storagePath, 'scores');
    this.anchorsDir = join(storagePath, 'anchors');
    mkdirSync(this.scoresDir, { recursive: true });
    mkdirSync(this.anchorsDir, { recursive: true });
  }

  /** The folder of the scores files: watched for other windows' writes. */
  get folder(): string {
    return this.scoresDir;
  }

  private pathOf(name: string): string {
    return join(this.scoresDir, `${name}.jsonl`);
  }

  private fileOf(key: ScoringKey): StoredFile {
    const name = keyName(key);
    let file = this.files.get(name);
    if (!file) {
      file = { key, scores: new Map(), inode: 0, read: 0 };
      this.files.set(name, file);
      this.sync(name, file);
    }
    return file;
  }

  /** Current scores of `key`, as last read from its file. */
  scoresOf(key: ScoringKey): Map<string, CandidateScore> {
    return this.fileOf(key).scores;
  }

  /**
   * Starts writing `key`'s scores: takes the lock of its file and brings its scores up to date, so that the
   * caller sees every record scored so far (by any window). Returns the live process holding the lock instead
   * when another window scores with the same key.
   */
  startRun(key: ScoringKey): true | LockOwner {
    const name = keyName(key);
    if (this.runs.has(name)) return true;
    const path = this.pathOf(name);
    const lock = FileLock.tryAcquire(path);
    if (!(lock instanceof FileLock)) return lock;
    try {
      const header = newHeader(key);
      const file = this.fileOf(key);
      this.sync(name, file); // what other windows appended meanwhile, read incrementally
      // The one-record rescore after each edit starts a run: a file read to its last byte is appended to as it is,
      // not read whole again (about 0.8 s for 50,000 records); any other file is read and checked whole.
      const { writer, embeddings } = runWriters(path, header, this.readToTheEnd(path, file) ? file : undefined);
      this.runs.set(name, { lock, writer, embeddings, header });
      file.scores = writer.existing; // the writer adds each record it appends
      this.sync(name, file);
      return true;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  /** Whether `file` holds everything on disk under `path`: the same file, its complete lines all read, no line cut short. */
  private readToTheEnd(path: string, file: StoredFile): boolean {
    try {
      const stat = statSync(path);
      return file.inode !== 0 && stat.ino === file.inode && stat.size === file.read;
    } catch {
      return false;
    }
  }

  /** Appends a score to `key`'s file: only within a run (startRun). */
  append(key: ScoringKey, score: CandidateScore): void {
    const run = this.runs.get(keyName(key));
    if (!run) throw new Error(`internal: no scoring run holds the scores file of ${keyName(key)}`);
    run.embeddings.append(score.id, score.embedding);
    run.writer.append(score);
  }

  endRun(key: ScoringKey): void {
    const name = keyName(key);
    const run = this.runs.get(name);
    if (!run) return;
    this.runs.delete(name);
    run.writer.close();
    run.embeddings.close();
    run.lock.release();
  }

  /**
   * Reads again every scores file that changed on disk since it was read: records another window appended,
   * files a Clear Scores rewrote or removed, files of keys first used elsewhere. Says which records got a
   * score, or `whole` when scores may also have gone (a file was replaced or removed).
   */
  refresh(): Changes {
    const changes: Changes = { added: new Set(), whole: false };
    for (const [name, file] of this.files) this.sync(name, file, changes);
    if (this.othersLoaded && this.loadOthers()) changes.whole = true;
    return changes;
  }

  /** Brings `file` up to date with the disk, noting what changed in `changes`. */
  private sync(name: string, file: StoredFile, changes: Changes = { added: new Set(), whole: false }): void {
    const path = this.pathOf(name);
    let stat: Stats;
    try {
      stat = statSync(path);
    } catch {
      // No file: not written yet (a run writes it with its first record), or cleared to nothing.
      if (this.runs.has(name) || (file.inode === 0 && file.scores.size === 0)) return;
      changes.whole ||= file.scores.size > 0;
      Object.assign(file, { scores: new Map(), inode: 0, read: 0 });
      return;
    }
    if (stat.ino === file.inode && stat.size === file.read) return;
    try {
      if (stat.ino === file.inode && stat.size > file.read) {
        // Lines appended: by another window, or this process's own (already in the map).
        const appended = readAppendedScores(path, file.read);
        for (const [id, score] of appended.scores) {
          if (!file.scores.has(id)) changes.added.add(id);
          file.scores.set(id, score);
        }
        file.read = appended.completeLength;
        return;
      }
      // Another file under the name (a Clear Scores rewrote it), or cut shorter: read whole.
      const content = readScores(path);
      const before = new Set(file.scores.keys());
      const scores = this.runs.get(name)?.writer.existing ?? new Map<string, CandidateScore>();
      scores.clear();
      for (const [id, score] of content.scores) {
        scores.set(id, score);
        if (!before.delete(id)) changes.added.add(id);
      }
      changes.whole ||= before.size > 0; // some scores are gone
      Object.assign(file, { scores, inode: stat.ino, read: content.completeLength });
    } catch {
      // Half-written by another window at this very moment, or damaged: read again at the next change.
    }
  }

  /** The scores file of `key` (selection cards name it). */
  scoresPathOf(key: ScoringKey): string {
    return this.pathOf(keyName(key));
  }

  /**
   * The stored embeddings of `key`'s records that have a current score, by record id (none for a backend
   * without hidden states). A record whose score was cleared has no embedding here, even where its sidecar
   * entry outlived the clear (a sidecar that could not be rewritten).
   */
  embeddingsOf(key: ScoringKey): Map<string, Float32Array> | undefined {
    const vectors = readEmbeddings(embeddingsPathFor(this.scoresPathOf(key)))?.vectors;
    if (!vectors) return undefined;
    const scores = this.scoresOf(key);
    for (const id of vectors.keys()) if (!scores.has(id)) vectors.delete(id);
    return vectors;
  }

  /** The record's score under `key`, or else under any other key (stale). */
  find(id: string, key: ScoringKey | null): FoundScore | undefined {
    const current = key ? keyName(key) : '';
    if (key) {
      const score = this.scoresOf(key).get(id);
      if (score) return { score, key, stale: false };
    }
    this.loadOthersOnce();
    for (const [name, file] of this.files) {
      if (name === current) continue;
      const score = file.scores.get(id);
      if (score) return { score, key: file.key, stale: true };
    }
    return undefined;
  }

  /** The first time scores of other keys are needed (stale scores, a clear): every scores file is read. */
  private loadOthersOnce(): void {
    if (this.othersLoaded) return;
    this.othersLoaded = true;
    this.loadOthers();
  }

  /** Reads the scores files not read yet; whether any held scores. */
  private loadOthers(): boolean {
    let found = false;
    for (const file of readdirSync(this.scoresDir).filter((f) => f.endsWith('.jsonl'))) {
      const name = file.slice(0, -'.jsonl'.length);
      if (this.files.has(name)) continue;
      const path = this.pathOf(name);
      let stat: Stats;
      try {
        stat = statSync(path);
      } catch {
        continue; // removed meanwhile
      }
      const version = `${stat.ino}:${stat.size}`;
      if (this.unreadable.get(name) === version) continue;
      try {
        const content = readScores(path);
        this.files.set(name, { key: content.header, scores: content.scores, inode: stat.ino, read: content.completeLength });
        this.unreadable.delete(name);
        found ||= content.scores.size > 0;
      } catch {
        this.unreadable.set(name, version);
      }
    }
    return found;
  }

  /**
   * Removes the given records from every scores file, and their embeddings from its sidecar; returns how many
   * scores were removed. Each file is rewritten whole under its lock and replaces the old one in one rename,
   * so another window reading it sees the old file or the new one. Refuses while another window scores into
   * a file that would change.
   */
  clear(ids: ReadonlySet<string>): number {
    this.refresh();
    this.loadOthersOnce();
    const targets = [...this.files].filter(([, file]) => [...file.scores.keys()].some((id) => ids.has(id)));
    // Every lock first: a clear happens in all the files it touches, or in none.
    const locks: FileLock[] = [];
    for (const [name] of targets) {
      if (this.runs.has(name)) continue; // this window's own run: its file is rewritten under the run's lock
      const lock = FileLock.tryAcquire(this.pathOf(name));
      if (lock instanceof FileLock) {
        locks.push(lock);
        continue;
      }
      for (const taken of locks) taken.release();
      throw new NuggetsError(
        `Another VS Code window (process ${lock.pid} on ${lock.host}) is scoring into the stored scores of these records; nothing was cleared.`,
        'Cancel that run (or let it finish), then clear again.',
      );
    }
    // Then every rewrite, into temporary files beside the old ones; then all of them in place, or none.
    const rewrites: Rewrite[] = [];
    try {
      for (const [name, file] of targets) rewrites.push(this.prepareRewrite(name, file, ids));
      this.commitRewrites(rewrites);
    } finally {
      for (const rewrite of rewrites) for (const step of rewrite.steps) if (step.temporary) rmSync(step.temporary, { force: true });
      for (const lock of locks) lock.release();
    }
    return rewrites.reduce((sum, r) => sum + r.removed, 0);
  }

  /**
   * Writes a scores file's rewrite without the given records, and its embeddings sidecar's without their
   * vectors, into temporary files (nothing is replaced yet). A rewrite that fails (a full disk) leaves no
   * temporary file behind. The scores go first: a record with a score keeps its embedding.
   */
  private prepareRewrite(name: string, file: StoredFile, ids: ReadonlySet<string>): Rewrite {
    const path = this.pathOf(name);
    const sidecar = embeddingsPathFor(path);
    const content = existsSync(path) ? readScores(path) : undefined;
    const header = this.runs.get(name)?.header ?? content?.header ?? newHeader(file.key);
    const stored = content?.scores ?? file.scores;
    const rest = [...stored.values()].filter((s) => !ids.has(s.id));
    const rewrite: Rewrite = { name, file, removed: stored.size - rest.length, steps: [] };
    if (rest.length === 0) {
      // A sidecar only ever accompanies a scores file.
      rewrite.steps.push({ path, temporary: null }, { path: sidecar, temporary: null });
      return rewrite;
    }
    const temporary = `${path}.clearing-${process.pid}`;
    try {
      const writer = ScoresWriter.open(temporary, header);
      for (const s of rest) writer.append(s);
      writer.close();
      rewrite.steps.push({ path, temporary });
      const embeddings = embeddingsWithout(sidecar, ids);
      if (embeddings !== undefined) {
        const sidecarTemporary = `${sidecar}.clearing-${process.pid}`;
        rewrite.steps.push({ path: sidecar, temporary: embeddings === null ? null : sidecarTemporary });
        if (embeddings) writeFileSync(sidecarTemporary, embeddings);
      }
    } catch (err) {
      rmSync(temporary, { force: true });
      rmSync(`${sidecar}.clearing-${process.pid}`, { force: true });
      throw err;
    }
    return rewrite;
  }

  /**
   * Puts every prepared rewrite in place, each file replaced in one rename (or removed). The old files are kept
   * as hard links until all are in place: a step that fails puts back every file replaced before it.
   */
  private commitRewrites(rewrites: readonly Rewrite[]): void {
    const undo: (() => void)[] = [];
    const backups: string[] = [];
    // This window's own runs go on into the new files (after a failure, into the old ones).
    for (const { name } of rewrites) {
      const run = this.runs.get(name);
      run?.writer.close();
      run?.embeddings.close();
    }
    try {
      for (const rewrite of rewrites) {
        for (const step of rewrite.steps) {
          const backup = `${step.path}.before-clear-${process.pid}`;
          const existed = existsSync(step.path);
          if (existed) {
            keepCopy(step.path, backup);
            backups.push(backup);
          }
          if (step.temporary === null) rmSync(step.path, { force: true });
          else if (step.temporary !== undefined) {
            renameSync(step.temporary, step.path);
            step.temporary = undefined;
          }
          undo.push(() => (existed ? renameSync(backup, step.path) : rmSync(step.path, { force: true })));
        }
      }
    } catch (err) {
      for (const step of undo.reverse()) {
        try {
          step();
        } catch {
          // Put back what can be: the backup stays beside it, named .before-clear-.
        }
      }
      throw err;
    } finally {
      for (const backup of backups) rmSync(backup, { force: true });
      for (const { name, file } of rewrites) {
        const run = this.runs.get(name);
        if (run) {
          Object.assign(run, runWriters(this.pathOf(name), run.header));
          file.scores = run.writer.existing;
        }
        file.inode = -1; // read again whole
        this.sync(name, file);
      }
    }
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
    for (const run of this.runs.values()) {
      run.writer.close();
      run.embeddings.close();
      run.lock.release();
    }
    this.runs.clear();
  }
}

/** One file a Clear Scores replaces: with `temporary` (renamed over it), or removed (null); undefined once in place. */
interface RewriteStep {
  path: string;
  temporary: string | null | undefined;
}

/** A scores file's prepared rewrite: the files it replaces, and how many scores it drops. */
interface Rewrite {
  name: string;
  file: StoredFile;
  removed: number;
  steps: RewriteStep[];
}

/** The old file kept under `backup` while it is replaced: a hard link, or a copy where links are not possible. */
function keepCopy(path: string, backup: string): void {
  rmSync(backup, { force: true });
  try {
    linkSync(path, backup);
  } catch {
    copyFileSync(path, backup);
  }
}
