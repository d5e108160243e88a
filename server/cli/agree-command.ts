/**
 * nuggets agree: scores one random sample of a dataset with two models and says whether the first
 * ranks records as the second does (server/agree.ts), before paying for the second on everything.
 */
import { readAnchors, sampleRecords } from '../anchors';
import { agreement, formatAgreement, modelLabel } from '../agree';
import { loadDataset } from '../parquet';
import { DEFAULT_OPTIONS } from '../scoring/backend';
import { scoreRecords, type CandidateScore } from '../scoring/golden';
import { openBackend } from '../scoring/open';
import { downloadProgress, importProgress } from './download-progress';
import { integerFlag, parse, rangeFlag, required, UsageError } from './flags';
import { ProgressBar } from './progress';

export async function agreeCommand(args: string[], defaultModel: () => string): Promise<number> {
  const { values, dataset } = parse(args, {
    anchors: { type: 'string' }, model: { type: 'string', multiple: true }, sample: { type: 'string' }, seed: { type: 'string' },
    'min-score': { type: 'string' }, variant: { type: 'string', multiple: true }, threads: { type: 'string' },
  });
  const anchorsPath = required(values.anchors, '--anchors');
  const models = values.model ?? [];
  if (models.length !== 2) throw new UsageError('give two models: --model M1 --model M2 (M1 is the one that would stand in)');
  const variants = values.variant ?? [];
  const threshold = rangeFlag(values['min-score'], '--min-score', 0, 1) ?? 0.85;
  const sampleSize = integerFlag(values.sample, '--sample', 1) ?? 100;
  const seed = integerFlag(values.seed, '--seed', 0) ?? 0;
  const threads = integerFlag(values.threads, '--threads', 0);
  const records = (await loadDataset(dataset)).records;
  const sample = sampleRecords(records, Math.min(sampleSize, records.length), seed);
  const anchors = readAnchors(anchorsPath);
  const scores: CandidateScore[][] = [];
  const names: string[] = [];
  for (const [i, model] of models.entries()) {
    const backend = await openBackend(model === 'demo' ? defaultModel() : model, {
      ...(variants[i] ? { variant: variants[i] } : {}), ...(threads ? { threads } : {}), onDownload: downloadProgress(), onImport: importProgress(),
    });
    try {
      names.push(modelLabel(backend.identity.name, variants[i]));
      process.stderr.write(`scoring ${sample.length} sampled records against ${anchors.anchors.length} anchors with ${names[i]}\n`);
      const prepared = await backend.prepareAnchors(anchors.anchors, DEFAULT_OPTIONS);
      const progress = new ProgressBar(sample.length, 'records');
      const byId = new Map<string, CandidateScore>();
      await scoreRecords(backend, prepared, sample, (score) => {
        byId.set(score.id, score);
        progress.tick();
      });
      progress.finish();
      scores.push(sample.map((r) => byId.get(r.id)!));
    } finally {
      await backend.dispose();
    }
  }
  const pair: [string, string] = [names[0]!, names[1]!];
  process.stdout.write(formatAgreement(agreement(sample, scores[0]!, scores[1]!, threshold, pair), pair) + '\n');
  return 0;
}
