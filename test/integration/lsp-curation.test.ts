/**
 * The curator's loop through the built language server over stdio (issue 12): a broken dataset is named and
 * located and its scores wait; the first Score Dataset says which anchors it chose and skips those that cannot
 * serve; a record that is its own anchor is scored against the others (as the CLI does); hovers name the model
 * and the anchors; subsets and renamed files open with current scores.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parseDataset } from '../../server/records/dataset';
import * as protocol from '../../server/protocol';
import { readScores } from '../../server/records/store';
import { demoModel, repoRoot, sharedData } from '../helpers';
import { TestClient } from './lsp-client';

const work = mkdtempSync(join(tmpdir(), 'nuggets-curation-'));
const storagePath = join(work, 'storage');
const folder = join(work, 'data');
mkdirSync(folder);
const datasetPath = join(folder, 'maths.alpaca.json');
const datasetUri = pathToFileURL(datasetPath).toString();
const source = JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')) as Record<string, string>[];
// Six usable records, one with an empty response, and a repeat of the first: eight records, six possible anchors.
const rows = [...source.slice(0, 6), { instruction: 'Say nothing at all.', input: '', output: '' }, source[0]!];
const datasetText = JSON.stringify(rows, null, 2) + '\n';
writeFileSync(datasetPath, datasetText);
const records = parseDataset(datasetText, datasetPath).records;

const settings: protocol.ServerSettings = {
  model: demoModel, anchors: null, maxAnchorTokens: 96, batchSize: 8, threads: 1, scoringAllowed: true, demoModel: true,
};

let client: TestClient;
let firstRun: protocol.ScoreDatasetResult;

function problems(uri: string): (protocol.DatasetProblem | null)[] {
  return client.received.filter((r) => r.method === protocol.datasetProblemNotification.method && (r.params as protocol.DatasetProblemParams).uri === uri)
    .map((r) => (r.params as protocol.DatasetProblemParams).problem);
}

function waitForProblem(uri: string, wanted: (p: protocol.DatasetProblem | null) => boolean, what: string, from = 0): Promise<protocol.DatasetProblem | null> {
  return client.waitFor((r) => r.method === protocol.datasetProblemNotification.method && (r.params as protocol.DatasetProblemParams).uri === uri
    && wanted((r.params as protocol.DatasetProblemParams).problem), what, 30_000, from).then((r) => (r.params as protocol.DatasetProblemParams).problem);
}

/** The 0-based line of a record's first line. */
function lineOf(text: string, start: number): number {
  return text.slice(0, start).split('\n').length - 1;
}

describe('the curator\'s loop in the language server', () => {
  before(async () => {
    client = await TestClient.start({ storagePath, settings });
  });

  after(async () => {
    await client?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  test('a file with a missing comma is named with line and column; Score Dataset refuses it and acts on no other file', async () => {
    // Another dataset open first: it must not be the one scored.
    await client.open(datasetUri, datasetText);
    await client.waitForScores(datasetUri, (p) => p.full, 'the valid dataset\'s scores');
    const brokenUri = pathToFileURL(join(folder, 'tricky.alpaca.json')).toString();
    const brokenText = datasetText.replace('},\n  {', '}\n  {');
    await client.open(brokenUri, brokenText);
    const problem = (await waitForProblem(brokenUri, (p) => p !== null, 'the broken file\'s problem'))!;
    assert.match(problem.message, /^malformed JSON \(/);
    const brokenAt = brokenText.indexOf('}\n  {') + 4;
    assert.deepEqual(problem.range.start, { line: lineOf(brokenText, brokenAt), character: 2 });
    assert.equal(client.scores(brokenUri).length, 0, 'no scores for a file that never parsed');
    await assert.rejects(client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: brokenUri } }),
      (err: Error) => err.message.startsWith(`tricky.alpaca.json:${problem.range.start.line + 1}:3: malformed JSON`));
  });

  test('the first Score Dataset chooses k-means anchors, says which, and skips an empty response and a repeat', async () => {
    firstRun = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: datasetUri } });
    const chosen = firstRun.anchorsChosen!;
    assert.equal(chosen.count, 6);
    assert.equal(chosen.description, 'k-means 6 of this file');
    assert.match(chosen.skipped!, /^2 records skipped as anchors: index 6 \("Say nothing at all\.…"\) has an empty response; index 7 \(".+…"\) repeats index 0$/);
    // What the run log needs.
    assert.equal(firstRun.model!.demo, true);
    assert.match(firstRun.model!.fingerprint, /^[0-9a-f]+/);
    assert.deepEqual(firstRun.anchors, { description: 'k-means 6 of this file', count: 6, hash: chosen.hash });
    assert.equal(firstRun.scoredNow, 7, 'the repeat shares its record\'s score');
    assert.equal(firstRun.skipped, 1);
    assert.equal(firstRun.scored, 8);
    const again = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: datasetUri } });
    assert.equal(again.anchorsChosen, undefined, 'later runs keep the anchors');
    assert.equal(again.skipped, 8);
  });

  test('a record that is itself an anchor leaves that pair out, is marked, and the CLI scores it the same way', async () => {
    const full = await client.waitForScores(datasetUri, (p) => p.scored === 8, 'every record current');
    assert.equal(full.anchors, 'k-means 6 of this file');
    assert.equal(full.demoModel, true);
    const scoresDir = join(storagePath, 'scores');
    const files = readdirSync(scoresDir).filter((f) => f.endsWith('.jsonl'));
    assert.equal(files.length, 1);
    const stored = readScores(join(scoresDir, files[0]!)).scores;
    for (const r of records) {
      const score = stored.get(r.id)!;
      if (r.output === '') {
        assert.equal(score.selfAnchor, undefined, 'the empty response is no anchor');
        assert.equal(score.anchors, 6);
      } else {
        assert.ok(score.selfAnchor !== undefined, `record ${r.index} is an anchor`);
        assert.equal(score.anchors, 5, 'scored against the other five');
        assert.ok(Number.isNaN(score.deltas[score.selfAnchor]!));
      }
    }
    const hover = (await client.hover(datasetUri, lineOf(datasetText, records[1]!.start) + 1))!;
    assert.match(hover, new RegExp(`This record is anchor ${stored.get(records[1]!.id)!.selfAnchor! + 1} itself: that pair is left out`));
    // The footer names the model and the anchors, and says what the demo model's scores are for.
    assert.match(hover, /Model .+ · anchors: \u2068k\\-means 6 of this file\u2069/);
    assert.match(hover, /bundled demo model: its scores are for trying the tool, not for curation/);

    // The command line, given the same anchors, leaves the same pairs out and gets the same scores.
    const anchorsFile = firstRun.anchorsChosen!.path;
    const out = join(work, 'cli-scores.jsonl');
    const cli = spawnSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'score', datasetPath, '--anchors', anchorsFile, '--out', out,
      '--model', demoModel, '--max-anchor-tokens', '96', '--threads', '1'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    const fromCli = readScores(out).scores;
    for (const r of records) {
      const a = stored.get(r.id)!;
      const b = fromCli.get(r.id)!;
      assert.equal(b.selfAnchor, a.selfAnchor, `record ${r.index}: the same self-pair`);
      assert.equal(b.anchors, a.anchors);
      assert.equal(b.goldenScore, a.goldenScore, `record ${r.index}: the same golden score`);
    }
  });

  test('problem records (an empty response, a repeat) are marked on their badge, say why in their hover, and no selection takes them', async () => {
    const full = await client.waitForScores(datasetUri, (p) => p.full, 'the opened dataset\'s records');
    assert.deepEqual(full.records.map((r) => r.problem ?? null), [null, null, null, null, null, null,
      { mark: 'empty', reason: 'empty output' }, { mark: 'duplicate', reason: 'repeats index 0' }]);
    const hover = (await client.hover(datasetUri, lineOf(datasetText, records[6]!.start) + 1))!;
    assert.match(hover, /⚠ Never selected: empty output\./);
    assert.match(hover, /anchors helped · mean Δ [+-][\d.]+ nats · index 6\n/, 'the hover numbers the record as the dashboard, scores file and exports do');
    assert.match((await client.hover(datasetUri, lineOf(datasetText, records[7]!.start) + 1))!, /⚠ Never selected: repeats index 0\./);
    assert.doesNotMatch((await client.hover(datasetUri, lineOf(datasetText, records[0]!.start) + 1))!, /Never selected/);
    const preview = await client.connection.sendRequest(protocol.selectionPreview, {
      textDocument: { uri: datasetUri }, rules: [{ kind: 'top-percent', percent: 100 }, { kind: 'min-score', minScore: 0 }, { kind: 'top', count: 8, problems: 'kept' }],
    });
    assert.deepEqual(preview.counts, [6, 6, 8]);
    const subset = await client.connection.sendRequest(protocol.selectSubset, { textDocument: { uri: datasetUri }, rule: { kind: 'top', count: 8 } });
    assert.equal(subset.kept, 6);
    assert.equal(subset.problemsLeftOut, '2 problem records (1 with an empty instruction or output, 1 exact duplicate of an earlier record)');
    const card = JSON.parse(readFileSync(subset.cardPath, 'utf8'));
    assert.deepEqual([card.rule.problems, card.problemsLeftOut], ['left-out', 2]);
    // The dashboard counts and lists them.
    const distribution = await client.connection.sendRequest(protocol.distribution, { textDocument: { uri: datasetUri } });
    assert.deepEqual(distribution.problems.map((p) => [p.index, p.mark, p.reason]), [[6, 'empty', 'empty output'], [7, 'duplicate', 'repeats index 0']]);
    assert.equal(distribution.problems[1]!.range.start.line, lineOf(datasetText, records[7]!.start));
    rmSync(subset.path);
    rmSync(subset.cardPath);
  });

  test('an edit that breaks the file keeps its scores, waiting; Score Dataset names the position; fixing it clears the problem', async () => {
    const from = client.received.length;
    const broken = datasetText.replace('"output": "', '"output" "');
    await client.change(datasetUri, 2, broken);
    const problem = (await waitForProblem(datasetUri, (p) => p !== null, 'the problem after the edit', from))!;
    assert.match(problem.message, /^malformed JSON/);
    assert.equal(problem.range.start.line, lineOf(broken, broken.indexOf('"output" "')));
    assert.equal(client.received.slice(from).filter((r) => r.method === protocol.scoresClearedNotification.method).length, 0, 'scores stay shown');
    await assert.rejects(client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: datasetUri } }),
      (err: Error) => new RegExp(`^maths\\.alpaca\\.json:${problem.range.start.line + 1}:\\d+: malformed JSON.*scores already shown wait for it`).test(err.message));
    await client.change(datasetUri, 3, datasetText);
    assert.equal(await waitForProblem(datasetUri, (p) => p === null, 'the problem cleared', from), null);
    await client.waitForScores(datasetUri, (p) => p.full && p.scored === 8, 'the scores current again', from);
    assert.equal(problems(datasetUri).at(-1), null);
  });

  test('a request sent the moment a file opens waits for its parse: Score Dataset scores it, a hover finds its record', async () => {
    const path = join(folder, 'just-opened.alpaca.json');
    const text = JSON.stringify(source.slice(20, 24), null, 2) + '\n';
    writeFileSync(path, text);
    const uri = pathToFileURL(path).toString();
    await client.open(uri, text); // the didOpen is sent; its parse still waits for the model's identity
    const [run, hover] = await Promise.all([
      client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } }),
      client.hover(uri, 2),
    ]);
    assert.equal(run.scored, 4, 'every record scored');
    assert.equal(run.total, 4);
    assert.ok(hover !== null, 'the hover found the record');
  });

  test('a subset written by Select Golden Subset opens with current scores under its source\'s anchors', async () => {
    const subset = await client.connection.sendRequest(protocol.selectSubset, { textDocument: { uri: datasetUri }, rule: { kind: 'top', count: 3 } });
    await client.open(subset.uri, readFileSync(subset.path, 'utf8'));
    const shown = await client.waitForScores(subset.uri, (p) => p.full, 'the subset\'s scores');
    assert.equal(shown.total, 3);
    assert.equal(shown.scored, 3, 'every record of the subset is current at once');
    assert.ok(shown.records.every((r) => r.score && !r.stale));
    assert.equal(shown.anchors, 'k-means 6 of maths.alpaca.json');
    assert.equal(shown.anchorCount, 6);
  });

  test('a renamed file, and a file in a moved folder, keep their anchors', async () => {
    const renamedPath = join(folder, 'maths-renamed.alpaca.json');
    renameSync(datasetPath, renamedPath);
    const renamedUri = pathToFileURL(renamedPath).toString();
    await client.connection.sendNotification(protocol.filesRenamed, { files: [{ oldUri: datasetUri, newUri: renamedUri }] });
    await client.open(renamedUri, datasetText);
    const renamed = await client.waitForScores(renamedUri, (p) => p.full, 'the renamed file\'s scores');
    assert.equal(renamed.scored, 8);
    assert.equal(renamed.anchors, 'k-means 6 of this file');

    const moved = join(work, 'moved');
    renameSync(folder, moved);
    const movedUri = pathToFileURL(join(moved, 'maths-renamed.alpaca.json')).toString();
    await client.connection.sendNotification(protocol.filesRenamed, { files: [{ oldUri: pathToFileURL(folder).toString(), newUri: pathToFileURL(moved).toString() }] });
    await client.open(movedUri, datasetText);
    const inMoved = await client.waitForScores(movedUri, (p) => p.full, 'the moved file\'s scores');
    assert.equal(inMoved.scored, 8);
    assert.equal(inMoved.anchors, 'k-means 6 of this file');
  });

  test('anchors from a file skip an empty response and a repeat, and say so', async () => {
    const anchorsPath = join(work, 'my-anchors.json');
    writeFileSync(anchorsPath, JSON.stringify([source[10], { instruction: 'Empty.', input: '', output: ' ' }, source[11], source[10]], null, 2));
    const uri = pathToFileURL(join(work, 'moved', 'maths-renamed.alpaca.json')).toString();
    const info = await client.connection.sendRequest(protocol.chooseAnchors, { textDocument: { uri }, choice: { method: 'file', path: anchorsPath } });
    assert.equal(info.count, 2);
    assert.equal(info.description, 'my-anchors.json');
    assert.match(info.skipped!, /^2 records skipped as anchors: index 1 \("Empty\.…"\) has an empty response; index 3 \(".+…"\) repeats index 0$/);
    assert.equal(info.staleRecords, 8);
    // A stale score names the anchors it was computed against, not the new ones.
    const hover = (await client.hover(uri, lineOf(datasetText, records[2]!.start) + 1))!;
    assert.match(hover, /\*Stale/);
    assert.match(hover, /anchors: \u2068another set of 6 anchors \\\([0-9a-f]{16}\\\)\u2069/, 'escaped and isolated, as all hover text from outside the extension');
  });
});
