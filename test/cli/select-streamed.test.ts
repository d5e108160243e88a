/**
 * `nuggets select` on Parquet walks the file a row group at a time (server/selection/select-pass.ts) instead of reading
 * it whole: real records (gpteacher-roleplay, with a repeated record and an empty output among them) in several row
 * groups give byte for byte the subsets that the whole-file read gives (the engine's functions applied to
 * loadDataset, as the command did before), for every kind of rule, and a file whose rows do not fit in a small heap
 * is selected from all the same.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { sampleRecords } from '../../server/records/anchors';
import { loadDataset, openRecordBatches, writeParquetRecords } from '../../server/records/parquet';
import { readScores } from '../../server/records/store';
import { cardPathFor, idsHash } from '../../server/selection/card';
import { similarityFor } from '../../server/selection/diverse';
import { pairScores, select, writeSubset, type ScoredRecord, type SelectionRule } from '../../server/selection/select';
import { recordTexts, selectionRecords, wholeRecords } from '../../server/selection/select-pass';
import { embeddingsPathFor, readEmbeddings } from '../../server/signals/embedding-file';
import { repoRoot, scratchDir, sharedData } from '../helpers';

const cli = join(repoRoot, 'dist', 'cli.js');
let dir: string;
let writer: typeof import('hyparquet-writer');

const real = (JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')) as Array<Record<string, string>>).slice(40, 70);
/** 32 records: 30 real ones, then a repeat of record 3 and record 10 with its output emptied (both problem records). */
const records: Array<Record<string, string>> = [...real, { ...real[3]! }, { ...real[10]!, output: '' }];

function nuggets(args: string[], heapMb?: number): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...(heapMb ? [`--max-old-space-size=${heapMb}`] : []), cli, ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Alpaca records with two more columns, a source name and an INT64 row number: every column goes into the subset. */
function writeRows(path: string, rows: Array<Record<string, string>>, rowGroupSize: number, extra: (k: number) => string = (k) => `gpteacher-roleplay #${40 + k}`): void {
  writeFileSync(path, Buffer.from(writer.parquetWriteBuffer({
    columnData: [
      ...['instruction', 'input', 'output'].map((name) => ({ name, data: rows.map((r) => r[name]), type: 'STRING' as const })),
      { name: 'source', data: rows.map((_r, k) => extra(k)), type: 'STRING' as const },
      { name: 'row', data: rows.map((_r, k) => BigInt(k)), type: 'INT64' as const },
    ],
    rowGroupSize,
  })));
}

/**
 * The records with a 3 MB "source" column of real text each (32 rows: about 100 MB decoded, 5 MB on disk compressed),
 * a row group each (wide.parquet). Read whole, as before these tests, select and agree die of heap exhaustion even
 * with a 160 MB heap (both need 200 MB); a row group at a time, select needs under 32 MB and agree (its sample of 3
 * held whole) under 40 MB: 64 MB leaves room.
 */
const wideText = real.map((r) => r['output']).join('\n\n');
const blob = (k: number): string => `${k}: ${wideText.repeat(Math.ceil(3_000_000 / wideText.length))}`;

/**
 * The subset as the whole-file read makes it: the dataset loaded whole, its records paired with their scores, the rule
 * applied, and the chosen records written as JSON or with the dataset's Parquet schema.
 */
async function wholeFileSubset(dataset: string, scoresPath: string, rule: SelectionRule, out: string, options: { withScores?: boolean; randomSeed?: number } = {}): Promise<ScoredRecord[]> {
  const whole = await loadDataset(dataset);
  const scored = pairScores(whole.records, readScores(scoresPath).scores, scoresPath);
  const embeddings = readEmbeddings(embeddingsPathFor(scoresPath))?.vectors ?? new Map<string, Float32Array>();
  const selection = select(scored, rule, rule.diverse !== undefined ? similarityFor(whole.records, embeddings).source : undefined);
  let chosen = selection.chosen;
  if (options.randomSeed !== undefined) {
    const leftOut = new Set(selection.problemsLeftOut.map((p) => p.index));
    chosen = sampleRecords(scored.filter((s) => !leftOut.has(s.record.index)), chosen.length, options.randomSeed);
  }
  const withScores = options.withScores === true;
  if (!out.endsWith('.parquet')) writeSubset(out, chosen, withScores);
  else {
    const sorted = [...chosen].sort((a, b) => a.record.index - b.record.index);
    writeParquetRecords(out, whole.parquetSchema, sorted.map((s) => s.record.original), withScores ? sorted.map((s) => s.score.goldenScore) : undefined);
  }
  return chosen;
}

before(async () => {
  writer = await import('hyparquet-writer');
  dir = scratchDir('select-streamed');
  writeFileSync(join(dir, 'records.json'), JSON.stringify(records, null, 2));
  writeRows(join(dir, 'records.parquet'), records, 7);
  for (const args of [
    ['anchors', 'records.json', '--random', '3', '--seed', '1', '--out', 'anchors.json'],
    ['score', 'records.json', '--anchors', 'anchors.json', '--out', 'records.scores.jsonl', '--threads', '1'],
  ]) {
    const r = nuggets(args);
    assert.equal(r.code, 0, r.stderr);
  }
  writeRows(join(dir, 'wide.parquet'), records, 1, blob);
  // The same scores without their embeddings: diversity then reads the records' text (TF-IDF).
  copyFileSync(join(dir, 'records.scores.jsonl'), join(dir, 'no-embeddings.scores.jsonl'));
});

test('select on Parquet in 5 row groups writes, for every kind of rule, the bytes the whole-file read writes, as Parquet and as JSON', async () => {
  const left = 'left-out' as const;
  const cases: Array<{ args: string[]; rule: SelectionRule; scores?: string; withScores?: boolean; randomSeed?: number }> = [
    { args: ['--top', '5'], rule: { kind: 'top', count: 5, problems: left } },
    { args: ['--top-percent', '20', '--with-scores'], rule: { kind: 'top-percent', percent: 20, problems: left }, withScores: true },
    { args: ['--min-score', '0.5', '--max-ifd', '1'], rule: { kind: 'min-score', minScore: 0.5, bounds: [{ signal: 'ifd', max: 1 }], problems: left } },
    { args: ['--top', '6', '--by', 'ifd'], rule: { kind: 'top', count: 6, by: 'ifd', problems: left } },
    { args: ['--top', '8', '--keep-problems'], rule: { kind: 'top', count: 8, problems: 'kept' } },
    { args: ['--top', '8', '--diverse', '0.95'], rule: { kind: 'top', count: 8, diverse: 0.95, problems: left } },
    { args: ['--top', '8', '--diverse', '0.2'], rule: { kind: 'top', count: 8, diverse: 0.2, problems: left }, scores: 'no-embeddings.scores.jsonl' },
    { args: ['--top', '7', '--baseline', 'random', '--seed', '3'], rule: { kind: 'top', count: 7, problems: left }, randomSeed: 3 },
  ];
  const skipped: number[] = [];
  for (const [k, c] of cases.entries()) {
    const scores = c.scores ?? 'records.scores.jsonl';
    for (const extension of ['parquet', 'json']) {
      const out = `subset-${k}.${extension}`;
      const r = nuggets(['select', 'records.parquet', '--scores', scores, ...c.args, '--out', out]);
      assert.equal(r.code, 0, `${c.args.join(' ')}: ${r.stderr}`);
      const written = c.randomSeed !== undefined ? `subset-${k}.random.${extension}` : out;
      const expected = await wholeFileSubset(join(dir, 'records.parquet'), join(dir, scores), c.rule, join(dir, `expected-${k}.${extension}`), c);
      assert.ok(readFileSync(join(dir, written)).equals(readFileSync(join(dir, `expected-${k}.${extension}`))), `${c.args.join(' ')} -> ${written}: not the whole-file read's bytes`);
      const card = JSON.parse(readFileSync(join(dir, cardPathFor(written)), 'utf8')) as { subset: { records: number; ids_sha256: string }; source: { records: number }; problemsLeftOut: number };
      assert.deepEqual([card.subset.records, card.subset.ids_sha256, card.source.records], [expected.length, idsHash(expected.map((s) => s.record)), records.length]);
      // The repeat and the empty output are left out (both found from what the first walk keeps), or kept when asked.
      assert.equal(card.problemsLeftOut, c.rule.problems === 'kept' ? 0 : 2, c.args.join(' '));
      const duplicates = /skipped (\d+) near-duplicates/.exec(r.stdout);
      if (duplicates) skipped.push(Number(duplicates[1]));
    }
  }
  // The diverse rules did skip records (the embeddings' and the text's), so the walks for them were exercised.
  assert.equal(skipped.length, 4);
  assert.ok(skipped.every((n) => n > 0), `near-duplicates skipped: ${skipped.join(', ')}`);
  // The problem records were left out, and kept when asked.
  const kept = JSON.parse(readFileSync(join(dir, 'subset-4.json'), 'utf8')) as unknown[];
  assert.equal(kept.length, 8);
});

test('a Parquet file whose rows do not fit in a 64 MB heap is selected from a row group at a time, and its subset keeps every column', async () => {
  const r = nuggets(['select', 'wide.parquet', '--scores', 'records.scores.jsonl', '--top', '2', '--out', 'wide.golden.parquet'], 64);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /selected 2 of 32 records/);
  const expected = await wholeFileSubset(join(dir, 'wide.parquet'), join(dir, 'records.scores.jsonl'), { kind: 'top', count: 2, problems: 'left-out' }, join(dir, 'wide.expected.parquet'));
  assert.ok(readFileSync(join(dir, 'wide.golden.parquet')).equals(readFileSync(join(dir, 'wide.expected.parquet'))), 'not the whole-file read\'s bytes');
  assert.equal(expected.length, 2);
  for (const s of expected) assert.equal((s.record.original['source'] as string).length, blob(s.record.index).length);
});

test('agree draws its sample from a Parquet file it never holds whole: under a 64 MB heap, the report of the same records in JSON', () => {
  const agree = (dataset: string, heapMb?: number): ReturnType<typeof nuggets> =>
    nuggets(['agree', dataset, '--anchors', 'anchors.json', '--model', 'demo', '--model', 'demo', '--sample', '3', '--seed', '4', '--threads', '1'], heapMb);
  const wide = agree('wide.parquet', 64);
  assert.equal(wide.code, 0, wide.stderr);
  const json = agree('records.json');
  assert.equal(json.code, 0, json.stderr);
  assert.match(json.stdout, /^demo vs demo on 3 records/);
  assert.equal(wide.stdout, json.stdout);
});

test('a dataset rewritten between select\'s walks is named, and no subset is made from its other rows', async () => {
  const first = await openRecordBatches(join(dir, 'records.parquet'));
  const kept = await selectionRecords(first);
  const chosen = select(pairScores(kept, readScores(join(dir, 'records.scores.jsonl')).scores, 'records.scores.jsonl'), { kind: 'top', count: 5, problems: 'left-out' }).chosen;
  assert.equal((await wholeRecords(first, chosen)).length, 5, 'walked again unchanged, the chosen rows are found');
  // What the later walks would read had the file been rewritten meanwhile: the same rows in reverse order, and cut short.
  writeRows(join(dir, 'reversed.parquet'), [...records].reverse(), 7);
  const reversed = await openRecordBatches(join(dir, 'reversed.parquet'));
  await assert.rejects(wholeRecords(reversed, chosen), /reversed\.parquet changed while it was being read for the selection/);
  await assert.rejects(recordTexts(reversed, kept), /reversed\.parquet changed while it was being read for the selection/);
  writeRows(join(dir, 'cut.parquet'), records.slice(0, 4), 7);
  await assert.rejects(recordTexts(await openRecordBatches(join(dir, 'cut.parquet')), kept), /cut\.parquet changed while it was being read/);
});
