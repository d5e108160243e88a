/**
 * Dataset text -> records. Reads Alpaca JSON arrays and JSON Lines, keeps each record's character
 * range in the source text (for editor decorations and messages) and a content hash (its identity
 * in the scores store), and rejects malformed input with the file, line, record and field at fault.
 */
import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jsonc from 'jsonc-parser';
import { NuggetsError, fileError, lineAndColumn } from './errors';

/** The three fields the template uses, trimmed of surrounding whitespace. */
export interface Example {
  instruction: string;
  input: string;
  output: string;
}

export interface DatasetRecord extends Example {
  /** Position among the dataset's records, 0-based. */
  index: number;
  /** Content hash of the trimmed fields: the record's identity in the scores store. */
  id: string;
  /** Character range of the record's text in the source ([start, end)). */
  start: number;
  end: number;
  /** The record exactly as it was parsed, written back unchanged by `select`. */
  original: Record<string, unknown>;
}

export type DatasetFormat = 'json' | 'jsonl';

export interface Dataset {
  source: string;
  format: DatasetFormat;
  records: DatasetRecord[];
}

export function recordId(example: Example): string {
  return hash('sha256', `${example.instruction}\u0000${example.input}\u0000${example.output}`, 'hex').slice(0, 16);
}

export function readDataset(path: string): Dataset {
  return parseDataset(readUtf8(path, 'dataset'), path);
}

/** The text of a UTF-8 file; `kind` names it in messages ("dataset", "anchors file"). */
export function readUtf8(path: string, kind: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw fileError(err, `read ${kind}`, path);
  }
  assertUtf8(bytes, path);
  return bytes.toString('utf8');
}

/** Datasets are UTF-8 (with or without a byte order mark); a UTF-16 or UTF-32 file is named as such instead of failing as malformed JSON. */
function assertUtf8(bytes: Buffer, path: string): void {
  const encoding = bytes[0] === 0xff && bytes[1] === 0xfe ? (bytes[2] === 0 && bytes[3] === 0 ? 'UTF-32 (little-endian)' : 'UTF-16 (little-endian)')
    : bytes[0] === 0xfe && bytes[1] === 0xff ? 'UTF-16 (big-endian)'
      : bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 0xfe && bytes[3] === 0xff ? 'UTF-32 (big-endian)'
        // Without a byte order mark: JSON text starts with an ASCII character, which UTF-16 pairs with a zero byte.
        : bytes.length >= 2 && bytes[0] === 0 && bytes[1] !== 0 ? 'UTF-16 (big-endian, no byte order mark)'
          : bytes.length >= 2 && bytes[0] !== 0 && bytes[1] === 0 ? 'UTF-16 (little-endian, no byte order mark)'
            : undefined;
  if (encoding) {
    throw new NuggetsError(`${path} is encoded as ${encoding}; Nuggets reads UTF-8 only.`, 'Save the file as UTF-8 (for example: iconv -f UTF-16 -t UTF-8 in.json > out.json); the file was not modified.');
  }
}

/** Parses by content: a leading '[' is a JSON array, anything else is read as JSON Lines. */
export function parseDataset(text: string, source: string): Dataset {
  const body = text.replace(/^\uFEFF/, '');
  const format: DatasetFormat = body.trimStart().startsWith('[') ? 'json' : 'jsonl';
  const records = format === 'json' ? parseJsonArray(body, source) : parseJsonLines(body, source);
  if (records.length === 0) throw new NoRecordsError(source);
  return { source, format, records };
}

/** An empty array (`[]`) or a file of blank lines: an Alpaca file with no records, not something else. */
export class NoRecordsError extends NuggetsError {
  constructor(readonly source: string, kind = 'dataset') {
    super(`${source}: the ${kind} has no records.`, 'Expected a JSON array of {"instruction", "input", "output"} objects, or one such object per line.');
  }
}

function parseJsonArray(text: string, source: string): DatasetRecord[] {
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch (err) {
    // Only a broken file pays for the slower parser, which says where the JSON breaks.
    const e = firstParseError(text, (errors) => jsonc.parseTree(text, errors, { disallowComments: true, allowTrailingComma: false }), err);
    const at = lineAndColumn(text, e.offset);
    throw new NuggetsError(
      `${source}:${at.line}:${at.column}: malformed JSON (${e.what}).`,
      'Fix the JSON at that position; the file was not modified.',
    );
  }
  if (!Array.isArray(values)) {
    throw new NuggetsError(`${source}: expected a JSON array of records at the top level.`);
  }
  const ranges = elementRanges(text);
  if (ranges.length !== values.length) throw new Error(`internal: found ${ranges.length} array elements in the text, JSON.parse found ${values.length}`);
  return values.map((value, i) => {
    const [start, end] = ranges[i]!;
    return toRecord(value, i, () => `${source}:${lineAndColumn(text, start).line}`, start, end);
  });
}

/**
 * Character ranges [start, end) of the top-level array's elements, in one pass over text that
 * JSON.parse has already accepted: strings are skipped (with their escapes), nesting is counted, and
 * an element runs from its first character to its last before the ',' or ']' that closes it.
 */
function elementRanges(text: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let depth = 0;
  let start = -1;
  let last = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      if (depth === 1 && start < 0) start = i;
      i = closingQuote(text, i);
      last = i;
      continue;
    }
    if (c === 32 || c === 10 || c === 13 || c === 9) continue;
    if (c === 91 /* [ */ || c === 123 /* { */) {
      if (depth === 1 && start < 0) start = i;
      depth++;
    } else if (c === 93 /* ] */ || c === 125 /* } */) {
      depth--;
      if (depth === 0 && start >= 0) ranges.push([start, last + 1]);
    } else if (c === 44 /* , */ && depth === 1) {
      ranges.push([start, last + 1]);
      start = -1;
      continue;
    } else if (depth === 1 && start < 0) {
      start = i;
    }
    last = i;
  }
  return ranges;
}

/** Index of the '"' that closes the string opened at `open`: the next one not escaped by an odd run of backslashes. */
function closingQuote(text: string, open: number): number {
  for (let i = text.indexOf('"', open + 1); i >= 0; i = text.indexOf('"', i + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(i - 1 - backslashes) === 92 /* \ */) backslashes++;
    if (backslashes % 2 === 0) return i;
  }
  return text.length;
}

function parseJsonLines(text: string, source: string): DatasetRecord[] {
  const records: DatasetRecord[] = [];
  let lineStart = 0;
  let lineNumber = 0;
  while (lineStart <= text.length) {
    const newline = text.indexOf('\n', lineStart);
    const lineEnd = newline === -1 ? text.length : newline;
    lineNumber++;
    const line = text.slice(lineStart, lineEnd);
    if (line.trim() !== '') {
      const value = parseLine(line, source, lineNumber);
      const where = `${source}:${lineNumber}`;
      if (isSeedTask(value)) {
        // Self-Instruct seed tasks: one instruction with several instances -> one record per instance.
        value.instances.forEach((instance, k) => {
          const flat = { instruction: value.instruction, ...(instance as object) };
          records.push(toRecord(flat, records.length, () => `${where} (instance ${k})`, lineStart, lineEnd));
        });
      } else {
        records.push(toRecord(value, records.length, () => where, lineStart, lineEnd));
      }
    }
    if (newline === -1) break;
    lineStart = newline + 1;
  }
  return records;
}

function parseLine(line: string, source: string, lineNumber: number): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    const e = firstParseError(line, (errors) => jsonc.parse(line, errors, { disallowComments: true, allowTrailingComma: false }), err);
    throw new NuggetsError(
      `${source}:${lineNumber}:${e.offset + 1}: malformed JSON on line ${lineNumber} (${e.what}).`,
      'Each line of a JSON Lines file must be one complete JSON object; the file was not modified.',
    );
  }
}

/**
 * Where and how JSON that JSON.parse refused breaks, from jsonc's parser. That parser recurses once per
 * nesting level, so text nested tens of thousands deep overflows the stack: then JSON.parse's own
 * message ("... in JSON at position N") places the error instead.
 */
function firstParseError(text: string, parse: (errors: jsonc.ParseError[]) => void, parseFailure: unknown): { offset: number; what: string } {
  const errors: jsonc.ParseError[] = [];
  try {
    parse(errors);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    const message = parseFailure instanceof Error ? parseFailure.message : '';
    const position = /at position (\d+)/.exec(message);
    return { offset: position ? Number(position[1]) : text.length, what: `${/end of JSON input/.test(message) ? 'unexpected end of the text' : 'invalid JSON'}, nested too deeply to say more` };
  }
  const e = errors[0] ?? { offset: 0, error: jsonc.ParseErrorCode.InvalidSymbol };
  return { offset: e.offset, what: jsonc.printParseErrorCode(e.error) };
}

function isSeedTask(value: unknown): value is { instruction: unknown; instances: unknown[] } {
  return typeof value === 'object' && value !== null && Array.isArray((value as { instances?: unknown }).instances)
    && !('output' in value);
}

function toRecord(value: unknown, index: number, at: () => string, start: number, end: number): DatasetRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new NuggetsError(`${at()}: record ${index} is not an object.`, 'Each record must be {"instruction": ..., "input": ..., "output": ...}.');
  }
  const original = value as Record<string, unknown>;
  const field = (name: keyof Example, required: boolean): string => {
    const v = original[name];
    if (v === undefined && !required) return '';
    if (v === undefined) {
      throw new NuggetsError(`${at()}: record ${index} has no "${name}" field.`, 'Alpaca records need "instruction" and "output" (and optionally "input") as strings.');
    }
    if (typeof v !== 'string') {
      throw new NuggetsError(`${at()}: record ${index} field "${name}" is ${describeType(v)}, not a string.`);
    }
    return v.trim();
  };
  const example = { instruction: field('instruction', true), input: field('input', false), output: field('output', true) };
  return { ...example, index, id: recordId(example), start, end, original };
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}
