/**
 * nuggets anchors: N records of a dataset drawn at random, or chosen by k-means, written as the anchors file. The
 * dataset is walked (a Parquet file one row group at a time, a JSON file from memory: parquet.ts, openRecordBatches),
 * never held whole: a first walk screens each record as it goes by (AnchorScreen: of a record that can be an anchor,
 * only its index and id are kept) and, for k-means, counts its words' document frequencies; k-means walks again for
 * each such record's TF-IDF vector, which it holds (the vectors, not the text); and a last walk takes the chosen
 * records whole. The anchors are those the records read whole give (chooseRandom, chooseKMeans), byte for byte.
 */
import { AnchorScreen, SKIPPED_PREVIEW_CHARS, anchorSet, assertAnchorCount, countDocument, describeSkipped, kmeansChoice, sampleRecords, textWords, tfidfTerms, tfidfVector, writeAnchors, type SkippedAnchor } from '../records/anchors';
import { NoRecordsError, type DatasetRecord, type RecordFormat } from '../records/dataset';
import { assertNotInput } from '../io/files';
import { openRecordBatches, type RecordBatches } from '../records/parquet';
import { readRecordsAt, recordsAt, type RecordKey, type Rerun } from '../selection/select-pass';
import { recordText } from '../scoring/template';
import { integerFlag, parse, required, UsageError } from './flags';

/** A dataset rewritten between the walks is named, and no anchors file written. */
const ANCHORS_AGAIN: Rerun = { purpose: 'its anchors', hint: 'Run `nuggets anchors` again once nothing is writing the dataset; nothing was written.' };

/** Records that cannot be scored named, as `score` names them: the first 20, then how many more. */
const NAMED_REJECTED = 20;

/** `formatFlag` reads --format as `score` does (main.ts passes its own, so that both take the same names). */
export async function anchorsCommand(args: string[], formatFlag: (value: string | undefined) => RecordFormat | undefined): Promise<number> {
  const { values, dataset } = parse(args, {
    kmeans: { type: 'string' }, random: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, format: { type: 'string' },
  });
  const out = required(values.out, '--out');
  assertNotInput(out, [dataset]);
  const seed = integerFlag(values.seed, '--seed', 0) ?? 0;
  const kmeans = integerFlag(values.kmeans, '--kmeans', 1);
  const random = integerFlag(values.random, '--random', 1);
  if ((kmeans === undefined) === (random === undefined)) throw new UsageError('give exactly one of --kmeans N or --random N');
  const source = await openRecordBatches(dataset, formatFlag(values.format));
  const method = kmeans !== undefined ? 'kmeans' : 'random';
  const { chosen, skipped } = await chooseAnchorsWalking(source, method, kmeans ?? random!, seed, (line) => process.stderr.write(`${line}\n`));
  if (skipped.length > 0) process.stderr.write(`warning: ${describeSkipped(skipped)}\n`);
  writeAnchors(out, chosen);
  const set = anchorSet(chosen);
  process.stderr.write(`wrote ${chosen.length} anchors (${method === 'kmeans' ? 'k-means' : 'random'}, seed ${seed}, set ${set.hash}) to ${out}\n`);
  return 0;
}

/**
 * The anchors chooseKMeans or chooseRandom chooses from the dataset's records, with the records screenAnchors skips
 * (instructions cut to what describeSkipped shows), walking the dataset instead of holding it; `warn` is given each
 * record that cannot be scored as the walk meets it (the first 20 named, then how many more).
 */
export async function chooseAnchorsWalking(
  source: RecordBatches, method: 'kmeans' | 'random', count: number, seed: number, warn: (line: string) => void,
): Promise<{ chosen: DatasetRecord[]; skipped: SkippedAnchor[] }> {
  // The first walk: the records that can be anchors (index and id), the skipped ones' previews, and for k-means the
  // document frequencies of the pool's words.
  const screen = new AnchorScreen(SKIPPED_PREVIEW_CHARS);
  const pool: RecordKey[] = [];
  const documentFrequency = new Map<string, number>();
  let records = 0;
  let rejected = 0;
  for await (const batch of source.batches()) {
    for (const record of batch.records) {
      records++;
      if (!screen.admits(record)) continue;
      pool.push({ index: record.index, id: record.id });
      if (method === 'kmeans') countDocument(documentFrequency, textWords(recordText(record)));
    }
    for (const r of batch.rejected) {
      if (rejected++ < NAMED_REJECTED) warn(`warning: ${r.where}: record skipped: ${r.why}.`);
    }
  }
  if (records === 0 && rejected === 0) throw new NoRecordsError(source.source);
  if (rejected > NAMED_REJECTED) warn(`warning: … and ${rejected - NAMED_REJECTED} more records skipped.`);
  assertAnchorCount(count, pool.length, records);

  let drawn: RecordKey[];
  if (method === 'kmeans') {
    // The second walk: each pool record's TF-IDF vector (the vectors are held, not the text).
    const terms = tfidfTerms(documentFrequency, pool.length);
    documentFrequency.clear();
    const vectors = await readRecordsAt(source, pool, (record) => tfidfVector(textWords(recordText(record)), terms), ANCHORS_AGAIN);
    drawn = kmeansChoice(vectors, terms.dimensions, count, seed).map((i) => pool[i]!);
  } else {
    drawn = sampleRecords(pool, count, seed);
  }
  // The last walk: the chosen records whole.
  return { chosen: await recordsAt(source, drawn, ANCHORS_AGAIN), skipped: screen.skipped };
}
