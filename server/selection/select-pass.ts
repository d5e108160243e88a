/**
 * Selection from a dataset that need not fit in memory (`nuggets select` on Parquet): a first walk over the dataset's
 * batches keeps of each record only what the rule reads (its index, its id, whether its instruction and output are
 * empty); a diverse rule without embeddings for every record walks again for the records' text (TF-IDF needs all of
 * it); and a last walk takes the chosen records' original rows, in dataset order, for the subset. `nuggets agree`
 * draws its sample the same way, and `nuggets anchors` reads its vectors and anchors with these later walks
 * (cli/anchors-command.ts). A JSON file is parsed once and walked from memory each time (parquet.ts,
 * openRecordBatches).
 */
import { NoRecordsError, type DatasetRecord, type RejectedRecord } from '../records/dataset';
import type { RecordBatches } from '../records/parquet';
import { NuggetsError } from '../io/errors';
import { recordText } from '../scoring/template';
import type { ScoredRecord } from './select';

/**
 * A record as selection keeps it through a walk: its index and id, its instruction and output only as empty or not
 * ('' or '…': all that findProblems reads of them).
 */
export interface SelectionRecord {
  index: number;
  id: string;
  instruction: string;
  input: string;
  output: string;
}

export function selectionRecord(r: DatasetRecord): SelectionRecord {
  return { index: r.index, id: r.id, instruction: r.instruction === '' ? '' : '…', input: '', output: r.output === '' ? '' : '…' };
}

/** What a first walk's caller is shown of each record as it goes by (whole, then forgotten). */
export interface WalkWatch {
  onRecord?: (record: DatasetRecord) => void;
  onRejected?: (rejected: RejectedRecord) => void;
}

/** The first walk: every record the rule can choose from, in dataset order (records that cannot be scored are not among them). */
export async function selectionRecords(dataset: RecordBatches, watch: WalkWatch = {}): Promise<SelectionRecord[]> {
  const records: SelectionRecord[] = [];
  let rejected = 0;
  for await (const batch of dataset.batches()) {
    for (const record of batch.records) {
      records.push(selectionRecord(record));
      watch.onRecord?.(record);
    }
    for (const r of batch.rejected) watch.onRejected?.(r);
    rejected += batch.rejected.length;
  }
  if (records.length === 0 && rejected === 0) throw new NoRecordsError(dataset.source);
  return records;
}

/** Each record's text as TF-IDF reads it (recordText), in dataset order: held only for a diverse rule without embeddings. */
export async function recordTexts(dataset: RecordBatches, records: readonly SelectionRecord[]): Promise<string[]> {
  const texts: string[] = [];
  for await (const batch of dataset.batches()) {
    for (const record of batch.records) {
      assertSameRecord(dataset, record, records[texts.length]);
      texts.push(recordText(record));
    }
  }
  if (texts.length !== records.length) throw changedWhileRead(dataset);
  return texts;
}

/** The last walk: the chosen records whole (their original rows kept), each with its score, in dataset order. */
export async function wholeRecords(dataset: RecordBatches, chosen: readonly ScoredRecord<SelectionRecord>[]): Promise<ScoredRecord[]> {
  const scoreOf = new Map(chosen.map((c) => [c.record.index, c.score]));
  return (await recordsAt(dataset, chosen.map((c) => c.record))).map((record) => ({ record, score: scoreOf.get(record.index)! }));
}

/** The records the first walk kept as `wanted`, whole (their original rows kept), in dataset order. */
export async function recordsAt(dataset: RecordBatches, wanted: readonly RecordKey[], rerun: Rerun = SELECT_AGAIN): Promise<DatasetRecord[]> {
  return readRecordsAt(dataset, wanted, (record) => record, rerun);
}

/** A record as a first walk names it for a later one: its index, and its id to check it is still the same record. */
export type RecordKey = Pick<SelectionRecord, 'index' | 'id'>;

/** What a later walk's command says to do when the dataset changed under it. */
export interface Rerun {
  /** What the walks were for: "the selection". */
  purpose: string;
  hint: string;
}

const SELECT_AGAIN: Rerun = { purpose: 'the selection', hint: 'Select again once nothing is writing the dataset; nothing was written.' };

/** What `read` makes of each record the first walk kept as `wanted` (in dataset order), the rest of each row group dropped. */
export async function readRecordsAt<T>(dataset: RecordBatches, wanted: readonly RecordKey[], read: (record: DatasetRecord) => T, rerun: Rerun = SELECT_AGAIN): Promise<T[]> {
  const byIndex = new Map(wanted.map((r) => [r.index, r]));
  const found: T[] = [];
  for await (const batch of dataset.batches()) {
    for (const record of batch.records) {
      const first = byIndex.get(record.index);
      if (!first) continue;
      assertSameRecord(dataset, record, first, rerun);
      found.push(read(record));
    }
  }
  if (found.length !== wanted.length) throw changedWhileRead(dataset, rerun);
  return found;
}

/** A record read again is the one the first walk read at its place: the dataset was not rewritten in between. */
function assertSameRecord(dataset: RecordBatches, record: DatasetRecord, first: RecordKey | undefined, rerun: Rerun = SELECT_AGAIN): void {
  if (first?.index !== record.index || first.id !== record.id) throw changedWhileRead(dataset, rerun);
}

function changedWhileRead(dataset: RecordBatches, rerun: Rerun = SELECT_AGAIN): NuggetsError {
  return new NuggetsError(`${dataset.source} changed while it was being read for ${rerun.purpose}.`, rerun.hint);
}
