/**
 * An open document as the server sees it: parsed into Alpaca records when it is one (other JSON is
 * left alone), with each record's LSP range and line span for decorations and hovers.
 */
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { Range } from 'vscode-languageserver-protocol';
import { parseDataset, type DatasetRecord } from '../dataset';

export interface ParsedDocument {
  uri: string;
  version: number;
  records: DatasetRecord[];
  ranges: Range[];
  /** Record indexes by content id (duplicated records share an id). */
  byId: Map<string, number[]>;
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

/** Parses the document; undefined when it is not an Alpaca dataset (or not one at the moment, mid-edit). */
export function parseDocument(document: TextDocument): ParsedDocument | undefined {
  const text = document.getText();
  if (!mayBeAlpaca(text.slice(0, HEAD_LENGTH))) return undefined;
  let records: DatasetRecord[];
  try {
    records = parseDataset(text, document.uri).records;
  } catch {
    return undefined;
  }
  const ranges = records.map((r) => ({ start: document.positionAt(r.start), end: document.positionAt(r.end) }));
  const byId = new Map<string, number[]>();
  for (const r of records) {
    const list = byId.get(r.id);
    if (list) list.push(r.index);
    else byId.set(r.id, [r.index]);
  }
  return { uri: document.uri, version: document.version, records, ranges, byId };
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
