/**
 * Scoring runs: one at a time, in order, each scoring a document's records that have no current score
 * through the scoring worker. Every score is stored before it is shown; a cancelled or failed run keeps
 * what it scored. While another window scores with the same key, a run waits and shows that window's
 * scores as they are written.
 */
import { MessageType, ProgressType, ShowMessageNotification, type Connection, type WorkDoneProgressReporter } from 'vscode-languageserver/node';
import { sleep } from '../io/abort';
import { NuggetsError } from '../io/errors';
import * as protocol from '../protocol';
import { describeExcluded } from '../scoring/golden';
import type { ScoringKey } from '../records/store';
import { nameOf } from './anchor-choice';
import type { OpenDocuments } from './documents';
import { isUnscorable, scorableCount, type ParsedDocument } from './parsed';
import type { ScoreBook } from './score-book';
import type { Keyed, ScoringKeys, TemplateRefusal } from './scoring-keys';
import type { Candidate } from './worker-messages';
import type { ScoringWorker } from './worker';
import { ASK_ABOVE_SECONDS, ESTIMATE_THRESHOLD, fasterWaysFor, scoreWithProbe, showingSteps, type ProbedRun } from './run-probe';

/** How often a run waiting for another window's run looks at the lock. */
const RUN_WAIT_POLL_MS = 250;

const partialResultType = new ProgressType<protocol.RecordScore[]>();

/** Where a run reports: the Score Dataset request's progress and partial results, when the client asked for them. */
export interface RunReporting {
  reporter?: WorkDoneProgressReporter;
  partialToken?: string | number;
}

export class ScoringRuns {
  private queue: Promise<unknown> = Promise.resolve();
  /** Runs in progress (or queued) and the document each scores. */
  private readonly running = new Map<AbortController, string>();

  constructor(
    private readonly connection: Connection,
    private readonly documents: OpenDocuments,
    private readonly keys: ScoringKeys,
    private readonly book: ScoreBook,
    private readonly worker: ScoringWorker,
    private readonly settings: () => protocol.ServerSettings,
    private readonly log: (message: unknown) => void,
  ) {}

  /** Runs `task` after the tasks queued before it. */
  enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Queues a run that scores the document's records without a current score (only those in `onlyIds`, when given). */
  score(uri: string, onlyIds: Set<string> | null, abort: AbortController, reporting: RunReporting = {}): Promise<protocol.ScoreDatasetResult> {
    return this.enqueue(async () => {
      this.running.set(abort, uri);
      try {
        return await this.scoreMissing(uri, onlyIds, abort.signal, reporting);
      } finally {
        this.running.delete(abort);
      }
    });
  }

  /** Stops the runs scoring `uri` (all runs when omitted); their completed records stay stored. */
  abort(uri?: string): void {
    for (const [run, runUri] of this.running) if (uri === undefined || runUri === uri) run.abort();
  }

  private async scoreMissing(uri: string, onlyIds: Set<string> | null, signal: AbortSignal, reporting: RunReporting): Promise<protocol.ScoreDatasetResult> {
    const started = Date.now();
    const parsed = this.documents.get(uri);
    if (!parsed) return { scoredNow: 0, scored: 0, total: 0, cancelled: false, seconds: 0 };
    if (!this.settings().scoringAllowed) throw new NuggetsError('Scoring is disabled in untrusted workspaces.');
    // A download or import before the first record shows in the status bar too.
    const steps = showingSteps(reporting.reporter, (message) => void this.connection.sendNotification(protocol.scoringStatusNotification, {
      uri, phase: 'preparing', done: 0, todo: 0, scored: 0, total: parsed.records.length, etaSeconds: null, message,
    }));
    const keyed = await this.keys.keyFor(uri, { signal, reporter: steps });
    if (signal.aborted) {
      return {
        scoredNow: 0, scored: keyed ? this.documents.countCurrent(parsed, keyed) : 0, total: scorableCount(parsed), cancelled: true, seconds: (Date.now() - started) / 1000,
        ...(keyed ? this.keys.runFacts(uri, keyed) : {}),
      };
    }
    if (!keyed) {
      const refusal = this.keys.templateRefusal(uri);
      if (refusal) throw new TemplateRefused(refusal);
      throw new NuggetsError(this.keys.model.error ?? `No anchor set for ${nameOf(uri)}: choose one with Nuggets: Choose Anchors.`);
    }
    // One window at a time scores with a key; meanwhile this one shows the other's scores as they are written.
    if (!(await this.startRun(keyed.key, signal, reporting.reporter))) {
      return {
        scoredNow: 0, scored: this.documents.countCurrent(parsed, keyed), total: scorableCount(parsed), cancelled: true, seconds: (Date.now() - started) / 1000,
        ...this.keys.runFacts(uri, keyed),
      };
    }
    try {
      return await this.scoreUnscored(uri, this.documents.get(uri) ?? parsed, keyed, onlyIds, signal, started, reporting);
    } finally {
      this.book.endRun(keyed.key);
    }
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
      await this.documents.syncFromDisk();
    }
  }

  private async scoreUnscored(
    uri: string, parsed: ParsedDocument, keyed: Keyed, onlyIds: Set<string> | null, signal: AbortSignal, started: number, { reporter, partialToken }: RunReporting,
  ): Promise<protocol.ScoreDatasetResult> {
    const settings = this.settings();
    const current = this.book.scoresOf(keyed.key);
    const todo: Candidate[] = [];
    const queued = new Set<string>();
    for (const r of parsed.records) {
      if (current.has(r.id) || queued.has(r.id) || (onlyIds && !onlyIds.has(r.id)) || isUnscorable(parsed, r.index)) continue;
      queued.add(r.id);
      todo.push(candidateOf(r));
    }
    let scored = this.documents.countCurrent(parsed, keyed);
    const total = scorableCount(parsed);
    let done = 0;
    let scoringFrom = Date.now();
    /** Seconds left at the pace so far; null before the first record. */
    const etaSeconds = (): number | null => (done > 0 ? Math.round(((Date.now() - scoringFrom) / 1000 / done) * (todo.length - done)) : null);
    const status = (phase: protocol.ScoringPhase, message?: string): void => {
      void this.connection.sendNotification(protocol.scoringStatusNotification, {
        uri, phase, done, todo: todo.length, scored, total, etaSeconds: etaSeconds(), ...(message ? { message } : {}),
      });
    };
    const facts = { ...this.keys.runFacts(uri, keyed), skipped: total - todo.length };
    if (todo.length === 0 || signal.aborted) {
      status(signal.aborted ? 'cancelled' : 'done');
      return { scoredNow: 0, scored, total, cancelled: signal.aborted, seconds: 0, ...facts };
    }
    status('preparing');
    let run: ProbedRun;
    let excludedAnchors: string | undefined;
    try {
      // The first records are a probe: the estimate for the rest goes to the client, which may choose (run-probe.ts).
      run = await scoreWithProbe(this.worker, {
        model: settings.model, modelOptions: this.keys.modelOptions(), anchorsHash: keyed.anchors.hash, anchors: keyed.anchors.anchors,
        options: { maxAnchorTokens: settings.maxAnchorTokens, batchSize: settings.batchSize, separator: keyed.key.separator, turns: keyed.key.turns ?? 'last' },
        records: todo, ...(keyed.templateName ? { template: keyed.templateName } : {}),
        ...(settings.recordsInFlight !== undefined ? { recordsInFlight: settings.recordsInFlight } : {}),
      }, {
        onStage: (stage) => status('preparing', stage),
        onPrepared: (excluded) => {
          if (excluded.length > 0) {
            excludedAnchors = describeExcluded(excluded, keyed.anchors.anchors, settings.maxAnchorTokens);
            // A notification: a warning needs no answer, and not every client answers window/showMessageRequest.
            void this.connection.sendNotification(ShowMessageNotification.type, { type: MessageType.Warning, message: `Nuggets: ${excludedAnchors}` });
          }
          scoringFrom = Date.now();
          status('scoring');
        },
        onScore: (score) => {
          this.book.append(keyed.key, score); // persisted before it is reported
          done++;
          const now = this.documents.get(uri);
          const indices = now?.byId.get(score.id) ?? [];
          this.documents.forgetEdits(uri, indices);
          if (now) {
            scored += indices.length;
            const records = this.documents.publishRecords(now, indices, keyed, scored);
            if (partialToken !== undefined) void this.connection.sendProgress(partialResultType, partialToken, records);
          }
          status('scoring');
          const eta = etaSeconds();
          // The file-wide count, as the status bar shows it: one count for the run wherever it is read.
          reporter?.report(progressPercentage(scored, total), progressMessage(scored, total, eta));
        },
      }, signal, {
        uri, threshold: ESTIMATE_THRESHOLD, batchSize: settings.batchSize, askAboveSeconds: settings.askAboveSeconds ?? ASK_ABOVE_SECONDS,
        fasterWays: fasterWaysFor(settings.model, settings.variant),
      }, (estimate) => this.askAboutCost(estimate));
    } catch (err) {
      status('failed', (err as Error).message);
      throw err;
    }
    const { cancelled, estimate, fasterWay } = run;
    status(cancelled ? 'cancelled' : 'done');
    return {
      scoredNow: done, scored, total, cancelled, seconds: (Date.now() - started) / 1000, ...facts, ...(excludedAnchors ? { excludedAnchors } : {}),
      ...(estimate ? { estimate } : {}), ...(fasterWay ? { fasterWay } : {}),
    };
  }

  /**
   * Sends a probe's estimate to the client; when it asks, waits for the choice. A client that does not answer the
   * request (or fails it) lets the run go on; an estimate that asks nothing is not waited for.
   */
  private async askAboutCost(estimate: protocol.CostEstimateInfo): Promise<protocol.CostEstimateAnswer['choice']> {
    this.log(`estimate: ${estimate.records} more records in about ${protocol.formatDuration(estimate.fullSeconds)}; `
      + `${protocol.formatDuration(estimate.earlyStop.seconds)} with exact early stop at ${estimate.earlyStop.threshold} (from the first ${estimate.probed} records)`);
    const choices: ReadonlyArray<protocol.CostEstimateAnswer['choice']> = ['continue', 'cancel', ...estimate.fasterWays];
    const answer = this.connection.sendRequest(protocol.costEstimateRequest, estimate)
      .then((a) => (choices.includes(a?.choice) ? a.choice : 'continue'), () => 'continue' as const);
    return estimate.ask ? answer : 'continue';
  }
}

/** The progress notification's message: the records of the file with a current score (as the status bar counts them), and the ETA. */
export function progressMessage(scored: number, total: number, etaSeconds: number | null): string {
  return `${scored}/${total} records${etaSeconds === null ? '' : ` · ETA ${protocol.formatDuration(etaSeconds)}`}`;
}

/** How far the file is scored, in whole percent: 100 only when every record is. */
export function progressPercentage(scored: number, total: number): number {
  return total === 0 ? 100 : Math.floor((100 * Math.min(scored, total)) / total);
}

/** A record as the scoring worker takes it (a conversation with its turns). */
export function candidateOf(r: Candidate): Candidate {
  return { index: r.index, id: r.id, instruction: r.instruction, input: r.input, output: r.output, ...(r.turns ? { turns: r.turns } : {}) };
}

/** Score Dataset refused by the template in effect: the paper's asked for conversations, or a model without a chat template. */
export class TemplateRefused extends NuggetsError {
  constructor(readonly refusal: TemplateRefusal) {
    super(refusal.message);
  }
}
