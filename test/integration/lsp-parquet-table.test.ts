/**
 * Parquet files in the table editor, through the built language server (dist/server.js) over stdio: real records
 * of ../shared/data (gpteacher-roleplay Alpaca, FastChat's identity ShareGPT) written here as Parquet by
 * hyparquet-writer in several row groups. openTable answers the footer; the file's order shows before the row
 * index is built; other orders and filters wait for it and read no more than their rows; the command line's
 * scores of the same records (in JSON) show in the table and order it; Score Dataset reads the file whole and
 * scores the rest; Select Golden Subset writes Parquet with every column; a damaged file, a damaged row group
 * and a file over the whole-read limit are refused saying what is wrong.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ResponseError } from 'vscode-languageserver-protocol/node';
import { readAnchors } from '../../server/records/anchors';
import { readDataset } from '../../server/records/dataset';
import { keyName } from '../../server/lsp/score-book';
import { readModelFolder } from '../../server/model/folder';
import * as protocol from '../../server/protocol';
import { TEMPLATE_ID } from '../../server/scoring/template';
import { CHATML_TEMPLATE } from '../../server/scoring/chat-template';
import { demoModel, runCli, scratchDir, sharedData, writeShareGptParquet } from '../helpers';
import { TestClient } from './lsp-client';

type Writer = typeof import('hyparquet-writer');
type Reader = typeof import('hyparquet');
let writer: Writer;
let reader: Reader;

const work = scratchDir('lsp-parquet-table');
const storagePath = join(work, 'storage');
const anchorsPath = join(work, 'anchors.json');
const roleplay = JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')) as Array<Record<string, string>>;
/** 40 real Alpaca records, in 4 row groups of 10, with a fourth INT64 column that every subset must keep. */
const alpaca = roleplay.slice(0, 40);
const alpacaPath = join(work, 'roleplay.parquet');
const alpacaUri = pathToFileURL(alpacaPath).toString();
/** 300 records in 30 row groups: over the whole-read limit the server is started with. */
const largePath = join(work, 'large.parquet');
const largeUri = pathToFileURL(largePath).toString();
/** 12 real conversations in row groups of 4; the sixth cut after its user turn (it cannot be scored), the eighth given a system turn. */
const identity = (JSON.parse(readFileSync(sharedData('fastchat-identity.sharegpt.json'), 'utf8')) as Array<{ id: string; conversations: { from: string; value: string }[] }>).slice(0, 12)
  .map((c, i) => (i === 5 ? { ...c, conversations: c.conversations.slice(0, -1) } : i === 7 ? { ...c, conversations: [{ from: 'system', value: 'You are a helpful assistant.' }, ...c.conversations] } : c));
const identityPath = join(work, 'identity.parquet');
const identityUri = pathToFileURL(identityPath).toString();

function writeAlpaca(path: string, records: Array<Record<string, string>>, rowGroupSize: number): void {
  const buffer = writer.parquetWriteBuffer({
    columnData: [
      ...['instruction', 'input', 'output'].map((name) => ({ name, data: records.map((r) => r[name]), type: 'STRING' as const })),
      { name: 'row_id', data: records.map((_, i) => BigInt(1000 + i * 7)), type: 'INT64' as const },
    ],
    rowGroupSize,
  });
  writeFileSync(path, Buffer.from(buffer));
}

/** The same records as JSON: the command line scores them under the same ids and key as the Parquet rows. */
const jsonPath = join(work, 'roleplay-first30.json');
let jsonRecords: ReturnType<typeof readDataset>['records'];
let client: TestClient;
const settings: protocol.ServerSettings = { model: demoModel, anchors: anchorsPath, maxAnchorTokens: 200, batchSize: 16, threads: 1, scoringAllowed: true };
let storedPath: string;
/** The whole-read limit the server runs under here: between the two files' sizes, so that the small one is read whole and the large one is not. */
let wholeLimit: number;
/** The command line's golden scores of the first 30 records, by id. */
let cliScores: Map<string, number>;

const open = (uri: string): Promise<protocol.TableInfo> => client.connection.sendRequest(protocol.openTable, { textDocument: { uri } });
const page = (params: Omit<protocol.TablePageParams, 'textDocument'>, uri = alpacaUri): Promise<protocol.TablePageResult> =>
  client.connection.sendRequest(protocol.tablePage, { textDocument: { uri }, ...params });
const indexDone = (uri: string): Promise<protocol.TableIndexParams> => client.waitFor((r) => r.method === protocol.tableIndexNotification.method
  && (r.params as protocol.TableIndexParams).uri === uri && ((r.params as protocol.TableIndexParams).done || (r.params as protocol.TableIndexParams).problem !== undefined), `the row index of ${uri}`)
  .then((r) => r.params as protocol.TableIndexParams);
const refusal = (pattern: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof ResponseError, String(err));
  assert.match(err.message, pattern);
  return true;
};

describe('Parquet files in the table editor', () => {
  before(async () => {
    writer = await import('hyparquet-writer');
    reader = await import('hyparquet');
    writeAlpaca(alpacaPath, alpaca, 10);
    writeAlpaca(largePath, roleplay.slice(0, 300), 10);
    writeShareGptParquet(writer, identityPath, identity, 4);
    writeFileSync(jsonPath, JSON.stringify(alpaca.slice(0, 30), null, 2));
    jsonRecords = readDataset(jsonPath).records;
    const chosen = await runCli(work, ['anchors', jsonPath, '--random', '3', '--seed', '1', '--out', anchorsPath]);
    assert.equal(chosen.code, 0, chosen.stderr);
    const anchors = readAnchors(anchorsPath);
    storedPath = join(storagePath, 'scores', `${keyName({
      model: { name: 'demo', fingerprint: readModelFolder(demoModel).fingerprint }, anchors: { hash: anchors.hash, count: anchors.anchors.length },
      template: TEMPLATE_ID, maxAnchorTokens: 200, separator: '',
    })}.jsonl`);
    // The command line scores the first 30 records, as JSON, into the scores file the editor keeps for the same key.
    mkdirSync(join(storagePath, 'scores'), { recursive: true });
    const cli = await runCli(work, ['score', jsonPath, '--anchors', anchorsPath, '--threads', '1', '--out', storedPath]);
    assert.equal(cli.code, 0, cli.stderr);
    cliScores = new Map(readFileSync(storedPath, 'utf8').split('\n').filter((l) => l !== '').slice(1)
      .map((l) => JSON.parse(l) as { id: string; golden_score: number }).map((l) => [l.id, l.golden_score]));
    assert.equal(cliScores.size, 30);
    // The limit between the two files' sizes: the small one is read whole, the large one is not.
    wholeLimit = Math.floor((statSync(alpacaPath).size + statSync(largePath).size) / 2);
    client = await TestClient.start({ storagePath, settings }, { NUGGETS_TABLE_WHOLE_MAX_BYTES: String(wholeLimit) });
  });

  after(async () => {
    await client?.stop().catch(() => undefined);
  });

  test('openTable answers the footer, and the file\'s order shows the rows the command line reads, with their ids', async () => {
    const info = await open(alpacaUri);
    assert.deepEqual(info, { uri: alpacaUri, rows: 40, rowGroups: 4, bytes: statSync(alpacaPath).size, columns: ['instruction', 'input', 'output', 'row_id'], wholeAllowed: true, wholeMaxBytes: wholeLimit });
    const shown = await page({ offset: 8, limit: 5 });
    assert.equal(shown.total, 40);
    assert.deepEqual(shown.rows.map((r) => [r.index, r.id, r.instruction, r.range.start.line]), jsonRecords.slice(8, 13).map((r) => [r.index, r.id, r.instruction, r.index]));
    // The command line's scores of the same records, written for JSON, are these rows' current scores.
    assert.deepEqual(shown.rows.map((r) => [r.score?.goldenScore, r.stale, r.signals.ifd !== '—']), shown.rows.map((r) => [cliScores.get(r.id), false, true]));
    const unscored = await page({ offset: 30, limit: 10 });
    assert.ok(unscored.rows.every((r) => r.score === undefined && Object.values(r.signals).every((v) => v === '—')), 'the rows the command line did not score');
  });

  test('the row index is built in the background, a row group at a time, and says when it is done', async () => {
    const done = await indexDone(alpacaUri);
    assert.deepEqual(done, { uri: alpacaUri, indexed: 40, rows: 40, done: true });
    const steps = client.received.filter((r) => r.method === protocol.tableIndexNotification.method && (r.params as protocol.TableIndexParams).uri === alpacaUri)
      .map((r) => (r.params as protocol.TableIndexParams).indexed);
    assert.deepEqual(steps, [10, 20, 30, 40]);
  });

  test('a damaged row group stops the index with why; the rows before it still show in the file\'s order, and sorting is refused naming it', async () => {
    const damaged = join(work, 'damaged-group.parquet');
    const bytes = readFileSync(alpacaPath);
    const metadata = reader.parquetMetadata(new Uint8Array(bytes).buffer);
    const last = metadata.row_groups.at(-1)!.columns[0]!.meta_data!;
    bytes.fill(0xff, Number(last.data_page_offset), Number(last.data_page_offset) + 24);
    writeFileSync(damaged, bytes);
    const uri = pathToFileURL(damaged).toString();
    assert.equal((await open(uri)).rows, 40);
    const first = await page({ offset: 0, limit: 10 }, uri);
    assert.deepEqual(first.rows.map((r) => r.id), jsonRecords.slice(0, 10).map((r) => r.id));
    const stopped = await indexDone(uri);
    assert.equal(stopped.done, false);
    assert.equal(stopped.indexed, 30);
    assert.match(stopped.problem!, /damaged-group\.parquet: row group 3 cannot be read/);
    await assert.rejects(page({ offset: 0, limit: 10, sortBy: 'goldenScore', descending: true }, uri), refusal(/cannot be sorted or filtered: .*row group 3 cannot be read/));
    await client.connection.sendNotification(protocol.closeTable, { textDocument: { uri } });
  });

  test('a file that is no Parquet, or cut short, is refused naming the file and what is wrong', async () => {
    const cut = join(work, 'cut.parquet');
    writeFileSync(cut, readFileSync(alpacaPath).subarray(0, 2000));
    await assert.rejects(open(pathToFileURL(cut).toString()), refusal(/cut\.parquet is not a readable Parquet file: .*complete/s));
    const json = join(work, 'not.parquet');
    writeFileSync(json, JSON.stringify(alpaca.slice(0, 2)));
    await assert.rejects(open(pathToFileURL(json).toString()), refusal(/not\.parquet is not a readable Parquet file/));
  });

  test('the command line\'s scores of the same records (a JSON file) show in the table and order it, without reading the file whole', async () => {
    const expected = cliScores;
    const sorted = await page({ offset: 0, limit: 40, sortBy: 'goldenScore', descending: true });
    assert.equal(sorted.total, 40);
    const order = [...expected].sort((a, b) => b[1] - a[1]);
    const scored = sorted.rows.slice(0, 30);
    assert.deepEqual(scored.map((r) => r.score?.goldenScore), order.map(([, g]) => g), 'the CLI\'s scores, highest first');
    assert.ok(scored.every((r, k) => r.id === order[k]![0] || expected.get(r.id) === order[k]![1]));
    assert.ok(scored.every((r) => !r.stale));
    assert.deepEqual(sorted.rows.slice(30).map((r) => r.index), [30, 31, 32, 33, 34, 35, 36, 37, 38, 39], 'unscored rows last, in file order');
    // A minimum score keeps the rows at or above it.
    const floor = order[9]![1];
    const top = await page({ offset: 0, limit: 100, minScore: floor });
    assert.deepEqual(top.rows.map((r) => r.id).sort(), order.filter(([, g]) => g >= floor).map(([id]) => id).sort());
    // No scores notification: the table's requests never read the file whole (that sends the file's scores).
    assert.deepEqual(client.scores(alpacaUri), []);
  });

  test('a text search reads the file a row group at a time and keeps the rows whose instruction or input holds it', async () => {
    const word = 'sherlock holmes';
    const all = alpaca.flatMap((r, i) => (`${r.instruction} ${r.input}`.toLocaleLowerCase().includes(word) ? [i] : []));
    assert.ok(all.length > 1 && all.length < 40 && all.at(-1)! >= 30, `the search narrows the rows, some in the last row group (${all.join(', ')})`);
    const found = await page({ offset: 0, limit: 100, filter: { instruction: ` Sherlock HOLMES ` } });
    assert.equal(found.total, all.length);
    assert.deepEqual(found.rows.map((r) => r.index), all);
    const output = await page({ offset: 0, limit: 100, filter: { output: 'zzzz-nowhere' } });
    assert.equal(output.total, 0);
    await assert.rejects(page({ offset: 0, limit: 10, filter: { bounds: [{ signal: 'nope' as 'golden', min: 0 }] } }), refusal(/names no signal/));
    assert.deepEqual(client.scores(alpacaUri), []);
  });

  test('scores the command line writes while the table is open show in it: a scores notification names their rows', async () => {
    const more = join(work, 'roleplay-30-34.json');
    writeFileSync(more, JSON.stringify(alpaca.slice(30, 35), null, 2));
    const from = client.received.length;
    const cli = await runCli(work, ['score', more, '--anchors', anchorsPath, '--threads', '1', '--out', storedPath]);
    assert.equal(cli.code, 0, cli.stderr);
    const shown = await client.waitForScores(alpacaUri, (p) => !p.full, 'the rows the command line scored', from);
    assert.deepEqual(shown.records.map((r) => [r.index, r.range.start.line, r.stale]), [30, 31, 32, 33, 34].map((i) => [i, i, false]));
    assert.equal(shown.scored, 35);
    assert.equal(shown.total, 40);
    const written = new Map(readFileSync(storedPath, 'utf8').split('\n').filter((l) => l !== '').slice(1)
      .map((l) => JSON.parse(l) as { id: string; golden_score: number }).map((l) => [l.id, l.golden_score]));
    assert.deepEqual(shown.records.map((r) => r.score?.goldenScore), shown.records.map((r) => written.get(r.id)));
    const rows = await page({ offset: 30, limit: 5 });
    assert.deepEqual(rows.rows.map((r) => r.score?.goldenScore), shown.records.map((r) => r.score?.goldenScore));
  });

  test('the record view of a conversation row: its turns with roles and which one is scored; a row that cannot be scored says why', async () => {
    const info = await open(identityUri);
    assert.equal(info.rows, 12);
    assert.equal(info.rowGroups, 3);
    const view = await client.connection.sendRequest(protocol.recordEffects, { textDocument: { uri: identityUri }, index: 6 });
    const turns = identity[6]!.conversations;
    assert.deepEqual(view.turns, turns.map((t) => ({ role: t.from === 'human' ? 'user' : 'assistant', content: t.value })));
    assert.equal(view.scoredTurn, turns.length - 1);
    assert.deepEqual(view.range.start, { line: 6, character: 0 });
    const cut = await client.connection.sendRequest(protocol.recordEffects, { textDocument: { uri: identityUri }, index: 5 });
    assert.equal(cut.problem?.mark, 'unscorable');
    assert.match(cut.problem!.reason, /last turn is a user turn/);
    const rows = await page({ offset: 4, limit: 3 }, identityUri);
    assert.deepEqual(rows.rows.map((r) => r.turns), [identity[4]!.conversations.length, identity[5]!.conversations.length, identity[6]!.conversations.length]);
    assert.equal(rows.rows[1]!.problem?.mark, 'unscorable');
    await assert.rejects(client.connection.sendRequest(protocol.recordEffects, { textDocument: { uri: identityUri }, index: 12 }), refusal(/no record at index 12/));
    // Under a chat template that raises on a system turn, the row with one cannot be scored, and says why.
    const template = join(work, 'no-system.jinja');
    writeFileSync(template, `{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}${CHATML_TEMPLATE}`);
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, template });
    const marked = await page({ offset: 6, limit: 3 }, identityUri);
    assert.deepEqual(marked.rows.map((r) => r.problem?.mark), [undefined, 'unscorable', undefined]);
    assert.match(marked.rows[1]!.problem!.reason, /the chat template \(.*no-system\.jinja\) cannot render it: System role not supported/);
    await client.connection.sendNotification(protocol.didChangeSettings, settings);
  });

  test('conversations in a Parquet table score as the command line scores the same file (chatml): same ids, same golden scores; the row that cannot be scored is left out', async () => {
    const cliOut = join(work, 'identity.cli.jsonl');
    const cli = await runCli(work, ['score', identityPath, '--anchors', anchorsPath, '--template', 'chatml', '--threads', '1', '--out', cliOut]);
    assert.equal(cli.code, 0, cli.stderr);
    const expected = new Map(readFileSync(cliOut, 'utf8').split('\n').filter((l) => l !== '').slice(1)
      .map((l) => JSON.parse(l) as { id: string; golden_score: number }).map((l) => [l.id, l.golden_score]));
    assert.equal(expected.size, 11);
    // Under auto, conversations take the model's own chat template (the first row group holds conversations, as the
    // command line judges it), which the demo model lacks: refused with the answer marked for Use ChatML.
    await assert.rejects(client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: identityUri } }), (err: unknown) => {
      assert.ok(err instanceof ResponseError);
      assert.match(err.message, /The model demo has no chat template/);
      assert.deepEqual(err.data, { noChatTemplate: true });
      return true;
    });
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, template: 'chatml' });
    try {
      const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: identityUri } });
      assert.equal(result.total, 11);
      assert.equal(result.scored, 11);
      const sorted = await page({ offset: 0, limit: 12, sortBy: 'goldenScore', descending: true }, identityUri);
      const scored = sorted.rows.slice(0, 11);
      assert.deepEqual(scored.map((r) => r.score?.goldenScore), scored.map((r) => expected.get(r.id)), 'the command line\'s golden score for each row');
      assert.deepEqual(new Set(scored.map((r) => r.id)), new Set(expected.keys()));
      const golden = scored.map((r) => r.score!.goldenScore);
      assert.deepEqual(golden, [...golden].sort((x, y) => y - x), 'highest first');
      assert.equal(sorted.rows[11]!.index, 5, 'the row that cannot be scored last, unscored');
      assert.equal(sorted.rows[11]!.score, undefined);
    } finally {
      await client.connection.sendNotification(protocol.didChangeSettings, settings);
    }
  });

  test('nuggets.format names the rows\' format: a table of conversations read as Alpaca is refused naming the row and why, and reads again under auto', async () => {
    const indexAfter = (from: number): Promise<protocol.TableIndexParams> => client.waitFor((r) => r.method === protocol.tableIndexNotification.method
      && (r.params as protocol.TableIndexParams).uri === identityUri && ((r.params as protocol.TableIndexParams).done || (r.params as protocol.TableIndexParams).problem !== undefined),
    'the conversations\' index again', 60_000, from).then((r) => r.params as protocol.TableIndexParams);
    let from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, format: 'alpaca' });
    const stopped = await indexAfter(from);
    assert.equal(stopped.done, false);
    assert.match(stopped.problem!, /identity\.parquet \(row group 0, row 0\): record 0 has no "instruction" field/);
    await assert.rejects(page({ offset: 4, limit: 2 }, identityUri), refusal(/identity\.parquet \(row group 1, row 4\): record 4 has no "instruction" field/));
    from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, settings);
    assert.equal((await indexAfter(from)).done, true);
    const again = await page({ offset: 4, limit: 2 }, identityUri);
    assert.deepEqual(again.rows.map((r) => r.turns), [identity[4]!.conversations.length, identity[5]!.conversations.length]);
  });

  test('Score Dataset on the table reads the file whole, scores the rows the command line did not, and sends scores by row', async () => {
    const from = client.received.length;
    const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: alpacaUri } });
    assert.equal(result.total, 40);
    assert.equal(result.scoredNow, 5);
    assert.equal(result.scored, 40);
    // Read whole, the file's scores go out as a JSON file's do (the command line's 35), each row's number as its line.
    const full = await client.waitForScores(alpacaUri, (p) => p.full, 'the table\'s scores', from);
    assert.equal(full.scored, 35);
    assert.equal(full.records.length, 40);
    assert.deepEqual(full.records.map((r) => r.range.start.line), full.records.map((r) => r.index));
    assert.deepEqual(full.records.slice(0, 30).map((r) => r.score?.goldenScore), jsonRecords.map((r) => cliScores.get(r.id)));
    const added = client.scores(alpacaUri).slice(client.scores(alpacaUri).indexOf(full) + 1).flatMap((p) => p.records);
    assert.deepEqual(added.map((r) => r.index).sort((a, b) => a - b), [35, 36, 37, 38, 39]);
    assert.ok(added.every((r) => r.score && !r.stale && r.range.start.line === r.index));
    // The table's pages now come from the file read whole, with the same rows.
    const sorted = await page({ offset: 0, limit: 40, sortBy: 'goldenScore', descending: true });
    const golden = sorted.rows.map((r) => r.score!.goldenScore);
    assert.deepEqual(golden, [...golden].sort((a, b) => b - a));
    assert.equal(new Set(sorted.rows.map((r) => r.index)).size, 40);
  });

  test('Select Golden Subset writes Parquet beside the file: the chosen rows in file order, every column kept', async () => {
    const subset = await client.connection.sendRequest(protocol.selectSubset, { textDocument: { uri: alpacaUri }, rule: { kind: 'top', count: 5 } });
    assert.equal(subset.path, join(work, 'roleplay.golden-top5.parquet'));
    assert.equal(subset.kept, 5);
    const top = (await page({ offset: 0, limit: 5, sortBy: 'goldenScore', descending: true })).rows.map((r) => r.index).sort((a, b) => a - b);
    const rows = await reader.parquetReadObjects({ file: new Uint8Array(readFileSync(subset.path)).buffer });
    assert.deepEqual(rows, top.map((i) => ({ ...alpaca[i], row_id: BigInt(1000 + i * 7) })));
    assert.ok(statSync(subset.cardPath).isFile());
  });

  test('a file over the whole-read limit shows its rows, and Score Dataset is refused saying to score it with the command line', async () => {
    const info = await open(largeUri);
    assert.equal(info.rows, 300);
    assert.equal(info.wholeAllowed, false);
    assert.equal((await page({ offset: 290, limit: 20 }, largeUri)).rows.length, 10);
    await assert.rejects(client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: largeUri } }),
      refusal(/large\.parquet is .* KB, more than the .* KB the editor reads whole .*nuggets score large\.parquet.*the table shows those scores/s));
    // Sorting still works on the index: it needs no whole read.
    await indexDone(largeUri);
    const last = await page({ offset: 0, limit: 3, sortBy: 'index', descending: true }, largeUri);
    assert.deepEqual(last.rows.map((r) => r.index), [299, 298, 297]);
  });

  test('closeTable lets the file go: its scores are cleared on the client and its pages are refused', async () => {
    const from = client.received.length;
    await client.connection.sendNotification(protocol.closeTable, { textDocument: { uri: alpacaUri } });
    await client.waitFor((r) => r.method === protocol.scoresClearedNotification.method && (r.params as { uri: string }).uri === alpacaUri, 'the table\'s scores cleared', 60_000, from);
    await assert.rejects(page({ offset: 0, limit: 5 }), refusal(/is not an open dataset/));
  });
});
