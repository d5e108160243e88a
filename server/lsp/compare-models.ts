/**
 * Compare Models in the editor: the model to compare with is opened (a folder read, a hub model found or
 * downloaded, an endpoint asked) before any record is scored, so that a bad choice is told at once, in the
 * editor's words, not after the current model has scored the sample. The agreement's figures are then
 * named for the dashboard, an undefined Spearman with the reason it is undefined.
 */
import { NuggetsError } from '../io/errors';
import { standsIn, type Agreement } from '../selection/agree';
import type { CompareModelsResult } from '../protocol';
import type { ModelOptions } from './worker-messages';
import type { ScoringWorker } from './worker';

/**
 * The engine's messages speak to the command line ("Pass --model <folder> …"): those lines go, and what the
 * editor offers instead is said once, by the caller.
 */
export function editorWording(message: string): string {
  const kept = message.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !/(^|[\s(])--[a-z]/.test(line));
  return kept.join(' ').replace(/\s+/g, ' ').trim();
}

/**
 * Opens `model` as Compare Models will: its name and fingerprint, or a NuggetsError in the editor's words saying
 * that nothing was scored. A cancel (`signal`) rejects with the worker's own error.
 */
export async function checkModelToCompare(worker: ScoringWorker, model: string, options: ModelOptions, signal: AbortSignal): Promise<{ name: string; fingerprint: string }> {
  try {
    const found = await worker.identify(model, options, { onProgress: () => undefined, signal });
    if ('notDownloaded' in found) throw new NuggetsError(found.notDownloaded);
    return found;
  } catch (err) {
    if (signal.aborted) throw err;
    const reason = editorWording((err as Error).message).replace(/\.?$/, '.');
    throw new NuggetsError(`The model to compare with (${model}) cannot be used: ${reason} Nothing was scored. `
      + 'Choose the demo model, a model folder (tokenizer.json, config.json and model.onnx), a GGUF file, a hub model or a serving endpoint that answers.');
  }
}

/** Why the golden Spearman is undefined, in words; null when it is defined. */
export function undefinedSpearmanReason(agreement: Pick<Agreement, 'sample' | 'goldenSpearman'>, constant: readonly [boolean, boolean], names: readonly [string, string]): string | null {
  if (agreement.goldenSpearman !== null) return null;
  if (agreement.sample < 3) return `the sample has ${agreement.sample} record${agreement.sample === 1 ? '' : 's'}; a rank correlation needs at least 3`;
  const same = names.filter((_, i) => constant[i]);
  if (same.length === 2) return 'both models gave every record of the sample the same golden score: there is no ranking to compare';
  if (same.length === 1) return `${same[0]} gave every record of the sample the same golden score: it ranks nothing`;
  return 'the golden scores could not be ranked';
}

/** The comparison as the editor shows it: the figures, the two models' names, and why a figure is undefined. */
export function comparisonResult(agreement: Agreement, names: [string, string], report: string, constant: [boolean, boolean]): CompareModelsResult {
  const { sample, goldenSpearman, ifdSpearman, ifdPairs, top10Overlap, decisionAgreement, threshold, kept, verdict } = agreement;
  const reason = undefinedSpearmanReason(agreement, constant, names);
  return {
    sample, goldenSpearman, ifdSpearman, ifdPairs, top10Overlap, decisionAgreement, threshold, kept, verdict, report, models: names, standsIn: standsIn(goldenSpearman, top10Overlap),
    ...(reason ? { goldenSpearmanUndefined: reason } : {}),
  };
}
