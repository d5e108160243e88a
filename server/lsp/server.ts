/**
 * The Nuggets language server: its parts wired together, and the requests that span them. The parts,
 * one concern each:
 *   documents.ts             the open datasets, their parses and the scores shown for their records
 *   model-identity.ts        which model scores (its name and fingerprint), downloaded when a run needs it
 *   anchors-per-document.ts  the anchor set each document is scored against
 *   scoring-keys.ts          the two above and the settings, as the key a document's scores are stored under
 *   scoring-runs.ts          scoring runs through the worker, one at a time, in order
 *   dashboard-requests.ts    the dashboard's queries (pure functions in dashboard-queries.ts)
 *   model-choices.ts         what Choose Model offers from this machine (the models Ollama has pulled)
 * main.ts connects them to LSP messages.
 */
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Connection, Hover, HoverParams } from 'vscode-languageserver/node';
import { CancellationToken, ErrorCodes, LSPErrorCodes, MessageType, ResponseError, ShowMessageNotification } from 'vscode-languageserver/node';
import { untilAborted } from '../io/abort';
import { anchorSet, describeSkipped, readAnchors, sampleRecords, screenAnchors, type AnchorSet } from '../records/anchors';
import { datasetHash, writeCard } from '../selection/card';
import { similarityFor, type SimilaritySource } from '../selection/diverse';
import { NuggetsError } from '../io/errors';
import { assertNotInput } from '../io/files';
import { SUGGESTED_HUB_MODELS } from '../model/hub';
import * as protocol from '../protocol';
import { countProblems, describeProblem } from '../records/problems';
import { pairScores, ruleLabel, select, writeSubset } from '../selection/select';
import { writeParquetRecords } from '../records/parquet';
import { nameOf, originOf } from './anchor-choice';
import { AnchorsPerDocument } from './anchors-per-document';
import { checkModelToCompare, comparisonResult } from './compare-models';
import { DashboardRequests } from './dashboard-requests';
import { ParquetTables } from './parquet-tables';
import { OpenDocuments } from './documents';
import { hoverMarkdown, problemLine, scoreSource, sourceFooter, turnsMarkdown } from './markdown';
import { ollamaModels } from './model-choices';
import { ModelIdentity } from './model-identity';
import { isUnscorable, recordAtLine, scorableCount, scorableRecords, unscorableProblems, type ParsedDocument } from './parsed';
import { writeReplayFiles } from './replay-files';
import { ScoreBook } from './score-book';
import { ScoringKeys, type Keyed } from './scoring-keys';
import { candidateOf, ScoringRuns, TemplateRefused } from './scoring-runs';
import type { ModelOptions } from './worker-messages';
import { ScoringWorker } from './worker';

/** Anchors chosen for a dataset that has none when it is first scored (the paper's setting). */
export const DEFAULT_ANCHOR_COUNT = 100;
/** How soon a change another window made to the scores folder is read. */
const SYNC_DELAY_MS = 100;

export class NuggetsServer {
  readonly documents: OpenDocuments;
  readonly dashboard: DashboardRequests;
  /** The Parquet files open in the table editor. */
  readonly tables: ParquetTables;
  private readonly book: ScoreBook;
  private readonly worker: ScoringWorker;
  private readonly anchors: AnchorsPerDocument;
  private readonly keys: ScoringKeys;
  private readonly runs: ScoringRuns;
  private watcher: FSWatcher | undefined;
  private syncTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connection: Connection,
    storagePath: string,
    private settings: protocol.ServerSettings,
  ) {
    const log = (message: unknown): void => this.log(message);
    const settingsNow = (): protocol.ServerSettings => this.settings;
    this.worker = new ScoringWorker((message) => {
      this.log(`warning: ${message}`);
      // A notification: a warning needs no answer, and not every client answers window/showMessageRequest.
      void connection.sendNotification(ShowMessageNotification.type, { type: MessageType.Warning, message: `Nuggets: ${message}` });
    });
    this.book = new ScoreBook(storagePath);
    this.anchors = new AnchorsPerDocument(join(storagePath, 'documents.json'), this.book, () => this.settings.anchors, log);
    const identity = new ModelIdentity(this.worker, log, join(storagePath, 'models.json'));
    this.keys = new ScoringKeys(identity, this.anchors, settingsNow, storagePath, this.worker);
    this.documents = new OpenDocuments(connection, this.book, this.keys, (parsed, keyed, ids) => this.rescoreEdited(parsed, keyed, ids), log);
    this.tables = new ParquetTables((params) => void connection.sendNotification(protocol.tableIndexNotification, params), () => this.keys.recordFormat());
    this.documents.tables = this.tables;
    this.keys.conversationsIn = (uri) => this.documents.holdsConversations(uri);
    this.keys.onKeyed = (uri, keyed) => this.documents.keyed(uri, keyed);
    this.runs = new ScoringRuns(connection, this.documents, this.keys, this.book, this.worker, settingsNow, log);
    this.dashboard = new DashboardRequests(this.documents, this.keys, this.book, this.tables);
    // Stored scores were shown under the model's remembered identity; the lookup found another, or none.
    identity.onChanged = () => void this.documents.publishAll().catch(log);
    try {
      // Another window sharing this storage writes or clears scores: shown here shortly after.
      this.watcher = watch(this.book.folder, () => {
        clearTimeout(this.syncTimer);
        this.syncTimer = setTimeout(() => void this.documents.syncFromDisk().catch(log), SYNC_DELAY_MS);
      });
    } catch (err) {
      this.log(`scores written by other windows show when this one next reads them (cannot watch ${this.book.folder}: ${(err as Error).message})`);
    }
  }

  async settingsChanged(settings: protocol.ServerSettings): Promise<void> {
    const before = this.settings;
    this.settings = settings;
    this.runs.abort(); // a run under the old key would only add stale scores
    const started = Date.now();
    await this.documents.publishAll();
    if ((before.format ?? 'auto') !== (settings.format ?? 'auto')) await this.documents.reparseAll();
    const modelChanged = before.model !== settings.model || (before.variant ?? null) !== (settings.variant ?? null);
    const anchorsChanged = before.anchors !== settings.anchors;
    if (!modelChanged && !anchorsChanged) return;
    const was = modelChanged ? `model was ${before.model}${before.variant ? ` (${before.variant})` : ''}` : `anchors setting was ${before.anchors ?? 'none (k-means of each file)'}`;
    for (const parsed of this.documents.all()) {
      const keyed = await this.keys.keyFor(parsed.uri);
      const current = keyed ? this.documents.countCurrent(parsed, keyed) : 0;
      this.activity(modelChanged ? 'model' : 'anchors', parsed.uri, keyed && this.keys.runFacts(parsed.uri, keyed), `${current}/${parsed.records.length} current, ${parsed.records.length - current} to score; ${was}`, started,
        keyed ? undefined : `the model cannot be used: ${this.keys.model.error ?? 'no anchor set'}`);
    }
  }

  /** Anchor choices follow renamed and moved files; open documents under them are shown with them. */
  async filesRenamed(files: readonly protocol.FileRename[]): Promise<void> {
    this.anchors.choices.renamed(files);
    await this.documents.publishAll();
  }

  // ------------------------------------------------------------------------------------------
  // Parquet files in the table editor

  /** A Parquet file opened in the table editor: what its footer says; a file that is no readable Parquet is refused with what is wrong. */
  async openTable(uri: string): Promise<protocol.TableInfo> {
    try {
      const info = await this.tables.open(uri);
      this.documents.tableOpened(uri, this.tables.holdsConversations(uri));
      return info;
    } catch (err) {
      throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.describe()) : err;
    }
  }

  /** The file's last table editor closed: its rows, index and whole read are let go, its scores cleared on the client. */
  closeTable(uri: string): void {
    this.runs.abort(uri);
    this.tables.close(uri);
    this.documents.closed(uri);
  }

  // ------------------------------------------------------------------------------------------
  // Anchors and scoring

  async chooseAnchors(params: protocol.ChooseAnchorsParams): Promise<protocol.AnchorSetInfo> {
    const uri = params.textDocument.uri;
    const parsed = await this.documents.ready(uri);
    const { choice } = params;
    const started = Date.now();
    let set: AnchorSet;
    let skipped: string | undefined;
    try {
      if (choice.method === 'file') {
        set = readAnchors(choice.path);
        if (set.skipped) skipped = describeSkipped(set.skipped);
      } else {
        // Records that cannot be scored are never anchors; a conversation anchor keeps its turns.
        const indices = await this.worker.chooseAnchors(choice.method, choice.count, choice.seed ?? 0, scorableRecords(parsed).map(candidateOf));
        set = anchorSet(indices.map((i) => parsed.records[i]!).map(({ instruction, input, output, turns }) => ({ instruction, input, output, ...(turns ? { turns } : {}) })));
        const screened = screenAnchors(scorableRecords(parsed)).skipped;
        if (screened.length > 0) skipped = describeSkipped(screened);
      }
    } catch (err) {
      throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.describe()) : err;
    }
    this.runs.abort(uri);
    const path = this.anchors.assign(uri, set, originOf(choice, uri, set.anchors.length));
    const current = this.documents.get(uri) ?? parsed;
    const keyed = await this.keys.keyFor(uri);
    this.documents.publish(current, keyed);
    const staleRecords = current.records.filter((r) => this.documents.shown(current, r.index, keyed)?.stale).length;
    this.activity('anchors', uri, keyed && this.keys.runFacts(uri, keyed), `chose ${set.anchors.length} anchors (${choice.method}); ${staleRecords} scores now stale${skipped ? `; ${skipped}` : ''}`, started);
    return {
      hash: set.hash, count: set.anchors.length, path, staleRecords, description: this.anchors.describe(uri) ?? path,
      ...(skipped ? { skipped } : {}),
    };
  }

  async scoreDataset(params: protocol.ScoreDatasetParams, token: CancellationToken): Promise<protocol.ScoreDatasetResult> {
    const uri = params.textDocument.uri;
    const abort = new AbortController();
    token.onCancellationRequested(() => abort.abort());
    const reporter = params.workDoneToken !== undefined ? this.connection.window.attachWorkDoneProgress(params.workDoneToken) : undefined;
    reporter?.begin('Nuggets: scoring', 0, 'preparing the model and anchors…', true);
    // A GGUF model's import (begun when the document opened, or when the run looks the model up) shows meanwhile.
    const importsShown = reporter && this.keys.model.showImports(reporter);
    try {
      // The document's parse may wait on a model lookup that hangs: Cancel ends this wait too.
      await untilAborted(this.documents.settled(uri), abort.signal);
      if (abort.signal.aborted) throw new ResponseError(LSPErrorCodes.RequestCancelled, 'Scoring was cancelled before it started.');
      const problem = this.documents.problemOf(uri);
      if (problem) {
        const { line, character } = problem.range.start;
        throw new ResponseError(ErrorCodes.InvalidRequest, `${nameOf(uri)}:${line + 1}:${character + 1}: ${problem.message} Fix the file to score it; scores already shown wait for it.`);
      }
      this.documents.require(uri);
      if (!this.settings.scoringAllowed) {
        throw new ResponseError(ErrorCodes.InvalidRequest, 'Scoring runs a model and is disabled in untrusted workspaces. Trust the workspace to score.');
      }
      let anchorsChosen: protocol.AnchorSetInfo | undefined;
      if (!this.anchors.pathFor(uri)) {
        const parsed = this.documents.require(uri);
        const count = Math.min(DEFAULT_ANCHOR_COUNT, screenAnchors(scorableRecords(parsed)).kept.length);
        reporter?.report(`choosing ${count} anchors (k-means)…`);
        anchorsChosen = await this.chooseAnchors({ textDocument: { uri }, choice: { method: 'kmeans', count } });
      }
      const result = await this.runs.score(uri, null, abort, {
        ...(reporter ? { reporter } : {}), ...(params.partialResultToken !== undefined ? { partialToken: params.partialResultToken } : {}),
      });
      return anchorsChosen ? { ...result, anchorsChosen } : result;
    } catch (err) {
      if (err instanceof TemplateRefused && err.refusal.noChatTemplate) {
        throw new ResponseError<protocol.NoChatTemplateData>(ErrorCodes.InvalidRequest, `${err.message} Score with the built-in ChatML template (Use ChatML sets nuggets.template to chatml for this workspace), or set nuggets.template to a .jinja file.`, { noChatTemplate: true });
      }
      throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.describe()) : err;
    } finally {
      importsShown?.();
      reporter?.done();
    }
  }

  /** An edited record of a scored dataset is rescored alone, after the edit settles. */
  private rescoreEdited(parsed: ParsedDocument, keyed: Keyed | undefined, ids: string[]): void {
    if (!keyed || !this.settings.scoringAllowed || this.documents.countCurrent(parsed, keyed) === 0) return;
    const started = Date.now();
    void this.runs.score(parsed.uri, new Set(ids), new AbortController()).then(
      (result) => this.activity('rescore', parsed.uri, result, `${ids.length} edited record${ids.length === 1 ? '' : 's'}: scored ${result.scoredNow}; ${result.scored}/${result.total} current`, started, result.cancelled ? 'cancelled, completed records kept' : undefined),
      (err) => {
        this.activity('rescore', parsed.uri, this.keys.runFacts(parsed.uri, keyed), `${ids.length} edited record${ids.length === 1 ? '' : 's'}`, started, `failed: ${(err as Error).message}`);
        this.log(err);
      },
    );
  }

  async clearScores(uri: string): Promise<{ removed: number }> {
    const parsed = await this.documents.ready(uri);
    this.runs.abort(uri);
    // Scores another window wrote since this one last looked are shown in every open document first: the clear
    // reads them too, and would otherwise take them in unseen.
    await this.documents.syncFromDisk();
    let removed: number;
    try {
      removed = this.book.clear(new Set(parsed.records.map((r) => r.id)));
    } catch (err) {
      throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidRequest, err.describe()) : err;
    }
    this.documents.forgetEdits(uri);
    this.documents.publish(parsed, await this.keys.keyFor(uri));
    return { removed };
  }

  // ------------------------------------------------------------------------------------------
  // Hover, selection, comparison

  async hover(params: HoverParams): Promise<Hover | null> {
    await this.documents.settled(params.textDocument.uri);
    const parsed = this.documents.get(params.textDocument.uri);
    if (!parsed) return null;
    const index = recordAtLine(parsed, params.position.line);
    if (index === undefined) return null;
    const keyed = await this.keys.keyFor(parsed.uri);
    const shown = this.documents.shown(parsed, index, keyed);
    const range = parsed.ranges[index]!;
    const current = keyed && { key: keyed.key, source: this.keys.scoredWith(parsed.uri, keyed) };
    const problem = parsed.problems.get(index);
    const why = problem && describeProblem(problem);
    const turns = parsed.records[index]!.turns;
    if (!shown) {
      const unscorable = isUnscorable(parsed, index);
      const value = [
        unscorable ? `*Cannot be scored* (index ${index}).` : `*Not scored yet* (index ${index}). Run **Nuggets: Score Dataset** to see this record\'s golden score.`,
        ...(why ? [problemLine(why)] : []), ...(turns ? [turnsMarkdown(turns, !unscorable)] : []), ...(current ? [sourceFooter(current.source)] : []),
      ].join('\n\n');
      return { contents: { kind: 'markdown', value }, range };
    }
    const anchors = shown.key ? this.book.anchorsByHash(shown.key.anchors.hash)?.anchors : undefined;
    const source = scoreSource(shown.key, current);
    return { contents: { kind: 'markdown', value: hoverMarkdown({ score: shown.score, stale: shown.stale, anchors, index, ...(source ? { source } : {}), ...(why ? { problem: why } : {}), ...(turns ? { turns } : {}) }) }, range };
  }

  async selectionPreview(params: protocol.SelectionPreviewParams): Promise<protocol.SelectionPreviewResult> {
    const { parsed, keyed, scores } = await this.documents.currentOf(params.textDocument.uri);
    const scored = parsed.records.flatMap((record, i) => (scores[i] ? [{ record, score: scores[i]! }] : []));
    // Records that cannot be scored are not waited for: they are never selected.
    // Built once for all the diverse rules: it reads the embeddings file, or computes TF-IDF over every record.
    let similarity: SimilaritySource | undefined;
    const similarityNow = (): SimilaritySource => (similarity ??= similarityFor(parsed.records, keyed && this.book.embeddingsOf(keyed.key)).source);
    const counts = params.rules.map((rule) => {
      try {
        return scored.length === 0 ? 0 : select(scored, rule, rule.diverse !== undefined ? similarityNow() : undefined).chosen.length;
      } catch (err) {
        throw err instanceof NuggetsError ? new ResponseError(ErrorCodes.InvalidParams, err.message) : err;
      }
    });
    return { counts, scored: scored.length, total: scorableCount(parsed) };
  }

  async selectSubset(params: protocol.SelectSubsetParams): Promise<protocol.SelectSubsetResult> {
    const uri = params.textDocument.uri;
    if (!uri.startsWith('file:')) throw new ResponseError(ErrorCodes.InvalidRequest, 'Save the dataset to a file first: the subset is written beside it.');
    const started = Date.now();
    const { parsed, keyed } = await this.documents.currentOf(uri);
    const source = fileURLToPath(uri);
    try {
      const similarity = params.rule.diverse !== undefined ? similarityFor(parsed.records, keyed && this.book.embeddingsOf(keyed.key)) : undefined;
      const picked = select(pairScores(scorableRecords(parsed), keyed ? this.book.scoresOf(keyed.key) : new Map(), 'the stored scores of the current model and anchors'), params.rule, similarity?.source);
      // The records that cannot be scored are left out too, and counted with the other problem records.
      const selection = { ...picked, problemsLeftOut: [...picked.problemsLeftOut, ...unscorableProblems(parsed)] };
      // Parquet in, Parquet out: the source's schema and every column, as `nuggets select --out subset.parquet` writes it.
      const parquet = this.tables.has(uri);
      const out = subsetPath(source, params.rule, parquet ? '.parquet' : '.json');
      assertNotInput(out, [source]);
      if (parquet) {
        const chosen = [...selection.chosen].sort((a, b) => a.record.index - b.record.index);
        writeParquetRecords(out, this.tables.schemaOf(uri), chosen.map((s) => s.record.original), params.withScores === true ? chosen.map((s) => s.score.goldenScore) : undefined);
      } else {
        writeSubset(out, selection.chosen, params.withScores === true);
      }
      this.anchors.choices.inherit(uri, pathToFileURL(out).toString()); // the subset opens with its scores current
      // The card names files beside the subset, not in the extension's storage: `nuggets select --card` replays from the workspace alone.
      const replay = writeReplayFiles(out, this.book.scoresPathOf(keyed!.key), new Set(parsed.records.map((r) => r.id)), this.anchors.pathFor(uri) ?? null,
        params.rule.diverse !== undefined, [source]);
      const cardPath = writeCard({
        subsetPath: out, datasetPath: source, datasetSha256: datasetHash(source), records: parsed.records.length, scoresPaths: [replay.scores],
        header: { ...keyed!.key, model: { ...keyed!.key.model, variant: this.settings.variant ?? null }, anchors: { ...keyed!.key.anchors, source: replay.anchors && basename(replay.anchors) } },
        rule: params.rule, chosen: selection.chosen, baseline: null, seed: null, similarity: selection.similarity ?? null, skippedAsDuplicates: selection.skippedAsDuplicates,
        problemsLeftOut: selection.problemsLeftOut.length,
      });
      this.activity('subset', uri, keyed && this.keys.runFacts(uri, keyed), `wrote ${selection.chosen.length} of ${parsed.records.length} records (${ruleLabel(params.rule)}${params.withScores ? ', with scores' : ''}) to ${out}`
        + `${selection.problemsLeftOut.length > 0 ? `, ${selection.problemsLeftOut.length} problem records left out` : ''}`, started);
      return {
        path: out, uri: pathToFileURL(out).toString(), kept: selection.chosen.length, total: parsed.records.length, cardPath,
        skippedAsDuplicates: selection.skippedAsDuplicates, ...(similarity?.notice ? { similarityNotice: similarity.notice } : {}),
        ...(selection.problemsLeftOut.length > 0 ? { problemsLeftOut: countProblems(selection.problemsLeftOut) } : {}),
      };
    } catch (err) {
      if (err instanceof NuggetsError) throw new ResponseError(ErrorCodes.InvalidRequest, `${err.message} Run Nuggets: Score Dataset first.`);
      throw err;
    }
  }

  /**
   * Compare Models: the other model is opened first (checkModelToCompare), then both score the same sample. Every
   * comparison gets its [compare] line in the Nuggets output channel, a refused, failed or cancelled one included.
   */
  async compareModels(params: protocol.CompareModelsParams, token: CancellationToken): Promise<protocol.CompareModelsResult> {
    const started = Date.now();
    const other = `${params.other}${params.otherVariant ? ` (${params.otherVariant})` : ''}`;
    let facts: Pick<protocol.ScoreDatasetResult, 'model' | 'anchors'> | undefined;
    let sampled = 0;
    const abort = new AbortController();
    token.onCancellationRequested(() => abort.abort());
    try {
      if (!this.settings.scoringAllowed) throw new ResponseError(ErrorCodes.InvalidRequest, 'Comparing models runs them: it is disabled in untrusted workspaces.');
      const parsed = await this.documents.ready(params.textDocument.uri);
      const keyed = await this.keys.keyFor(parsed.uri);
      if (!keyed) throw new ResponseError(ErrorCodes.InvalidRequest, 'The dataset has no anchor set yet: run Nuggets: Choose Anchors or Score Dataset first.');
      facts = this.keys.runFacts(parsed.uri, keyed);
      const scorable = scorableRecords(parsed);
      const sample = sampleRecords(scorable, Math.max(1, Math.min(params.sample, scorable.length)), 0);
      sampled = sample.length;
      const options = this.keys.modelOptions();
      // The other model runs as fp32 unless a variant is given for it.
      const { variant: _ownVariant, ...unvaried } = options;
      const otherOptions: ModelOptions = { ...unvaried, ...(params.otherVariant ? { variant: params.otherVariant } : {}) };
      await checkModelToCompare(this.worker, params.other, otherOptions, abort.signal);
      const { agreement, report, names, constant } = await this.worker.agree({
        models: [this.settings.model, params.other],
        modelOptions: [options, otherOptions],
        anchors: keyed.anchors.anchors, options: { maxAnchorTokens: this.settings.maxAnchorTokens, batchSize: this.settings.batchSize, separator: keyed.key.separator },
        records: sample.map(candidateOf), threshold: params.minScore ?? 0.85,
      }, abort.signal);
      const result = comparisonResult(agreement, names, report, constant);
      this.activity('compare', parsed.uri, facts, `compared with ${other} on ${sample.length} records: `
        + `golden Spearman ${result.goldenSpearman === null ? `undefined (${result.goldenSpearmanUndefined})` : result.goldenSpearman.toFixed(3)}, top-10% overlap ${result.top10Overlap.toFixed(2)}`, started, result.verdict);
      return result;
    } catch (err) {
      const tried = `compare with ${other}${sampled > 0 ? ` on ${sampled} records` : ''}`;
      if (abort.signal.aborted) {
        this.activity('compare', params.textDocument.uri, facts, tried, started, 'cancelled');
        throw new ResponseError(LSPErrorCodes.RequestCancelled, 'Compare Models was cancelled.');
      }
      const message = err instanceof ResponseError || err instanceof NuggetsError ? err.message : String((err as Error)?.message ?? err);
      this.activity('compare', params.textDocument.uri, facts, tried, started, `${err instanceof ResponseError ? 'refused' : 'failed'}: ${message}`);
      if (err instanceof NuggetsError) throw new ResponseError(ErrorCodes.InvalidRequest, err.message);
      throw err;
    }
  }

  /** Export Scores (the dashboard's), with its line in the Nuggets output channel. */
  async exportScores(params: protocol.ExportScoresParams): Promise<protocol.ExportScoresResult> {
    const started = Date.now();
    const result = await this.dashboard.exportScores(params);
    const uri = params.textDocument.uri;
    const parsed = this.documents.get(uri);
    const keyed = parsed && (await this.keys.keyFor(uri));
    this.activity('export', uri, keyed && this.keys.runFacts(uri, keyed), `wrote ${result.records} rows (${result.scored} scored) as ${params.format === 'csv' ? 'CSV' : 'JSON Lines'}${params.withDeltas ? ' with every delta' : ''} to ${result.path}`, started);
    return result;
  }

  suggestedModels(): protocol.SuggestedModel[] {
    return SUGGESTED_HUB_MODELS.map((m) => ({ spec: m.spec, variants: [...m.variants], description: m.description }));
  }

  ollamaModels(): protocol.OllamaModels {
    return ollamaModels();
  }

  // ------------------------------------------------------------------------------------------

  /** One line in the Nuggets output channel (protocol.runLine): work done beside Score Dataset runs, which the client logs. */
  activity(kind: string, uri: string, facts: Pick<protocol.ScoreDatasetResult, 'model' | 'anchors'> | undefined, done: string, started: number, outcome?: string): void {
    const line = protocol.runLine(kind, nameOf(uri), { ...(facts?.model ? { model: facts.model } : {}), ...(facts?.anchors ? { anchors: facts.anchors } : {}), done, seconds: (Date.now() - started) / 1000, ...(outcome ? { outcome } : {}) });
    if (outcome?.startsWith('refused') || outcome?.startsWith('failed')) this.connection.console.warn(line);
    else this.connection.console.info(line);
  }

  /** A request refused with a message for the user (not cancelled, not a bug): logged as a `[refused]` line. */
  async refused(request: string, uri: string | undefined, message: string, started: number): Promise<void> {
    const parsed = uri ? this.documents.get(uri) : undefined;
    const keyed = parsed ? await untilAborted(this.keys.keyFor(parsed.uri), AbortSignal.timeout(2000)) : undefined;
    this.activity('refused', uri ?? 'no file', keyed ? this.keys.runFacts(parsed!.uri, keyed) : undefined, request, started, `refused: ${message}`);
  }

  private log(message: unknown): void {
    this.connection.console.log(`[nuggets] ${message instanceof Error ? message.stack ?? message.message : String(message)}`);
  }

  async dispose(): Promise<void> {
    this.watcher?.close();
    clearTimeout(this.syncTimer);
    this.runs.abort();
    this.book.close();
    await this.worker.dispose();
  }
}

/** Beside the dataset: data.golden-top25.json, then data.golden-top25-2.json, … (never an existing file); `.parquet` for a Parquet file. */
function subsetPath(source: string, rule: protocol.SelectionRule, extension: '.json' | '.parquet'): string {
  const label = ruleLabel(rule);
  const stem = join(dirname(source), basename(source, extname(source)));
  for (let n = 1; ; n++) {
    const path = `${stem}.golden-${label}${n > 1 ? `-${n}` : ''}${extension}`;
    if (!existsSync(path)) return path;
  }
}
