/**
 * The command line as a user runs it: the built bundle in a child process, real data, the demo model.
 * Every bad input must end with a clear message and a non-zero exit, never a stack trace.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { demoModel, repoRoot, sharedData } from '../helpers';

const cli = join(repoRoot, 'dist', 'cli.js');
let dir: string;
let dataset: string;
/** Large enough that a run is still going when the tests below interrupt it. */
let bigDataset: string;
let anchors: string;

function nuggets(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertCleanFailure(r: { code: number | null; stderr: string }, message: RegExp): void {
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
}

function scoreLines(path: string): Array<{ id: string; golden_score: number; anchors: number; deltas: (number | null)[]; self_anchor?: number }> {
  return readFileSync(path, 'utf8').split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l));
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nuggets-cli-'));
  const gsm8k = JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')).slice(0, 14);
  const roleplay = JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')).slice(0, 6);
  dataset = join(dir, 'data.json');
  writeFileSync(dataset, JSON.stringify([...gsm8k, ...roleplay], null, 2));
  bigDataset = join(dir, 'big.json');
  writeFileSync(bigDataset, JSON.stringify(JSON.parse(readFileSync(sharedData('gpteacher-toolformer.alpaca.json'), 'utf8')).slice(0, 100), null, 2));
  anchors = join(dir, 'anchors.json');
  const r = nuggets('anchors', dataset, '--kmeans', '5', '--seed', '0', '--out', anchors);
  assert.equal(r.code, 0, r.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('anchors, score and select run end to end and never touch the dataset', () => {
  const before = readFileSync(dataset);
  const scored = nuggets('score', dataset, '--anchors', anchors, '--out', 'scores.jsonl');
  assert.equal(scored.code, 0, scored.stderr);
  assert.match(scored.stdout, /golden score\s+records/);
  const lines = scoreLines(join(dir, 'scores.jsonl'));
  assert.equal(lines.length, 20);
  for (const l of lines) {
    assert.equal(l.deltas.length, 5);
    // A record that is itself an anchor is scored against the other four: that pair's delta is null.
    const counted = l.self_anchor === undefined ? 5 : 4;
    assert.equal(l.anchors, counted);
    assert.equal(l.deltas.filter((d) => d !== null).length, counted);
    assert.equal(l.golden_score, l.deltas.filter((d) => d !== null && d > 0).length / counted);
  }
  assert.equal(lines.filter((l) => l.self_anchor !== undefined).length, 5, 'the five anchors chosen from this file are marked');
  const header = JSON.parse(readFileSync(join(dir, 'scores.jsonl'), 'utf8').split('\n')[0]!);
  assert.equal(header.model.name, 'demo');
  assert.equal(header.anchors.count, 5);
  assert.equal(header.template, 'nuggets-alpaca-v1');

  const selected = nuggets('select', dataset, '--scores', 'scores.jsonl', '--top-percent', '25', '--out', 'golden.json');
  assert.equal(selected.code, 0, selected.stderr);
  assert.match(selected.stdout, /selected 5 of 20 records/);
  assert.equal(JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).length, 5);
  assert.deepEqual(readFileSync(dataset), before);
  assertCleanFailure(nuggets('select', dataset, '--scores', 'scores.jsonl', '--top', '3', '--out', dataset), /Refusing to write .*data\.json: it is an input/);
});

test('a killed run keeps every completed record and a rerun resumes, giving the same scores', async () => {
  const out = join(dir, 'killed.jsonl');
  const child = spawn(process.execPath, [cli, 'score', bigDataset, '--anchors', anchors, '--out', out], { cwd: dir, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && (!existsSync(out) || scoreLines(out).length < 4)) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await exited;
  const kept = readFileSync(out, 'utf8').split('\n').slice(1).filter((l) => l.endsWith('}')).length;
  assert.ok(kept >= 4 && kept < 100, `records on disk after the kill: ${kept}`);

  const resumed = nuggets('score', bigDataset, '--anchors', anchors, '--out', out);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`${kept} already in .*killed\\.jsonl, skipped`));
  const uninterrupted = nuggets('score', bigDataset, '--anchors', anchors, '--out', 'uninterrupted.jsonl');
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);
  const full = new Map(scoreLines(join(dir, 'uninterrupted.jsonl')).map((l) => [l.id, l]));
  const after = scoreLines(out);
  assert.equal(after.length, 100);
  assert.equal(new Set(after.map((l) => l.id)).size, 100);
  for (const l of after) assert.deepEqual(l.deltas, full.get(l.id)!.deltas);
});

test('Ctrl-C stops between records, says how to resume, and exits 130', async () => {
  const out = join(dir, 'interrupted.jsonl');
  const child = spawn(process.execPath, [cli, 'score', bigDataset, '--anchors', anchors, '--out', out], { cwd: dir });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && (!existsSync(out) || scoreLines(out).length < 2)) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGINT');
  assert.equal(await code, 130);
  assert.match(stderr, /run the same command again to resume/);
  assert.ok(scoreLines(out).length >= 2);
});

test('shards split the dataset and their scores files select together', () => {
  for (const shard of ['0/2', '1/2']) {
    const r = nuggets('score', dataset, '--anchors', anchors, '--out', `shard-${shard[0]}.jsonl`, '--shard', shard);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(scoreLines(join(dir, 'shard-0.jsonl')).length, 10);
  const one = nuggets('select', dataset, '--scores', 'shard-0.jsonl', '--min-score', '0.5', '--out', 'x.json');
  assertCleanFailure(one, /10 of 20 records have no score .*\(first: index 10\)/);
  const both = nuggets('select', dataset, '--scores', 'shard-0.jsonl', '--scores', 'shard-1.jsonl', '--min-score', '0.5', '--out', 'from-shards.json');
  assert.equal(both.code, 0, both.stderr);
  const whole = nuggets('select', dataset, '--scores', 'scores.jsonl', '--min-score', '0.5', '--out', 'from-whole.json');
  assert.equal(readFileSync(join(dir, 'from-shards.json'), 'utf8'), readFileSync(join(dir, 'from-whole.json'), 'utf8'));
  assert.equal(whole.code, 0);
});

test('bad datasets: malformed JSON, a non-string field, an empty file, a bad JSON Lines line', () => {
  writeFileSync(join(dir, 'malformed.json'), '[\n  {"instruction": "a", "output": "b"}\n  {"instruction": "c", "output": "d"}\n]');
  assertCleanFailure(nuggets('score', 'malformed.json', '--anchors', anchors, '--out', 'm.jsonl'), /malformed\.json:3:3: malformed JSON/);
  writeFileSync(join(dir, 'field.json'), JSON.stringify([{ instruction: 'a', output: 'b' }, { instruction: 'c', output: ['d'] }]));
  assertCleanFailure(nuggets('score', 'field.json', '--anchors', anchors, '--out', 'f.jsonl'), /record 1 field "output" is an array, not a string/);
  writeFileSync(join(dir, 'empty.json'), '[]');
  assertCleanFailure(nuggets('anchors', 'empty.json', '--random', '2', '--out', 'e.json'), /has no records/);
  writeFileSync(join(dir, 'lines.jsonl'), '{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"\n');
  assertCleanFailure(nuggets('score', 'lines.jsonl', '--anchors', anchors, '--out', 'l.jsonl'), /lines\.jsonl:2:\d+: malformed JSON on line 2/);
  assert.equal(existsSync(join(dir, 'm.jsonl')), false, 'nothing written for a dataset that did not parse');
});

test('an anchors file that is not Alpaca is refused', () => {
  writeFileSync(join(dir, 'not-alpaca.json'), JSON.stringify({ anchors: [1, 2] }));
  assertCleanFailure(nuggets('score', dataset, '--anchors', 'not-alpaca.json', '--out', 'n.jsonl'), /anchors file is not a usable Alpaca file/);
});

test('a scores file from another dataset or another model is refused, and kept as it was', () => {
  const other = join(dir, 'other.json');
  writeFileSync(other, JSON.stringify([{ instruction: 'Say hi.', output: 'Hi.' }]));
  assertCleanFailure(nuggets('select', other, '--scores', 'scores.jsonl', '--top', '1', '--out', 'o.json'), /computed for another dataset/);
  const scores = join(dir, 'scores.jsonl');
  const text = readFileSync(scores, 'utf8');
  const header = JSON.parse(text.split('\n')[0]!);
  const foreign = join(dir, 'foreign.jsonl');
  writeFileSync(foreign, text.replace(text.split('\n')[0]!, JSON.stringify({ ...header, model: { name: 'other', fingerprint: '0000' } })));
  const before = readFileSync(foreign, 'utf8');
  assertCleanFailure(nuggets('score', dataset, '--anchors', anchors, '--out', 'foreign.jsonl'), /holds scores computed with model other \(0000\)/);
  assert.equal(readFileSync(foreign, 'utf8'), before);
});

test('cached-path and naive-path (--reference) scores are never mixed in one file: a rerun with the other path is refused and changes nothing, one with the same path resumes', () => {
  const three = join(dir, 'three.json');
  writeFileSync(three, JSON.stringify(JSON.parse(readFileSync(dataset, 'utf8')).slice(0, 3), null, 2));
  const orders = [
    { file: 'path-cached.jsonl', first: [], other: ['--reference'], recorded: 'cached', refusal: /path-cached\.jsonl holds scores computed with the cached path instead of the naive path \(--reference\)/ },
    { file: 'path-naive.jsonl', first: ['--reference'], other: [], recorded: 'naive', refusal: /path-naive\.jsonl holds scores computed with the naive path \(--reference\) instead of the cached path/ },
  ];
  for (const { file, first, other, recorded, refusal } of orders) {
    const out = join(dir, file);
    const scored = nuggets('score', three, '--anchors', anchors, ...first, '--out', file);
    assert.equal(scored.code, 0, scored.stderr);
    assert.equal(scoreLines(out).length, 3);
    const bytes = readFileSync(out);
    const sidecar = readFileSync(`${out}.embeddings`);

    const mixed = nuggets('score', three, '--anchors', anchors, ...other, '--out', file);
    assertCleanFailure(mixed, refusal);
    assert.equal(mixed.code, 1);
    assert.match(mixed.stderr, /Scores are never mixed: pass another --out, or move the file aside/);
    assert.doesNotMatch(mixed.stderr, /already in/);
    assert.deepEqual(readFileSync(out), bytes, `${file} is unchanged, byte for byte`);
    assert.deepEqual(readFileSync(`${out}.embeddings`), sidecar, 'its embeddings too');
    assert.equal(JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!).scoringPath, recorded, 'the header records the path');

    // The same path resumes: a file cut back to two records gets its third again, the same as before.
    const lines = bytes.toString('utf8').split('\n');
    writeFileSync(out, lines.slice(0, 3).join('\n') + '\n');
    const resumed = nuggets('score', three, '--anchors', anchors, ...first, '--out', file);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`scoring 1 records .*; 2 already in .*${file.replace('.', '\\.')}, skipped`));
    assert.deepEqual(scoreLines(out).map((l) => l.deltas), lines.slice(1, 4).map((l) => JSON.parse(l).deltas));
  }
  // Nor are they mixed when selecting from several files.
  assertCleanFailure(nuggets('select', three, '--scores', 'path-cached.jsonl', '--scores', 'path-naive.jsonl', '--top', '1', '--out', 'mixed.json'),
    /path-naive\.jsonl holds scores computed with the naive path \(--reference\) instead of the cached path/);
  assert.equal(existsSync(join(dir, 'mixed.json')), false);
});

test('a scores file from before the path was recorded reads as cached-path scores', () => {
  const old = join(dir, 'path-old.jsonl');
  const text = readFileSync(join(dir, 'path-cached.jsonl'), 'utf8');
  const { scoringPath: _recorded, ...header } = JSON.parse(text.split('\n')[0]!);
  writeFileSync(old, text.replace(text.split('\n')[0]!, JSON.stringify(header)));
  const three = join(dir, 'three.json');
  const before = readFileSync(old);
  assertCleanFailure(nuggets('score', three, '--anchors', anchors, '--reference', '--out', 'path-old.jsonl'),
    /path-old\.jsonl holds scores computed with the cached path \(its header predates the path's record: read as cached\) instead of the naive path \(--reference\)/);
  assert.deepEqual(readFileSync(old), before);
  const resumed = nuggets('score', three, '--anchors', anchors, '--out', 'path-old.jsonl');
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /3 already in .*path-old\.jsonl, skipped/);
});

test('broken model folders: missing folder, missing file, truncated graph, not a causal LM, mismatched tokenizer', () => {
  const score = (model: string) => nuggets('score', dataset, '--anchors', anchors, '--out', `broken-${Math.random()}.jsonl`, '--model', model);
  assertCleanFailure(score(join(dir, 'nowhere')), /Model folder not found/);

  const noTokenizer = join(dir, 'no-tokenizer');
  mkdirSync(noTokenizer);
  symlinkSync(join(demoModel, 'model.onnx'), join(noTokenizer, 'model.onnx'));
  copyFileSync(join(demoModel, 'config.json'), join(noTokenizer, 'config.json'));
  assertCleanFailure(score(noTokenizer), /missing tokenizer\.json/);

  const truncated = join(dir, 'truncated');
  mkdirSync(truncated);
  for (const f of ['config.json', 'tokenizer.json']) copyFileSync(join(demoModel, f), join(truncated, f));
  writeFileSync(join(truncated, 'model.onnx'), readFileSync(join(demoModel, 'model.onnx')).subarray(0, 100_000));
  assertCleanFailure(score(truncated), /ONNX Runtime could not load .*model\.onnx/);

  const notLm = join(dir, 'not-lm');
  mkdirSync(notLm);
  for (const f of ['config.json', 'tokenizer.json']) copyFileSync(join(demoModel, f), join(notLm, f));
  copyFileSync(join(repoRoot, 'test', 'fixtures', 'identity.onnx'), join(notLm, 'model.onnx'));
  assertCleanFailure(score(notLm), /is not a causal language model graph: it has no "logits" output/);

  const mismatched = join(dir, 'mismatched');
  mkdirSync(mismatched);
  symlinkSync(join(demoModel, 'model.onnx'), join(mismatched, 'model.onnx'));
  copyFileSync(join(demoModel, 'config.json'), join(mismatched, 'config.json'));
  const tokenizer = JSON.parse(readFileSync(join(demoModel, 'tokenizer.json'), 'utf8'));
  for (let i = 0; i < 1000; i++) tokenizer.model.vocab[`extra${i}`] = 5000 + i;
  writeFileSync(join(mismatched, 'tokenizer.json'), JSON.stringify(tokenizer));
  assertCleanFailure(score(mismatched), /tokenizer has 6000 tokens but the model's vocabulary has 4096/);
});

test('usage errors print the usage', () => {
  const r = nuggets('select', dataset, '--scores', 'scores.jsonl', '--out', 'x.json');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /give --min-score, --top, --top-percent or a bound such as --max-ifd/);
  assert.match(r.stderr, /Usage:/);
  assert.ok(statSync(join(dir, 'scores.jsonl')).size > 0);
});

test('exact early stop: bounded scores select exactly what full scores select at that threshold', () => {
  for (const t of ['0.4', '0.6']) {
    const early = nuggets('score', dataset, '--anchors', anchors, '--out', `early-${t}.jsonl`, '--min-score', t, '--batch-size', '1');
    assert.equal(early.code, 0, early.stderr);
    assert.match(early.stdout, new RegExp(`early stop at ${t}: .* one-shot passes run \\(\\d+\\.\\d% saved\\)`));
    const lines = readFileSync(join(dir, `early-${t}.jsonl`), 'utf8').split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l));
    const bounded = lines.filter((l) => l.golden_score === null);
    assert.ok(bounded.length > 0, 'some records stopped early');
    for (const l of bounded) assert.match(l.bound, new RegExp(`^(>=|<) ${t}$`));
    assert.equal(nuggets('select', dataset, '--scores', `early-${t}.jsonl`, '--min-score', t, '--out', `early-${t}.json`).code, 0);
    assert.equal(nuggets('select', dataset, '--scores', 'scores.jsonl', '--min-score', t, '--out', `full-${t}.json`).code, 0);
    assert.equal(readFileSync(join(dir, `early-${t}.json`), 'utf8'), readFileSync(join(dir, `full-${t}.json`), 'utf8'));
  }
  assertCleanFailure(nuggets('select', dataset, '--scores', 'early-0.4.jsonl', '--top', '3', '--out', 'x.json'), /stopped early at 0\.4: they decide only that threshold/);
});
