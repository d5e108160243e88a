/**
 * The open Parquet tables (server/lsp/parquet-tables.ts) on real records (gpteacher-roleplay, 40 rows in row groups
 * of 10): how many rows each step decodes. The index reads every row once; a page reads only its rows' row groups,
 * and a row group kept is not read again; a text search reads the file once and its answer is kept; closing lets go.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { readDataset } from '../../server/records/dataset';
import { ParquetTables } from '../../server/lsp/parquet-tables';
import type { TableIndexParams } from '../../server/protocol';
import { scratchDir, sharedData } from '../helpers';

const dir = scratchDir('parquet-tables');
const records = (JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')) as Array<Record<string, string>>).slice(0, 40);
const path = join(dir, 'roleplay.parquet');
const uri = pathToFileURL(path).toString();

before(() => {
  writeFileSync(path, Buffer.from(parquetWriteBuffer({
    columnData: ['instruction', 'input', 'output'].map((name) => ({ name, data: records.map((r) => r[name]), type: 'STRING' as const })),
    rowGroupSize: 10,
  })));
  writeFileSync(join(dir, 'roleplay.json'), JSON.stringify(records));
});

test('the index reads each row once; a page, a record and a search read only what they need, and a kept row group is not read again', async () => {
  const progress: TableIndexParams[] = [];
  const tables = new ParquetTables((p) => progress.push(p), () => undefined, 2 ** 30);
  const info = await tables.open(uri);
  assert.equal(info.rowGroups, 4);
  assert.equal(tables.rowsDecoded, 10, 'opening reads the first row group only (its format, whether it holds conversations)');
  const index = await tables.index(uri);
  assert.equal(tables.rowsDecoded, 40, 'the index reads every row once (the first row group is not read again)');
  assert.deepEqual(index.ids, readDataset(join(dir, 'roleplay.json')).records.map((r) => r.id));
  assert.deepEqual(progress.map((p) => [p.indexed, p.done]), [[10, false], [20, false], [30, false], [40, true]]);

  const page = await tables.rows(uri, [38, 39, 36]);
  assert.deepEqual([...page.keys()], [38, 39, 36]);
  assert.equal(page.get(36)!.record.instruction, records[36]!.instruction.trim());
  assert.equal(tables.rowsDecoded, 50, 'a page in the last row group reads that row group alone');
  await tables.rows(uri, [30, 31]);
  assert.equal(tables.rowsDecoded, 50, 'a kept row group is not read again');
  await tables.rows(uri, [9, 10]);
  assert.equal(tables.rowsDecoded, 60, 'a page across two row groups reads the one not kept (the first is kept since opening)');
  assert.deepEqual([...(await tables.rows(uri, [40, -1, 2.5])).keys()], [], 'rows past the end are left out');

  const holmes = (r: { instruction: string }): boolean => r.instruction.toLowerCase().includes('holmes');
  const matches = await tables.matching(uri, 'holmes', holmes);
  assert.deepEqual([...matches.keys()].filter((i) => matches[i]), records.flatMap((r, i) => (r.instruction.toLowerCase().includes('holmes') ? [i] : [])));
  const afterSearch = tables.rowsDecoded;
  assert.equal(afterSearch, 70, 'a search reads only the row group not kept (row groups 0, 1 and 3 are)');
  await tables.matching(uri, 'holmes', holmes);
  assert.equal(tables.rowsDecoded, afterSearch, 'the same search again reads nothing');

  tables.close(uri);
  assert.equal(tables.has(uri), false);
  await assert.rejects(tables.rows(uri, [0]), /roleplay\.parquet is not open in the table editor/);
});

test('a file larger than the whole-read limit is refused for a whole read, saying to score it with the command line', async () => {
  const tables = new ParquetTables(() => undefined, () => undefined, 1000);
  const info = await tables.open(uri);
  assert.equal(info.wholeAllowed, false);
  await assert.rejects(tables.readWhole(uri), (err: Error & { hint?: string }) => {
    assert.match(err.message, /roleplay\.parquet is \d+ KB, more than the 1 KB the editor reads whole/);
    assert.match(err.hint ?? '', /nuggets score roleplay\.parquet/);
    return true;
  });
  tables.close(uri);
});
