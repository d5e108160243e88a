/**
 * An open document as the server sees it: parsed into records when it is a dataset in any format the
 * command line reads (Alpaca, messages, ShareGPT, prompt/completion, Dolly; other JSON is left alone), with
 * each record's LSP range and line span for decorations and hovers; or, when it reads as a dataset but does
 * not parse as one (a missing comma, a record without its output), what is wrong and where, for the editor
 * to name and go to (protocol datasetProblemNotification).
 *
 * Records the engine cannot score (a conversation whose roles do not alternate, say), which the command line
 * lists and leaves out, stay in the document's records here, in their place, as problem records marked
 * 'unscorable' (with an id no score has): an editor shows them where they are, and never scores or selects them.
 */
import { hash } from 'node:crypto';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { Range } from 'vscode-languageserver-protocol';
import { parseDataset, type DatasetRecord, type RecordFormat, type RejectedRecord } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import { findProblems, type ProblemReason, type RecordProblem } from '../records/problems';
import type { DatasetProblem } from '../protocol';
import { cannotRender, type ChatTemplate } from '../scoring/chat-template';
import { turnsOf } from '../scoring/chat-render';

export interface ParsedDocument {
  uri: string;
  version: number;
  records: DatasetRecord[];
  ranges: Range[];
  /** Record indexes by content id (duplicated records share an id). */
  byId: Map<string, number[]>;
  /** The problem records (server/records/problems.ts), by index: never selected, marked on their badge and hover. */
  problems: Map<number, ProblemReason>;
  /** Whether any record is a conversation (then the chat template scores the file, as on the command line). */
  conversations: boolean;
  /** The problems the parse found, before any chat template's (markUnrenderable). */
  parseProblems: ReadonlyMap<number, ProblemReason>;
  /** The key of the chat template `problems` were last checked against ('' for none). */
  renderedWith: string;
}

/** How much of a file's start `mayBeDataset` looks at. */
export const HEAD_LENGTH = 65536;

/**
 * Cheap refusal of other JSON before a full parse, from the text's first HEAD_LENGTH characters: a dataset
 * is an array or lines of objects that name a field of one of the record formats early ("instruction" for
 * Alpaca and Dolly, "messages", "conversations", "prompt"). JSON Lines holds a whole record on its first
 * line, so there the field must be on it: a pretty-printed JSON object (a settings file with a "prompt") is
 * other JSON, not a JSON Lines file broken on its first line.
 */
export function mayBeDataset(head: string): boolean {
  const start = head.trimStart().slice(0, HEAD_LENGTH);
  if (start.startsWith('[')) return RECORD_FIELD.test(start);
  if (!start.startsWith('{')) return false;
  const newline = start.indexOf('\n');
  return RECORD_FIELD.test(newline === -1 ? start : start.slice(0, newline));
}

/** A field that one of the record formats names: "instruction" (Alpaca, Dolly), "messages", "conversations", "prompt". */
const RECORD_FIELD = /"(instruction|messages|conversations|prompt)"\s*:/;

/**
 * Reads the document as a dataset (in `format`, or the format its first record is written in): its records, or
 * the problem that keeps a document that reads as one from parsing (mid-edit); undefined when it does not read
 * as a dataset at all (other JSON is none of Nuggets' business). One parse gives either.
 */
export function readDocument(document: TextDocument, format?: RecordFormat): { parsed: ParsedDocument } | { problem: DatasetProblem } | undefined {
  const text = document.getText();
  if (!mayBeDataset(text.slice(0, HEAD_LENGTH))) return undefined;
  let read: ReturnType<typeof parseDataset>;
  try {
    read = parseDataset(text, document.uri, format);
  } catch (err) {
    if (!(err instanceof NuggetsError)) throw err;
    return { problem: problemOf(err, document) };
  }
  const { records, unscorable } = inPlace(read.records, read.rejected, text);
  const ranges = records.map((r) => ({ start: document.positionAt(r.start), end: document.positionAt(r.end) }));
  return { parsed: parsedOf(document.uri, document.version, records, ranges, unscorable) };
}

/**
 * A parsed document of `records` in file order (those that cannot be scored in their place, `unscorable` saying
 * why) with their ranges: the ids' records, and the problem records (problems.ts, and the unscorable ones).
 */
function parsedOf(uri: string, version: number, records: DatasetRecord[], ranges: Range[], unscorable: ReadonlyMap<number, string>): ParsedDocument {
  const byId = new Map<string, number[]>();
  for (const r of records) {
    const list = byId.get(r.id);
    if (list) list.push(r.index);
    else byId.set(r.id, [r.index]);
  }
  const problems = new Map<number, ProblemReason>(findProblems(records.filter((r) => !unscorable.has(r.index))).map((p) => [p.index, p.reason]));
  for (const [index, why] of unscorable) problems.set(index, { unscorable: why });
  return { uri, version, records, ranges, byId, problems, conversations: records.some((r) => r.turns), parseProblems: new Map(problems), renderedWith: '' };
}

/**
 * Marks the records `template` cannot render (it raises on a system role, say) as unscorable problem records, as
 * the command line leaves them out (chat-template.ts cannotRender, the same check); none under the paper's template.
 * Checked once per document and template.
 */
export function markUnrenderable(parsed: ParsedDocument, template: ChatTemplate | undefined): void {
  const key = template?.key ?? '';
  if (parsed.renderedWith === key) return;
  const problems = new Map(parsed.parseProblems);
  if (template) {
    for (const r of parsed.records) {
      if (isUnscorableIn(problems, r.index)) continue;
      const why = cannotRender(turnsOf(r), template);
      if (why !== undefined) problems.set(r.index, { unscorable: why });
    }
  }
  parsed.problems = problems;
  parsed.renderedWith = key;
}

/**
 * The scored records and the rejected ones in file order, numbered again from 0: a rejected record becomes an
 * empty record in its place (with its turns, when they could be read, to show) whose id ("unscorable:" and a
 * hash of its text) no score has.
 */
function inPlace(accepted: DatasetRecord[], rejected: readonly RejectedRecord[], text: string): { records: DatasetRecord[]; unscorable: Map<number, string> } {
  const unscorable = new Map<number, string>();
  if (rejected.length === 0) return { records: accepted, unscorable };
  const placed = rejected.map((r): { record: DatasetRecord; why?: string } => {
    const start = r.start ?? 0;
    const end = r.end ?? start;
    const id = `unscorable:${hash('sha256', text.slice(start, end), 'hex').slice(0, 16)}`;
    return { record: { instruction: '', input: '', output: '', ...(r.turns ? { turns: r.turns } : {}), index: 0, id, start, end, original: {} }, why: r.why };
  });
  const all = [...accepted.map((record) => ({ record, why: undefined as string | undefined })), ...placed].sort((a, b) => a.record.start - b.record.start);
  const records = all.map(({ record, why }, index) => {
    if (why !== undefined) unscorable.set(index, why);
    return { ...record, index };
  });
  return { records, unscorable };
}

/** The unscorable problem records, in order: never scored, never selected, left out of the counts of records to score. */
export function unscorableProblems(parsed: ParsedDocument): RecordProblem[] {
  return [...parsed.problems].filter(([index]) => isUnscorable(parsed, index)).map(([index, reason]) => ({ index, reason })).sort((a, b) => a.index - b.index);
}

/** How many records can be scored: the `total` that scores, runs, the dashboard and selection count against. */
export function scorableCount(parsed: ParsedDocument): number {
  return parsed.records.length - unscorableProblems(parsed).length;
}

/** The records that can be scored: all but the unscorable problem records. */
export function scorableRecords(parsed: ParsedDocument): DatasetRecord[] {
  return parsed.records.filter((r) => !isUnscorable(parsed, r.index));
}

export function isUnscorable(parsed: ParsedDocument, index: number): boolean {
  return isUnscorableIn(parsed.problems, index);
}

function isUnscorableIn(problems: ReadonlyMap<number, ProblemReason>, index: number): boolean {
  const problem = problems.get(index);
  return typeof problem === 'object' && 'unscorable' in problem;
}

/** The document's records; undefined when it is not a dataset (or not one at the moment, mid-edit). */
export function parseDocument(document: TextDocument, format?: RecordFormat): ParsedDocument | undefined {
  const read = readDocument(document, format);
  return read && 'parsed' in read ? read.parsed : undefined;
}

/**
 * The dataset parser's messages start with where: "<source>:<line>:<column>: ", "<source>:<line>: " or
 * "<source>:<line> (instance k): " (1-based), or "<source>: " for the whole file.
 */
function problemOf(err: NuggetsError, document: TextDocument): DatasetProblem {
  const prefix = `${document.uri}:`;
  const rest = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  const at = /^(\d+)(?::(\d+))?(?: \([^)]*\))?: /.exec(rest);
  const line = at ? Math.max(0, Number(at[1]) - 1) : 0;
  const character = at?.[2] !== undefined ? Math.max(0, Number(at[2]) - 1) : 0;
  const start = document.positionAt(document.offsetAt({ line, character }));
  return {
    message: (at ? rest.slice(at[0].length) : rest.replace(/^ /, '')).trim(),
    range: { start, end: start },
    ...(err.hint ? { hint: err.hint } : {}),
  };
}

/** The record whose lines include `line` (a record's first to last line), if any. */
export function recordAtLine(parsed: ParsedDocument, line: number): number | undefined {
  let lo = 0;
  let hi = parsed.ranges.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (parsed.ranges[mid]!.start.line <= line) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found < 0) return undefined;
  // Records sharing a line (a one-line array): the first one on that line wins.
  while (found > 0 && parsed.ranges[found - 1]!.end.line >= line && parsed.ranges[found - 1]!.start.line === parsed.ranges[found]!.start.line) found--;
  return parsed.ranges[found]!.end.line >= line ? found : undefined;
}

/**
 * A Parquet file's rows read whole (parquet-tables.ts readWhole) as a parsed document: each row's range is its row
 * number as a line, the rows that cannot be scored are problem records in their place, as in a JSON file.
 */
export function parsedRows(uri: string, records: DatasetRecord[], unscorable: ReadonlyMap<number, string>): ParsedDocument {
  const ranges = records.map((r) => ({ start: { line: r.index, character: 0 }, end: { line: r.index, character: 0 } }));
  return parsedOf(uri, 0, records, ranges, unscorable);
}
