/**
 * Selection by several signals, diversity and selection cards, through the built command line on real
 * records scored with the demo model (and, for the agreement check, the Llama-family stand-in).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { readDataset } from '../../server/records/dataset';
import { embeddingsPathFor, readEmbeddings } from '../../server/signals/embedding-file';
import { readScores } from '../../server/records/store';
import { spearman } from '../../server/selection/agree';
import { demoModel, repoRoot, scratchDir, sharedData, standins } from '../helpers';

const cli = join(repoRoot, 'dist', 'cli.js');
let dir: string;
let dataset: string;

function nuggets(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function subset(path: string): Array<{ instruction: string; output: string }> {
  return JSON.parse(readFileSync(join(dir, path), 'utf8'));
}

/** The dataset's records, in order, with their stored scores. */
function scored(): Array<{ index: number; id: string; golden: number; meanDelta: number; ifd: number | null; instruction: string }> {
  const { scores } = readScores(join(dir, 'scores.jsonl'));
  return readDataset(dataset).records.map((r) => {
    const s = scores.get(r.id)!;
    return { index: r.index, id: r.id, golden: s.goldenScore, meanDelta: s.meanDelta, ifd: s.signals?.['ifd'] ?? null, instruction: r.instruction };
  });
}

before(() => {
  dir = scratchDir('select-signals');
  const gsm8k = JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')).slice(0, 12);
  const roleplay = JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')).slice(0, 6);
  // Two near-duplicates: a record again with one word more in its output.
  const twins = [0, 13].map((i) => ({ ...[...gsm8k, ...roleplay][i], output: `${[...gsm8k, ...roleplay][i].output} Indeed.` }));
  dataset = join(dir, 'data.json');
  writeFileSync(dataset, JSON.stringify([...gsm8k, ...roleplay, ...twins], null, 2));
  assert.equal(nuggets('anchors', dataset, '--kmeans', '5', '--seed', '1', '--out', 'anchors.json').code, 0);
  const r = nuggets('score', dataset, '--anchors', 'anchors.json', '--out', 'scores.jsonl');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ifd\s+\d/, 'the summary lists the signals');
});

test('every record has its scalar signals in the scores file and its embedding in the float16 sidecar', () => {
  const lines = readFileSync(join(dir, 'scores.jsonl'), 'utf8').split('\n').slice(1).filter((l) => l).map((l) => JSON.parse(l));
  assert.equal(lines.length, 20);
  for (const l of lines) {
    assert.ok(l.ppl_cond > 1 && l.ppl_direct > 1, `perplexities of record ${l.index}`);
    assert.ok(Math.abs(l.ifd - l.ppl_cond / l.ppl_direct) <= 1e-5 * l.ifd);
  }
  const embeddings = readEmbeddings(embeddingsPathFor(join(dir, 'scores.jsonl')))!;
  assert.equal(embeddings.header.dimension, 192);
  assert.equal(embeddings.vectors.size, 20);
  for (const v of embeddings.vectors.values()) assert.ok(Math.abs(Math.hypot(...v) - 1) < 2e-3);
  const size = readFileSync(embeddingsPathFor(join(dir, 'scores.jsonl'))).length;
  assert.ok(size < 20 * (8 + 2 * 192) + 200, `compact: ${size} bytes`);
});

test('--by ifd ranks by IFD within bounds on the golden score and IFD', () => {
  const r = nuggets('select', dataset, '--scores', 'scores.jsonl', '--by', 'ifd', '--top', '4', '--max-ifd', '1', '--min-score', '0.2', '--out', 'ifd.json');
  assert.equal(r.code, 0, r.stderr);
  const expected = scored().filter((s) => s.ifd !== null && s.ifd < 1 && s.golden >= 0.2)
    .sort((a, b) => b.ifd! - a.ifd! || b.meanDelta - a.meanDelta || a.index - b.index).slice(0, 4).sort((a, b) => a.index - b.index);
  assert.ok(expected.length > 0);
  assert.deepEqual(subset('ifd.json').map((x) => x.instruction), expected.map((x) => x.instruction));
  const bounded = nuggets('select', dataset, '--scores', 'scores.jsonl', '--max-ifd', '0.5', '--out', 'low-ifd.json');
  assert.equal(bounded.code, 0, bounded.stderr);
  assert.equal(subset('low-ifd.json').length, scored().filter((s) => s.ifd !== null && s.ifd < 0.5).length);
});

test('--diverse skips near-duplicates by embedding, says how many, and is the greedy walk ALGORITHM.md defines', () => {
  const plain = nuggets('select', dataset, '--scores', 'scores.jsonl', '--top', '20', '--out', 'all.json');
  assert.equal(plain.code, 0, plain.stderr);
  const r = nuggets('select', dataset, '--scores', 'scores.jsonl', '--top', '20', '--diverse', '0.99', '--out', 'diverse.json');
  assert.equal(r.code, 0, r.stderr);
  const skipped = Number(/skipped (\d+) near-duplicates \(cosine >= 0.99, model embeddings\)/.exec(r.stdout)?.[1]);
  // The reference walk, from the stored embeddings.
  const vectors = readEmbeddings(embeddingsPathFor(join(dir, 'scores.jsonl')))!.vectors;
  const ranked = scored().sort((a, b) => b.golden - a.golden || b.meanDelta - a.meanDelta || a.index - b.index);
  const kept: typeof ranked = [];
  for (const s of ranked) {
    const v = vectors.get(s.id)!;
    if (kept.every((k) => vectors.get(k.id)!.reduce((sum, x, d) => sum + x * v[d]!, 0) < 0.99)) kept.push(s);
  }
  assert.ok(kept.length < 20, 'the twins are near-duplicates of their originals');
  assert.equal(skipped, 20 - kept.length);
  assert.deepEqual(subset('diverse.json').map((x) => x.instruction), kept.sort((a, b) => a.index - b.index).map((x) => x.instruction));
  const card = JSON.parse(readFileSync(join(dir, 'diverse.card.json'), 'utf8'));
  assert.equal(card.similarity, 'embedding');
  assert.equal(card.skippedAsDuplicates, skipped);
});

test('without embeddings, --diverse uses TF-IDF and says so', () => {
  copyFileSync(join(dir, 'scores.jsonl'), join(dir, 'bare.jsonl'));
  const r = nuggets('select', dataset, '--scores', 'bare.jsonl', '--top', '20', '--diverse', '0.9', '--out', 'tfidf.json');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /no embeddings were stored with these scores; diversity uses TF-IDF/);
  assert.match(r.stdout, /skipped [1-9]\d* near-duplicates \(cosine >= 0.9, TF-IDF\)/);
});

test('a selection card records how the subset was made, and --card makes it again with the same records', () => {
  const r = nuggets('select', dataset, '--scores', 'scores.jsonl', '--top-percent', '25', '--baseline', 'random', '--seed', '7', '--out', 'golden.json');
  assert.equal(r.code, 0, r.stderr);
  const card = JSON.parse(readFileSync(join(dir, 'golden.card.json'), 'utf8'));
  assert.equal(card.source.dataset, 'data.json');
  assert.equal(card.source.records, 20);
  assert.match(card.source.content_sha256, /^[0-9a-f]{64}$/);
  assert.equal(card.model.name, 'demo');
  assert.match(card.model.fingerprint, /^[0-9a-f]+$/);
  assert.deepEqual([card.anchors.count, card.anchors.source], [5, 'anchors.json']);
  assert.deepEqual([card.template, card.maxAnchorTokens], ['nuggets-alpaca-v1', 200]);
  assert.deepEqual(card.rule, { kind: 'top-percent', percent: 25, problems: 'left-out' });
  assert.equal(card.subset.records, 5);
  assert.equal(card.signals.ifd.count, 5);
  assert.match(card.tool.version, /^\d+\.\d+\.\d+$/);
  const random = JSON.parse(readFileSync(join(dir, 'golden.random.card.json'), 'utf8'));
  assert.deepEqual([random.baseline, random.seed, random.subset.records], ['random', 7, 5]);
  assert.equal(subset('golden.random.json').length, 5);

  const again = nuggets('select', '--card', 'golden.card.json', '--out', 'again.json');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /reproduced golden.json: the same 5 records/);
  assert.deepEqual(subset('again.json'), subset('golden.json'));
  assert.equal(nuggets('select', '--card', 'golden.random.card.json').code, 0);

  // Scores that changed since: the same rule picks other records, and the check says so.
  const lines = readFileSync(join(dir, 'scores.jsonl'), 'utf8').split('\n');
  const top = subset('golden.json')[0]!;
  const topId = readDataset(dataset).records.find((x) => x.instruction === top.instruction)!.id;
  writeFileSync(join(dir, 'scores.jsonl'), lines.map((l) => (l.includes(`"id":"${topId}"`) ? l.replace(/"golden_score":[0-9.]+/, '"golden_score":0') : l)).join('\n'));
  const drifted = nuggets('select', '--card', 'golden.card.json');
  assert.equal(drifted.code, 1);
  assert.match(drifted.stderr, /does not hold the same 5 records as golden.json/);
  writeFileSync(join(dir, 'scores.jsonl'), lines.join('\n'));
  writeFileSync(dataset, readFileSync(dataset, 'utf8') + '\n');
  const edited = nuggets('select', '--card', 'golden.card.json');
  assert.equal(edited.code, 1);
  assert.match(edited.stderr, /is not the dataset the card was made from/);
  assert.ok(existsSync(join(dir, 'golden.json')));
});

test('problem records (empty, whitespace-only, exact duplicates) are scored but left out of every selection unless --keep-problems; the card records the rule', () => {
  const gsm8k = JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')).slice(0, 4);
  const problems = [
    { instruction: '', input: '', output: '' },
    { instruction: 'Say something.', input: '', output: '   \n ' },
    { ...gsm8k[0], input: '' },
  ];
  writeFileSync(join(dir, 'problems.json'), JSON.stringify([...gsm8k, ...problems], null, 2));
  const scoredRun = nuggets('score', 'problems.json', '--anchors', 'anchors.json', '--out', 'problems.jsonl');
  assert.equal(scoredRun.code, 0, scoredRun.stderr);
  assert.equal(readScores(join(dir, 'problems.jsonl')).scores.size, 6, 'every distinct record is scored, problems included');
  assert.match(scoredRun.stdout, /\n3 problem records \(2 with an empty instruction or output, 1 exact duplicate of an earlier record\): scored, never selected/);
  const top = scoredRun.stdout.slice(scoredRun.stdout.indexOf('top records'));
  assert.deepEqual([...top.matchAll(/^\s+(\d+)\s+\d/gm)].map((m) => Number(m[1])).sort(), [0, 1, 2, 3], 'the best records listed are the selectable ones');

  const r = nuggets('select', 'problems.json', '--scores', 'problems.jsonl', '--top-percent', '100', '--out', 'no-problems.json');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(subset('no-problems.json').map((x) => x.instruction).sort(), gsm8k.map((x: { instruction: string }) => x.instruction).sort());
  assert.match(r.stdout, /selected 4 of 7 records/);
  assert.match(r.stdout, /left out 3 problem records \(2 with an empty instruction or output, 1 exact duplicate of an earlier record\): index 4 \(empty instruction and output\), index 5 \(empty output\), index 6 \(repeats index 0\); --keep-problems keeps them/);
  const card = JSON.parse(readFileSync(join(dir, 'no-problems.card.json'), 'utf8'));
  assert.deepEqual([card.rule.problems, card.problemsLeftOut], ['left-out', 3]);
  // The random baseline draws from the same records the rule chose from.
  const baseline = nuggets('select', 'problems.json', '--scores', 'problems.jsonl', '--top', '4', '--baseline', 'random', '--out', 'top4.json');
  assert.equal(baseline.code, 0, baseline.stderr);
  assert.deepEqual(subset('top4.random.json').map((x) => x.instruction).sort(), gsm8k.map((x: { instruction: string }) => x.instruction).sort());

  const kept = nuggets('select', 'problems.json', '--scores', 'problems.jsonl', '--top-percent', '100', '--keep-problems', '--out', 'with-problems.json');
  assert.equal(kept.code, 0, kept.stderr);
  assert.match(kept.stdout, /selected 7 of 7 records/);
  assert.doesNotMatch(kept.stdout, /left out/);
  assert.equal(JSON.parse(readFileSync(join(dir, 'with-problems.card.json'), 'utf8')).rule.problems, 'kept');

  // A card written before this rule (no `problems`) kept problem records: made again, it keeps them still.
  const old = JSON.parse(readFileSync(join(dir, 'with-problems.card.json'), 'utf8'));
  delete old.rule.problems;
  writeFileSync(join(dir, 'old.card.json'), JSON.stringify(old));
  const again = nuggets('select', '--card', 'old.card.json');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /the same 7 records/);
});

test('agree: the demo model against the Llama-family stand-in reports the figures the two models\' own scores give, and says the demo cannot stand in', () => {
  // The whole dataset as the sample, so the figures can be recomputed from each model's own score run.
  const llama = join(standins(), 'llama2-sp');
  const r = nuggets('agree', dataset, '--anchors', 'anchors.json', '--model', 'demo', '--model', llama, '--sample', '20', '--min-score', '0.4');
  assert.equal(r.code, 0, r.stderr);
  console.log(r.stdout.trimEnd()); // the real figures, for the closing note
  assert.equal(nuggets('score', dataset, '--anchors', 'anchors.json', '--model', llama, '--out', 'llama.jsonl').code, 0);
  const demo = readScores(join(dir, 'scores.jsonl')).scores;
  const other = readScores(join(dir, 'llama.jsonl')).scores;
  const ids = readDataset(dataset).records.map((rec) => rec.id);
  const golden = spearman(ids.map((id) => demo.get(id)!.goldenScore), ids.map((id) => other.get(id)!.goldenScore))!;
  assert.match(r.stdout, /^demo vs llama2-sp on 20 records/);
  const printed = Number(/Spearman, golden score:\s+(-?\d\.\d{3})/.exec(r.stdout)?.[1]);
  assert.ok(Math.abs(printed - golden) <= 5e-4, `printed Spearman ${printed}, recomputed ${golden.toFixed(4)}`);
  const keeps = ids.map((id) => [demo.get(id)!.goldenScore >= 0.4, other.get(id)!.goldenScore >= 0.4]);
  const agreeing = keeps.filter(([a, b]) => a === b).length;
  const kept = (k: number): number => keeps.filter((pair) => pair[k]).length;
  assert.match(r.stdout, new RegExp(`--min-score 0.4 decisions:\\s+${((100 * agreeing) / 20).toFixed(1)}% agree \\(keeps ${kept(0)} vs ${kept(1)}\\)`));
  // A random-weight model ranks records unlike the trained demo: the verdict must say no.
  assert.ok(golden < 0.8, `Spearman ${golden} between the demo and a random-weight model`);
  assert.match(r.stdout, /demo cannot stand in for llama2-sp: its ranking differs/);
});

test('agree: a model compared with a copy of itself ranks the sample alike and can stand in; one model is a usage error', () => {
  const copy = join(dir, 'demo-copy');
  mkdirSync(copy);
  for (const f of ['config.json', 'model.onnx', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(demoModel, f), join(copy, f));
  const r = nuggets('agree', dataset, '--anchors', 'anchors.json', '--model', 'demo', '--model', copy, '--sample', '12', '--min-score', '0.4');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^demo vs demo-copy on 12 records/);
  assert.match(r.stdout, /Spearman, golden score:\s+1\.000/);
  assert.match(r.stdout, /Spearman, IFD:\s+1\.000 \(12 records with IFD from both\)/);
  assert.match(r.stdout, /top-10% overlap:\s+100%/);
  assert.match(r.stdout, /--min-score 0.4 decisions:\s+100\.0% agree/);
  assert.match(r.stdout, /demo can stand in for demo-copy/);
  const usage = nuggets('agree', dataset, '--anchors', 'anchors.json', '--model', 'demo');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /give two models/);
});
