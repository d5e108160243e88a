/**
 * The built language server (dist/server.js) driven by a real LSP client over stdio, scoring a real
 * Alpaca file cut from ../shared/data with the demo model and 8 k-means anchors.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CancellationTokenSource } from 'vscode-languageserver-protocol/node';
import { parseDataset } from '../../server/records/dataset';
import { findProblems } from '../../server/records/problems';
import * as protocol from '../../server/protocol';
import { readEmbeddings } from '../../server/signals/embedding-file';
import { readScores } from '../../server/records/store';
import { demoModel, sharedData } from '../helpers';
import { TestClient } from './lsp-client';

const RECORDS = 12;
const work = mkdtempSync(join(tmpdir(), 'nuggets-lsp-'));
const storagePath = join(work, 'storage');
const datasetPath = join(work, 'gsm8k-12.alpaca.json');
const datasetUri = pathToFileURL(datasetPath).toString();
const otherUri = pathToFileURL(join(work, 'package.json')).toString();
const source = JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')) as Record<string, string>[];
const datasetText = JSON.stringify(source.slice(0, RECORDS), null, 4) + '\n';
writeFileSync(datasetPath, datasetText);
const records = parseDataset(datasetText, datasetPath).records;

const settings: protocol.ServerSettings = {
  model: demoModel, anchors: null, maxAnchorTokens: 96, batchSize: 8, threads: 1, scoringAllowed: true,
};

let client: TestClient;
/** The document's text after the edit test. */
let editedText = datasetText;

/** The line of a record's first line + `offset` (clamped to the record). */
function lineOf(text: string, index: number, offset = 0): number {
  const r = records[index]!;
  const first = text.slice(0, r.start).split('\n').length - 1;
  const last = text.slice(0, r.end).split('\n').length - 1;
  return Math.min(first + offset, last);
}

function scoresFile(): ReturnType<typeof readScores>[] {
  const dir = join(storagePath, 'scores');
  return readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => readScores(join(dir, f))); // not the embeddings sidecars
}

/** Δ values listed in a hover, as numbers. */
function hoverDeltas(markdown: string): number[] {
  return [...markdown.matchAll(/^\| ([+-]\d+\.\d{3}) \|/gm)].map((m) => Number(m[1]));
}

describe('the Nuggets language server over stdio', () => {
  before(async () => {
    client = await TestClient.start({ storagePath, settings });
  });

  after(async () => {
    await client?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  test('an opened Alpaca file gets one scores notification with every record, unscored', async () => {
    await client.open(otherUri, JSON.stringify({ name: 'not-a-dataset', version: '1.0.0', scripts: { test: 'node --test' } }, null, 2));
    await client.open(datasetUri, datasetText);
    const first = await client.waitForScores(datasetUri, (p) => p.full, 'the first scores notification');
    assert.equal(first.total, RECORDS);
    assert.equal(first.records.length, RECORDS);
    assert.equal(first.scored, 0);
    assert.ok(first.records.every((r) => r.score === undefined && !r.stale));
    assert.deepEqual(first.records.map((r) => r.id), records.map((r) => r.id));
    // Ranges: record 4 starts at its '{' line and ends at its '}'.
    assert.equal(first.records[4]!.range.start.line, lineOf(datasetText, 4));
    assert.equal(first.records[4]!.range.end.line, lineOf(datasetText, 4, 99));
  });

  test('k-means chooses 8 anchors from the document', async () => {
    const info = await client.connection.sendRequest(protocol.chooseAnchors, { textDocument: { uri: datasetUri }, choice: { method: 'kmeans', count: 8 } });
    assert.equal(info.count, 8);
    assert.match(info.hash, /^[0-9a-f]{16}$/);
    assert.ok(existsSync(info.path));
  });

  test('Score Dataset streams progress and partial results, persists them, and hovers are answered meanwhile', async () => {
    const workDoneToken = randomUUID();
    const partialResultToken = randomUUID();
    client.listenProgress(workDoneToken);
    client.listenProgress(partialResultToken);
    const from = client.received.length;
    // The order in which the answers arrive, and how many notifications had come when the hover was answered.
    const answered: string[] = [];
    const scoring = client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: datasetUri }, workDoneToken, partialResultToken })
      .then((result) => (answered.push('score'), result));
    // Once scoring is visibly under way, ask for a hover and note what had arrived when it came back.
    await client.waitForScores(datasetUri, (p) => !p.full, 'the first partial score', from);
    const hover = await client.hover(datasetUri, lineOf(datasetText, 0, 1));
    answered.push('hover');
    const receivedAtHover = client.received.length;
    const result = await scoring;

    assert.ok(hover !== null);
    assert.equal(result.scoredNow, RECORDS);
    assert.equal(result.scored, RECORDS);
    assert.equal(result.cancelled, false);
    const partials = client.scores(datasetUri).slice(-RECORDS);
    assert.ok(partials.every((p) => !p.full && p.records.length === 1));
    assert.deepEqual(new Set(partials.map((p) => p.records[0]!.index)), new Set(records.map((r) => r.index)));
    // Ordering, not timing: the hover was answered before scoring finished, with scores still to come.
    assert.deepEqual(answered, ['hover', 'score'], 'the hover was answered before the score request completed');
    const laterScores = client.received.slice(receivedAtHover).filter((r) => r.method === protocol.scoresNotification.method);
    assert.ok(laterScores.length >= 1, 'records were still being scored after the hover was answered');

    const progress = client.received.filter((r) => r.method === `$/progress:${workDoneToken}`).map((r) => r.params as { kind: string; percentage?: number });
    assert.equal(progress[0]!.kind, 'begin');
    assert.equal(progress.at(-1)!.kind, 'end');
    assert.equal(progress.filter((p) => p.kind === 'report' && p.percentage !== undefined).at(-1)!.percentage, 100);
    const partialResults = client.received.filter((r) => r.method === `$/progress:${partialResultToken}`).flatMap((r) => r.params as protocol.RecordScore[]);
    assert.equal(partialResults.length, RECORDS);
    const status = client.received.filter((r) => r.method === protocol.scoringStatusNotification.method).map((r) => r.params as protocol.ScoringStatus);
    assert.equal(status.at(-1)!.phase, 'done');
    assert.equal(status.at(-1)!.scored, RECORDS);

    // At 96 tokens, two of the eight anchors have no response token left: named in a warning, not counted.
    const warning = client.received.find((r) => r.method === 'window/showMessage')?.params as { type: number; message: string } | undefined;
    assert.match(warning?.message ?? '', /^Nuggets: 2 anchors: .* have no response token left within 96 tokens and are excluded: golden scores count the other 6 of 8 anchors\.$/);

    // Persisted: one scores file under this key, holding every record.
    const files = scoresFile();
    assert.equal(files.length, 1);
    assert.equal(files[0]!.header.anchors.count, 8);
    assert.deepEqual(new Set(files[0]!.scores.keys()), new Set(records.map((r) => r.id)));
  });

  test('a hover on any line of a record shows its golden score and per-anchor deltas', async () => {
    const stored = scoresFile()[0]!.scores.get(records[3]!.id)!;
    const markdown = (await client.hover(datasetUri, lineOf(datasetText, 3, 2)))!;
    assert.match(markdown, new RegExp(`Golden score ${stored.goldenScore.toFixed(2)}\\*\\* · ${stored.wins}/${stored.anchors} anchors helped`));
    const shown = hoverDeltas(markdown);
    assert.ok(shown.length > 0 && shown.length <= 6);
    const helps = stored.deltas.filter((d) => d > 0).sort((a, b) => b - a).slice(0, 3);
    const hurts = stored.deltas.filter((d) => d < 0).sort((a, b) => a - b).slice(0, 3);
    assert.deepEqual(shown, [...helps, ...hurts].map((d) => Number(d.toFixed(3))));
    if (helps.length > 0) assert.match(markdown, /\*\*Helps most\*\*/);
    if (hurts.length > 0) assert.match(markdown, /\*\*Hurts most\*\*/);
    // Between two records (the array's "[" line) there is nothing to say.
    assert.equal(await client.hover(datasetUri, 0), null);
  });

  test('editing one record rescores only that record', async () => {
    const edited = JSON.parse(datasetText) as Record<string, string>[];
    edited[5]!.output = `${edited[5]!.output}\nSo the answer is the same.`;
    editedText = JSON.stringify(edited, null, 4) + '\n';
    const newId = parseDataset(editedText, datasetPath).records[5]!.id;
    const before = scoresFile()[0]!.scores.size;
    const from = client.received.length;
    await client.change(datasetUri, 2, editedText);
    const full = await client.waitForScores(datasetUri, (p) => p.full, 'the re-parse after the edit', from);
    assert.equal(full.records[5]!.id, newId);
    assert.equal(full.records[5]!.stale, true, 'the edited record keeps its old score, marked stale');
    assert.ok(full.records.filter((r) => r.index !== 5).every((r) => r.score && !r.stale));
    const rescored = await client.waitForScores(datasetUri, (p) => !p.full, 'the edited record\'s new score', from);
    assert.deepEqual(rescored.records.map((r) => [r.index, r.stale]), [[5, false]]);
    const done = await client.waitFor((r) => r.method === protocol.scoringStatusNotification.method && (r.params as protocol.ScoringStatus).phase === 'done', 'the rescore to finish', 60_000, from);
    assert.equal((done.params as protocol.ScoringStatus).todo, 1);
    assert.equal((done.params as protocol.ScoringStatus).scored, RECORDS);
    const partialsAfterEdit = client.scores(datasetUri).filter((p, i, all) => !p.full && all.indexOf(full) < i);
    assert.equal(partialsAfterEdit.length, 1);
    assert.equal(scoresFile()[0]!.scores.size, before + 1);
  });

  test('Select Golden Subset counts each rule and writes a new file beside the source', async () => {
    const textDocument = { uri: datasetUri };
    const preview = await client.connection.sendRequest(protocol.selectionPreview, {
      textDocument, rules: [{ kind: 'top', count: 5 }, { kind: 'top-percent', percent: 50 }, { kind: 'min-score', minScore: 0 }],
    });
    assert.deepEqual(preview.counts, [5, 6, RECORDS]);
    const result = await client.connection.sendRequest(protocol.selectSubset, { textDocument, rule: { kind: 'top', count: 5 } });
    assert.equal(result.kept, 5);
    assert.notEqual(result.path, datasetPath);
    assert.equal(readFileSync(datasetPath, 'utf8'), datasetText, 'the source is never modified');
    const written = JSON.parse(readFileSync(result.path, 'utf8')) as unknown[];
    assert.equal(written.length, 5);
    const card = JSON.parse(readFileSync(result.cardPath, 'utf8'));
    assert.deepEqual([card.subset.records, card.source.records, card.anchors.count, card.model.name], [5, RECORDS, 8, 'demo']);
    const diverse = await client.connection.sendRequest(protocol.selectSubset, { textDocument, rule: { kind: 'top', count: RECORDS, diverse: 0.999 } });
    assert.equal(diverse.kept + diverse.skippedAsDuplicates, RECORDS, 'every record is kept or skipped as a near-duplicate');
    assert.equal(diverse.similarityNotice, undefined, 'the editor stores embeddings beside its scores');
  });

  test('Compare Models on a Sample: the current model against a copy of itself agrees completely', async () => {
    const copy = join(work, 'demo-copy');
    mkdirSync(copy);
    for (const f of ['config.json', 'model.onnx', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(demoModel, f), join(copy, f));
    const result = await client.connection.sendRequest(protocol.compareModels, { textDocument: { uri: datasetUri }, other: copy, sample: RECORDS, minScore: 0.5 });
    assert.deepEqual([result.sample, result.goldenSpearman, result.top10Overlap, result.decisionAgreement], [RECORDS, 1, 1, 1]);
    assert.match(result.verdict, /^demo can stand in for demo-copy/);
    assert.match(result.report, /Spearman, golden score:\s+1\.000/);
  });

  test('dashboard queries: distribution with a chart per signal, a table page with signal cells, anchor effects, the scatter, nearest neighbours', async () => {
    const textDocument = { uri: datasetUri };
    const dist = await client.connection.sendRequest(protocol.distribution, { textDocument, bins: 10 });
    assert.equal(dist.scored, RECORDS);
    assert.equal(dist.counts.reduce((a, b) => a + b, 0), RECORDS);
    const page = await client.connection.sendRequest(protocol.tablePage, { textDocument, offset: 0, limit: 4, sortBy: 'goldenScore', descending: true });
    assert.equal(page.rows.length, 4);
    assert.equal(page.rows[0]!.score!.goldenScore, dist.goldenScores[0]);
    const effects = await client.connection.sendRequest(protocol.anchorEffects, { textDocument });
    assert.equal(effects.anchors.length, 8);
    assert.equal(effects.candidates, RECORDS);
    assert.deepEqual(dist.signals.map((chart) => [chart.name, chart.missing + chart.counts.reduce((a, b) => a + b, 0)]), [['ppl_cond', RECORDS], ['ppl_direct', RECORDS], ['ifd', RECORDS]]);
    assert.match(page.rows[0]!.signals['ifd']!, /^\d/);
    const scatter = await client.connection.sendRequest(protocol.goldenIfdScatter, { textDocument });
    assert.equal(scatter.points.length, RECORDS);
    const near = await client.connection.sendRequest(protocol.nearestNeighbours, { textDocument, index: 2, count: 3 });
    assert.equal(near.neighbours.length, 3);
    assert.ok(near.neighbours.every((n, i) => n.index !== 2 && n.similarity <= 1 + 1e-6 && (i === 0 || n.similarity <= near.neighbours[i - 1]!.similarity)));
    assert.equal(effects.anchorSet!.label, 'k-means 8 of this file');
    assert.ok(effects.anchors.every((a) => a.moved >= 0 && a.moved <= RECORDS));
  });

  test('the record view: one record\'s delta on every anchor, as stored', async () => {
    const textDocument = { uri: datasetUri };
    const stored = scoresFile()[0]!.scores.get(records[3]!.id)!;
    const view = await client.connection.sendRequest(protocol.recordEffects, { textDocument, index: 3 });
    assert.equal(view.index, 3);
    assert.deepEqual([view.instruction, view.input, view.output], [records[3]!.instruction, records[3]!.input, records[3]!.output], 'the whole record, not shortened');
    assert.equal(view.turns, undefined, 'an Alpaca record has no turns');
    assert.equal(view.score!.goldenScore, stored.goldenScore);
    assert.equal(view.anchorSet!.label, 'k-means 8 of this file');
    assert.deepEqual(view.effects.map((e) => e.delta), stored.deltas.map((d) => (Number.isNaN(d) ? null : d)), 'null where not scored (a self-pair, an anchor left out)');
    assert.equal(view.effects.length, 8);
    await assert.rejects(client.connection.sendRequest(protocol.recordEffects, { textDocument, index: RECORDS + 5 }), /has no record/);
  });

  test('Export Scores writes every record\'s scores where asked, and never over the dataset', async () => {
    const textDocument = { uri: datasetUri };
    const out = join(work, 'exported.csv');
    const result = await client.connection.sendRequest(protocol.exportScores, { textDocument, path: out, format: 'csv', withDeltas: true });
    assert.deepEqual([result.records, result.scored], [RECORDS, RECORDS]);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, RECORDS + 1);
    assert.equal(lines[0]!.split(',').length, 8 + 8, 'eight columns and a delta per anchor');
    const stored = scoresFile()[0]!.scores.get(records[0]!.id)!;
    assert.equal(Number(lines[1]!.split(',')[2]), stored.goldenScore);
    await assert.rejects(client.connection.sendRequest(protocol.exportScores, { textDocument, path: datasetPath, format: 'jsonl', withDeltas: false }), /never modified/);
    assert.equal(readFileSync(datasetPath, 'utf8'), datasetText);
  });

  test('a brushed selection: the table shows exactly the records within the ranges, and Export and Write Subset take the same set (its card records the ranges)', async () => {
    const textDocument = { uri: datasetUri };
    // Each record's golden score and IFD as the server holds them (the scatter's points).
    const points = (await client.connection.sendRequest(protocol.goldenIfdScatter, { textDocument })).points;
    assert.equal(points.length, RECORDS);
    const ifds = points.map((p) => p.y).sort((a, b) => a - b);
    // The middle of the IFD values, and golden scores from 0.25 up: a region of the scatter.
    const bounds = [{ signal: 'ifd', min: ifds[3]!, max: ifds[9]! }, { signal: 'golden', min: 0.25 }];
    const expected = points.filter((p) => p.y >= ifds[3]! && p.y < ifds[9]! && p.x >= 0.25).map((p) => p.index);
    assert.ok(expected.length > 0 && expected.length < RECORDS, `the region holds some records but not all (${expected.length})`);
    const page = await client.connection.sendRequest(protocol.tablePage, { textDocument, offset: 0, limit: 1000, sortBy: 'index', filter: { bounds } });
    assert.deepEqual(page.rows.map((r) => r.index), expected);
    assert.equal(page.total, expected.length);

    // Text searches narrow the table too, case-insensitively, in the instruction (or input) and the output.
    const word = records[expected[0]!]!.output.split(/\s+/).find((w) => w.length > 5)!;
    const byText = await client.connection.sendRequest(protocol.tablePage, { textDocument, offset: 0, limit: 1000, filter: { output: word.toUpperCase() } });
    assert.deepEqual(byText.rows.map((r) => r.index), records.filter((r) => r.output.toLowerCase().includes(word.toLowerCase())).map((r) => r.index));
    await assert.rejects(client.connection.sendRequest(protocol.tablePage, { textDocument, offset: 0, limit: 5, filter: { bounds: [{ signal: 'wins', min: 1 }] } }), /range 1 names no signal/);
    await assert.rejects(client.connection.sendRequest(protocol.tablePage, { textDocument, offset: 0, limit: 5, filter: { bounds: [{ signal: 'ifd', min: 2, max: 1 }] } }), /is empty: its min 2 is not below its max 1/);

    const out = join(work, 'brushed.csv');
    const exported = await client.connection.sendRequest(protocol.exportScores, { textDocument, path: out, format: 'csv', withDeltas: false, bounds });
    assert.deepEqual([exported.records, exported.scored], [expected.length, expected.length]);
    assert.deepEqual(readFileSync(out, 'utf8').trimEnd().split('\n').slice(1).map((line) => Number(line.split(',')[0])), expected);

    const subset = await client.connection.sendRequest(protocol.selectSubset, { textDocument, rule: { kind: 'min-score', minScore: 0, bounds } });
    const written = JSON.parse(readFileSync(subset.path, 'utf8')) as { instruction: string }[];
    const problems = new Set(findProblems(records).map((p) => p.index));
    assert.deepEqual(written.map((w) => w.instruction), expected.filter((i) => !problems.has(i)).map((i) => records[i]!.instruction), 'the subset is the selection, less problem records');
    const card = JSON.parse(readFileSync(subset.cardPath, 'utf8')) as { rule: { bounds: unknown } };
    assert.deepEqual(card.rule.bounds, bounds, 'the card records the brushed ranges');
  });

  test('choosing other anchors marks every score stale instead of mixing them', async () => {
    const anchorsPath = join(work, 'anchors.json');
    const hostile = 'Click [x](command:foo) <script>x</script> `rm` ![i](https://e.co)';
    writeFileSync(anchorsPath, JSON.stringify([
      { instruction: hostile, input: '', output: 'No.' },
      { instruction: 'Add 2 and 3.', input: '', output: '2 + 3 = 5' },
    ]));
    const from = client.received.length;
    const info = await client.connection.sendRequest(protocol.chooseAnchors, { textDocument: { uri: datasetUri }, choice: { method: 'file', path: anchorsPath } });
    assert.equal(info.count, 2);
    assert.equal(info.staleRecords, RECORDS);
    const stale = await client.waitForScores(datasetUri, (p) => p.full, 'scores after the anchor change', from);
    assert.equal(stale.scored, 0);
    assert.ok(stale.records.every((r) => r.stale && r.score !== undefined));
    const staleHover = (await client.hover(datasetUri, lineOf(datasetText, 2, 1)))!;
    assert.match(staleHover, /Stale/);

  });

  test('cancelling a run keeps the records it finished; the next run scores only the rest', async () => {
    const from = client.received.length;
    const cancel = new CancellationTokenSource();
    const first = client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: datasetUri } }, cancel.token);
    await client.waitForScores(datasetUri, (p) => !p.full, 'the first score of the run', from);
    cancel.cancel();
    const stopped = await first;
    assert.equal(stopped.cancelled, true);
    assert.ok(stopped.scoredNow >= 1 && stopped.scoredNow < RECORDS, `cancelled after ${stopped.scoredNow} records`);
    const status = client.received.slice(from).filter((r) => r.method === protocol.scoringStatusNotification.method).at(-1)!.params as protocol.ScoringStatus;
    assert.equal(status.phase, 'cancelled');

    const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: datasetUri } });
    assert.equal(result.cancelled, false);
    assert.equal(result.scoredNow, RECORDS - stopped.scoredNow);
    assert.equal(result.scored, RECORDS);
  });

  test('anchor text in hovers is escaped: never a link, command, code or HTML', async () => {
    // Record 0's hover lists both anchors (each either helps or hurts).
    const markdown = (await client.hover(datasetUri, lineOf(datasetText, 0, 1)))!;
    assert.equal(hoverDeltas(markdown).length, 2);
    assert.ok(markdown.includes('Click \\[x\\]\\(command\\:foo\\) \\<script\\>x\\<\\/script\\> \\`rm\\` \\!\\[i\\]\\(https\\:\\/\\/e\\.co\\)'), markdown);
    const label = /\| 1\\\. (.*) \|$/m.exec(markdown)![1]!;
    assert.deepEqual(label.replace(/\\./g, '').match(/[!-/:-@[-`{-~]/g), null, `every punctuation character is escaped in ${label}`);
  });

  test('changing a setting the scores depend on marks them stale; changing it back restores them', async () => {
    let from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, maxAnchorTokens: settings.maxAnchorTokens + 1 });
    const stale = await client.waitForScores(datasetUri, (p) => p.full, 'scores after the settings change', from);
    assert.equal(stale.scored, 0);
    assert.ok(stale.records.every((r) => r.stale && r.score));
    await assert.rejects(client.connection.sendRequest(protocol.selectSubset, { textDocument: { uri: datasetUri }, rule: { kind: 'top', count: 1 } }), /no score/);
    // A model folder that does not exist: Score Dataset says so.
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, model: join(work, 'no-such-model') });
    await assert.rejects(client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: datasetUri } }), /Model folder not found: .*no-such-model/);
    // Untrusted workspace: stored scores stay visible, but no model runs.
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, scoringAllowed: false });
    await assert.rejects(client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: datasetUri } }), /untrusted/);
    from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, settings);
    const current = await client.waitForScores(datasetUri, (p) => p.full, 'scores after the settings change back', from);
    assert.equal(current.scored, RECORDS);
  });

  test('a file that is not a dataset gets nothing', async () => {
    assert.equal(client.received.filter((r) => (r.params as { uri?: string }).uri === otherUri).length, 0);
    assert.equal(await client.hover(otherUri, 1), null);
    await assert.rejects(client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: otherUri } }), /not an open dataset/);
  });

  test('after a restart, reopening the file shows its scores at once, from storage; Clear Scores removes them', async () => {
    await client.stop();
    client = await TestClient.start({ storagePath, settings });
    await client.open(datasetUri, editedText);
    const first = await client.waitForScores(datasetUri, (p) => p.full, 'scores after the restart');
    assert.equal(first.scored, RECORDS);
    assert.equal(first.anchorCount, 2);
    assert.ok(first.records.every((r) => r.score && !r.stale));
    // At once: the first notification the document gets already carries every score, none came unscored before it.
    assert.equal(client.scores(datasetUri)[0], first, 'the first scores notification after the restart is the scored one');
    // No scoring happened: no run status was sent before the scores arrived.
    assert.equal(client.received.filter((r) => r.method === protocol.scoringStatusNotification.method).length, 0);
    const markdown = (await client.hover(datasetUri, lineOf(datasetText, 7, 1)))!;
    assert.match(markdown, /Golden score \d\.\d\d/);

    // Clear Scores forgets them for good (under every key), embeddings too, without touching the file.
    const documentIds = new Set(parseDataset(editedText, datasetPath).records.map((r) => r.id));
    const storedEmbeddings = (): string[] => readdirSync(join(storagePath, 'scores')).filter((f) => f.endsWith('.embeddings'))
      .flatMap((f) => [...readEmbeddings(join(storagePath, 'scores', f))!.vectors.keys()].filter((id) => documentIds.has(id)));
    assert.ok(storedEmbeddings().length >= RECORDS, 'the demo model stored the records\' embeddings');
    const from = client.received.length;
    const { removed } = await client.connection.sendRequest(protocol.clearScores, { textDocument: { uri: datasetUri } });
    assert.ok(removed >= 2 * RECORDS, `removed ${removed}`);
    const cleared = await client.waitForScores(datasetUri, (p) => p.full, 'scores after clearing', from);
    assert.ok(cleared.records.every((r) => r.score === undefined && !r.stale));
    assert.match((await client.hover(datasetUri, lineOf(datasetText, 7, 1)))!, /Not scored yet/);
    assert.deepEqual(storedEmbeddings(), [], 'no embedding of the file\'s records is left behind');
    const near = await client.connection.sendRequest(protocol.nearestNeighbours, { textDocument: { uri: datasetUri }, index: 7, count: 3 });
    assert.deepEqual(near.neighbours, []);
  });

  test('a file whose tab opens is read ahead from disk: its scores come before its document, and didOpen replaces them', async () => {
    // Saved with a byte order mark, which the editor's document does not have.
    const savedPath = join(work, 'saved.alpaca.json');
    writeFileSync(savedPath, `\ufeff${datasetText}`);
    const savedUri = pathToFileURL(savedPath).toString();
    const from = client.received.length;
    await client.connection.sendNotification(protocol.fileOpening, { uri: savedUri });
    const ahead = await client.waitForScores(savedUri, (p) => p.full, 'scores read ahead', from);
    assert.deepEqual(ahead.savedFile, { length: datasetText.length, lineCount: datasetText.split('\n').length });
    assert.equal(ahead.version, 0);
    assert.deepEqual(ahead.records.map((r) => r.id), records.map((r) => r.id));
    assert.equal(ahead.records[4]!.range.start.line, lineOf(datasetText, 4));

    // The document arrives with the saved text: the same records and ranges, now for its version.
    await client.open(savedUri, datasetText);
    const opened = await client.waitForScores(savedUri, (p) => p.full && p.version === 1, 'scores of the opened document', from);
    assert.equal(opened.savedFile, undefined);
    assert.deepEqual(opened.records, ahead.records);

    // A document that differs from what was read ahead (edited before it was saved, say) is parsed as it is.
    const otherPath = join(work, 'other.alpaca.json');
    writeFileSync(otherPath, datasetText);
    const otherSavedUri = pathToFileURL(otherPath).toString();
    await client.connection.sendNotification(protocol.fileOpening, { uri: otherSavedUri });
    await client.waitForScores(otherSavedUri, (p) => p.version === 0, 'scores read ahead', from);
    const shorter = JSON.stringify(source.slice(0, 5), null, 2);
    await client.open(otherSavedUri, shorter);
    const reparsed = await client.waitForScores(otherSavedUri, (p) => p.version === 1, 'scores of the edited document', from);
    assert.equal(reparsed.total, 5);
    assert.equal(reparsed.records[4]!.range.start.line, shorter.slice(0, parseDataset(shorter, 'x').records[4]!.start).split('\n').length - 1);

    // Files that are not Alpaca datasets, or cannot be read, get nothing.
    const notDataset = join(work, 'settings.json');
    writeFileSync(notDataset, JSON.stringify({ 'editor.fontSize': 14 }));
    await client.connection.sendNotification(protocol.fileOpening, { uri: pathToFileURL(notDataset).toString() });
    await client.connection.sendNotification(protocol.fileOpening, { uri: pathToFileURL(join(work, 'missing.json')).toString() });
    await client.connection.sendNotification(protocol.fileOpening, { uri: 'untitled:Untitled-1' });
    await client.connection.sendNotification(protocol.fileOpening, { uri: savedUri }); // open already: a second tab
    // A barrier instead of a sleep: a dataset read ahead after them. Its read starts after theirs and takes
    // every step theirs take and more (the whole file, its parse, its key), so once its scores have come,
    // whatever the files above would have sent has come too.
    const barrierPath = join(work, 'barrier.alpaca.json');
    writeFileSync(barrierPath, datasetText);
    const barrierUri = pathToFileURL(barrierPath).toString();
    await client.connection.sendNotification(protocol.fileOpening, { uri: barrierUri });
    await client.waitForScores(barrierUri, (p) => p.full, 'scores of the barrier file, read ahead', from);
    const later = client.received.slice(from).filter((r) => r.method === protocol.scoresNotification.method);
    assert.deepEqual(later.map((r) => (r.params as protocol.ScoresParams).uri),
      [savedUri, savedUri, otherSavedUri, otherSavedUri, barrierUri], 'no notification for the other files, nor a second one for the open file');
  });
});
