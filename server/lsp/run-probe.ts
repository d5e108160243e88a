/**
 * A Score Dataset run's probe (cost-estimate.ts): its first records are scored one request at a time with their
 * passes timed, then the estimate for the rest goes to the client (costEstimateRequest), which may be asked to
 * choose: go on, a faster way, or cancel. The probe's records are stored as they end, like any other. A run with
 * no more records than a probe is scored at once, without an estimate.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkDoneProgressReporter } from 'vscode-languageserver/node';
import type * as protocol from '../protocol';
import { estimateCost, LONG_RUN_SECONDS, PROBE_RECORDS, RunProbe, type ProbeRecord } from '../scoring/cost-estimate';
import type { ScoreCallbacks, ScoreJob, ScoringWorker } from './worker';

/** The threshold the estimate's early stop is at: the paper's strictest subset. */
export const ESTIMATE_THRESHOLD = 0.85;
/** Fewer anchors is offered from this many on (the paper's sets are 100; half of them costs half). */
const FEWER_ANCHORS_FROM = 20;

export interface ProbedRun {
  cancelled: boolean;
  estimate?: protocol.CostEstimateInfo;
  fasterWay?: protocol.FasterWay;
}

/**
 * Scores `job.records`: the probe's records first, then (once the client lets it go on) the rest in one request.
 * `ask` sends the estimate (costEstimateRequest) and resolves to the client's choice.
 */
export async function scoreWithProbe(
  worker: ScoringWorker, job: ScoreJob, callbacks: ScoreCallbacks, signal: AbortSignal,
  estimateFor: { uri: string; threshold: number; batchSize: number; askAboveSeconds: number; fasterWays: protocol.FasterWay[] },
  ask: (estimate: protocol.CostEstimateInfo) => Promise<protocol.CostEstimateAnswer['choice']>,
): Promise<ProbedRun> {
  if (job.records.length <= PROBE_RECORDS) return worker.score(job, callbacks, signal);
  const probe = new RunProbe();
  let excluded: number[] = [];
  let ended: { records: ProbeRecord[]; seconds: number } | undefined;
  let next = 0;
  while (!ended && next < job.records.length) {
    const first = next === 0;
    const { cancelled } = await worker.score({ ...job, records: [job.records[next]!], probe: true }, {
      // Only the first request prepares the anchors; the others find them prepared.
      ...(first ? { onPrepared: (x: number[]) => { excluded = x; callbacks.onPrepared?.(x); }, onStage: (stage: string) => callbacks.onStage?.(stage) } : {}),
      onScore: (score, timed) => {
        callbacks.onScore(score);
        if (timed) ended = probe.add(timed);
      },
    }, signal);
    next++;
    if (cancelled || signal.aborted) return { cancelled: true };
  }
  const rest = job.records.slice(next);
  if (!ended || rest.length === 0) return { cancelled: false };
  // Every anchor counts but those the worker excluded (no response token left): what the estimate needs of them.
  const counted = { count: job.anchors.length, responseTokens: Int32Array.from(job.anchors, (_, i) => (excluded.includes(i) ? 0 : 1)) };
  // One record at a time: no wall time is needed to tell records in flight apart (and it would count the model's opening).
  const e = estimateCost(ended.records, counted, rest.length, estimateFor.threshold, estimateFor.batchSize);
  const estimate: protocol.CostEstimateInfo = {
    uri: estimateFor.uri, records: e.records, probed: e.probed, anchors: e.anchors, fullSeconds: e.fullSeconds, earlyStop: e.earlyStop,
    fasterWays: estimateFor.fasterWays.filter((way) => way !== 'fewerAnchors' || e.anchors >= FEWER_ANCHORS_FROM),
    ask: e.fullSeconds >= estimateFor.askAboveSeconds,
  };
  // A run cancelled while the question is open ends at once, whatever the answer.
  const cancelling = new Promise<'cancel'>((resolve) => {
    if (signal.aborted) resolve('cancel');
    signal.addEventListener('abort', () => resolve('cancel'), { once: true });
  });
  const choice = await Promise.race([ask(estimate), cancelling]);
  if (estimate.ask && choice !== 'continue') return { cancelled: true, estimate, ...(choice !== 'cancel' ? { fasterWay: choice } : {}) };
  if (signal.aborted) return { cancelled: true, estimate };
  const { cancelled } = await worker.score({ ...job, records: rest }, { onScore: (score) => callbacks.onScore(score) }, signal);
  return { cancelled, estimate };
}

/** The faster ways that apply to a model: its int8 variant where its folder has one, fewer anchors, a serving endpoint for a local model. */
export function fasterWaysFor(model: string, variant: string | null | undefined): protocol.FasterWay[] {
  const served = /^(https?:\/\/|sglang\+)/.test(model);
  const int8 = !served && variant !== 'quantized' && variant !== 'int8' && existsSync(join(model, 'onnx', 'model_quantized.onnx'));
  return [...(int8 ? ['int8' as const] : []), 'fewerAnchors', ...(served ? [] : ['endpoint' as const])];
}

/** The default for ServerSettings.askAboveSeconds. */
export const ASK_ABOVE_SECONDS = LONG_RUN_SECONDS;

/**
 * A run's progress reporter that also hands each message to `show` (the status bar's "preparing" step): what a
 * download or a GGUF import reports before the first record shows there as well as in the notification.
 */
export function showingSteps(reporter: WorkDoneProgressReporter | undefined, show: (message: string) => void): WorkDoneProgressReporter {
  const report = (first: number | string, message?: string): void => {
    const text = typeof first === 'string' ? first : message;
    if (text) show(text);
    if (typeof first === 'string') reporter?.report(first);
    else if (message !== undefined) reporter?.report(first, message);
    else reporter?.report(first);
  };
  return {
    begin: (title: string, percentage?: number, message?: string, cancellable?: boolean) => reporter?.begin(title, percentage, message, cancellable),
    report,
    done: () => reporter?.done(),
  } as WorkDoneProgressReporter;
}
