/**
 * A subset written from the editor replays from the workspace alone: its card names files beside it (the
 * scores and the anchors, copied out of the extension's storage), and `nuggets select --card` run in a copy
 * of the workspace folder, with the extension's storage gone, makes the same subset again.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as protocol from '../../server/protocol';
import { demoModel, runCli, scratchDir, sharedRecords } from '../helpers';
import { TestClient } from './lsp-client';

const work = scratchDir('lsp-card-replay');
const workspace = join(work, 'workspace');
const storage = join(work, 'storage');
const datasetPath = join(workspace, 'records.alpaca.json');
const uri = pathToFileURL(datasetPath).toString();
const rows = sharedRecords('gsm8k-train.alpaca.json', [...Array(10).keys()]).map((r) => r.original);
const text = JSON.stringify(rows, null, 2);
// No anchors setting: the editor chooses them by k-means and keeps them in its storage.
const settings: protocol.ServerSettings = { model: demoModel, anchors: null, maxAnchorTokens: 96, batchSize: 4, threads: 1, scoringAllowed: true };
let client: TestClient | undefined;

before(() => {
  mkdirSync(workspace, { recursive: true });
});

after(async () => {
  await client?.stop().catch(() => undefined);
});

test('a subset written by the editor, with anchors chosen into its storage, is made again by `nuggets select --card` from a copy of the workspace', { timeout: 120_000 }, async () => {
  writeFileSync(datasetPath, text);
  client = await TestClient.start({ storagePath: storage, settings });
  await client.open(uri, text);
  const anchors = await client.connection.sendRequest(protocol.chooseAnchors, { textDocument: { uri }, choice: { method: 'kmeans', count: 3 } });
  assert.ok(anchors.path.startsWith(storage), `the chosen anchors live in the extension's storage: ${anchors.path}`);
  const run = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
  assert.equal(run.scored, rows.length);
  const subsets = [
    await client.connection.sendRequest(protocol.selectSubset, { textDocument: { uri }, rule: { kind: 'top', count: 4 } }),
    await client.connection.sendRequest(protocol.selectSubset, { textDocument: { uri }, rule: { kind: 'top-percent', percent: 80, diverse: 0.999 } }),
  ];
  await client.stop();
  client = undefined;

  for (const subset of subsets) {
    const card = JSON.parse(readFileSync(subset.cardPath, 'utf8')) as { scores: string[]; anchors: { source: string | null }; source: { path: string } };
    for (const named of [...card.scores, card.anchors.source!, card.source.path]) {
      assert.ok(!isAbsolute(named) && !named.startsWith('..'), `the card names ${named}, a file beside it`);
      assert.ok(existsSync(join(workspace, named)), `${named} is in the workspace`);
    }
    assert.deepEqual(JSON.parse(readFileSync(join(workspace, card.anchors.source!), 'utf8')), JSON.parse(readFileSync(anchors.path, 'utf8')), 'the anchors the scores were computed against');
  }

  // The workspace alone: copied elsewhere, with the extension's storage removed.
  const elsewhere = join(work, 'elsewhere');
  rmSync(elsewhere, { recursive: true, force: true });
  cpSync(workspace, elsewhere, { recursive: true });
  rmSync(storage, { recursive: true, force: true });
  for (const subset of subsets) {
    const name = subset.path.slice(workspace.length + 1);
    const cardName = subset.cardPath.slice(workspace.length + 1);
    const again = join(elsewhere, `again-${name}`);
    const replayed = await runCli(elsewhere, ['select', '--card', cardName, '--out', again]);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stdout, new RegExp(`^reproduced ${name.replace(/\./g, '\\.')}: the same ${subset.kept} records`));
    assert.deepEqual(JSON.parse(readFileSync(again, 'utf8')), JSON.parse(readFileSync(subset.path, 'utf8')), 'the same records, in the same order');
  }
});
