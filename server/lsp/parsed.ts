/**
 * An open document as the server sees it: parsed into Alpaca records when it is one (other JSON is
 * left alone), with each record's LSP range and line span for decorations and hovers; or, when it reads
 * as an Alpaca dataset but does not parse as one (a missing comma, a record without its output), what is
 * wrong and where, for the editor to name and go to (protocol datasetProblemNotification).
 */
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { Range } from 'vscode-languageserver-protocol';
import { parseDataset, type DatasetRecord } from '../dataset';
import { NuggetsError } from '../errors';
import { findProblems, type ProblemReason } from '../problems';
import type { DatasetProblem } from '../protocol';

export interface ParsedDocument {
  uri: string;
  version: number;
  records: DatasetRecord[];
  ranges: Range[];
  /** Record indexes by content id (duplicated records share an id). */
  byId: Map<string, number[]>;
  /** The problem records (server/problems.ts), by index: never selected, marked on their badge and hover. */
  problems: Map<number, ProblemReason>;
}

/** How much of a file's start `mayBeAlpaca` looks at. */
export const HEAD_LENGTH = 65536;

/**
 * Cheap refusal of other JSON before a full parse, from the text's first HEAD_LENGTH characters: an
 * Alpaca dataset is an array or lines of objects that name their instruction early.
 */
export function mayBeAlpaca(head: string): boolean {
  const start = head.trimStart();
  return (start.startsWith('[') || start.startsWith('{')) && /"instruction"\s*:/.test(start.slice(0, HEAD_LENGTH));
}

/**
 * Reads the document as an Alpaca dataset: its records, or the problem that keeps a document that reads as one
 * from parsing (mid-edit); undefined when it does not read as an Alpaca dataset at all (other JSON is none of
 * Nuggets' business). One parse gives either.
 */
export function readDocument(document: TextDocument): { parsed: ParsedDocument } | { problem: DatasetProblem } | undefined {
  const text = document.getText();
  if (!mayBeAlpaca(text.slice(0, HEAD_LENGTH))) return undefined;
  let records: DatasetRecord[];
  try {
    records = parseDataset(text, document.uri).records;
  } catch (err) {
    if (!(err instanceof NuggetsError)) throw err;
    return { problem: problemOf(err, document) };
  }
  // Conversations (Alpaca records with a system prompt or history) are scored from the command line only, for now.
  if (records.some((r) => r.turns)) return undefined;
  const ranges = records.map((r) => ({ start: document.positionAt(r.start), end: document.positionAt(r.end) }));
  const byId = new Map<string, number[]>();
  for (const r of records) {
    const list = byId.get(r.id);
    if (list) list.push(r.index);
    else byId.set(r.id, [r.index]);
  }
  const problems = new Map(findProblems(records).map((p) => [p.index, p.reason]));
  return { parsed: { uri: document.uri, version: document.version, records, ranges, byId, problems } };
}

/** The document's records; undefined when it is not an Alpaca dataset (or not one at the moment, mid-edit). */
export function parseDocument(document: TextDocument): ParsedDocument | undefined {
  const read = readDocument(document);
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
