/**
 * nuggets select: records ranked by a signal, cut by a threshold, top k or top percent, within bounds
 * on other signals, optionally diverse; the subset and its selection card are written beside each
 * other. `--baseline random` also writes a same-size random subset; `--card` makes a selection again
 * from its card and checks that it gets the same records.
 */
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { sampleRecords } from '../records/anchors';
import { cardDataset, cardPathFor, datasetHash, idsHash, readCard, writeCard, type SelectionCard } from '../selection/card';
import { noParquetSchema, openRecordBatches, writeParquetRecords, type RecordBatches } from '../records/parquet';
import { embeddingSimilarity, embeddingsMissing, tfidfSimilarityOfTexts } from '../selection/diverse';
import { recordTexts, selectionRecords, wholeRecords, type SelectionRecord } from '../selection/select-pass';
import { NuggetsError } from '../io/errors';
import { assertNotInput } from '../io/files';
import type { CandidateScore } from '../scoring/golden';
import { countProblems, describeProblem, type RecordProblem } from '../records/problems';
import { pairScores, select, signalFor, writeSubset, type ScoredRecord, type Selection, type SelectionRule, type SignalBound } from '../selection/select';
import { SIGNALS } from '../signals';
import { embeddingsPathFor, readEmbeddings } from '../signals/embedding-file';
import { describeKeyDifference, readScores, sameKey, type ScoresHeader } from '../records/store';
import { integerFlag, numberFlag, parse, rangeFlag, UsageError } from './flags';

/** --min-<signal> and --max-<signal> for every signal but the golden score (which has --min-score). */
const BOUND_FLAGS = SIGNALS.filter((s) => s.name !== 'golden').flatMap((s) => ['min', 'max'].map((side) => ({ flag: `${side}-${s.name.replace(/_/g, '-')}`, signal: s.name, side })));

export async function selectCommand(args: string[]): Promise<number> {
  if (args.includes('--card')) {
    const { values } = parseArgs({ args, options: { card: { type: 'string' }, out: { type: 'string' } }, strict: true });
    return await reproduce(values.card!, values.out);
  }
  const { values, dataset } = parse(args, {
    scores: { type: 'string', multiple: true }, out: { type: 'string' }, 'min-score': { type: 'string' },
    top: { type: 'string' }, 'top-percent': { type: 'string' }, 'with-scores': { type: 'boolean' },
    by: { type: 'string' }, diverse: { type: 'string' }, baseline: { type: 'string' }, seed: { type: 'string' },
    'keep-problems': { type: 'boolean' },
    ...Object.fromEntries(BOUND_FLAGS.map((b) => [b.flag, { type: 'string' as const }])),
  });
  const flags = values as Record<string, string | string[] | boolean | undefined>;
  const out = values.out as string | undefined;
  if (out === undefined) throw new UsageError('missing --out');
  const scoreFiles = (values.scores as string[] | undefined) ?? [];
  if (scoreFiles.length === 0) throw new UsageError('missing --scores');
  assertNotInput(out, [dataset, ...scoreFiles]);
  const sizes: SelectionRule[] = [];
  const minScore = rangeFlag(values['min-score'] as string | undefined, '--min-score', 0, 1);
  const top = integerFlag(values.top as string | undefined, '--top', 1);
  const topPercent = rangeFlag(values['top-percent'] as string | undefined, '--top-percent', 0, 100, true);
  if (minScore !== undefined) sizes.push({ kind: 'min-score', minScore });
  if (top !== undefined) sizes.push({ kind: 'top', count: top });
  if (topPercent !== undefined) sizes.push({ kind: 'top-percent', percent: topPercent });
  if (sizes.length > 1 && !(sizes.length === 2 && minScore !== undefined)) throw new UsageError('give at most one of --top or --top-percent (with --min-score as a bound if you like)');
  const bounds: SignalBound[] = [];
  for (const b of BOUND_FLAGS) {
    const value = numberFlag(flags[b.flag] as string | undefined, `--${b.flag}`);
    if (value !== undefined) bounds.push({ signal: b.signal, [b.side]: value });
  }
  const size = sizes.find((r) => r.kind !== 'min-score') ?? sizes[0] ?? { kind: 'all' as const };
  if (size.kind === 'all' && bounds.length === 0) throw new UsageError('give --min-score, --top, --top-percent or a bound such as --max-ifd');
  if (size.kind !== 'min-score' && minScore !== undefined) bounds.unshift({ signal: 'golden', min: minScore });
  const by = values.by as string | undefined;
  if (by !== undefined) signalFor(by);
  const diverse = rangeFlag(values.diverse as string | undefined, '--diverse', 0, 1, true);
  const rule: SelectionRule = {
    ...size, ...(by ? { by } : {}), ...(bounds.length ? { bounds } : {}), ...(diverse !== undefined ? { diverse } : {}),
    problems: values['keep-problems'] === true ? 'kept' : 'left-out',
  };
  const baseline = values.baseline as string | undefined;
  if (baseline !== undefined && baseline !== 'random') throw new UsageError(`--baseline takes "random" (got "${baseline}")`);
  const seed = integerFlag(values.seed as string | undefined, '--seed', 0) ?? 0;

  const made = await makeSelection(dataset, scoreFiles, rule);
  await writeSubsetAs(out, made, made.selection.chosen, values['with-scores'] === true);
  const problemsLeftOut = made.selection.problemsLeftOut.length;
  const common = { datasetPath: dataset, datasetSha256: datasetHash(dataset), records: made.records.length, scoresPaths: scoreFiles, header: made.header, rule, problemsLeftOut };
  writeCard({ ...common, subsetPath: out, chosen: made.selection.chosen, baseline: null, seed: null, similarity: made.selection.similarity ?? null, skippedAsDuplicates: made.selection.skippedAsDuplicates });
  const share = ((100 * made.selection.chosen.length) / made.records.length).toFixed(1);
  process.stdout.write(`selected ${made.selection.chosen.length} of ${made.records.length} records (${share}%) -> ${resolve(out)}\n`);
  if (problemsLeftOut > 0) process.stdout.write(`left out ${describeLeftOut(made.selection.problemsLeftOut)}; --keep-problems keeps them\n`);
  if (rule.diverse !== undefined) process.stdout.write(`skipped ${made.selection.skippedAsDuplicates} near-duplicates (cosine >= ${rule.diverse}, ${made.selection.similarity === 'embedding' ? 'model embeddings' : 'TF-IDF'})\n`);
  process.stdout.write(`card -> ${resolve(cardPathFor(out))}\n`);
  if (baseline === 'random') {
    const extension = /\.(jsonl|json|parquet)$/i.exec(out)?.[0] ?? '.json';
    const randomOut = out.slice(0, out.length - (out.toLowerCase().endsWith(extension.toLowerCase()) ? extension.length : 0)) + '.random' + extension;
    assertNotInput(randomOut, [dataset, ...scoreFiles]);
    const chosen = randomBaseline(made, made.selection.chosen.length, seed);
    await writeSubsetAs(randomOut, made, chosen, values['with-scores'] === true);
    writeCard({ ...common, subsetPath: randomOut, chosen, baseline: 'random', seed, similarity: null, skippedAsDuplicates: 0 });
    process.stdout.write(`random baseline of ${chosen.length} records (seed ${seed}) -> ${resolve(randomOut)}\n`);
  }
  return 0;
}

interface Made {
  /** The dataset, walked again for the text TF-IDF reads and for the chosen records' rows (select-pass.ts). */
  dataset: RecordBatches;
  records: SelectionRecord[];
  header: ScoresHeader;
  scored: ScoredRecord<SelectionRecord>[];
  selection: Selection<SelectionRecord>;
}

/**
 * Reads the dataset, its scores (and embeddings, for diversity) and applies the rule. A Parquet dataset is walked a
 * row group at a time and only each record's index, id and emptiness are kept, so that it is never held whole.
 */
async function makeSelection(datasetPath: string, scoreFiles: string[], rule: SelectionRule): Promise<Made> {
  const dataset = await openRecordBatches(datasetPath);
  const records = await selectionRecords(dataset);
  const scores = new Map<string, CandidateScore>();
  const embeddings = new Map<string, Float32Array>();
  let first: ScoresHeader | undefined;
  for (const file of scoreFiles) {
    const content = readScores(file);
    if (first && !sameKey(first, content.header)) {
      throw new NuggetsError(`${describeKeyDifference(file, content.header, first).replace(/\.$/, '')}, as in ${scoreFiles[0]}: scores are never mixed.`);
    }
    first ??= content.header;
    for (const [id, s] of content.scores) scores.set(id, s);
    if (rule.diverse !== undefined) for (const [id, v] of readEmbeddings(embeddingsPathFor(file))?.vectors ?? []) embeddings.set(id, v);
  }
  const bounded = [...scores.values()].find((s) => s.bound);
  if (bounded && !(rule.kind === 'min-score' && rule.minScore === bounded.bound!.threshold && !rule.by && !rule.bounds && rule.diverse === undefined)) {
    throw new NuggetsError(
      `${scoreFiles.join(', ')} holds scores stopped early at ${bounded.bound!.threshold}: they decide only that threshold.`,
      `Select with --min-score ${bounded.bound!.threshold} alone, or score again without --min-score for full scores.`,
    );
  }
  const scored = pairScores(records, scores, scoreFiles.join(', '));
  let similarity;
  if (rule.diverse !== undefined) {
    const missing = embeddingsMissing(records, embeddings);
    if (missing) process.stderr.write(`nuggets: ${missing}\n`);
    // Without an embedding for every record, the records' text is read in a walk of its own, for TF-IDF.
    similarity = missing === undefined ? embeddingSimilarity(embeddings) : tfidfSimilarityOfTexts(records.map((r) => r.id), await recordTexts(dataset, records));
  }
  return { dataset, records, header: first!, scored, selection: select(scored, rule, similarity) };
}

/**
 * The subset in the format --out names: Parquet (with the dataset's own schema) for `.parquet`, else JSON as the records
 * were; the chosen records' rows are read again for it, and only theirs.
 */
async function writeSubsetAs(out: string, made: Made, chosen: ScoredRecord<SelectionRecord>[], withScores: boolean): Promise<void> {
  const parquet = /\.parquet$/i.test(out);
  // Refused before any row is read: a JSON dataset has no Parquet schema to write a subset with.
  if (parquet && !made.dataset.schema) throw noParquetSchema(out);
  const whole = await wholeRecords(made.dataset, chosen);
  if (!parquet) return writeSubset(out, whole, withScores);
  writeParquetRecords(out, made.dataset.schema, whole.map((s) => s.record.original), withScores ? whole.map((s) => s.score.goldenScore) : undefined);
}

/** A same-size random subset, drawn from the records the rule could choose from (problem records left out as it left them out). */
function randomBaseline(made: Made, count: number, seed: number): ScoredRecord<SelectionRecord>[] {
  const leftOut = new Set(made.selection.problemsLeftOut.map((p) => p.index));
  return count === 0 ? [] : sampleRecords(made.scored.filter((s) => !leftOut.has(s.record.index)), count, seed);
}

/** "3 problem records (…): index 0 (empty output), index 7 (repeats index 2), …". */
function describeLeftOut(problems: readonly RecordProblem[]): string {
  const named = problems.slice(0, 5).map((p) => `index ${p.index} (${describeProblem(p.reason)})`).join(', ');
  return `${countProblems(problems)}: ${named}${problems.length > 5 ? ', …' : ''}`;
}

/** Makes the card's selection again and checks it holds the same records; writes it to `out` when given. */
async function reproduce(cardPath: string, out: string | undefined): Promise<number> {
  const card = readCard(cardPath);
  const dataset = cardDataset(card);
  const scoreFiles = card.scores.map((p) => resolve(card.folder, p));
  const made = await makeSelection(dataset, scoreFiles, card.rule);
  if (made.header.model.fingerprint !== card.model.fingerprint || made.header.anchors.hash !== card.anchors.hash) {
    throw new NuggetsError(`${cardPath}: the scores files now hold another model's or anchor set's scores than the card records.`);
  }
  const chosen = card.baseline === 'random' ? randomBaseline(made, card.subset.records, card.seed ?? 0) : made.selection.chosen;
  if (out !== undefined) {
    assertNotInput(out, [dataset, ...scoreFiles]);
    await writeSubsetAs(out, made, chosen, false);
  }
  const same = chosen.length === card.subset.records && idsHash(chosen.map((c) => c.record)) === card.subset.ids_sha256;
  if (!same) {
    throw new NuggetsError(`${cardPath}: the selection made again (${chosen.length} records) does not hold the same ${card.subset.records} records as ${card.subset.file}.`, describeDrift(card));
  }
  process.stdout.write(`reproduced ${basename(card.subset.file)}: the same ${chosen.length} records${out ? ` -> ${resolve(out)}` : ''}\n`);
  return 0;
}

function describeDrift(card: SelectionCard): string {
  return `The dataset is unchanged (content hash checked); check that the scores files (${card.scores.join(', ')}) are the ones the card was made from.`;
}
