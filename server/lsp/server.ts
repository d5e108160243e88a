/**
 * The Nuggets language server's state and behaviour: which open documents are Alpaca datasets, their
 * scores (current or stale) from the score book, scoring runs through the worker (one at a time, in
 * order), anchor choice, selection, and the dashboard's queries. main.ts wires it to a connection.
 */
import { existsSync, statSync, watch, type FSWatcher } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Connection, Hover, HoverParams, WorkDoneProgressReporter } from 'vscode-languageserver/node';
import { CancellationToken, ErrorCodes, MessageType, ProgressType, ResponseError, ShowMessageNotification } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { sleep } from '../abort';
import { anchorSet, chooseRandom, describeSkipped, readAnchors, screenAnchors, type AnchorSet } from '../anchors';
import { NuggetsError } from '../errors';
import { assertNotInput, writeFileAtomic } from '../files';
import { SUGGESTED_HUB_MODELS, type DownloadProgress } from '../model/hub';
import { describeExcluded, summaryOf, type CandidateScore } from '../scoring/golden';
import { TEMPLATE_ID } from '../scoring/template';
import { pairScores, ruleLabel, select, writeSubset } from '../select';
import { similarityFor } from '../diverse';
import { writeCard } from '../card';
import type { ScoringKey } from '../store';
import * as protocol from '../protocol';
import { AnchorChoices, describeAnchors, nameOf, originOf, type AnchorOrigin } from './anchor-choice';
import { datasetProblem } from './broken-file';
import { compareRows, distributionOf, goldenIfdScatter, nearestNeighbours, signalCells } from './dashboard-queries';
import { anchorEffectsOf, recordEffectsOf } from './anchor-effects';
import { formatScores } from '../export-scores';
import { hoverMarkdown, scoreSource, shorten, sourceFooter } from './markdown';
import { HEAD_LENGTH, mayBeAlpaca, parseDocument, recordAtLine, type ParsedDocument } from './parsed';
import { ScoreBook } from './score-book';
import type { Candidate, ModelOptions } from './worker-messages';
import { ScoringWorker } from './worker';

/** Anchors chosen for a dataset that has none when it is first scored (the paper's setting). */
export const DEFAULT_ANCHOR_COUNT = 100;
const REPARSE_DELAY_MS = 300;
/** Saved files read ahead of their documents (fileOpening): how many are kept, and the largest read. */
const READ_AHEAD_KEPT = 2;
const READ_AHEAD_MAX_BYTES = 256 * 2 ** 20;
/** How soon a change another window made to the scores folder is read, and how often a waiting run looks at the lock. */
const SYNC_DELAY_MS = 100;
const RUN_WAIT_POLL_MS = 250;

interface Keyed {
  key: ScoringKey;
  anchors: AnchorSet;
}

interface Shown {
  score: CandidateScore;
  stale: boolean;
  key: ScoringKey | undefined;
}

export class NuggetsServer {
  private readonly book: ScoreBook;
  private readonly worker = new ScoringWorker();
  private readonly parsed = new Map<string, ParsedDocument>();
  /** Scores of records edited since they were scored, by document and record index: shown stale until rescored. */
  private readonly carried = new Map<string, Map<number, Shown>>();
  /** Parses started per document: only the latest one's result is kept. */
  private readonly generations = new Map<string, number>();
  private readonly reparseTimers = new Map<string, NodeJS.Timeout>();
  /** Saved files parsed ahead of their documents (fileOpening), oldest first: reused when didOpen brings the same text. */
  private readonly readAhead = new Map<string, { text: string; parsed: ParsedDocument }>();
  private readonly anchorChoices: AnchorChoices;
  /** Documents that read as Alpaca datasets but do not parse now, and why (sent to the client). */
  private readonly problems = new Map<string, protocol.DatasetProblem>();
  private readonly anchorFiles = new Map<string, { stamp: number; set: AnchorSet }>();
  private identity: { stamp: string; result: Promise<Identified> } | undefined;
  private identityError: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Runs in progress (or queued) and the document each scores. */
  private readonly running = new Map<AbortController, string>();
  private watcher: FSWatcher | undefined;
  private syncTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly storagePath: string,
    private settings: protocol.ServerSettings,
  ) {
    this.book = new ScoreBook(storagePath);
    this.anchorChoices = new AnchorChoices(this.documentsFile());
    try {
      // Another window sharing this storage writes or clears scores: shown here shortly after.
      this.watcher = watch(this.book.folder, () => {
        clearTimeout(this.syncTimer);
        this.syncTimer = setTimeout(() => void this.syncFromDisk().catch((err) => this.log(err)), SYNC_DELAY_MS);
      });
    } catch (err) {
      this.log(`scores written by other windows show when this one next reads them (cannot watch ${this.book.folder}: ${(err as Error).message})`);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Documents

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
    const parsed = parseDocument(document);
    if (!parsed) return;
    const entry = { text, parsed };
    this.readAhead.delete(uri);
    this.readAhead.set(uri, entry);
    for (const oldest of this.readAhead.keys()) if (this.readAhead.size > READ_AHEAD_KEPT) this.readAhead.delete(oldest);
    const keyed = await this.keyFor(uri);
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
    if (this.parsed.delete(uri)) void this.connection.sendNotification(protocol.scoresClearedNotification, { uri });
  }

  /** Tells the client when a document stops or starts again parsing as a dataset. */
  private setProblem(uri: string, problem: protocol.DatasetProblem | null): void {
    if (problem) this.problems.set(uri, problem);
    else if (!this.problems.delete(uri)) return;
    void this.connection.sendNotification(protocol.datasetProblemNotification, { uri, problem });
  }

  /** Anchor choices follow renamed and moved files; open documents under them are shown with them. */
  async filesRenamed(files: readonly protocol.FileRename[]): Promise<void> {
    this.anchorChoices.renamed(files);
    await this.republishAll();
  }

  private async reparse(document: TextDocument): Promise<void> {
    const uri = document.uri;
    const generation = (this.generations.get(uri) ?? 0) + 1;
    this.generations.set(uri, generation);
    const ahead = this.readAhead.get(uri);
    this.readAhead.delete(uri);
    const after = ahead?.text === document.getText() ? { ...ahead.parsed, version: document.version } : parseDocument(document);
    if (!after) {
      // Not an Alpaca dataset, or not one at the moment (mid-edit): the last scores stay on screen, waiting.
      if (this.parsed.has(uri) && !looksLikeJsonArrayOrLines(document.getText())) this.closed(uri);
      else this.setProblem(uri, datasetProblem(document) ?? null);
      return;
    }
    this.setProblem(uri, null);
    const keyed = await this.keyFor(uri);
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
    // An edited record of a scored dataset is rescored alone, after the edit settles.
    if (edited.length > 0 && keyed && this.settings.scoringAllowed && this.countCurrent(after, keyed) > 0) {
      const ids = new Set(edited);
      const abort = new AbortController();
      void this.enqueue(() => this.runScoring(uri, ids, abort)).catch((err) => this.log(err));
    }
  }

  private shown(parsed: ParsedDocument, index: number, keyed: Keyed | undefined): Shown | undefined {
    const record = parsed.records[index]!;
    const found = this.book.find(record.id, keyed?.key ?? null);
    if (found && !found.stale) return { score: found.score, stale: false, key: found.key };
    const carried = this.carried.get(parsed.uri)?.get(index);
    if (carried && this.parsed.get(parsed.uri) === parsed) return carried;
    return found ? { score: found.score, stale: true, key: found.key } : undefined;
  }

  private recordScore(parsed: ParsedDocument, index: number, keyed: Keyed | undefined): protocol.RecordScore {
    const record = parsed.records[index]!;
    const shown = this.shown(parsed, index, keyed);
    return {
      index, id: record.id, range: parsed.ranges[index]!, stale: shown?.stale ?? false,
      ...(shown ? { score: summaryOf(shown.score) } : {}),
    };
  }

  private countCurrent(parsed: ParsedDocument, keyed: Keyed | undefined): number {
    if (!keyed) return 0;
    const current = this.book.scoresOf(keyed.key);
    return parsed.records.reduce((n, r) => n + (current.has(r.id) ? 1 : 0), 0);
  }

  private publish(parsed: ParsedDocument, keyed: Keyed | undefined, savedFile?: protocol.ScoresParams['savedFile']): void {
    void this.connection.sendNotification(protocol.scoresNotification, {
      uri: parsed.uri, version: parsed.version, full: true,
      records: parsed.records.map((r) => this.recordScore(parsed, r.index, keyed)),
      total: parsed.records.length, scored: this.countCurrent(parsed, keyed),
      model: keyed?.key.model.name ?? null, anchorCount: keyed?.anchors.anchors.length ?? null, ...this.sourceOf(parsed.uri),
      ...(savedFile ? { savedFile } : {}),
    });
  }

  private async republishAll(): Promise<void> {
    for (const parsed of this.parsed.values()) {
      const keyed = await this.keyFor(parsed.uri);
      if (this.parsed.get(parsed.uri) === parsed) this.publish(parsed, keyed);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Settings, model identity, anchors: what a score's key is made of

  async settingsChanged(settings: protocol.ServerSettings): Promise<void> {
    this.settings = settings;
    this.abortRuns(); // a run under the old key would only add stale scores
    await this.republishAll();
  }

  /** How the worker opens the model: variant, credentials, and the cache in extension storage. */
  private modelOptions(): ModelOptions {
    const { threads, variant, secrets } = this.settings;
    // An API key without its origins goes nowhere (never to where $NUGGETS_API_KEY_ORIGINS would send it).
    return { threads, cacheDir: join(this.storagePath, 'cache'), ...(variant ? { variant } : {}), ...secrets, ...(secrets?.apiKey ? { apiKeyOrigins: secrets.apiKeyOrigins ?? [] } : {}) };
  }

  /**
   * The model's identity. A hub model is looked up in the cache only, unless `download` is given (Score
   * Dataset): then a model missing from the cache, or one whose lookup failed, is fetched.
   */
  private async modelIdentity(download?: DownloadRun): Promise<{ name: string; fingerprint: string } | undefined> {
    const model = this.settings.model;
    if (!this.settings.scoringAllowed && !existsSync(model)) {
      // Untrusted: a model folder is only read and hashed; anything else (hub, endpoint) would be opened.
      this.identityError = 'Scoring is disabled in untrusted workspaces.';
      return undefined;
    }
    const options = this.modelOptions();
    const stamp = [model, options.variant ?? 'fp32', ...['config.json', 'tokenizer.json', 'model.onnx', 'onnx'].map((f) => mtimeOf(join(model, f)))].join('|');
    const identify = (fetch?: DownloadRun): Promise<Identified> => this.worker.identify(model, options, fetch && {
      signal: fetch.signal,
      onProgress: (progress) => fetch.reporter?.report(downloadText(model, progress)),
    }).then(
      (found) => ('notDownloaded' in found ? { failure: `${model} is not downloaded yet: Nuggets: Score Dataset downloads it.`, retry: true } : { identity: found }),
      (err: unknown) => {
        this.log(`cannot use the model: ${(err as Error).message}`);
        return { failure: (err as Error).message, retry: !existsSync(model) };
      },
    );
    if (this.identity?.stamp !== stamp) this.identity = { stamp, result: identify() };
    let found = await this.identity.result;
    if ('failure' in found && found.retry && download && !download.signal.aborted && this.identity.stamp === stamp) {
      // Not in the cache, or the hub or endpoint failed earlier: try again, now allowed to download.
      this.identity = { stamp, result: identify(download) };
      found = await this.identity.result;
    }
    if ('identity' in found) {
      this.identityError = undefined;
      return found.identity;
    }
    this.identityError = found.failure;
    return undefined;
  }

  private anchorsPathFor(uri: string): string | undefined {
    return this.anchorChoices.get(uri)?.path ?? this.settings.anchors ?? undefined;
  }

  /** "k-means 100 of this file", "anchors.json (setting)"; null when the document has no anchors yet. */
  private anchorsDescription(uri: string): string | null {
    const chosen = this.anchorChoices.get(uri);
    if (chosen) return describeAnchors(chosen, uri);
    return this.settings.anchors ? `${basename(this.settings.anchors)} (nuggets.anchors setting)` : null;
  }

  /** What a document's scores are computed with, beyond the model's name: for hovers and the dashboard header. */
  private sourceOf(uri: string): { anchors: string | null; demoModel: boolean } {
    return { anchors: this.anchorsDescription(uri), demoModel: this.settings.demoModel === true };
  }

  private anchorsFor(uri: string): AnchorSet | undefined {
    const path = this.anchorsPathFor(uri);
    if (!path) return undefined;
    const stamp = mtimeOf(path);
    const cached = this.anchorFiles.get(path);
    if (cached && cached.stamp === stamp) return cached.set;
    try {
      const set = readAnchors(path);
      this.anchorFiles.set(path, { stamp, set });
      this.book.rememberAnchors(set); // so that hovers name these anchors, wherever the file came from
      return set;
    } catch (err) {
      this.log(`cannot read the anchors for ${uri}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private async keyFor(uri: string, download?: DownloadRun): Promise<Keyed | undefined> {
    const model = await this.modelIdentity(download);
    const anchors = this.anchorsFor(uri);
    if (!model || !anchors) return undefined;
    return {
      anchors,
      key: {
        model, anchors: { hash: anchors.hash, count: anchors.anchors.length }, template: TEMPLATE_ID,
        maxAnchorTokens: this.settings.maxAnchorTokens, separator: '',
      },
    };
  }

  private documentsFile(): string {
    return join(this.storagePath, 'documents.json');
  }

  private assignAnchors(uri: string, set: AnchorSet, origin: AnchorOrigin): string {
    const path = this.book.rememberAnchors(set);
    this.anchorChoices.set(uri, { path, origin });
    return path;
  }

  async chooseAnchors(params: protocol.ChooseAnchorsParams): Promise<protocol.AnchorSetInfo> {
    const uri = params.textDocument.uri;
    const parsed = this.requireParsed(uri);
    const { choice } = params;
    let set: AnchorSet;
    let skipped: string | undefined;
    try {
      if (choice.method === 'file') {
        set = readAnchors(choice.path);
        if (set.skipped) skipped = describeSkipped(set.skipped);
      } else {
        const indices = await this.worker.chooseAnchors(choice.method, choice.count, choice.seed ?? 0, parsed.records.map(candidateOf));
        set = anchorSet(indices.map((i) => parsed.records[i]!).map(({ instruction, input, output }) => ({ instruction, input, output })));
        const screened = screenAnchors(parsed.records, (r) => r.index).skipped;
        if (screened.length > 0) skipped = describeSkipped(screened);
      }
    } catch (err) {
      throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.describe()) : err;
    }
    this.abortRuns(uri);
    const path = this.assignAnchors(uri, set, originOf(choice, uri, set.anchors.length));
    const current = this.parsed.get(uri) ?? parsed;
    const keyed = await this.keyFor(uri);
    this.publish(current, keyed);
    const staleRecords = current.records.filter((r) => this.shown(current, r.index, keyed)?.stale).length;
    return {
      hash: set.hash, count: set.anchors.length, path, staleRecords, description: this.anchorsDescription(uri) ?? path,
      ...(skipped ? { skipped } : {}),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Scoring

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async scoreDataset(params: protocol.ScoreDatasetParams, token: CancellationToken): Promise<protocol.ScoreDatasetResult> {
    const uri = params.textDocument.uri;
    const problem = this.problems.get(uri);
    if (problem) {
      const { line, character } = problem.range.start;
      throw new ResponseError(ErrorCodes.InvalidRequest, `${nameOf(uri)}:${line + 1}:${character + 1}: ${problem.message} Fix the file to score it; scores already shown wait for it.`);
    }
    this.requireParsed(uri);
    if (!this.settings.scoringAllowed) {
      throw new ResponseError(ErrorCodes.InvalidRequest, 'Scoring runs a model and is disabled in untrusted workspaces. Trust the workspace to score.');
    }
    const reporter = params.workDoneToken !== undefined ? this.connection.window.attachWorkDoneProgress(params.workDoneToken) : undefined;
    const abort = new AbortController();
    token.onCancellationRequested(() => abort.abort());
    reporter?.begin('Nuggets: scoring', 0, 'preparing the model and anchors…', true);
    try {
      let anchorsChosen: protocol.AnchorSetInfo | undefined;
      if (!this.anchorsPathFor(uri)) {
        const parsed = this.requireParsed(uri);
        const count = Math.min(DEFAULT_ANCHOR_COUNT, screenAnchors(parsed.records).kept.length);
        reporter?.report(`choosing ${count} anchors (k-means)…`);
        anchorsChosen = await this.chooseAnchors({ textDocument: { uri }, choice: { method: 'kmeans', count } });
      }
      const result = await this.enqueue(() => this.runScoring(uri, null, abort, reporter, params.partialResultToken));
      return anchorsChosen ? { ...result, anchorsChosen } : result;
    } catch (err) {
      throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.describe()) : err;
    } finally {
      reporter?.done();
    }
  }

  /** Scores the document's records without a current score (only those with `onlyIds`, when given). */
  private async runScoring(
    uri: string, onlyIds: Set<string> | null, abort: AbortController, reporter?: WorkDoneProgressReporter, partialToken?: string | number,
  ): Promise<protocol.ScoreDatasetResult> {
    this.running.set(abort, uri);
    try {
      return await this.scoreMissing(uri, onlyIds, abort.signal, reporter, partialToken);
    } finally {
      this.running.delete(abort);
    }
  }

  private async scoreMissing(
    uri: string, onlyIds: Set<string> | null, signal: AbortSignal, reporter?: WorkDoneProgressReporter, partialToken?: string | number,
  ): Promise<protocol.ScoreDatasetResult> {
    const started = Date.now();
    const parsed = this.parsed.get(uri);
    if (!parsed) return { scoredNow: 0, scored: 0, total: 0, cancelled: false, seconds: 0 };
    if (!this.settings.scoringAllowed) throw new NuggetsError('Scoring is disabled in untrusted workspaces.');
    const keyed = await this.keyFor(uri, { signal, ...(reporter ? { reporter } : {}) });
    if (signal.aborted) {
      return {
        scoredNow: 0, scored: keyed ? this.countCurrent(parsed, keyed) : 0, total: parsed.records.length, cancelled: true, seconds: (Date.now() - started) / 1000,
        ...(keyed ? this.runFacts(uri, keyed) : {}),
      };
    }
    if (!keyed) {
      throw new NuggetsError(this.identityError ?? `No anchor set for ${basename(fileURLToPath(uri))}: choose one with Nuggets: Choose Anchors.`);
    }
    // One window at a time scores with a key; meanwhile this one shows the other's scores as they are written.
    if (!(await this.startRun(keyed.key, signal, reporter))) {
      return {
        scoredNow: 0, scored: this.countCurrent(parsed, keyed), total: parsed.records.length, cancelled: true, seconds: (Date.now() - started) / 1000,
        ...this.runFacts(uri, keyed),
      };
    }
    try {
      return await this.scoreUnscored(uri, this.parsed.get(uri) ?? parsed, keyed, onlyIds, signal, started, reporter, partialToken);
    } finally {
      this.book.endRun(keyed.key);
    }
  }

  /** The model and anchors a run scores with, for the client's run log. */
  private runFacts(uri: string, keyed: Keyed): Pick<protocol.ScoreDatasetResult, 'model' | 'anchors'> {
    const { name, fingerprint } = keyed.key.model;
    return {
      model: { name, fingerprint, demo: this.settings.demoModel === true },
      anchors: { description: this.anchorsDescription(uri) ?? keyed.anchors.hash, count: keyed.anchors.anchors.length, hash: keyed.anchors.hash },
    };
  }

  /**
   * Takes the scores file of `key` for a run. While another window (process) scores with the same key,
   * waits for it, showing its scores here as they are written; false when cancelled meanwhile.
   */
  private async startRun(key: ScoringKey, signal: AbortSignal, reporter?: WorkDoneProgressReporter): Promise<boolean> {
    for (let told = false; ; told = true) {
      const held = this.book.startRun(key);
      if (held === true) return true;
      if (!told) {
        const text = `waiting for another VS Code window (process ${held.pid}) that is scoring with the same model and anchors; its scores show here as they are written…`;
        reporter?.report(text);
        this.log(text);
      }
      try {
        await sleep(RUN_WAIT_POLL_MS, signal, () => new Error('cancelled'));
      } catch {
        return false;
      }
      await this.syncFromDisk();
    }
  }

  /** Scores that another window wrote or cleared since they were read, shown in the open documents. */
  private async syncFromDisk(): Promise<void> {
    const changes = this.book.refresh();
    if (changes.whole) {
      await this.republishAll();
      return;
    }
    if (changes.added.size === 0) return;
    for (const parsed of this.parsed.values()) {
      const indices = [...changes.added].flatMap((id) => parsed.byId.get(id) ?? []);
      if (indices.length === 0) continue;
      const keyed = await this.keyFor(parsed.uri);
      if (this.parsed.get(parsed.uri) !== parsed) continue;
      void this.connection.sendNotification(protocol.scoresNotification, {
        uri: parsed.uri, version: parsed.version, full: false, records: indices.map((i) => this.recordScore(parsed, i, keyed)),
        total: parsed.records.length, scored: this.countCurrent(parsed, keyed),
        model: keyed?.key.model.name ?? null, anchorCount: keyed?.anchors.anchors.length ?? null, ...this.sourceOf(parsed.uri),
      });
    }
  }

  private async scoreUnscored(
    uri: string, parsed: ParsedDocument, keyed: Keyed, onlyIds: Set<string> | null, signal: AbortSignal, started: number,
    reporter?: WorkDoneProgressReporter, partialToken?: string | number,
  ): Promise<protocol.ScoreDatasetResult> {
    const current = this.book.scoresOf(keyed.key);
    const todo: Candidate[] = [];
    const queued = new Set<string>();
    for (const r of parsed.records) {
      if (current.has(r.id) || queued.has(r.id) || (onlyIds && !onlyIds.has(r.id))) continue;
      queued.add(r.id);
      todo.push(candidateOf(r));
    }
    let scored = this.countCurrent(parsed, keyed);
    const total = parsed.records.length;
    let done = 0;
    let scoringFrom = Date.now();
    const status = (phase: protocol.ScoringPhase, message?: string): void => {
      const perRecord = done > 0 ? (Date.now() - scoringFrom) / 1000 / done : null;
      void this.connection.sendNotification(protocol.scoringStatusNotification, {
        uri, phase, done, todo: todo.length, scored, total,
        etaSeconds: perRecord === null ? null : Math.round(perRecord * (todo.length - done)), ...(message ? { message } : {}),
      });
    };
    const facts = { ...this.runFacts(uri, keyed), skipped: total - todo.length };
    if (todo.length === 0 || signal.aborted) {
      status(signal.aborted ? 'cancelled' : 'done');
      return { scoredNow: 0, scored, total, cancelled: signal.aborted, seconds: 0, ...facts };
    }
    status('preparing');
    let cancelled: boolean;
    let excludedAnchors: string | undefined;
    try {
      ({ cancelled } = await this.worker.score({
        model: this.settings.model, modelOptions: this.modelOptions(), anchorsHash: keyed.anchors.hash, anchors: keyed.anchors.anchors,
        options: { maxAnchorTokens: this.settings.maxAnchorTokens, batchSize: this.settings.batchSize, separator: keyed.key.separator },
        records: todo,
      }, {
        onPrepared: (excluded) => {
          if (excluded.length > 0) {
            excludedAnchors = describeExcluded(excluded, keyed.anchors.anchors, this.settings.maxAnchorTokens);
            // A notification: a warning needs no answer, and not every client answers window/showMessageRequest.
            void this.connection.sendNotification(ShowMessageNotification.type, { type: MessageType.Warning, message: `Nuggets: ${excludedAnchors}` });
          }
          scoringFrom = Date.now();
          status('scoring');
        },
        onScore: (score) => {
          this.book.append(keyed.key, score); // persisted before it is reported
          done++;
          const now = this.parsed.get(uri);
          const indices = now?.byId.get(score.id) ?? [];
          for (const i of indices) this.carried.get(uri)?.delete(i);
          if (now) {
            scored += indices.length;
            const records = indices.map((i) => this.recordScore(now, i, keyed));
            void this.connection.sendNotification(protocol.scoresNotification, {
              uri, version: now.version, full: false, records, total: now.records.length, scored,
              model: keyed.key.model.name, anchorCount: keyed.anchors.anchors.length, ...this.sourceOf(uri),
            });
            if (partialToken !== undefined) void this.connection.sendProgress(partialResultType, partialToken, records);
          }
          status('scoring');
          reporter?.report(Math.floor((100 * done) / todo.length), `${done}/${todo.length} records${etaText(scoringFrom, done, todo.length)}`);
        },
      }, signal));
    } catch (err) {
      status('failed', (err as Error).message);
      throw err;
    }
    status(cancelled ? 'cancelled' : 'done');
    return { scoredNow: done, scored, total, cancelled, seconds: (Date.now() - started) / 1000, ...facts, ...(excludedAnchors ? { excludedAnchors } : {}) };
  }

  // ------------------------------------------------------------------------------------------
  // Hover and queries

  async hover(params: HoverParams): Promise<Hover | null> {
    const parsed = this.parsed.get(params.textDocument.uri);
    if (!parsed) return null;
    const index = recordAtLine(parsed, params.position.line);
    if (index === undefined) return null;
    const keyed = await this.keyFor(parsed.uri);
    const shown = this.shown(parsed, index, keyed);
    const range = parsed.ranges[index]!;
    const current = keyed && {
      key: keyed.key, source: { model: keyed.key.model.name, anchors: this.anchorsDescription(parsed.uri) ?? keyed.anchors.hash, demo: this.settings.demoModel === true },
    };
    if (!shown) {
      const value = '*Not scored yet.* Run **Nuggets: Score Dataset** to see this record\'s golden score.';
      return { contents: { kind: 'markdown', value: current ? `${value}\n\n${sourceFooter(current.source)}` : value }, range };
    }
    const anchors = shown.key ? this.book.anchorsByHash(shown.key.anchors.hash)?.anchors : undefined;
    const source = scoreSource(shown.key, current);
    return { contents: { kind: 'markdown', value: hoverMarkdown({ score: shown.score, stale: shown.stale, anchors, ...(source ? { source } : {}) }) }, range };
  }

  private requireParsed(uri: string): ParsedDocument {
    const parsed = this.parsed.get(uri);
    if (!parsed) throw new ResponseError(ErrorCodes.InvalidParams, `${uri} is not an open Alpaca dataset (a JSON array or JSON Lines of {"instruction", "input", "output"} records).`);
    return parsed;
  }

  /** The document's records with their current scores (stale ones count as unscored). */
  private async currentOf(uri: string): Promise<{ parsed: ParsedDocument; keyed: Keyed | undefined; scores: (CandidateScore | undefined)[] }> {
    const parsed = this.requireParsed(uri);
    const keyed = await this.keyFor(uri);
    const current = keyed ? this.book.scoresOf(keyed.key) : new Map<string, CandidateScore>();
    return { parsed, keyed, scores: parsed.records.map((r) => current.get(r.id)) };
  }

  async selectionPreview(params: protocol.SelectionPreviewParams): Promise<protocol.SelectionPreviewResult> {
    const { parsed, keyed, scores } = await this.currentOf(params.textDocument.uri);
    const scored = parsed.records.flatMap((record, i) => (scores[i] ? [{ record, score: scores[i]! }] : []));
    const counts = params.rules.map((rule) => {
      try {
        return scored.length === 0 ? 0 : select(scored, rule, rule.diverse !== undefined ? similarityFor(parsed.records, keyed && this.book.embeddingsOf(keyed.key)).source : undefined).chosen.length;
      } catch (err) {
        throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidParams, err.message) : err;
      }
    });
    return { counts, scored: scored.length, total: parsed.records.length };
  }

  async selectSubset(params: protocol.SelectSubsetParams): Promise<protocol.SelectSubsetResult> {
    const uri = params.textDocument.uri;
    if (!uri.startsWith('file:')) throw new ResponseError(ErrorCodes.InvalidRequest, 'Save the dataset to a file first: the subset is written beside it.');
    const { parsed, keyed } = await this.currentOf(uri);
    const source = fileURLToPath(uri);
    try {
      const similarity = params.rule.diverse !== undefined ? similarityFor(parsed.records, keyed && this.book.embeddingsOf(keyed.key)) : undefined;
      const selection = select(pairScores(parsed.records, keyed ? this.book.scoresOf(keyed.key) : new Map(), 'the stored scores of the current model and anchors'), params.rule, similarity?.source);
      const out = subsetPath(source, params.rule);
      assertNotInput(out, [source]);
      writeSubset(out, selection.chosen, params.withScores === true);
      this.anchorChoices.inherit(uri, pathToFileURL(out).toString()); // the subset opens with its scores current
      const cardPath = writeCard({
        subsetPath: out, datasetPath: source, records: parsed.records.length, scoresPaths: [this.book.scoresPathOf(keyed!.key)],
        header: { ...keyed!.key, model: { ...keyed!.key.model, variant: this.settings.variant ?? null }, anchors: { ...keyed!.key.anchors, source: this.anchorsPathFor(uri) ?? null } },
        rule: params.rule, chosen: selection.chosen, baseline: null, seed: null, similarity: selection.similarity ?? null, skippedAsDuplicates: selection.skippedAsDuplicates,
      });
      return {
        path: out, uri: pathToFileURL(out).toString(), kept: selection.chosen.length, total: parsed.records.length, cardPath,
        skippedAsDuplicates: selection.skippedAsDuplicates, ...(similarity?.notice ? { similarityNotice: similarity.notice } : {}),
      };
    } catch (err) {
      if (err instanceof NuggetsError) throw new ResponseError(ErrorCodes.InvalidRequest, `${err.message} Run Nuggets: Score Dataset first.`);
      throw err;
    }
  }

  async clearScores(uri: string): Promise<{ removed: number }> {
    const parsed = this.requireParsed(uri);
    this.abortRuns(uri);
    let removed: number;
    try {
      removed = this.book.clear(new Set(parsed.records.map((r) => r.id)));
    } catch (err) {
      throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.describe()) : err;
    }
    this.carried.delete(uri);
    this.publish(parsed, await this.keyFor(uri));
    return { removed };
  }

  async distribution(params: protocol.DistributionParams): Promise<protocol.DistributionResult> {
    const { parsed, keyed, scores } = await this.currentOf(params.textDocument.uri);
    const bins = Math.max(1, Math.min(200, Math.floor(params.bins ?? 20)));
    const stale = parsed.records.filter((r, i) => !scores[i] && this.shown(parsed, r.index, keyed)).length;
    return distributionOf(parsed.records.length, scores, stale, bins);
  }

  async nearestNeighbours(params: protocol.NeighboursParams): Promise<protocol.NeighboursResult> {
    const { parsed, keyed } = await this.currentOf(params.textDocument.uri);
    const embeddings = keyed ? this.book.embeddingsOf(keyed.key) : undefined;
    if (!embeddings || !parsed.records[params.index] || !embeddings.has(parsed.records[params.index]!.id)) {
      return { index: params.index, neighbours: [], note: 'No embedding is stored for this record: score it with a local model.' };
    }
    const found = nearestNeighbours(parsed.records, embeddings, params.index, Math.max(1, Math.min(50, params.count ?? 5)));
    return { index: params.index, neighbours: found.map((n) => ({ ...n, instruction: shorten(parsed.records[n.index]!.instruction, 120) })) };
  }

  async goldenIfdScatter(uri: string): Promise<protocol.ScatterResult> {
    const { parsed, scores } = await this.currentOf(uri);
    return { xLabel: 'Golden score', yLabel: 'IFD', points: goldenIfdScatter(parsed.records, scores) };
  }

  async tablePage(params: protocol.TablePageParams): Promise<protocol.TablePageResult> {
    const { parsed, keyed, scores } = await this.currentOf(params.textDocument.uri);
    let rows = parsed.records.map((r, i) => ({ r, index: r.index, ...(scores[i] ? { score: scores[i] } : {}) }));
    if (params.minScore !== undefined) rows = rows.filter(({ score }) => score !== undefined && score.goldenScore >= params.minScore!);
    rows.sort(compareRows(params.sortBy ?? 'index', params.descending === true));
    const offset = Math.max(0, Math.floor(params.offset));
    const limit = Math.max(0, Math.min(1000, Math.floor(params.limit)));
    return {
      total: rows.length, offset,
      rows: rows.slice(offset, offset + limit).map(({ r }) => {
        const shown = this.recordScore(parsed, r.index, keyed);
        return {
          index: r.index, id: r.id, instruction: shorten(r.instruction, 200), input: shorten(r.input, 120), output: shorten(r.output, 200),
          range: shown.range, stale: shown.stale, ...(shown.score ? { score: shown.score } : {}), signals: signalCells(shown.score),
        };
      }),
    };
  }

  async anchorEffects(uri: string): Promise<protocol.AnchorEffectsResult> {
    const { keyed, scores } = await this.currentOf(uri);
    if (!keyed) return { candidates: 0, anchors: [], anchorSet: null };
    const present = scores.filter((s): s is CandidateScore => s !== undefined);
    const anchors = anchorEffectsOf(keyed.anchors.anchors, present);
    const { hash } = keyed.anchors;
    const count = keyed.anchors.anchors.length;
    return {
      candidates: new Set(present.map((s) => s.id)).size, anchors,
      anchorSet: { hash, count, path: this.book.anchorsPath(hash), label: this.anchorLabel(uri, hash, count) },
    };
  }

  async compareModels(params: protocol.CompareModelsParams): Promise<protocol.CompareModelsResult> {
    if (!this.settings.scoringAllowed) throw new ResponseError(ErrorCodes.InvalidRequest, 'Comparing models runs them: it is disabled in untrusted workspaces.');
    const parsed = this.requireParsed(params.textDocument.uri);
    const keyed = await this.keyFor(parsed.uri);
    if (!keyed) throw new ResponseError(ErrorCodes.InvalidRequest, 'The dataset has no anchor set yet: run Nuggets: Choose Anchors or Score Dataset first.');
    const sample = chooseRandom(parsed.records, Math.max(1, Math.min(params.sample, parsed.records.length)), 0);
    const options = this.modelOptions();
    const otherOptions: ModelOptions = { ...options, ...(params.otherVariant ? { variant: params.otherVariant } : {}) };
    if (!params.otherVariant) delete otherOptions.variant;
    try {
      const { agreement, report } = await this.worker.agree({
        models: [this.settings.model, params.other],
        modelOptions: [options, otherOptions],
        anchors: keyed.anchors.anchors, options: { maxAnchorTokens: this.settings.maxAnchorTokens, batchSize: this.settings.batchSize, separator: keyed.key.separator },
        records: sample.map(candidateOf), threshold: params.minScore ?? 0.85,
      });
      const { goldenSpearman, ifdSpearman, top10Overlap, decisionAgreement, verdict } = agreement;
      return { sample: sample.length, goldenSpearman, ifdSpearman, top10Overlap, decisionAgreement, verdict, report };
    } catch (err) {
      if (err instanceof NuggetsError) throw new ResponseError(ErrorCodes.InvalidRequest, err.message);
      throw err;
    }
  }

  /** The anchor set's name for people: how the document's anchors were chosen, or for an earlier set (a stale score's) its size. */
  private anchorLabel(uri: string, hash: string, count: number): string {
    const description = this.anchorsFor(uri)?.hash === hash ? this.anchorsDescription(uri) : null;
    return description ?? `an earlier set of ${count} anchors`;
  }

  async recordEffects(params: protocol.RecordEffectsParams): Promise<protocol.RecordEffectsResult> {
    const uri = params.textDocument.uri;
    const parsed = this.requireParsed(uri);
    const record = parsed.records[params.index];
    if (!record) throw new ResponseError(ErrorCodes.InvalidParams, `The dataset has no record ${params.index + 1} (it has ${parsed.records.length}).`);
    const shown = this.shown(parsed, params.index, await this.keyFor(uri));
    const anchors = shown?.key ? this.book.anchorsByHash(shown.key.anchors.hash) : undefined;
    return {
      index: record.index, id: record.id, instruction: shorten(record.instruction, 200), range: parsed.ranges[record.index]!,
      stale: shown?.stale ?? false, ...(shown ? { score: summaryOf(shown.score) } : {}),
      anchorSet: anchors ? { hash: anchors.hash, count: anchors.anchors.length, label: this.anchorLabel(uri, anchors.hash, anchors.anchors.length) } : null,
      effects: shown && anchors ? recordEffectsOf(shown.score, anchors.anchors) : [],
    };
  }

  async exportScores(params: protocol.ExportScoresParams): Promise<protocol.ExportScoresResult> {
    const uri = params.textDocument.uri;
    const { parsed, keyed, scores } = await this.currentOf(uri);
    try {
      if (uri.startsWith('file:')) assertNotInput(params.path, [fileURLToPath(uri)]);
      const records = parsed.records.map((r, i) => ({ index: r.index, id: r.id, score: scores[i] }));
      writeFileAtomic(params.path, formatScores(records, keyed?.anchors.anchors.length ?? 0, params.format, params.withDeltas));
    } catch (err) {
      throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.message) : err;
    }
    return { path: params.path, records: parsed.records.length, scored: scores.filter((s) => s !== undefined).length };
  }

  suggestedModels(): protocol.SuggestedModel[] {
    return SUGGESTED_HUB_MODELS.map((m) => ({ spec: m.spec, variants: [...m.variants], description: m.description }));
  }

  // ------------------------------------------------------------------------------------------

  private log(message: unknown): void {
    this.connection.console.log(`[nuggets] ${message instanceof Error ? message.stack ?? message.message : String(message)}`);
  }

  /** Stops the runs scoring `uri` (all runs when omitted); their completed records stay stored. */
  private abortRuns(uri?: string): void {
    for (const [run, runUri] of this.running) if (uri === undefined || runUri === uri) run.abort();
  }

  async dispose(): Promise<void> {
    this.watcher?.close();
    clearTimeout(this.syncTimer);
    this.abortRuns();
    this.book.close();
    await this.worker.dispose();
  }
}

const partialResultType = new ProgressType<protocol.RecordScore[]>();

type Identified = { identity: { name: string; fingerprint: string } } | { failure: string; retry: boolean };

/** A Score Dataset run that may download the model: its progress and cancellation. */
interface DownloadRun {
  signal: AbortSignal;
  reporter?: WorkDoneProgressReporter;
}

/** "downloading hf:o/n: onnx/model.onnx 3.1 of 11.0 MB" */
export function downloadText(model: string, p: DownloadProgress): string {
  const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
  const size = p.total !== undefined ? ` (${mb(p.total)} MB)` : '';
  switch (p.phase) {
    case 'checking': return `${model}: checking ${p.file}…`;
    case 'downloading': return `downloading ${model}: ${p.file} ${mb(p.received)}${p.total !== undefined ? ` of ${mb(p.total)}` : ''} MB`;
    case 'verifying': return `${model}: verifying ${p.file}${size}…`;
    case 'cached': return `${model}: ${p.file} already downloaded${p.unverified ? ` (${p.message})` : ''}`;
    case 'retrying': return `${model}: retrying ${p.file}${p.message ? ` (${p.message})` : ''}…`;
    case 'offline': return `${model}: ${p.message ?? 'using the cache'}`;
    case 'done': return `${model}: ${p.file} downloaded${size}${p.unverified ? `, ${p.message}` : ', verified'}`;
  }
}



function candidateOf(r: { index: number; id: string; instruction: string; input: string; output: string }): Candidate {
  return { index: r.index, id: r.id, instruction: r.instruction, input: r.input, output: r.output };
}

function etaText(scoringFrom: number, done: number, todo: number): string {
  if (done === 0) return '';
  const seconds = Math.round(((Date.now() - scoringFrom) / 1000 / done) * (todo - done));
  return ` · ETA ${protocol.formatDuration(seconds)}`;
}


function subsetPath(source: string, rule: protocol.SelectionRule): string {
  const label = ruleLabel(rule);
  const stem = join(dirname(source), basename(source, extname(source)));
  for (let n = 1; ; n++) {
    const path = `${stem}.golden-${label}${n > 1 ? `-${n}` : ''}.json`;
    if (!existsSync(path)) return path;
  }
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
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
    const file = await open(path, 'r');
    let head: Buffer;
    try {
      const { size } = await file.stat();
      if (size > READ_AHEAD_MAX_BYTES) return undefined;
      head = Buffer.alloc(Math.min(size, 4 * HEAD_LENGTH)); // UTF-8: at most 4 bytes a character
      await file.read(head, 0, head.length, 0);
    } finally {
      await file.close();
    }
    if (!mayBeAlpaca(head.toString('utf8'))) return undefined; // its trimStart() also drops a byte order mark
    const text = await readFile(path, 'utf8');
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    return undefined;
  }
}

/** Whether the text could still be a dataset being edited (so its last scores stay shown). */
function looksLikeJsonArrayOrLines(text: string): boolean {
  const head = text.trimStart();
  return head.startsWith('[') || head.startsWith('{"instruction"') || head.startsWith('{ "instruction"');
}
