/**
 * Anchor choices that survive renames and pass to subsets, anchors that cannot serve (empty response,
 * repeats), a record that is its own anchor, and where a broken dataset breaks: the pure parts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { chooseKMeans, chooseRandom, describeSkipped, screenAnchors } from '../../server/records/anchors';
import { parseDataset } from '../../server/records/dataset';
import { AnchorChoices, describeAnchors, renamedUri } from '../../server/lsp/anchor-choice';
import { readDocument } from '../../server/lsp/parsed';
import type { DatasetProblem } from '../../server/protocol';
import { hoverMarkdown, scoreSource } from '../../server/lsp/markdown';
import { anchorIndexById } from '../../server/scoring/backend';
import { goldenFrom, selfAnchorOf } from '../../server/scoring/golden';

const record = (instruction: string, output: string, input = '') => ({ instruction, input, output });

test('a renamed file or folder carries its anchor choice, and origins naming it follow', () => {
  assert.equal(renamedUri('file:///d/a.json', 'file:///d/a.json', 'file:///d/b.json'), 'file:///d/b.json');
  assert.equal(renamedUri('file:///d/sub/a.json', 'file:///d/sub', 'file:///e/moved'), 'file:///e/moved/a.json');
  assert.equal(renamedUri('file:///d/subset.json', 'file:///d/sub', 'file:///e/moved'), undefined, 'a sibling whose name starts alike is untouched');

  const dir = mkdtempSync(join(tmpdir(), 'nuggets-choices-'));
  try {
    const file = join(dir, 'documents.json');
    const choices = new AnchorChoices(file);
    choices.set('file:///d/data.json', { path: '/s/anchors/abc.json', origin: { method: 'kmeans', count: 100, from: 'file:///d/data.json' } });
    choices.inherit('file:///d/data.json', 'file:///d/data.golden-top10pct.json');
    assert.equal(describeAnchors(choices.get('file:///d/data.json')!, 'file:///d/data.json'), 'k-means 100 of this file');
    assert.equal(describeAnchors(choices.get('file:///d/data.golden-top10pct.json')!, 'file:///d/data.golden-top10pct.json'), 'k-means 100 of data.json');

    choices.renamed([{ oldUri: 'file:///d/data.json', newUri: 'file:///d/renamed.json' }]);
    assert.equal(choices.get('file:///d/data.json'), undefined);
    assert.equal(describeAnchors(choices.get('file:///d/renamed.json')!, 'file:///d/renamed.json'), 'k-means 100 of this file');
    assert.equal(describeAnchors(choices.get('file:///d/data.golden-top10pct.json')!, 'file:///d/data.golden-top10pct.json'), 'k-means 100 of renamed.json');

    // Kept on disk, and read back by a new server.
    const again = new AnchorChoices(file);
    assert.equal(again.get('file:///d/renamed.json')!.path, '/s/anchors/abc.json');
    assert.ok(JSON.parse(readFileSync(file, 'utf8'))['file:///d/renamed.json']);
    // A file chosen as anchors reads as its name.
    assert.equal(describeAnchors({ path: '/s/x.json', origin: { method: 'file', file: '/home/me/my-anchors.json' } }, 'file:///d/a.json'), 'my-anchors.json');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('documents.json from before origins (URI -> anchors path) still reads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nuggets-choices-'));
  try {
    const legacy = join(dir, 'documents.json');
    writeFileSync(legacy, JSON.stringify({ 'file:///y.json': '/s/anchors/4567.json' }));
    const read = new AnchorChoices(legacy).get('file:///y.json')!;
    assert.equal(read.path, '/s/anchors/4567.json');
    assert.equal(describeAnchors(read, 'file:///y.json'), '4567.json');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('records with an empty response or repeating an earlier one cannot be anchors, and are named', () => {
  const records = parseDataset(JSON.stringify([
    record('Add 2 and 3.', '5'), record('Say nothing.', '   '), record('Name a colour.', 'Blue'), record('Add 2 and 3.', '5'), record('Count to 3.', '1 2 3'),
  ]), 'anchors.json').records;
  const { kept, skipped } = screenAnchors(records);
  assert.deepEqual(kept.map((r) => r.index), [0, 2, 4]);
  assert.deepEqual(skipped.map((s) => [s.index, s.reason]), [[1, 'empty'], [3, { duplicateOf: 0 }]]);
  const text = describeSkipped(skipped);
  assert.match(text, /^2 records skipped as anchors: index 1 \("Say nothing\.…"\) has an empty response; index 3 \("Add 2 and 3\.…"\) repeats index 0$/);
  // k-means and random choose among the records that can be anchors, and say how many can.
  assert.deepEqual(chooseKMeans(records, 3, 0).map((r) => r.index), [0, 2, 4]);
  assert.deepEqual(chooseRandom(records, 3, 5).map((r) => r.index), [0, 2, 4]);
  assert.throws(() => chooseKMeans(records, 4, 0), /only 3 of the dataset's 5 records can be anchors/);
});

test('a record that is itself an anchor is scored against the other anchors only', () => {
  const anchors = [record('A', 'a'), record('B', 'b'), record('C', 'c')];
  const prepared = { count: 3, zeroShot: Float64Array.from([-5, -5, -5]), responseTokens: Int32Array.from([1, 1, 1]), anchorById: anchorIndexById(anchors) };
  const [self] = parseDataset(JSON.stringify([record('B', 'b')]), 'd.json').records;
  assert.equal(selfAnchorOf(prepared, self!), 1);
  // Anchor 1 (itself) would be a huge win: it is left out, so 1 win of the 2 others.
  const g = goldenFrom(prepared, Float64Array.from([-4, 5, -6]), 1);
  assert.equal(g.anchors, 2);
  assert.equal(g.wins, 1);
  assert.equal(g.goldenScore, 0.5);
  assert.ok(Number.isNaN(g.deltas[1]!));
  assert.equal(g.meanDelta, 0);
  // Without the rule it would have counted: 2 of 3.
  assert.equal(goldenFrom(prepared, Float64Array.from([-4, 5, -6])).wins, 2);
  const markdown = hoverMarkdown({
    score: { index: 0, id: self!.id, ...g, truncated: false, selfAnchor: 1 }, stale: false, anchors,
    source: { model: 'demo-tiny', anchors: 'k-means 3 of this file', demo: true },
  });
  assert.match(markdown, /This record is anchor 2 itself: that pair is left out, so its golden score counts the other 2 anchors/);
  assert.match(markdown, /Model \u2068demo\\-tiny\u2069 · anchors: \u2068k\\-means 3 of this file\u2069/);
  assert.match(markdown, /bundled demo model: its scores are for trying the tool, not for curation/);
  assert.doesNotMatch(markdown, /\| 2\\\. \u2068B\u2069 \|/, 'its own pair is not listed among its helps');
});

/** The problem readDocument finds in `text`; undefined when it parses, or is no Alpaca dataset. */
function datasetProblem(uri: string, languageId: string, text: string): DatasetProblem | undefined {
  const read = readDocument(TextDocument.create(uri, languageId, 1, text));
  return read && 'problem' in read ? read.problem : undefined;
}

test('a broken dataset is located at the character that breaks it, or the record at fault', () => {
  const missingComma = '[\n  {"instruction": "a", "input": "", "output": "b"}\n  {"instruction": "c", "input": "", "output": "d"}\n]\n';
  const problem = datasetProblem('file:///d/tricky.alpaca.json', 'json', missingComma)!;
  assert.match(problem.message, /^malformed JSON \(/);
  assert.deepEqual(problem.range.start, { line: 2, character: 2 });
  const noOutput = '{"instruction": "a", "input": "", "output": "b"}\n{"instruction": "c", "input": ""}\n';
  const record2 = datasetProblem('file:///d/data.jsonl', 'jsonl', noOutput)!;
  assert.equal(record2.message, 'record 1 has no "output" field.');
  assert.deepEqual(record2.range.start, { line: 1, character: 0 });
  // Other JSON is none of Nuggets' business; a valid dataset has no problem.
  assert.equal(readDocument(TextDocument.create('file:///d/package.json', 'json', 1, '{"name": "x",}')), undefined);
  const ok = readDocument(TextDocument.create('file:///d/ok.json', 'json', 1, '[{"instruction": "a", "output": "b"}]'));
  assert.ok(ok && 'parsed' in ok && ok.parsed.records.length === 1);
});

test('a stale score names the model and anchors it was computed with', () => {
  const key = { model: { name: 'demo', fingerprint: 'f1' }, anchors: { hash: 'a1', count: 100 } };
  const current = { key, source: { model: 'demo', anchors: 'k-means 100 of this file', demo: true } };
  assert.deepEqual(scoreSource(key, current), current.source);
  assert.deepEqual(scoreSource(undefined, current), current.source);
  assert.deepEqual(scoreSource({ ...key, anchors: { hash: 'b2', count: 8 } }, current), { model: 'demo', anchors: 'another set of 8 anchors (b2)', demo: true });
  assert.deepEqual(scoreSource({ ...key, model: { name: 'hf:o/n', fingerprint: 'f2' } }, current), { model: 'hf:o/n', anchors: 'k-means 100 of this file', demo: false });
  assert.equal(scoreSource(undefined, undefined), undefined);
});
