/**
 * nuggets agree: scores one random sample of a dataset with two models and says whether the first
 * ranks records as the second does (server/selection/agree.ts), before paying for the second on everything.
 */
import { describeSkipped, readAnchors, sampleRecords } from '../records/anchors';
import { agreement, formatAgreement, modelLabel } from '../selection/agree';
import type { RecordFormat } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import { openRecordBatches } from '../records/parquet';
import { recordsAt, selectionRecords } from '../selection/select-pass';
import { DEFAULT_OPTIONS, type ScoringOptions } from '../scoring/backend';
import { scoreRecords, type CandidateScore } from '../scoring/golden';
import { openBackend } from '../scoring/open';
import { chatTemplateFor, templateNameFor, unrenderable } from '../scoring/template-choice';
import { downloadProgress, importProgress } from './download-progress';
import { integerFlag, parse, rangeFlag, required, UsageError } from './flags';
import { ProgressBar } from './progress';

/**
 * `formatFlag` reads --format as `score` does (main.ts passes its own, so that both take the same names). Conversations,
 * and Alpaca records under --template chat|chatml|FILE.jinja, are scored as `score` scores them: each model with the
 * template --template names (chat: its own), the records a template cannot render named and left out of the comparison.
 * Two --template flags give each model its own, in --model order (a model without a chat template against one with).
 */
export async function agreeCommand(args: string[], defaultModel: () => string, formatFlag: (value: string | undefined) => RecordFormat | undefined): Promise<number> {
  const { values, dataset } = parse(args, {
    anchors: { type: 'string' }, model: { type: 'string', multiple: true }, sample: { type: 'string' }, seed: { type: 'string' },
    'min-score': { type: 'string' }, variant: { type: 'string', multiple: true }, threads: { type: 'string' },
    format: { type: 'string' }, template: { type: 'string', multiple: true }, tokenizer: { type: 'string' },
  });
  const anchorsPath = required(values.anchors, '--anchors');
  const models = values.model ?? [];
  if (models.length !== 2) throw new UsageError('give two models: --model M1 --model M2 (M1 is the one that would stand in)');
  const variants = values.variant ?? [];
  const threshold = rangeFlag(values['min-score'], '--min-score', 0, 1) ?? 0.85;
  const sampleSize = integerFlag(values.sample, '--sample', 1) ?? 100;
  const seed = integerFlag(values.seed, '--seed', 0) ?? 0;
  const threads = integerFlag(values.threads, '--threads', 0);
  // A Parquet dataset is walked, never held whole: each record's index, id and emptiness kept, then the sample read whole.
  const source = await openRecordBatches(dataset, formatFlag(values.format));
  let holdsConversations = false;
  let warned = 0;
  const records = await selectionRecords(source, {
    onRecord: (r) => {
      if (r.turns) holdsConversations = true;
    },
    onRejected: (r) => {
      if (warned++ < 20) process.stderr.write(`warning: ${r.where}: record skipped: ${r.why}.\n`);
    },
  });
  const anchors = readAnchors(anchorsPath);
  if (anchors.skipped) process.stderr.write(`warning: ${anchorsPath}: ${describeSkipped(anchors.skipped)}\n`);
  const conversations = holdsConversations || anchors.anchors.some((a) => a.turns);
  const templateFlags = values.template ?? [];
  if (templateFlags.length > 2) throw new UsageError('give one --template for both models, or two: one per --model, in order');
  const templateNames = models.map((_, i) => templateNameFor(templateFlags[i] ?? templateFlags[0], conversations));
  if (templateNames.includes('paper') && conversations) {
    throw new NuggetsError(
      `${holdsConversations ? dataset : anchorsPath} holds conversations (${source.recordFormat() ?? 'alpaca'} records), which the paper's Alpaca template cannot score.`,
      'Use a chat template: --template chat (each model\'s own), --template chatml, or --template FILE.jinja.',
    );
  }
  let sample = await recordsAt(source, sampleRecords(records, Math.min(sampleSize, records.length), seed));
  const scored: Map<string, CandidateScore>[] = [];
  const names: string[] = [];
  for (const [i, model] of models.entries()) {
    const backend = await openBackend(model === 'demo' ? defaultModel() : model, {
      ...(variants[i] ? { variant: variants[i] } : {}), ...(threads ? { threads } : {}), onDownload: downloadProgress(), onImport: importProgress(),
      // A served model's tokenizer (and the folder its chat template is read from); a local model has its own.
      ...(values.tokenizer ? { tokenizer: values.tokenizer } : {}),
    });
    try {
      names.push(modelLabel(backend.identity.name, variants[i]));
      const options: ScoringOptions = { ...DEFAULT_OPTIONS };
      let scoredHere = sample;
      if (templateNames[i] !== 'paper') {
        const template = chatTemplateFor(templateNames[i]!, backend);
        options.chatTemplate = template;
        const check = unrenderable(sample, template, (index) => `${dataset} record ${index}`);
        for (const r of check.rejected) process.stderr.write(`warning: ${r.where}: left out of the comparison: ${r.why}.\n`);
        scoredHere = sample.filter((r) => check.kept.has(r.index));
      }
      process.stderr.write(`scoring ${scoredHere.length} sampled records against ${anchors.anchors.length} anchors with ${names[i]}`
        + `${options.chatTemplate ? `, chat template ${options.chatTemplate.key} (${options.chatTemplate.source})` : ''}\n`);
      const prepared = await backend.prepareAnchors(anchors.anchors, options);
      const progress = new ProgressBar(scoredHere.length, 'records');
      const byId = new Map<string, CandidateScore>();
      await scoreRecords(backend, prepared, scoredHere, (score) => {
        byId.set(score.id, score);
        progress.tick();
      });
      progress.finish();
      scored.push(byId);
    } finally {
      await backend.dispose();
    }
  }
  // Only records both models scored are compared (a template may not render some).
  sample = sample.filter((r) => scored.every((byId) => byId.has(r.id)));
  const pair: [string, string] = [names[0]!, names[1]!];
  process.stdout.write(formatAgreement(agreement(sample, sample.map((r) => scored[0]!.get(r.id)!), sample.map((r) => scored[1]!.get(r.id)!), threshold, pair), pair) + '\n');
  return 0;
}
