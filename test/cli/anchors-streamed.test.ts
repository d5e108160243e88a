/**
 * `nuggets anchors` walks a dataset (server/cli/anchors-command.ts) instead of reading it whole: real records
 * (gpteacher-roleplay with a repeated record and an empty output, fastchat-identity conversations with one that cannot
 * be scored) in several Parquet row groups give, for --random and --kmeans, the anchors file bytes and messages that
 * the same records give from JSON and that the whole-file read gives (the engine's functions applied to loadDataset,
 * as the command did before); a file whose rows do not fit a small heap gets its anchors all the same; and a dataset
 * rewritten between the walks is named.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { chooseAnchorsWalking } from '../../server/cli/anchors-command';
import { anchorSet, chooseKMeans, chooseRandom, describeSkipped, screenAnchors, writeAnchors } from '../../server/records/anchors';
import { loadDataset, openRecordBatches, type RecordBatches } from '../../server/records/parquet';
import { repoRoot, scratchDir, sharedData, writeShareGptParquet } from '../helpers';

const cli = join(repoRoot, 'dist', 'cli.js');
let dir: string;
let writer: typeof import('hyparquet-writer');

const real = (JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')) as Array<Record<string, string>>).slice(100, 160);
/** 62 records: 60 real ones, then a repeat of record 3 and record 10 with its output emptied (neither can be an anchor). */
const records: Array<Record<string, string>> = [...real, { ...real[3]! }, { ...real[10]!, output: '' }];

type ShareGpt = { id: string; conversations: Array<{ from: string; value: string }> };
const conversations = (JSON.parse(readFileSync(sharedData('fastchat-identity.sharegpt.json'), 'utf8')) as ShareGpt[]).slice(0, 40);
/** 41 conversations: 40 real ones, the 7th cut to its first turn (it cannot be scored), then a repeat of the 3rd. */
const identity = [...conversations.map((r, i) => (i === 6 ? { ...r, conversations: r.conversations.slice(0, 1) } : r)), { ...conversations[2]!, id: 'identity_2_again' }];

function nuggets(args: string[], heapMb?: number): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...(heapMb ? [`--max-old-space-size=${heapMb}`] : []), cli, ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Alpaca records with a fourth column (a source name by default), in row groups of `rowGroupSize`. */
function writeAlpaca(path: string, rows: Array<Record<string, string>>, rowGroupSize: number, extra: (k: number) => string = (k) => `gpteacher-roleplay #${100 + k}`): void {
  writeFileSync(path, Buffer.from(writer.parquetWriteBuffer({
    columnData: [
      ...['instruction', 'input', 'output'].map((name) => ({ name, data: rows.map((r) => r[name]), type: 'STRING' as const })),
      { name: 'source', data: rows.map((_r, k) => extra(k)), type: 'STRING' as const },
    ],
    rowGroupSize,
  })));
}

/**
 * The records with a 3 MB "source" column of real text each (62 rows: about 190 MB decoded), a row group each. The
 * anchors read only instruction, input and output, so its anchors are those of records.parquet.
 */
const wideText = real.map((r) => r['output']).join('\n\n');
const blob = (k: number): string => `${k}: ${wideText.repeat(Math.ceil(3_000_000 / wideText.length))}`;

/**
 * The anchors file and messages as the whole-file read made them: the dataset loaded whole, its rejected records
 * named (20 at most), the anchors chosen, the skipped ones described, the file written.
 */
async function wholeFileAnchors(dataset: string, method: 'kmeans' | 'random', count: number, seed: number, out: string): Promise<string> {
  const whole = await loadDataset(dataset);
  const lines = whole.rejected.slice(0, 20).map((r) => `warning: ${r.where}: record skipped: ${r.why}.`);
  if (whole.rejected.length > 20) lines.push(`warning: … and ${whole.rejected.length - 20} more records skipped.`);
  const chosen = method === 'kmeans' ? chooseKMeans(whole.records, count, seed) : chooseRandom(whole.records, count, seed);
  const { skipped } = screenAnchors(whole.records);
  if (skipped.length > 0) lines.push(`warning: ${describeSkipped(skipped)}`);
  writeAnchors(out, chosen);
  lines.push(`wrote ${chosen.length} anchors (${method === 'kmeans' ? 'k-means' : 'random'}, seed ${seed}, set ${anchorSet(chosen).hash}) to ${out}`);
  return lines.map((l) => `${l}\n`).join('');
}

before(async () => {
  writer = await import('hyparquet-writer');
  dir = scratchDir('anchors-streamed');
  writeFileSync(join(dir, 'records.json'), JSON.stringify(records, null, 2));
  writeAlpaca(join(dir, 'records.parquet'), records, 7);
  writeFileSync(join(dir, 'identity.json'), JSON.stringify(identity, null, 2));
  writeShareGptParquet(writer, join(dir, 'identity.parquet'), identity, 6);
  // Every other conversation cut to its first turn: 21 that cannot be scored, over the 20 the messages name.
  const broken = identity.map((r, i) => (i % 2 === 0 ? { ...r, conversations: r.conversations.slice(0, 1) } : r));
  writeFileSync(join(dir, 'broken.json'), JSON.stringify(broken, null, 2));
  writeShareGptParquet(writer, join(dir, 'broken.parquet'), broken, 5);
  writeAlpaca(join(dir, 'wide.parquet'), records, 1, blob);
});

const cases: Array<{ dataset: string; method: 'kmeans' | 'random'; count: number; seed: number }> = [
  { dataset: 'records', method: 'random', count: 5, seed: 2 },
  { dataset: 'records', method: 'kmeans', count: 6, seed: 0 },
  { dataset: 'records', method: 'kmeans', count: 4, seed: 9 },
  { dataset: 'identity', method: 'random', count: 3, seed: 1 },
  { dataset: 'identity', method: 'kmeans', count: 4, seed: 0 },
  { dataset: 'broken', method: 'kmeans', count: 3, seed: 2 },
];

test('anchors of Parquet in several row groups: for --random and --kmeans, the bytes and messages of the whole-file read and of the same records in JSON', async () => {
  for (const c of cases) {
    const name = `${c.dataset}-${c.method}-${c.count}-${c.seed}`;
    const fromJson = nuggets(['anchors', `${c.dataset}.json`, `--${c.method}`, String(c.count), '--seed', String(c.seed), '--out', `${name}.json.anchors.json`]);
    assert.equal(fromJson.code, 0, fromJson.stderr);
    const out = `${name}.anchors.json`;
    const walked = nuggets(['anchors', `${c.dataset}.parquet`, `--${c.method}`, String(c.count), '--seed', String(c.seed), '--out', out]);
    assert.equal(walked.code, 0, walked.stderr);
    const expectedMessages = await wholeFileAnchors(join(dir, `${c.dataset}.parquet`), c.method, c.count, c.seed, join(dir, `${name}.expected.json`));
    const bytes = readFileSync(join(dir, out));
    assert.ok(bytes.equals(readFileSync(join(dir, `${name}.expected.json`))), `${name}: not the whole-file read's anchors`);
    assert.ok(bytes.equals(readFileSync(join(dir, `${name}.json.anchors.json`))), `${name}: not the anchors of the same records in JSON`);
    assert.equal(walked.stderr, expectedMessages.replaceAll(`${dir}/`, '').replace(`${name}.expected.json`, out), name);
    // The anchors are real ones: the count asked, each a record that can be an anchor.
    const anchors = JSON.parse(bytes.toString('utf8')) as Array<{ source_index: number; messages?: unknown[] }>;
    assert.equal(anchors.length, c.count);
    assert.ok(anchors.every((a) => (c.dataset !== 'records') === (a.messages !== undefined)), name);
  }
  // What was screened out was met: the repeat and the empty output, the conversation that cannot be scored, the repeated conversations.
  const records = nuggets(['anchors', 'records.parquet', '--random', '2', '--out', 'screened.json']);
  assert.match(records.stderr, /2 records skipped as anchors: index 60 \("[^"]+…"\) repeats index 3; index 61 \("[^"]+…"\) has an empty response/);
  assert.match(nuggets(['anchors', 'broken.parquet', '--random', '2', '--out', 'screened.json']).stderr, /\nwarning: … and 1 more records skipped\.\n/);
  const identity = nuggets(['anchors', 'identity.parquet', '--random', '2', '--out', 'screened.json']);
  assert.match(identity.stderr, /^warning: identity\.parquet \(row group 1, row 6\): record skipped: it has no assistant turn\.\nwarning: 1 record skipped as anchors: index 40 \("[^"]+…"\) repeats index 2\n/);
});

test('asking for more anchors than can be had says so after the first walk, as the whole-file read did, and writes nothing', async () => {
  const r = nuggets(['anchors', 'records.parquet', '--kmeans', '61', '--out', 'too-many.json']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Asked for 61 anchors but only 60 of the dataset's 62 records can be anchors/);
  const whole = await loadDataset(join(dir, 'records.parquet'));
  assert.throws(() => chooseKMeans(whole.records, 61, 0), (err: Error) => r.stderr.includes(err.message));
  assert.throws(() => readFileSync(join(dir, 'too-many.json')), /ENOENT/);
});

test('a Parquet file whose rows do not fit a 64 MB heap gets its anchors, random and k-means, a row group at a time', () => {
  for (const method of ['random', 'kmeans']) {
    const args = [`--${method}`, '3', '--seed', '5'];
    const wide = nuggets(['anchors', 'wide.parquet', ...args, '--out', `wide-${method}.json`], 64);
    assert.equal(wide.code, 0, wide.stderr);
    const narrow = nuggets(['anchors', 'records.parquet', ...args, '--out', `narrow-${method}.json`]);
    assert.equal(narrow.code, 0, narrow.stderr);
    assert.ok(readFileSync(join(dir, `wide-${method}.json`)).equals(readFileSync(join(dir, `narrow-${method}.json`))), `${method}: not the anchors of the same records`);
  }
});

test('a dataset rewritten between the walks is named, and no anchors come from its other rows', async () => {
  const original = await openRecordBatches(join(dir, 'records.parquet'));
  writeAlpaca(join(dir, 'reversed.parquet'), [...records].reverse(), 7);
  const reversed = await openRecordBatches(join(dir, 'reversed.parquet'));
  /** records.parquet at the first walk, reversed.parquet at every later one. */
  const rewritten = (): RecordBatches => {
    let walks = 0;
    return { ...original, batches: () => (walks++ === 0 ? original : reversed).batches() };
  };
  const warn = (): void => {};
  for (const method of ['random', 'kmeans'] as const) {
    const unchanged = await chooseAnchorsWalking(original, method, 4, 0, warn);
    assert.equal(unchanged.chosen.length, 4, 'walked again unchanged, the chosen rows are found');
    await assert.rejects(chooseAnchorsWalking(rewritten(), method, 4, 0, warn), /records\.parquet changed while it was being read for its anchors/);
  }
});
