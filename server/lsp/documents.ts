/**
 * The open documents that are Alpaca datasets, and the scores shown for their records: parsed on open
 * (or ahead of it, from the saved file), again after edits settle, with the scores of edited records
 * carried along as stale until they are rescored. Every scores notification to the client starts here.
 */
import { open as openFile, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, ResponseError, type Connection } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { problemInfo } from '../records/problems';
import * as protocol from '../protocol';
import { summaryOf, type CandidateScore } from '../scoring/golden';
import type { ScoringKey } from '../records/store';
import { HEAD_LENGTH, markUnrenderable, mayBeDataset, parseDocument, parsedRows, readDocument, scorableCount, type ParsedDocument } from './parsed';
import type { ParquetTables } from './parquet-tables';
import { NuggetsError } from '../io/errors';
import { nameOf } from './anchor-choice';
import type { ScoreBook } from './score-book';
import type { Keyed, ScoringKeys } from './scoring-keys';

const REPARSE_DELAY_MS = 300;
/** Saved files read ahead of their documents (fileOpening): how many are kept, and the largest read. */
const READ_AHEAD_KEPT = 2;
const READ_AHEAD_MAX_BYTES = 256 * 2 ** 20;

/** A record's score as shown: current, or stale (computed under another key, or before the record was edited). */
export interface Shown {
  score: CandidateScore;
  stale: boolean;
  key: ScoringKey | undefined;
}

export class OpenDocuments {
  private readonly parsed = new Map<string, ParsedDocument>();
  /** Scores of records edited since they were scored, by document and record index: shown stale until rescored. */
  private readonly carried = new Map<string, Map<number, Shown>>();
  /** Parses started per document: only the latest one's result is kept. */
  private readonly generations = new Map<string, number>();
  private readonly reparseTimers = new Map<string, NodeJS.Timeout>();
  /** Saved files parsed ahead of their documents (fileOpening), oldest first: reused when didOpen brings the same text. */
  private readonly readAhead = new Map<string, { text: string; parsed: ParsedDocument }>();
  /** Documents that read as Alpaca datasets but do not parse now, and why (sent to the client). */
  private readonly problems = new Map<string, protocol.DatasetProblem>();
  /** Parses under way (an open, a settled edit), by document: requests about the document wait for them. */
  private readonly parsing = new Map<string, Promise<void>>();
  /** Whether each document's latest parse (or read-ahead) holds conversations: its key's template depends on it. */
  private readonly conversations = new Map<string, boolean>();
  /** The text last parsed of each open document: parsed again when the record format setting changes. */
  private readonly texts = new Map<string, TextDocument>();
  /** The Parquet files open in the table editor: read whole, as a parsed document, when a command first needs every record. */
  tables: ParquetTables | undefined;
  /** Why an open table's file cannot be read whole (too large, a damaged row group): its commands are refused with it. */
  private readonly tableRefusals = new Map<string, ResponseError<void>>();

  constructor(
    private readonly connection: Connection,
    private readonly book: ScoreBook,
    private readonly keys: ScoringKeys,
    /** Records of a parsed document changed since the last parse (their ids): the server rescores them. */
    private readonly onEdited: (parsed: ParsedDocument, keyed: Keyed | undefined, ids: string[]) => void,
    private readonly log: (message: unknown) => void,
  ) {}

  get(uri: string): ParsedDocument | undefined {
    return this.parsed.get(uri);
  }

  /** Whether the document, as last parsed, holds conversations (then a chat template scores it). */
  holdsConversations(uri: string): boolean {
    return this.conversations.get(uri) ?? this.parsed.get(uri)?.conversations ?? false;
  }

  /** Every open document that parses as a dataset. */
  all(): ParsedDocument[] {
    return [...this.parsed.values()];
  }

  require(uri: string): ParsedDocument {
    const parsed = this.parsed.get(uri);
    const refusal = parsed ? undefined : this.tableRefusals.get(uri);
    if (refusal) throw refusal;
    if (!parsed) throw new ResponseError(ErrorCodes.InvalidParams, `${uri} is not an open dataset (a JSON array or JSON Lines of Alpaca, messages, ShareGPT, prompt/completion or Dolly records).`);
    return parsed;
  }

  /**
   * Resolves when the document's parse under way, if any, is done. A request about a document that was just
   * opened arrives while its parse is still waiting for the model's identity: it waits, and sees the document.
   */
  async settled(uri: string): Promise<void> {
    if (this.tables?.has(uri) && !this.parsed.has(uri) && !this.parsing.has(uri) && !this.tableRefusals.has(uri)) this.readTable(uri);
    await this.parsing.get(uri)?.catch(() => undefined);
  }

  /** The parsed document once its parse under way is done (require). */
  async ready(uri: string): Promise<ParsedDocument> {
    await this.settled(uri);
    return this.require(uri);
  }

  /** Why the document does not parse as a dataset now, when it looks like one. */
  problemOf(uri: string): protocol.DatasetProblem | undefined {
    return this.problems.get(uri);
  }

  /** A Parquet file opened in the table editor: its key's template follows whether its first rows are conversations. */
  tableOpened(uri: string, conversations: boolean): void {
    if (!this.parsed.has(uri)) this.conversations.set(uri, conversations);
  }

  /**
   * Reads an open table's file whole, once, as a parsed document (a command needs every record), and sends its
   * scores as for a JSON file; when it cannot be (too large, damaged), its commands are refused with why.
   */
  private readTable(uri: string): void {
    // closed() counts a new generation: a read that outlives its table's editor is dropped.
    const generation = this.generations.get(uri) ?? 0;
    const current = (): boolean => (this.generations.get(uri) ?? 0) === generation;
    const read = (async (): Promise<void> => {
      let parsed: ParsedDocument;
      try {
        const { records, unscorable } = await this.tables!.readWhole(uri);
        parsed = parsedRows(uri, records, unscorable);
      } catch (err) {
        if (!(err instanceof NuggetsError)) this.log(err);
        const why = err instanceof NuggetsError ? err.describe() : `${nameOf(uri)} cannot be read whole: ${(err as Error)?.message ?? err}`;
        if (current()) this.tableRefusals.set(uri, new ResponseError(ErrorCodes.InvalidRequest, why));
        return;
      }
      if (!current()) return;
      this.conversations.set(uri, parsed.conversations);
      const keyed = await this.keys.keyFor(uri);
      if (!current()) return;
      this.parsed.set(uri, parsed);
      this.publish(parsed, keyed);
    })().finally(() => {
      if (this.parsing.get(uri) === read) this.parsing.delete(uri);
    });
    this.parsing.set(uri, read);
  }

  open(document: TextDocument): Promise<void> {
    return this.reparse(document);
  }

  /**
   * A tab opened this file and its document is on its way: parse the saved file now and send its scores,
   * so that the client can draw them as soon as the document arrives. The document's didOpen reuses the
   * parse when it brings the same text.
   */
  async fileOpening(uri: string): Promise<void> {
    if (this.parsed.has(uri)) return; // open already (a second tab)
    const text = await readSavedFile(uri);
    if (text === undefined) return;
    const document = TextDocument.create(uri, 'json', 0, text);
    const parsed = parseDocument(document, this.keys.recordFormat());
    if (!parsed) return;
    if (!this.parsed.has(uri)) this.conversations.set(uri, parsed.conversations);
    const entry = { text, parsed };
    this.readAhead.delete(uri);
    this.readAhead.set(uri, entry);
    for (const oldest of this.readAhead.keys()) if (this.readAhead.size > READ_AHEAD_KEPT) this.readAhead.delete(oldest);
    const keyed = await this.keys.keyFor(uri);
    // Sent unless the document itself arrived meanwhile (and took this parse) or is open already.
    if (this.readAhead.get(uri) === entry && !this.parsed.has(uri)) this.publish(parsed, keyed, { length: text.length, lineCount: document.lineCount });
  }

  changed(document: TextDocument): void {
    clearTimeout(this.reparseTimers.get(document.uri));
    this.reparseTimers.set(document.uri, setTimeout(() => {
      this.reparseTimers.delete(document.uri);
      void this.reparse(document).catch((err) => this.log(err));
    }, REPARSE_DELAY_MS));
  }

  closed(uri: string): void {
    clearTimeout(this.reparseTimers.get(uri));
    this.reparseTimers.delete(uri);
    this.carried.delete(uri);
    this.generations.set(uri, (this.generations.get(uri) ?? 0) + 1);
    this.setProblem(uri, null);
    this.texts.delete(uri);
    this.conversations.delete(uri);
    this.tableRefusals.delete(uri);
    if (this.parsed.delete(uri)) void this.connection.sendNotification(protocol.scoresClearedNotification, { uri });
  }

  /** Tells the client when a document stops or starts again parsing as a dataset. */
  private setProblem(uri: string, problem: protocol.DatasetProblem | null): void {
    if (problem) this.problems.set(uri, problem);
    else if (!this.problems.delete(uri)) return;
    void this.connection.sendNotification(protocol.datasetProblemNotification, { uri, problem });
  }

  /** Parses every open document again (the record format setting changed). */
  async reparseAll(): Promise<void> {
    this.readAhead.clear();
    await Promise.all([...this.texts.values()].map((document) => this.reparse(document)));
  }

  private reparse(document: TextDocument): Promise<void> {
    this.texts.set(document.uri, document);
    const parse = this.parseAndPublish(document).finally(() => {
      if (this.parsing.get(document.uri) === parse) this.parsing.delete(document.uri);
    });
    this.parsing.set(document.uri, parse);
    return parse;
  }

  private async parseAndPublish(document: TextDocument): Promise<void> {
    const uri = document.uri;
    const generation = (this.generations.get(uri) ?? 0) + 1;
    this.generations.set(uri, generation);
    const ahead = this.readAhead.get(uri);
    this.readAhead.delete(uri);
    const read = ahead?.text === document.getText() ? { parsed: { ...ahead.parsed, version: document.version } } : readDocument(document, this.keys.recordFormat());
    if (!read || 'problem' in read) {
      // Not an Alpaca dataset, or not one at the moment (mid-edit): the last scores stay on screen, waiting.
      if (this.parsed.has(uri) && !looksLikeJsonArrayOrLines(document.getText())) this.closed(uri);
      else this.setProblem(uri, read?.problem ?? null);
      return;
    }
    const after = read.parsed;
    this.setProblem(uri, null);
    this.conversations.set(uri, after.conversations);
    const keyed = await this.keys.keyFor(uri);
    if (this.generations.get(uri) !== generation) return; // a newer parse is under way
    const before = this.parsed.get(uri);
    const edited: string[] = [];
    if (before) {
      const carried = this.carried.get(uri) ?? new Map<number, Shown>();
      const next = new Map<number, Shown>();
      if (before.records.length === after.records.length) {
        for (const r of after.records) {
          const old = before.records[r.index]!;
          if (old.id === r.id) {
            const kept = carried.get(r.index);
            if (kept) next.set(r.index, kept);
          } else {
            edited.push(r.id);
            const shown = this.shown(before, old.index, keyed);
            if (shown) next.set(r.index, { ...shown, stale: true });
          }
        }
      } else {
        for (const r of after.records) if (!before.byId.has(r.id)) edited.push(r.id);
      }
      this.carried.set(uri, next);
    }
    this.parsed.set(uri, after);
    this.publish(after, keyed);
    if (edited.length > 0) this.onEdited(after, keyed, edited);
  }

  /** The record's score as shown: current under `keyed`, else carried over from before an edit, else a stale stored one. */
  shown(parsed: ParsedDocument, index: number, keyed: Keyed | undefined): Shown | undefined {
    const record = parsed.records[index]!;
    const found = this.book.find(record.id, keyed?.key ?? null);
    if (found && !found.stale) return { score: found.score, stale: false, key: found.key };
    const carried = this.carried.get(parsed.uri)?.get(index);
    if (carried && this.parsed.get(parsed.uri) === parsed) return carried;
    return found ? { score: found.score, stale: true, key: found.key } : undefined;
  }

  recordScore(parsed: ParsedDocument, index: number, keyed: Keyed | undefined): protocol.RecordScore {
    const record = parsed.records[index]!;
    const shown = this.shown(parsed, index, keyed);
    const problem = parsed.problems.get(index);
    return {
      index, id: record.id, range: parsed.ranges[index]!, stale: shown?.stale ?? false,
      ...(shown ? { score: summaryOf(shown.score) } : {}),
      ...(problem ? { problem: problemInfo(problem) } : {}),
    };
  }

  /** How many of the document's records have a current score. */
  countCurrent(parsed: ParsedDocument, keyed: Keyed | undefined): number {
    if (!keyed) return 0;
    const current = this.book.scoresOf(keyed.key);
    return parsed.records.reduce((n, r) => n + (current.has(r.id) ? 1 : 0), 0);
  }

  /** The document's records with their current scores (stale ones count as unscored). */
  async currentOf(uri: string): Promise<{ parsed: ParsedDocument; keyed: Keyed | undefined; scores: (CandidateScore | undefined)[] }> {
    const parsed = await this.ready(uri);
    const keyed = await this.keys.keyFor(uri);
    const current = keyed ? this.book.scoresOf(keyed.key) : new Map<string, CandidateScore>();
    return { parsed, keyed, scores: parsed.records.map((r) => current.get(r.id)) };
  }

  /** Drops the carried (edited, stale) scores of the document's records at `indices`, or of all its records. */
  forgetEdits(uri: string, indices?: readonly number[]): void {
    if (!indices) this.carried.delete(uri);
    else for (const i of indices) this.carried.get(uri)?.delete(i);
  }

  /** Marks the records the key's chat template cannot render in the document's latest parse (ScoringKeys.onKeyed). */
  keyed(uri: string, keyed: Keyed): void {
    const parsed = this.parsed.get(uri);
    if (parsed) markUnrenderable(parsed, keyed.chatTemplate);
  }

  /** Sends every record's score of the document. */
  publish(parsed: ParsedDocument, keyed: Keyed | undefined, savedFile?: protocol.ScoresParams['savedFile']): void {
    if (keyed) markUnrenderable(parsed, keyed.chatTemplate);
    const records = parsed.records.map((r) => this.recordScore(parsed, r.index, keyed));
    this.send(parsed, keyed, { full: true, records, scored: this.countCurrent(parsed, keyed), ...(savedFile ? { savedFile } : {}) });
  }

  /** Sends the scores of the records at `indices` (those just scored); returns them. */
  publishRecords(parsed: ParsedDocument, indices: readonly number[], keyed: Keyed | undefined, scored = this.countCurrent(parsed, keyed)): protocol.RecordScore[] {
    const records = indices.map((i) => this.recordScore(parsed, i, keyed));
    this.send(parsed, keyed, { full: false, records, scored });
    return records;
  }

  /** A scores notification: the given records, with what every one says of the document, its model and anchors. */
  private send(parsed: ParsedDocument, keyed: Keyed | undefined, part: Pick<protocol.ScoresParams, 'full' | 'records' | 'scored' | 'savedFile'>): void {
    void this.connection.sendNotification(protocol.scoresNotification, {
      uri: parsed.uri, version: parsed.version, total: scorableCount(parsed), ...part,
      model: keyed?.key.model.name ?? null, anchorCount: keyed?.anchors.anchors.length ?? null, ...this.keys.sourceOf(parsed.uri),
    });
  }

  /** Sends every open document's scores again (the key changed: settings, anchors, files). */
  async publishAll(): Promise<void> {
    for (const parsed of this.parsed.values()) {
      const keyed = await this.keys.keyFor(parsed.uri);
      if (this.parsed.get(parsed.uri) === parsed) this.publish(parsed, keyed);
    }
  }

  /** Scores that another window wrote or cleared since they were read, shown in the open documents. */
  async syncFromDisk(): Promise<void> {
    const changes = this.book.refresh();
    if (changes.whole) {
      await this.publishAll();
      return;
    }
    if (changes.added.size === 0) return;
    for (const parsed of this.parsed.values()) {
      const indices = [...changes.added].flatMap((id) => parsed.byId.get(id) ?? []);
      if (indices.length === 0) continue;
      const keyed = await this.keys.keyFor(parsed.uri);
      if (this.parsed.get(parsed.uri) === parsed) this.publishRecords(parsed, indices, keyed);
    }
  }
}

/**
 * A file: URI's saved text as the editor shows it (UTF-8, without a byte order mark); undefined when it
 * cannot be read, is too large to read ahead, or plainly is not an Alpaca dataset (judged by its start).
 */
async function readSavedFile(uri: string): Promise<string | undefined> {
  if (!uri.startsWith('file:')) return undefined;
  try {
    const path = fileURLToPath(uri);
    const file = await openFile(path, 'r');
    let head: Buffer;
    try {
      const { size } = await file.stat();
      if (size > READ_AHEAD_MAX_BYTES) return undefined;
      head = Buffer.alloc(Math.min(size, 4 * HEAD_LENGTH)); // UTF-8: at most 4 bytes a character
      await file.read(head, 0, head.length, 0);
    } finally {
      await file.close();
    }
    if (!mayBeDataset(head.toString('utf8'))) return undefined; // its trimStart() also drops a byte order mark
    const text = await readFile(path, 'utf8');
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    return undefined;
  }
}

/** Whether the text could still be a dataset being edited (so its last scores stay shown). */
function looksLikeJsonArrayOrLines(text: string): boolean {
  const head = text.trimStart();
  return head.startsWith('[') || mayBeDataset(head.slice(0, HEAD_LENGTH));
}
