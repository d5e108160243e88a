/**
 * F1, the cost of reading conversations (`node out/bench.js --only F1`):
 *   - parse: a 100,000-record `messages` file read as JSON Lines and as Parquet (the readers `score` uses), per record;
 *   - render: each record under ChatML against the anchors, as the engine renders a candidate before scoring it;
 *   - score: the same records scored with the demo model under ChatML (cached path), per record;
 *   - a 500 MB Parquet shard of multi-turn conversations, scored by `nuggets score --shard 9999/10000` in a process
 *     of its own: every row group is read, the last slice's few records are scored; its peak RSS and seconds;
 *   - the same shard in the editor's table (server/lsp/parquet-tables.ts), in a process of its own: opening it (the
 *     footer and the first rows), a page of 100 rows at its start and in its middle, the row index built in the
 *     background, and the peak RSS. Target (issue 16): the shard opens, its first page shown, in under 2 s.
 * The records are real: the Alpaca records and the ShareGPT conversations of ../shared/data as `messages`,
 * repeated with a numbered system turn until there are 100,000 distinct records. The files are made once, under
 * .cache/bench/formats. Targets (issue 16): parse and render under 5% of scoring time; the 500 MB shard under 1 GB.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileWriter, ParquetWriter } from 'hyparquet-writer';
import { writeAnchors } from '../../server/records/anchors';
import { main } from '../../server/cli/main';
import { readDataset, type DatasetRecord, type Turn } from '../../server/records/dataset';
import { readParquetDataset } from '../../server/records/parquet';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { ChatRenderer } from '../../server/scoring/chat-render';
import { chatmlTemplate } from '../../server/scoring/chat-template';
import { scoreCandidate } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { ParquetTables } from '../../server/lsp/parquet-tables';
import { pathToFileURL } from 'node:url';

const root = resolve(__dirname, '..');
const data = resolve(root, '..', 'shared', 'data');
const cacheDir = join(root, '.cache', 'bench', 'formats');
const demo = join(root, 'models', 'demo');
const RECORDS = 100_000;
const SHARD_BYTES = 500 * 2 ** 20;
const ROW_GROUP = 10_000;
const ANCHORS = 50;
const RENDERED = 500;
const SCORED = 8;

/** The shared data's records as conversations: Alpaca records as user/assistant, ShareGPT ones as they are. */
function realConversations(): Turn[][] {
  const alpaca = ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json']
    .flatMap((f) => readDataset(join(data, f)).records)
    .map((r): Turn[] => [{ role: 'user', content: r.input ? `${r.instruction}\n\n${r.input}` : r.instruction }, { role: 'assistant', content: r.output }]);
  const sharegpt = readDataset(join(data, 'fastchat-identity.sharegpt.json')).records.map((r) => r.turns!);
  return [...alpaca, ...sharegpt].filter((t) => t.every((turn) => turn.content !== ''));
}

/** The k-th record of the generated files: the real conversations in turn, each pass with its own system turn, so every record is distinct. */
function messagesAt(pool: readonly Turn[][], k: number): Turn[] {
  const pass = Math.floor(k / pool.length);
  const turns = pool[k % pool.length]!;
  return pass === 0 ? turns : [{ role: 'system', content: `You are assistant number ${pass}.` }, ...turns];
}

const MESSAGES_SCHEMA = [
  { name: 'root', num_children: 1 },
  { name: 'messages', repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
  { name: 'role', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8' },
  { name: 'content', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8' },
] as const;

/** The k-th record of the 500 MB shard: three real conversations in a row, as one longer conversation. */
function longMessagesAt(pool: readonly Turn[][], k: number): Turn[] {
  return [0, 1, 2].flatMap((j) => messagesAt(pool, 3 * k + j).filter((t) => t.role !== 'system'));
}

/** Writes `count` records (or until the file reaches `bytes`) as a snappy Parquet file of ROW_GROUP-row groups, streamed to disk. */
function writeMessagesParquet(path: string, records: (k: number) => Turn[], count: number, bytes = Infinity): number {
  const partial = `${path}.partial`;
  const writer = new ParquetWriter({ writer: fileWriter(partial), schema: MESSAGES_SCHEMA as unknown as ConstructorParameters<typeof ParquetWriter>[0]['schema'] });
  let written = 0;
  while (written < count && (bytes === Infinity || statSync(partial).size < bytes)) {
    const rows = Array.from({ length: Math.min(ROW_GROUP, count - written) }, (_, i) => records(written + i));
    writer.write({ columnData: [{ name: 'messages', data: rows }], rowGroupSize: ROW_GROUP });
    written += rows.length;
  }
  writer.finish();
  renameSync(partial, path);
  return written;
}

function files(): { jsonl: string; parquet: string; shard: string } {
  mkdirSync(cacheDir, { recursive: true });
  const made = { jsonl: join(cacheDir, 'messages-100k.jsonl'), parquet: join(cacheDir, 'messages-100k.parquet'), shard: join(cacheDir, 'messages-500mb-multiturn.parquet') };
  if (existsSync(made.jsonl) && existsSync(made.parquet) && existsSync(made.shard)) return made;
  const pool = realConversations();
  const lines = Array.from({ length: RECORDS }, (_, k) => JSON.stringify({ messages: messagesAt(pool, k) }));
  writeFileSync(made.jsonl, lines.join('\n') + '\n');
  writeMessagesParquet(made.parquet, (k) => messagesAt(pool, k), RECORDS);
  writeMessagesParquet(made.shard, (k) => longMessagesAt(pool, k), Number.MAX_SAFE_INTEGER, SHARD_BYTES);
  return made;
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

/**
 * Child process: `nuggets score` on the last ten-thousandth of a Parquet shard, through the command line's own code (every
 * row group is read, a few records are scored), with ChatML and the demo model; its peak RSS and time.
 */
export async function scoreShardTail(path: string, anchors: string): Promise<{ records: number; seconds: number; maxRssMB: number }> {
  const out = join(cacheDir, 'shard-tail.scores.jsonl');
  rmSync(out, { force: true });
  const started = process.hrtime.bigint();
  const code = await main(['score', path, '--anchors', anchors, '--template', 'chatml', '--shard', '9999/10000', '--out', out, '--threads', '1']);
  if (code !== 0) throw new Error(`nuggets score exited ${code}`);
  const records = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '').length - 1;
  return { records, seconds: seconds(started), maxRssMB: process.resourceUsage().maxRSS / 1024 };
}

/**
 * Child process: the shard as the table editor's server side opens it: the footer and first rows, a page at the start and in
 * the middle (what scrolling asks for), then the row index (what sorting waits for); seconds of each, the rows decoded, peak RSS.
 */
export async function openShardTable(path: string): Promise<{ openSeconds: number; firstPageSeconds: number; middlePageSeconds: number; indexSeconds: number; rows: number; maxRssMB: number }> {
  const uri = pathToFileURL(path).toString();
  let indexed: () => void = () => undefined;
  const indexDone = new Promise<void>((resolve) => (indexed = resolve));
  const tables = new ParquetTables((p) => (p.done || p.problem !== undefined) && indexed(), () => undefined);
  let started = process.hrtime.bigint();
  const info = await tables.open(uri);
  const openSeconds = seconds(started);
  const page = (from: number): number[] => Array.from({ length: 100 }, (_, k) => from + k);
  started = process.hrtime.bigint();
  if ((await tables.rows(uri, page(0))).size !== 100) throw new Error('F1: the first page of the shard has not 100 rows');
  const firstPageSeconds = seconds(started);
  started = process.hrtime.bigint();
  if ((await tables.rows(uri, page(Math.floor(info.rows / 2)))).size !== 100) throw new Error('F1: the middle page of the shard has not 100 rows');
  const middlePageSeconds = seconds(started);
  started = process.hrtime.bigint();
  await indexDone;
  await tables.index(uri);
  const indexSeconds = seconds(started);
  return { openSeconds, firstPageSeconds, middlePageSeconds, indexSeconds, rows: info.rows, maxRssMB: process.resourceUsage().maxRSS / 1024 };
}

export async function benchFormats(bundle: string): Promise<Record<string, unknown>> {
  const made = files();
  let started = process.hrtime.bigint();
  const jsonl = readDataset(made.jsonl);
  const jsonlSeconds = seconds(started);
  started = process.hrtime.bigint();
  const parquet = await readParquetDataset(made.parquet);
  const parquetSeconds = seconds(started);
  if (jsonl.records.length !== RECORDS || parquet.records.length !== RECORDS) throw new Error(`F1 read ${jsonl.records.length} and ${parquet.records.length} records, not ${RECORDS}`);
  if (parquet.records.some((r, k) => r.id !== jsonl.records[k]!.id)) throw new Error('F1: the Parquet file gives other records than the JSON Lines file');

  // Anchors: every 2,000th record; candidates: the first records after the first pass (with a system turn), as the engine takes them.
  const records = jsonl.records;
  const anchors = Array.from({ length: ANCHORS }, (_, i) => records[(i * 1999 + 7) % RECORDS]!);
  const candidates: DatasetRecord[] = records.slice(30_000, 30_000 + RENDERED);
  const backend = await LocalBackend.open(demo, { path: 'cached' });
  const chatTemplate = chatmlTemplate();
  const options = { ...DEFAULT_OPTIONS, chatTemplate };
  const renderer = new ChatRenderer(chatTemplate, backend.tokenizer);
  const rendered = await Promise.all(anchors.map((a, i) => renderer.anchor(a, options.maxAnchorTokens, () => `anchor ${i}`)));
  started = process.hrtime.bigint();
  for (const c of candidates) await renderer.candidate(c, rendered, backend.identity.contextLength, () => `record ${c.index}`);
  const renderSeconds = seconds(started) / candidates.length;

  const prepared = await backend.prepareAnchors(anchors, options);
  await scoreCandidate(backend, prepared, candidates[0]!); // warm-up
  started = process.hrtime.bigint();
  for (const c of candidates.slice(1, 1 + SCORED)) await scoreCandidate(backend, prepared, c);
  const scoreSeconds = seconds(started) / SCORED;
  await backend.dispose();

  const anchorsFile = join(cacheDir, 'anchors-10.json');
  writeAnchors(anchorsFile, anchors.slice(0, 10));
  const shard = spawnSync(process.execPath, [bundle, '--score-shard-tail', made.shard, anchorsFile], { encoding: 'utf8', maxBuffer: 2 ** 24 });
  if (shard.status !== 0) throw new Error(`F1's shard reader failed: ${shard.stderr}`);
  const shardRead = JSON.parse(shard.stdout.trim().split('\n').pop()!) as { records: number; seconds: number; maxRssMB: number };

  const table = spawnSync(process.execPath, [bundle, '--open-shard-table', made.shard], { encoding: 'utf8', maxBuffer: 2 ** 24 });
  if (table.status !== 0) throw new Error(`F1's table editor reader failed: ${table.stderr}`);
  const tableOpen = JSON.parse(table.stdout.trim().split('\n').pop()!) as Awaited<ReturnType<typeof openShardTable>>;

  const parseJsonl = jsonlSeconds / RECORDS;
  const parseParquet = parquetSeconds / RECORDS;
  const result = {
    records: RECORDS, anchors: ANCHORS,
    parseMicrosecondsPerRecord: { jsonl: parseJsonl * 1e6, parquet: parseParquet * 1e6 },
    renderMillisecondsPerRecord: renderSeconds * 1e3,
    scoreSecondsPerRecord: scoreSeconds,
    shareOfScoring: { jsonl: (parseJsonl + renderSeconds) / scoreSeconds, parquet: (parseParquet + renderSeconds) / scoreSeconds },
    shard: { megabytes: statSync(made.shard).size / 2 ** 20, ...shardRead },
    tableEditor: tableOpen,
  };
  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  console.log(`\nF1  conversations, ${RECORDS.toLocaleString('en')} messages records (real, ../shared/data), ChatML, ${ANCHORS} anchors, the demo model`);
  console.log(`    parse: JSON Lines ${result.parseMicrosecondsPerRecord.jsonl.toFixed(1)} µs/record, Parquet ${result.parseMicrosecondsPerRecord.parquet.toFixed(1)} µs/record`);
  console.log(`    render against ${ANCHORS} anchors: ${result.renderMillisecondsPerRecord.toFixed(2)} ms/record (${RENDERED} records); score: ${scoreSeconds.toFixed(2)} s/record (${SCORED} records)`);
  console.log(`    parse + render as a share of scoring: ${pct(result.shareOfScoring.jsonl)} (JSON Lines), ${pct(result.shareOfScoring.parquet)} (Parquet); target under 5%`);
  console.log(`    a ${result.shard.megabytes.toFixed(0)} MB Parquet shard of 6-turn conversations, nuggets score --shard 9999/10000 (every row group read, ${shardRead.records} records scored`
    + ` against 10 anchors): ${shardRead.seconds.toFixed(1)} s, peak RSS ${shardRead.maxRssMB.toFixed(0)} MB; target under 1 GB`);
  console.log(`    the same shard in the table editor (${tableOpen.rows.toLocaleString('en')} rows): open ${tableOpen.openSeconds.toFixed(2)} s, first page of 100 rows ${tableOpen.firstPageSeconds.toFixed(2)} s`
    + ` (together ${(tableOpen.openSeconds + tableOpen.firstPageSeconds).toFixed(2)} s; target under 2 s), a page in the middle ${tableOpen.middlePageSeconds.toFixed(2)} s,`
    + ` read while the row index is built in the background; the index (which sorting and filters wait for) done ${tableOpen.indexSeconds.toFixed(1)} s after that, peak RSS ${tableOpen.maxRssMB.toFixed(0)} MB`);
  return result;
}
