/**
 * The scores file: JSON Lines, a header line that records what the scores depend on (model, anchor
 * set, template, maxAnchorTokens, separator, early stop, scoring path), then one line per scored
 * record, keyed by the record's content hash. Lines are appended as each record finishes, so a killed
 * run keeps every completed record; a rerun skips them. A scores file computed under another key is
 * refused, never mixed in.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { fileError, NuggetsError, outOfSpace } from '../io/errors';
import type { CandidateScore, ScoringPath } from './score';
import { PASS_SIGNALS, type SignalValues } from '../signals';

/** Everything a score depends on besides the record itself. */
export interface ScoringKey {
  model: { name: string; fingerprint: string };
  anchors: { hash: string; count: number };
  template: string;
  maxAnchorTokens: number;
  separator: string;
  /** Scores stopped early at this threshold (records carry bounds), or null for full scores. */
  earlyStopAt?: number | null;
  /**
   * How a local model computed the scores: the cached path (the candidate prefix's key/values reused
   * for every anchor) or the naive one (`--reference`: one full sequence per pair). Not comparable on
   * int8 graphs (up to 3.6 nats apart), so part of the key. Absent: the cached path. Headers written
   * before the path was recorded have none; they hold cached-path scores unless --reference was used,
   * which nothing in them tells, so cached, the default and by far the common case, is how they read.
   * A serving engine has one path only: its scores carry none, and its fingerprint never equals a
   * local model's, so they are never compared with a local path. The editor scores on the default
   * path only, so its keys carry none either (lsp/scoring-keys.ts).
   */
  scoringPath?: ScoringPath;
  /**
   * The assistant turns the signals read (--turns, ALGORITHM.md): absent for `last`, the default (and every header
   * from before the flag), `all` when every assistant turn is pooled. Scores made with either are never mixed.
   */
  turns?: 'last' | 'all';
}

export interface ScoresHeader extends ScoringKey {
  nuggets_scores: 1;
  /** Recorded for selection cards; not part of the key (the fingerprint is). */
  model: ScoringKey['model'] & { variant?: string | null };
  anchors: ScoringKey['anchors'] & { source?: string | null };
  /** Where a chat template's text came from (the key is its hash); recorded, not part of the key. */
  templateSource?: string;
  dataset: string;
  shard: string | null;
  created: string;
}

interface ScoreLine {
  index: number;
  id: string;
  /** null when the record carries a bound instead of a score. */
  golden_score: number | null;
  wins: number;
  anchors: number;
  mean_delta: number;
  /** null for anchors an early stop skipped. */
  deltas: Array<number | null>;
  truncated: boolean;
  /** "< 0.85" or ">= 0.85", with the interval the golden score lies in. */
  bound?: string;
  golden_range?: [number, number];
  /** The record is this anchor (0-based), left out of its own score. */
  self_anchor?: number;
}

/** A score line with each signal computed from the passes (server/signals) under its own name; null where undefined. */
type ScoreLineWithSignals = ScoreLine & Record<string, unknown>;

export interface ScoresContent {
  header: ScoresHeader;
  /** By record id. */
  scores: Map<string, CandidateScore>;
  /** Bytes of complete lines; anything after is a line cut short by a killed run (or one another process is writing). */
  completeLength: number;
}

/** The path a key's scores were computed on: a missing one is the cached path (ScoringKey.scoringPath). */
function pathOf(key: ScoringKey): ScoringPath {
  return key.scoringPath ?? 'cached';
}

/** `recorded`: the key is a file's header, where a missing path is an old header's. */
function describePath(key: ScoringKey, recorded: boolean): string {
  if (key.scoringPath === undefined && recorded) return "the cached path (its header predates the path's record: read as cached)";
  return key.scoringPath === 'naive' ? 'the naive path (--reference)' : 'the cached path';
}

export function sameKey(a: ScoringKey, b: ScoringKey): boolean {
  return a.model.fingerprint === b.model.fingerprint && a.anchors.hash === b.anchors.hash && a.template === b.template
    && a.maxAnchorTokens === b.maxAnchorTokens && a.separator === b.separator && (a.earlyStopAt ?? null) === (b.earlyStopAt ?? null)
    && (a.turns ?? 'last') === (b.turns ?? 'last')
    && pathOf(a) === pathOf(b);
}

export function describeKeyDifference(file: string, found: ScoringKey, expected: ScoringKey): string {
  const parts: string[] = [];
  if (found.model.fingerprint !== expected.model.fingerprint) parts.push(`model ${found.model.name} (${found.model.fingerprint}) instead of ${expected.model.name} (${expected.model.fingerprint})`);
  if (found.anchors.hash !== expected.anchors.hash) parts.push(`another anchor set (${found.anchors.count} anchors, ${found.anchors.hash})`);
  if (found.template !== expected.template) parts.push(`template ${found.template} instead of ${expected.template}`);
  if (found.maxAnchorTokens !== expected.maxAnchorTokens) parts.push(`maxAnchorTokens ${found.maxAnchorTokens}`);
  if (found.separator !== expected.separator) parts.push(`separator ${JSON.stringify(found.separator)}`);
  if ((found.earlyStopAt ?? null) !== (expected.earlyStopAt ?? null)) parts.push((found.earlyStopAt ?? null) === null ? 'full scores (no early stop)' : `early stop at ${found.earlyStopAt}`);
  if (pathOf(found) !== pathOf(expected)) parts.push(`${describePath(found, true)} instead of ${describePath(expected, false)}`);
  if ((found.turns ?? 'last') !== (expected.turns ?? 'last')) parts.push(`--turns ${found.turns ?? 'last'} instead of --turns ${expected.turns ?? 'last'}`);
  return `${file} holds scores computed with ${parts.join(', ')}.`;
}

export function readScores(path: string): ScoresContent {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw fileError(err, 'read scores file', path);
  }
  const completeLength = bytes.lastIndexOf(10) + 1; // in bytes, as the writer truncates
  const lines = bytes.toString('utf8', 0, completeLength).split('\n');
  let header: Partial<ScoresHeader> | null = null;
  try {
    header = JSON.parse(lines[0] ?? '') as Partial<ScoresHeader>;
  } catch {
    // not JSON: said below
  }
  if (!isScoresHeader(header)) throw notAScoresFile(path);
  const scores = new Map<string, CandidateScore>();
  for (let i = 1; i < lines.length; i++) addScoreLine(scores, lines[i]!, path, i + 1);
  return { header, scores, completeLength };
}

/**
 * The score lines another process appended to a scores file after its first `from` bytes (complete lines
 * only), and the length in bytes of the complete lines read so far. Errors name line numbers counted
 * from `from`; a reader that needs exact ones reads the whole file again.
 */
export function readAppendedScores(path: string, from: number): { scores: Map<string, CandidateScore>; completeLength: number } {
  let bytes: Buffer;
  try {
    const fd = openSync(path, 'r');
    try {
      bytes = Buffer.alloc(Math.max(0, fstatSync(fd).size - from));
      let read = 0;
      while (read < bytes.length) {
        const n = readSync(fd, bytes, read, bytes.length - read, from + read);
        if (n === 0) break;
        read += n;
      }
      bytes = bytes.subarray(0, read);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw fileError(err, 'read scores file', path);
  }
  const complete = bytes.lastIndexOf(10) + 1;
  const lines = bytes.toString('utf8', 0, complete).split('\n');
  const scores = new Map<string, CandidateScore>();
  lines.forEach((line, i) => addScoreLine(scores, line, path, i + 1));
  return { scores, completeLength: from + complete };
}

function addScoreLine(scores: Map<string, CandidateScore>, text: string, path: string, lineNumber: number): void {
  if (text === '') return;
  const line = readScoreLine(text, path, lineNumber);
  const bounded = line.golden_score === null && Array.isArray(line.golden_range) && typeof line.bound === 'string';
  if (typeof line.id !== 'string' || !(typeof line.golden_score === 'number' || bounded)) throw notAScoreLine(path, lineNumber);
  const score = {
    index: line.index, id: line.id, goldenScore: line.golden_score ?? 0, wins: line.wins, anchors: line.anchors,
    meanDelta: line.mean_delta, truncated: line.truncated === true,
  } as CandidateScore;
  const signals = signalsOf(line as unknown as Record<string, unknown>);
  if (signals) score.signals = signals;
  if (typeof line.self_anchor === 'number') score.selfAnchor = line.self_anchor;
  let deltas: number[] | undefined;
  Object.defineProperty(score, 'deltas', { enumerable: true, get: () => (deltas ??= line.deltas()) });
  if (bounded) {
    const [low, high] = line.golden_range!;
    const above = line.bound!.startsWith('>=');
    score.bound = { threshold: Number(line.bound!.replace(/^[<>=\s]+/, '')), above, low, high };
    score.goldenScore = above ? low : high;
  }
  scores.set(line.id, score);
}

/**
 * A score line's fields, its deltas (null for skipped anchors read as NaN) given on first call. The
 * deltas (100 numbers a line for 100 anchors) are cut out of the line before it is parsed, wherever
 * they stand in it, and parsed when something asks for them (a hover, the dashboard's anchor effects):
 * reading 50,000 records' scores to show them takes a third of the time it would otherwise.
 */
function readScoreLine(text: string, path: string, lineNumber: number): Omit<ScoreLine, 'deltas'> & { deltas: () => number[] } {
  const from = text.indexOf(DELTAS_KEY);
  const to = from < 0 ? -1 : text.indexOf(']', from);
  if (to < 0) {
    // Another layout of the same fields (a line another tool wrote, with spaces): parsed whole.
    const line = parseLine(text, path, lineNumber) as ScoreLine;
    if (!Array.isArray(line.deltas)) throw notAScoreLine(path, lineNumber);
    return { ...line, deltas: () => line.deltas.map((d) => d ?? NaN) };
  }
  const deltasText = text.slice(from + DELTAS_KEY.length - 1, to + 1);
  const line = parseLine(text.slice(0, from) + '"deltas":0' + text.slice(to + 1), path, lineNumber) as Omit<ScoreLine, 'deltas'>;
  return { ...line, deltas: () => (parseLine(deltasText, path, lineNumber) as Array<number | null>).map((d) => d ?? NaN) };
}

/** Deltas are numbers and nulls only, so their array ends at the first "]". */
const DELTAS_KEY = '"deltas":[';

function notAScoreLine(path: string, lineNumber: number): NuggetsError {
  return new NuggetsError(`${path}:${lineNumber}: not a score line (needs id, golden_score and deltas).`);
}

function parseLine(line: string, path: string, lineNumber: number): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new NuggetsError(`${path}:${lineNumber}: malformed scores line.`, 'The scores file was edited or damaged; move it aside and score again.');
  }
}

/**
 * A scores file that holds no score: empty, or a scores header alone (whole or cut short), left by a run
 * that failed before its first record. Nothing in it can be lost, so a new run replaces it whatever its key.
 */
/** The header on a scores file's first line; undefined when there is none. */
function headerOf(path: string): ScoresHeader | undefined {
  const head = Buffer.alloc(1 << 16); // a header is far shorter
  let read: number;
  try {
    const fd = openSync(path, 'r');
    try {
      read = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw fileError(err, 'read scores file', path);
  }
  const newline = head.subarray(0, read).indexOf(10);
  try {
    const header = JSON.parse(head.toString('utf8', 0, newline < 0 ? read : newline)) as Partial<ScoresHeader> | null;
    return isScoresHeader(header) ? header : undefined;
  } catch {
    return undefined;
  }
}

function isScoresHeader(header: Partial<ScoresHeader> | null): header is ScoresHeader {
  return header?.nuggets_scores === 1 && !!header.model && !!header.anchors;
}

function notAScoresFile(path: string): NuggetsError {
  return new NuggetsError(`${path}: not a Nuggets scores file (its first line is not a scores header).`, 'Scores files are written by `nuggets score`.');
}

function holdsNoScore(path: string): boolean {
  const head = Buffer.alloc(1 << 16); // a header is far shorter: a longer file holds scores
  let size: number;
  let read: number;
  try {
    const fd = openSync(path, 'r');
    try {
      size = fstatSync(fd).size;
      read = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false; // readScores says what is wrong with it
  }
  if (read < size) return false;
  const text = head.toString('utf8', 0, read);
  const firstBreak = text.indexOf('\n');
  return text === '' || (text.startsWith('{"nuggets_scores":1') && (firstBreak === -1 || text.slice(firstBreak + 1).trim() === ''));
}

/**
 * Appends score lines to a scores file, creating it with `header` or resuming one with the same key.
 * The header is written together with the first record, so that a run that fails before scoring
 * anything (a bad option, a full disk) leaves no file that a corrected rerun would have to refuse.
 * A write that fails is cut back to the last complete line.
 */
export class ScoresWriter {
  private pendingHeader: string | undefined;
  /** Opened at the first write. */
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    readonly existing: Map<string, CandidateScore>,
    /** Bytes of complete lines in the file. */
    private length: number,
    header?: ScoresHeader,
  ) {
    this.pendingHeader = header ? JSON.stringify(header) + '\n' : undefined;
  }

  static open(path: string, header: ScoresHeader): ScoresWriter {
    const exists = existsSync(path);
    if (exists && !holdsNoScore(path)) {
      const content = readScores(path);
      if (!sameKey(content.header, header)) {
        throw new NuggetsError(describeKeyDifference(path, content.header, header), 'Scores are never mixed: pass another --out, or move the file aside to start again.');
      }
      try {
        const fd = openSync(path, 'r+');
        ftruncateSync(fd, content.completeLength); // drop a line cut short by a killed run
        closeSync(fd);
        return new ScoresWriter(path, content.scores, content.completeLength);
      } catch (err) {
        throw fileError(err, 'write scores file', path);
      }
    }
    try {
      if (exists) rmSync(path);
    } catch (err) {
      throw fileError(err, 'write scores file', path);
    }
    return new ScoresWriter(path, new Map(), 0, header);
  }

  /**
   * Appends to `path` as it is, without reading it whole: its first `length` bytes are complete lines holding
   * `existing`, as read by a caller that holds the file's lock (the editor's score book). Only its header is
   * read, to refuse mixing scores as `open` does.
   */
  static resume(path: string, header: ScoresHeader, existing: Map<string, CandidateScore>, length: number): ScoresWriter {
    const found = headerOf(path);
    if (!found) throw notAScoresFile(path);
    if (!sameKey(found, header)) {
      throw new NuggetsError(describeKeyDifference(path, found, header), 'Scores are never mixed: pass another --out, or move the file aside to start again.');
    }
    return new ScoresWriter(path, existing, length);
  }

  append(score: CandidateScore): void {
    const line: ScoreLineWithSignals = {
      index: score.index, id: score.id, golden_score: score.bound ? null : score.goldenScore, wins: score.wins, anchors: score.anchors,
      mean_delta: round(score.meanDelta), deltas: score.deltas.map((d) => (Number.isNaN(d) ? null : round(d))), truncated: score.truncated,
      ...(score.bound ? { bound: `${score.bound.above ? '>=' : '<'} ${score.bound.threshold}`, golden_range: [score.bound.low, score.bound.high] as [number, number] } : {}),
      ...(score.selfAnchor !== undefined ? { self_anchor: score.selfAnchor } : {}),
    };
    for (const signal of PASS_SIGNALS) {
      const value = score.signals?.[signal.name];
      if (value !== undefined) line[signal.name] = value === null || !Number.isFinite(value) ? null : significant(value);
    }
    this.write((this.pendingHeader ?? '') + JSON.stringify(line) + '\n');
    this.pendingHeader = undefined;
    // The embedding went to its sidecar: 50,000 of them would hold 115 MB in memory for nothing.
    const { embedding: _sidecar, ...kept } = score;
    this.existing.set(score.id, kept);
  }

  private write(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    let written = 0;
    try {
      this.fd ??= openSync(this.path, 'a');
      while (written < bytes.length) written += writeSync(this.fd, bytes, written);
    } catch (err) {
      // Whatever part of the line reached the disk is cut off again; a file that never got its header is removed.
      try {
        if (this.fd !== undefined && this.length > 0) ftruncateSync(this.fd, this.length);
        else if (this.fd !== undefined) {
          this.close();
          rmSync(this.path, { force: true }); // created by this write
        }
      } catch {
        // The next run drops a line cut short in any case.
      }
      const reason = outOfSpace(err);
      if (reason) {
        throw new NuggetsError(
          `${reason} while writing ${this.path}; ${this.existing.size} records are safe${this.existing.size > 0 ? ' in it' : ''}.`,
          'Free some space and run the same command again: it resumes after the records already written.',
        );
      }
      throw fileError(err, 'write scores file', this.path);
    }
    this.length += bytes.length;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The pass signals a line holds, or undefined for a line from before them. */
function signalsOf(line: Record<string, unknown>): SignalValues | undefined {
  let signals: SignalValues | undefined;
  for (const signal of PASS_SIGNALS) {
    const value = line[signal.name];
    if (typeof value === 'number' || value === null) (signals ??= {})[signal.name] = value;
  }
  return signals;
}

/** Signals are kept to 7 significant digits, well inside the 1e-4 relative they are checked to. */
function significant(x: number): number {
  return Number(x.toPrecision(7));
}

/** Deltas are kept to 1e-4 nats: far below any difference that changes a win. */
function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
