/**
 * Parquet datasets from the command line: real records (gpteacher-roleplay Alpaca, FastChat's identity ShareGPT)
 * written here as Parquet by hyparquet-writer (snappy, zstd, gzip, uncompressed; several row groups; a folder of
 * shards; a nested list<struct> column), read by anchors, score and select into the same ids and golden scores
 * as the same records in JSON, a Parquet subset written back with the same rows, and bad files named.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readDataset } from '../../server/records/dataset';
import { repoRoot, sharedData, writeShareGptParquet } from '../helpers';

const cli = join(repoRoot, 'dist', 'cli.js');
let dir: string;

type Writer = typeof import('hyparquet-writer');
type Reader = typeof import('hyparquet');
let writer: Writer;
let reader: Reader;

function nuggets(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args, ...(args[0] === 'score' ? ['--threads', '1'] : [])], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function scoreLines(path: string): Array<{ id: string; golden_score: number }> {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').slice(1).map((l) => JSON.parse(l));
}

/**
 * A zstd frame of raw (stored) blocks: a valid zstd stream that any decoder reads, written by hand because neither
 * Node 20's zlib nor hyparquet-compressors (decoders only) compresses zstd.
 */
function zstdStored(input: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  const header = Buffer.alloc(9);
  header.writeUInt32LE(0xfd2fb528, 0);
  header[4] = 0xa0; // single segment, 4-byte content size
  header.writeUInt32LE(input.length, 5);
  parts.push(header);
  const max = 128 * 1024;
  let at = 0;
  do {
    const size = Math.min(max, input.length - at);
    const last = at + size >= input.length ? 1 : 0;
    const block = Buffer.alloc(3);
    block.writeUIntLE(last | (size << 3), 0, 3); // block type 0: raw
    parts.push(block, input.subarray(at, at + size));
    at += size;
  } while (at < input.length);
  return Buffer.concat(parts);
}

/** Alpaca records as three string columns. */
function writeAlpaca(path: string, records: Array<Record<string, unknown>>, options: { codec?: string; rowGroupSize?: number } = {}): void {
  const codecs = { ZSTD: zstdStored, GZIP: (b: Uint8Array) => new Uint8Array(gzipSync(b)) };
  const buffer = writer.parquetWriteBuffer({
    columnData: ['instruction', 'input', 'output'].map((name) => ({ name, data: records.map((r) => r[name]), type: 'STRING' as const })),
    ...(options.codec ? { codec: options.codec as 'SNAPPY', compressors: codecs } : {}),
    ...(options.rowGroupSize ? { rowGroupSize: options.rowGroupSize } : {}),
  });
  writeFileSync(path, Buffer.from(buffer));
}

const alpacaAll = JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')) as Array<Record<string, string>>;
const alpaca: Array<Record<string, unknown>> = alpacaAll.slice(0, 12);
const identity = (JSON.parse(readFileSync(sharedData('fastchat-identity.sharegpt.json'), 'utf8')) as Array<{ id: string; conversations: unknown[] }>).slice(0, 8);

/** A subset's rows (written snappy, which hyparquet reads without hyparquet-compressors). */
async function readRows(path: string): Promise<{ rows: Array<Record<string, unknown>> }> {
  const file = new Uint8Array(readFileSync(path)).buffer;
  return { rows: await reader.parquetReadObjects({ file }) };
}

function layoutOf(path: string): { codecs: string[]; rowGroups: number } {
  const metadata = reader.parquetMetadata(new Uint8Array(readFileSync(path)).buffer);
  return { codecs: [...new Set(metadata.row_groups.flatMap((g) => g.columns.map((c) => c.meta_data!.codec)))], rowGroups: metadata.row_groups.length };
}

before(async () => {
  writer = await import('hyparquet-writer');
  reader = await import('hyparquet');
  dir = mkdtempSync(join(tmpdir(), 'nuggets-parquet-'));
  writeFileSync(join(dir, 'alpaca.json'), JSON.stringify(alpaca, null, 2));
  writeAlpaca(join(dir, 'snappy.parquet'), alpaca, { rowGroupSize: 5 });
  writeAlpaca(join(dir, 'zstd.parquet'), alpaca, { codec: 'ZSTD' });
  writeAlpaca(join(dir, 'gzip.parquet'), alpaca, { codec: 'GZIP' });
  writeAlpaca(join(dir, 'plain.parquet'), alpaca, { codec: 'UNCOMPRESSED' });
  mkdirSync(join(dir, 'data'));
  // Named so that a plain string sort would put shard 10 before shard 2: shards are read in numeric order.
  [[0, 4], [4, 8], [8, 12]].forEach(([from, to], k) => writeAlpaca(join(dir, 'data', `train-${[2, 10, 11][k]}-of-3.parquet`), alpaca.slice(from, to)));
  writeFileSync(join(dir, 'identity.json'), JSON.stringify(identity, null, 2));
  writeShareGptParquet(writer, join(dir, 'identity.parquet'), identity, 3);
  const r = nuggets('anchors', join(dir, 'alpaca.json'), '--random', '3', '--seed', '1', '--out', join(dir, 'anchors.json'));
  assert.equal(r.code, 0, r.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('the fixtures are what they claim: snappy in 3 row groups, zstd, gzip, uncompressed; conversations in 3 row groups', () => {
  assert.deepEqual(layoutOf(join(dir, 'snappy.parquet')), { codecs: ['SNAPPY'], rowGroups: 3 });
  assert.deepEqual(layoutOf(join(dir, 'zstd.parquet')).codecs, ['ZSTD']);
  assert.deepEqual(layoutOf(join(dir, 'gzip.parquet')).codecs, ['GZIP']);
  assert.deepEqual(layoutOf(join(dir, 'plain.parquet')).codecs, ['UNCOMPRESSED']);
  assert.deepEqual(layoutOf(join(dir, 'identity.parquet')).rowGroups, 3);
});

test('Parquet scores equal the same records\' JSON scores: same ids, same golden scores, for every codec, row groups and a folder of shards', () => {
  const json = nuggets('score', join(dir, 'alpaca.json'), '--anchors', join(dir, 'anchors.json'), '--out', join(dir, 'json.scores.jsonl'));
  assert.equal(json.code, 0, json.stderr);
  const expected = scoreLines(join(dir, 'json.scores.jsonl')).map((l) => [l.id, l.golden_score]);
  assert.deepEqual(expected.map(([id]) => id), readDataset(join(dir, 'alpaca.json')).records.map((r) => r.id));
  assert.ok(new Set(expected.map(([, s]) => s)).size > 1, 'the scores tell records apart');
  for (const input of ['snappy.parquet', 'zstd.parquet', 'gzip.parquet', 'plain.parquet', 'data']) {
    const out = join(dir, `${input}.scores.jsonl`);
    const r = nuggets('score', join(dir, input), '--anchors', join(dir, 'anchors.json'), '--out', out);
    assert.equal(r.code, 0, `${input}: ${r.stderr}`);
    assert.deepEqual(scoreLines(out).map((l) => [l.id, l.golden_score]), expected, input);
  }
});

test('a Parquet file larger than the run\'s memory is scored a row group at a time: with a 64 MB heap, the last slice of 8,000 long records scores as the same records in JSON do', () => {
  // 8,000 records of 16 real outputs each (45 MB of Parquet, about 100 MB of text): read whole, as before this test,
  // the run dies of heap exhaustion above 96 MB; a row group at a time it needs under 48 MB. The last 20 are plain.
  const count = 8000;
  const plainFrom = count - 20;
  const recordAt = (k: number): Record<string, string> => {
    const r = alpacaAll[k % alpacaAll.length]!;
    const output = k >= plainFrom ? r.output : Array.from({ length: 16 }, (_, j) => alpacaAll[(k * 7 + j * 131) % alpacaAll.length]!.output).join('\n\n');
    return { instruction: r.instruction, input: `${r.input} (${k})`, output };
  };
  const rows = Array.from({ length: count }, (_, k) => recordAt(k));
  writeFileSync(join(dir, 'long.parquet'), Buffer.from(writer.parquetWriteBuffer({
    columnData: ['instruction', 'input', 'output'].map((name) => ({ name, data: rows.map((r) => r[name]), type: 'STRING' as const })),
    rowGroupSize: 500,
  })));
  writeFileSync(join(dir, 'long-tail.json'), JSON.stringify(rows.slice(plainFrom)));
  const score = (input: string, out: string, ...extra: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, ['--max-old-space-size=64', cli, 'score', join(dir, input), '--anchors', join(dir, 'anchors.json'), '--out', join(dir, out), '--threads', '1', ...extra], { cwd: dir, encoding: 'utf8' });
  const parquet = score('long.parquet', 'long.scores.jsonl', '--shard', '399/400');
  assert.equal(parquet.status, 0, String(parquet.stderr));
  assert.match(String(parquet.stderr), /scoring up to 20 records, a row group at a time/);
  const json = score('long-tail.json', 'long-tail.scores.jsonl');
  assert.equal(json.status, 0, String(json.stderr));
  const expected = scoreLines(join(dir, 'long-tail.scores.jsonl')).map((l) => [l.id, l.golden_score]);
  assert.equal(expected.length, 20);
  assert.deepEqual(scoreLines(join(dir, 'long.scores.jsonl')).map((l) => [l.id, l.golden_score]), expected);
});

test('a Parquet subset is Parquet with the same rows, in dataset order, and --with-scores adds golden_score', async () => {
  const scores = join(dir, 'snappy.parquet.scores.jsonl');
  const out = join(dir, 'golden.parquet');
  const r = nuggets('select', join(dir, 'snappy.parquet'), '--scores', scores, '--top', '5', '--with-scores', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /selected 5 of 12 records/);
  const byId = new Map(scoreLines(scores).map((l) => [l.id, l.golden_score]));
  const ids = readDataset(join(dir, 'alpaca.json')).records.map((rec) => rec.id);
  const top = [...ids.keys()].sort((a, b) => byId.get(ids[b]!)! - byId.get(ids[a]!)! || a - b).slice(0, 5).sort((a, b) => a - b);
  const { rows } = await readRows(out);
  assert.deepEqual(rows, top.map((i) => ({ ...alpaca[i], golden_score: byId.get(ids[i]!) })));
  // The same selection written as JSON from the Parquet input holds the same records.
  const asJson = nuggets('select', join(dir, 'snappy.parquet'), '--scores', scores, '--top', '5', '--out', join(dir, 'golden.json'));
  assert.equal(asJson.code, 0, asJson.stderr);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')), top.map((i) => alpaca[i]));
  // Other column types come back as they were: 64-bit integers beyond 2^53, doubles with nulls, booleans.
  writeFileSync(join(dir, 'typed.parquet'), Buffer.from(writer.parquetWriteBuffer({
    columnData: [
      ...['instruction', 'input', 'output'].map((name) => ({ name, data: alpaca.map((rec) => rec[name]), type: 'STRING' as const })),
      { name: 'row_id', data: alpaca.map((_rec, i) => BigInt(i) * 10_000_000_000_000_000n), type: 'INT64' },
      { name: 'quality', data: alpaca.map((_rec, i) => (i % 3 === 0 ? null : i / 7)), type: 'DOUBLE' },
      { name: 'ok', data: alpaca.map((_rec, i) => i % 2 === 0), type: 'BOOLEAN' },
    ],
  })));
  const typed = nuggets('select', join(dir, 'typed.parquet'), '--scores', scores, '--top', '5', '--out', join(dir, 'typed.golden.parquet'));
  assert.equal(typed.code, 0, typed.stderr);
  assert.deepEqual((await readRows(join(dir, 'typed.golden.parquet'))).rows, top.map((i) => ({
    ...alpaca[i], row_id: BigInt(i) * 10_000_000_000_000_000n, quality: i % 3 === 0 ? null : i / 7, ok: i % 2 === 0,
  })));
  // JSON in, Parquet out is refused with the way out.
  const fromJson = nuggets('select', join(dir, 'alpaca.json'), '--scores', scores, '--top', '5', '--out', join(dir, 'from-json.parquet'));
  assert.equal(fromJson.code, 1);
  assert.match(fromJson.stderr, /Cannot write .*from-json\.parquet as Parquet.*\n.*--out subset\.json/);
  // A folder of shards is selected from too, and its card hashes the shards.
  const shards = nuggets('select', join(dir, 'data'), '--scores', join(dir, 'data.scores.jsonl'), '--top', '5', '--out', join(dir, 'shards.parquet'));
  assert.equal(shards.code, 0, shards.stderr);
  assert.deepEqual((await readRows(join(dir, 'shards.parquet'))).rows, top.map((i) => alpaca[i]));
  const again = nuggets('select', '--card', join(dir, 'shards.parquet.card.json'));
  assert.equal(again.code, 0, again.stderr);
});

test('a list<struct> conversations column reads as ShareGPT records: the JSON records\' ids and scores, and the subset keeps the nested column', async () => {
  const anchors = join(dir, 'chat-anchors.json');
  assert.equal(nuggets('anchors', join(dir, 'identity.json'), '--random', '3', '--seed', '2', '--out', anchors).code, 0);
  const json = nuggets('score', join(dir, 'identity.json'), '--anchors', anchors, '--template', 'chatml', '--out', join(dir, 'identity.json.scores.jsonl'));
  assert.equal(json.code, 0, json.stderr);
  const parquet = nuggets('score', join(dir, 'identity.parquet'), '--anchors', anchors, '--template', 'chatml', '--out', join(dir, 'identity.parquet.scores.jsonl'));
  assert.equal(parquet.code, 0, parquet.stderr);
  const expected = scoreLines(join(dir, 'identity.json.scores.jsonl')).map((l) => [l.id, l.golden_score]);
  assert.equal(expected.length, readDataset(join(dir, 'identity.json')).records.length);
  assert.deepEqual(scoreLines(join(dir, 'identity.parquet.scores.jsonl')).map((l) => [l.id, l.golden_score]), expected);
  const out = join(dir, 'identity.golden.parquet');
  const r = nuggets('select', join(dir, 'identity.parquet'), '--scores', join(dir, 'identity.parquet.scores.jsonl'), '--top', '3', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const { rows } = await readRows(out);
  assert.equal(rows.length, 3);
  for (const row of rows) assert.deepEqual(row, identity.find((rec) => rec.id === row['id']));
});

test('a record that cannot be scored is named by file, row group and row', () => {
  const broken = identity.map((r, i) => (i === 4 ? { ...r, conversations: r.conversations.slice(0, 1) } : r));
  writeShareGptParquet(writer, join(dir, 'broken.parquet'), broken, 3);
  const r = nuggets('anchors', join(dir, 'broken.parquet'), '--random', '2', '--out', join(dir, 'broken-anchors.json'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /broken\.parquet \(row group 1, row 4\): record skipped: it has no assistant turn/);
});

test('bad Parquet files end with a message naming the file, exit 1, no stack trace', () => {
  const truncated = readFileSync(join(dir, 'snappy.parquet')).subarray(0, 200);
  writeFileSync(join(dir, 'corrupt.parquet'), truncated);
  writeFileSync(join(dir, 'missing.parquet'), Buffer.from(writer.parquetWriteBuffer({
    columnData: ['instruction', 'input'].map((name) => ({ name, data: alpaca.map((rec) => rec[name]), type: 'STRING' as const })),
  })));
  writeFileSync(join(dir, 'wrong-type.parquet'), Buffer.from(writer.parquetWriteBuffer({
    columnData: [
      { name: 'instruction', data: alpaca.map((rec) => rec['instruction']), type: 'STRING' },
      { name: 'output', data: alpaca.map((_rec, i) => i), type: 'INT32' },
    ],
  })));
  // Row group 1's pages overwritten, its footer intact: row group 0 reads, row group 1 is named.
  const damaged = Buffer.from(readFileSync(join(dir, 'snappy.parquet')));
  const pages = Number(reader.parquetMetadata(new Uint8Array(damaged).buffer).row_groups[1]!.columns[0]!.meta_data!.data_page_offset);
  damaged.fill(0xff, pages, pages + 48);
  writeFileSync(join(dir, 'damaged.parquet'), damaged);
  const cases: Array<[string, RegExp]> = [
    ['corrupt.parquet', /corrupt\.parquet is not a readable Parquet file/],
    ['damaged.parquet', /damaged\.parquet: row group 1 cannot be read: /],
    ['missing.parquet', /missing\.parquet \(row group 0, row 0\): record 0 has no "output" field/],
    ['wrong-type.parquet', /wrong-type\.parquet \(row group 0, row 0\): record 0 field "output" is a number, not a string/],
  ];
  for (const [name, message] of cases) {
    for (const args of [['anchors', join(dir, name), '--random', '2', '--out', join(dir, 'x.json')], ['score', join(dir, name), '--anchors', join(dir, 'anchors.json'), '--out', join(dir, 'x.jsonl')]]) {
      const r = nuggets(...args);
      assert.equal(r.code, 1, `${args[0]} ${name}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  }
});
