/**
 * Dataset text -> records. Reads Alpaca JSON arrays and JSON Lines, keeps each record's character
 * range in the source text (for editor decorations and messages) and a content hash (its identity
 * in the scores store), and rejects malformed input with the file, line, record and field at fault.
 */
import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jsonc from 'jsonc-parser';
import { NuggetsError, fileError, lineAndColumn } from '../io/errors';

/** The three fields the template uses, trimmed of surrounding whitespace. */
export interface Example {
  instruction: string;
  input: string;
  output: string;
  /**
   * A conversation's turns (messages, ShareGPT, prompt/completion, Alpaca with system or history), checked:
   * an optional system turn, then user and assistant alternating, ending with a non-empty assistant turn.
   * Absent for plain Alpaca (and Dolly) records, which the paper's template scores. For a conversation,
   * `output` is the final turn's content and `instruction` the user turn before it (shown in summaries).
   */
  turns?: Turn[];
}

export type Role = 'system' | 'user' | 'assistant';

export interface Turn {
  role: Role;
  /** Trimmed of surrounding whitespace. */
  content: string;
}

/** How the records of a file are written; detected per file from its first record, or named with --format. */
export type RecordFormat = 'alpaca' | 'messages' | 'sharegpt' | 'prompt-completion' | 'dolly';

export const RECORD_FORMATS: readonly RecordFormat[] = ['alpaca', 'messages', 'sharegpt', 'prompt-completion', 'dolly'];

/** A record that cannot be scored (roles that do not alternate, no assistant turn, an empty final turn): listed, counted, skipped. */
export interface RejectedRecord {
  /** "file:line". */
  where: string;
  /** Its position among the file's records, 0-based (counting every record). */
  position: number;
  why: string;
  /** Character range of the record's text in the source ([start, end)), for the editor to mark it. */
  start?: number;
  end?: number;
  /** Its turns, when they could be read (roles that do not alternate, say), for the editor to show. */
  turns?: Turn[];
}

export interface DatasetRecord extends Example {
  /**
   * Position among the file's records, 0-based, those that cannot be scored (RejectedRecord.position) counted too: the
   * one record number of the command line, the editor, the scores file and every export.
   */
  index: number;
  /** Content hash of the trimmed fields: the record's identity in the scores store. */
  id: string;
  /** Character range of the record's text in the source ([start, end)). */
  start: number;
  end: number;
  /** The record exactly as it was parsed, written back unchanged by `select`. */
  original: Record<string, unknown>;
}

export type DatasetFormat = 'json' | 'jsonl' | 'parquet';

export interface Dataset {
  source: string;
  format: DatasetFormat;
  recordFormat: RecordFormat;
  records: DatasetRecord[];
  /** Records left out because they cannot be scored, each with where and why (never dropped silently). */
  rejected: RejectedRecord[];
  /** A Parquet dataset's schema (parquet.ts), for writing a subset back as Parquet; absent when shards' schemas differ. */
  parquetSchema?: readonly import('hyparquet').SchemaElement[];
}

/** A record's content hash: of the trimmed fields for Alpaca records (unchanged since the first scores), of the roles and contents for conversations. */
export function recordId(example: Example): string {
  if (example.turns) return conversationId(example.turns);
  return hash('sha256', `${example.instruction}\u0000${example.input}\u0000${example.output}`, 'hex').slice(0, 16);
}

/** The same conversation read from ShareGPT, messages or prompt/completion has the same id. */
export function conversationId(turns: readonly Turn[]): string {
  return hash('sha256', `turns\u0002${turns.map((t) => `${t.role}\u0000${t.content}`).join('\u0001')}`, 'hex').slice(0, 16);
}

export function readDataset(path: string, format?: RecordFormat): Dataset {
  return parseDataset(readUtf8(path, 'dataset'), path, format);
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
export function parseDataset(text: string, source: string, recordFormat?: RecordFormat): Dataset {
  const body = text.replace(/^\uFEFF/, '');
  const format: DatasetFormat = body.trimStart().startsWith('[') ? 'json' : 'jsonl';
  const reading: Reading = { format: recordFormat, rejected: [], count: 0 };
  const records = format === 'json' ? parseJsonArray(body, source, reading) : parseJsonLines(body, source, reading);
  if (records.length === 0 && reading.rejected.length === 0) throw new NoRecordsError(source);
  return { source, format, recordFormat: reading.format ?? 'alpaca', records, rejected: reading.rejected };
}

/** The state of one file's reading: its record format (detected from the first record unless named), the records rejected so far, the records seen. */
export interface Reading {
  format: RecordFormat | undefined;
  rejected: RejectedRecord[];
  count: number;
}

/** An empty array (`[]`) or a file of blank lines: an Alpaca file with no records, not something else. */
export class NoRecordsError extends NuggetsError {
  constructor(readonly source: string, kind = 'dataset') {
    super(`${source}: the ${kind} has no records.`, 'Expected a JSON array of {"instruction", "input", "output"} objects, or one such object per line.');
  }
}

function parseJsonArray(text: string, source: string, reading: Reading): DatasetRecord[] {
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
  const records: DatasetRecord[] = [];
  values.forEach((value, i) => {
    const [start, end] = ranges[i]!;
    const record = toRecord(value, reading.count, () => `${source}:${lineAndColumn(text, start).line}`, start, end, reading);
    if (record) records.push(record);
  });
  return records;
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

function parseJsonLines(text: string, source: string, reading: Reading): DatasetRecord[] {
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
      if (isSeedTask(value) && (reading.format ?? 'alpaca') === 'alpaca') {
        // Self-Instruct seed tasks: one instruction with several instances -> one record per instance.
        value.instances.forEach((instance, k) => {
          const flat = { instruction: value.instruction, ...(instance as object) };
          const record = toRecord(flat, reading.count, () => `${where} (instance ${k})`, lineStart, lineEnd, reading);
          if (record) records.push(record);
        });
      } else {
        const record = toRecord(value, reading.count, () => where, lineStart, lineEnd, reading);
        if (record) records.push(record);
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

/** The format a record is written in, from its keys. */
export function detectFormat(value: Record<string, unknown>): RecordFormat {
  if ('messages' in value) return 'messages';
  if ('conversations' in value) return 'sharegpt';
  if ('prompt' in value && 'completion' in value) return 'prompt-completion';
  if ('instruction' in value && 'response' in value && !('output' in value)) return 'dolly';
  return 'alpaca';
}

/**
 * One record from a parsed value, exactly as a JSON file's would be (same format detection, same id): for readers of
 * other containers (Parquet rows). `at` says where it came from; undefined when it is rejected (then in reading.rejected).
 */
export function recordOf(value: unknown, index: number, at: () => string, start: number, end: number, reading: Reading): DatasetRecord | undefined {
  return toRecord(value, index, at, start, end, reading);
}

function toRecord(value: unknown, index: number, at: () => string, start: number, end: number, reading: Reading): DatasetRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new NuggetsError(`${at()}: record ${index} is not an object.`, 'Each record must be {"instruction": ..., "input": ..., "output": ...}.');
  }
  const original = value as Record<string, unknown>;
  reading.format ??= detectFormat(original);
  const position = reading.count++;
  const format = reading.format;
  if (format === 'alpaca' || format === 'dolly') {
    const names = format === 'alpaca' ? { instruction: 'instruction', input: 'input', output: 'output' } : { instruction: 'instruction', input: 'context', output: 'response' };
    const field = (name: keyof typeof names, required: boolean): string => {
      const key = names[name];
      const v = original[key];
      if (v === undefined && !required) return '';
      if (v === undefined) {
        throw new NuggetsError(`${at()}: record ${index} has no "${key}" field.`, format === 'alpaca'
          ? 'Alpaca records need "instruction" and "output" (and optionally "input") as strings.'
          : 'Dolly records need "instruction" and "response" (and optionally "context") as strings.');
      }
      if (typeof v !== 'string') {
        throw new NuggetsError(`${at()}: record ${index} field "${key}" is ${describeType(v)}, not a string.`);
      }
      return v.trim();
    };
    const example: Example = { instruction: field('instruction', true), input: field('input', false), output: field('output', true) };
    if (format === 'alpaca' && hasHistory(original)) {
      // Alpaca with a system prompt or earlier turns (LLaMA-Factory's shape) is a conversation.
      return conversationRecord(alpacaTurns(original, example), original, index, at, start, end, position, reading);
    }
    return { ...example, index, id: recordId(example), start, end, original };
  }
  return conversationRecord(turnsOf(format, original), original, index, at, start, end, position, reading);
}

function conversationRecord(
  read: Turn[] | string, original: Record<string, unknown>, index: number, at: () => string, start: number, end: number, position: number, reading: Reading,
): DatasetRecord | undefined {
  const why = typeof read === 'string' ? read : conversationProblem(read);
  if (why !== undefined) {
    reading.rejected.push({ where: at(), position, why, start, end, ...(typeof read !== 'string' ? { turns: read } : {}) });
    return undefined;
  }
  const turns = read as Turn[];
  const lastUser = [...turns].reverse().find((t) => t.role === 'user');
  const example: Example = { instruction: lastUser?.content ?? '', input: '', output: turns[turns.length - 1]!.content, turns };
  return { ...example, index, id: recordId(example), start, end, original };
}

/** Why a conversation cannot be scored, or undefined when it can: an optional system turn, then user and assistant alternating, ending with a non-empty assistant turn. */
export function conversationProblem(turns: readonly Turn[]): string | undefined {
  if (turns.length === 0) return 'it has no turns';
  if (!turns.some((t) => t.role === 'assistant')) return 'it has no assistant turn';
  const first = turns[0]!.role === 'system' ? 1 : 0;
  for (let k = first; k < turns.length; k++) {
    const expected: Role = (k - first) % 2 === 0 ? 'user' : 'assistant';
    const role = turns[k]!.role;
    if (role !== expected) {
      return `its roles do not alternate: turn ${k + 1} is a${role === 'assistant' ? 'n' : ''} ${role} turn where a${expected === 'assistant' ? 'n' : ''} ${expected} turn belongs (an optional system turn first, then user and assistant in turn)`;
    }
  }
  const last = turns[turns.length - 1]!;
  if (last.role !== 'assistant') return 'its last turn is a user turn: it has no final assistant turn to score';
  if (last.content === '') return 'its final assistant turn is empty';
  return undefined;
}

function hasHistory(original: Record<string, unknown>): boolean {
  const { system, history } = original;
  return (typeof system === 'string' && system.trim() !== '') || (Array.isArray(history) && history.length > 0);
}

/** [system], history's [user, assistant] pairs, then user = instruction (+ blank line + input), assistant = output. */
function alpacaTurns(original: Record<string, unknown>, example: Example): Turn[] | string {
  const turns: Turn[] = [];
  const { system, history } = original;
  if (system !== undefined && typeof system !== 'string') return `its "system" is ${describeType(system)}, not a string`;
  if (typeof system === 'string' && system.trim() !== '') turns.push({ role: 'system', content: system.trim() });
  if (history !== undefined) {
    if (!Array.isArray(history)) return `its "history" is ${describeType(history)}, not a list of [user, assistant] pairs`;
    for (const [k, pair] of history.entries()) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') return `its history entry ${k} is not a [user, assistant] pair of strings`;
      turns.push({ role: 'user', content: pair[0].trim() }, { role: 'assistant', content: pair[1].trim() });
    }
  }
  turns.push(...chatTurnsOfAlpaca(example));
  return turns;
}

/** An Alpaca record under a chat template (ALGORITHM.md): user = instruction, or instruction + "\n\n" + input; assistant = output. */
export function chatTurnsOfAlpaca(example: Pick<Example, 'instruction' | 'input' | 'output'>): Turn[] {
  return [
    { role: 'user', content: example.input !== '' ? `${example.instruction}\n\n${example.input}` : example.instruction },
    { role: 'assistant', content: example.output },
  ];
}

const SHAREGPT_ROLES: Record<string, Role> = { system: 'system', human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant' };

/** A conversation format's turns, or why the record cannot be read as one. */
function turnsOf(format: Exclude<RecordFormat, 'alpaca' | 'dolly'>, original: Record<string, unknown>): Turn[] | string {
  if (format === 'messages') return messageList(original['messages'], '"messages"', (m) => [m['role'], m['content']]);
  if (format === 'sharegpt') {
    return messageList(original['conversations'], '"conversations"', (m) => ('from' in m ? [m['from'], m['value']] : [m['role'], m['content']]), SHAREGPT_ROLES);
  }
  const part = (name: 'prompt' | 'completion', role: Role): Turn[] | string => {
    const v = original[name];
    if (typeof v === 'string') return [{ role, content: v.trim() }];
    return messageList(v, `"${name}"`, (m) => [m['role'], m['content']]);
  };
  const prompt = part('prompt', 'user');
  const completion = part('completion', 'assistant');
  if (typeof prompt === 'string') return prompt;
  if (typeof completion === 'string') return completion;
  return [...prompt, ...completion];
}

function messageList(
  list: unknown, name: string, fields: (m: Record<string, unknown>) => [unknown, unknown], roles: Record<string, Role> = { system: 'system', user: 'user', assistant: 'assistant' },
): Turn[] | string {
  if (list === undefined) return `it has no ${name} field`;
  if (!Array.isArray(list)) return `its ${name} is ${describeType(list)}, not a list of turns`;
  const turns: Turn[] = [];
  for (const [k, m] of list.entries()) {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return `turn ${k + 1} of its ${name} is ${describeType(m)}, not an object`;
    const [role, content] = fields(m as Record<string, unknown>);
    const mapped = typeof role === 'string' && Object.hasOwn(roles, role) ? roles[role] : undefined;
    if (!mapped) return `turn ${k + 1} has the role ${JSON.stringify(role)}, not one of ${Object.keys(roles).join(', ')}`;
    if (typeof content !== 'string') return `turn ${k + 1}'s content is ${describeType(content)}, not a string`;
    turns.push({ role: mapped, content: content.trim() });
  }
  return turns;
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}
