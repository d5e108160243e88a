/**
 * Conversations through the serving backends as a user runs them: the built CLI in a child process against the
 * vLLM and SGLang stand-ins (test/support/, their own ONNX Runtime session and tokenizer, no code shared with the
 * engine). The renderer turns each (candidate, anchor) into token ids and spans; the servers see ids only. So equal
 * scores show that the served path renders, tokenizes and reads spans as the local engine does
 * (ALGORITHM.md, "Conversations and chat templates"). Also: where a served model's template comes from, and the
 * message when none is known; --turns last|all in the header and the key.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeAnchors } from '../../server/records/anchors';
import { readDataset } from '../../server/records/dataset';
import { CHATML_TEMPLATE } from '../../server/scoring/chat-template';
import { type CliRun, demoModel, repoRoot, runCli, scratchDir, sharedData } from '../helpers';
import { FakeHub } from '../support/hub-server';
import { FakeSglang } from '../support/sglang-server';
import { FakeVllm } from '../support/vllm-server';

const ANCHORS = 8;
let dir: string;
let records: string;
let anchors: string;
let alpaca: string;
let alpacaAnchors: string;
let vllm: FakeVllm;
let sglang: FakeSglang;

const nuggets = (...args: string[]): Promise<CliRun> => runCli(dir, args);

interface Line {
  index: number;
  id: string;
  golden_score: number;
  deltas: (number | null)[];
  truncated: boolean;
  ppl_cond?: number | null;
  ppl_direct?: number | null;
  ifd?: number | null;
}

function scoresOf(path: string): { header: Record<string, unknown>; lines: Line[] } {
  const [header, ...lines] = readFileSync(join(dir, path), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  return { header, lines };
}

/** Every record's golden score equal, every delta and signal within `tolerance`: returns the largest delta difference. */
function assertSameScores(actual: Line[], expected: Line[], tolerance: number, what: string): number {
  assert.equal(actual.length, expected.length, `${what}: as many records`);
  let worst = 0;
  actual.forEach((line, i) => {
    const want = expected[i]!;
    assert.equal(line.id, want.id);
    assert.equal(line.golden_score, want.golden_score, `${what}: record ${line.index}'s golden score`);
    assert.equal(line.truncated, want.truncated);
    line.deltas.forEach((d, k) => {
      const w = want.deltas[k]!;
      assert.equal(d === null, w === null, `${what}: record ${line.index}, anchor ${k}: both excluded or neither`);
      if (d !== null && w !== null) worst = Math.max(worst, Math.abs(d - w));
    });
    for (const signal of ['ppl_cond', 'ppl_direct', 'ifd'] as const) {
      const [a, b] = [line[signal], want[signal]];
      assert.equal(a === null || a === undefined, b === null || b === undefined, `${what}: record ${line.index}'s ${signal} present in both or neither`);
      if (typeof a === 'number' && typeof b === 'number') assert.ok(Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(b)), `${what}: record ${line.index}'s ${signal}: ${a} vs ${b}`);
    }
  });
  assert.ok(worst < tolerance, `${what}: largest delta difference ${worst}`);
  return worst;
}

before(async () => {
  dir = scratchDir('cli-served-conversations');
  // The real ShareGPT sample (15 conversations of 2, 4 and 6 turns) as candidates, conversations of the same
  // real data set as anchors (records the sample does not hold), and real Alpaca records for chat-templated Alpaca.
  records = join(repoRoot, 'samples', 'identity-15.sharegpt.json');
  const sample = new Set(readDataset(records).records.map((r) => r.id));
  const chats = readDataset(sharedData('fastchat-identity.sharegpt.json')).records.filter((r) => !sample.has(r.id));
  anchors = join(dir, 'anchors.json');
  writeAnchors(anchors, chats.filter((_, i) => i % 37 === 5).slice(0, ANCHORS));
  const seed = readDataset(sharedData('alpaca-seed-tasks.jsonl')).records;
  alpaca = join(dir, 'alpaca.json');
  writeFileSync(alpaca, JSON.stringify(seed.slice(40, 46).map((r) => r.original)));
  alpacaAnchors = join(dir, 'alpaca-anchors.json');
  writeAnchors(alpacaAnchors, seed.slice(0, 6));
  // The served model's folder as a user would name it with --tokenizer: its tokenizer files and chat template.
  const folder = join(dir, 'served-model');
  mkdirSync(folder);
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(demoModel, file), join(folder, file));
  writeFileSync(join(folder, 'chat_template.jinja'), CHATML_TEMPLATE);
  [vllm, sglang] = await Promise.all([FakeVllm.start(demoModel, { servedModel: 'demo' }), FakeSglang.start(demoModel, { servedModel: 'demo' })]);
  const local = await nuggets('score', records, '--anchors', anchors, '--template', 'chatml', '--threads', '1', '--out', 'local.jsonl');
  assert.equal(local.code, 0, local.stderr);
});

after(async () => {
  await Promise.all([vllm?.close(), sglang?.close()]);
});

test('protocol test: through vLLM, conversations x conversation anchors with chatml score as the local engine does, sent as token ids', { timeout: 300_000 }, async () => {
  const before = vllm.bodies.length;
  const served = await nuggets('score', records, '--anchors', anchors, '--model', vllm.url, '--template', 'chatml', '--out', 'vllm.jsonl');
  assert.equal(served.code, 0, served.stderr);
  assert.match(served.stderr, /chat template chatml/);
  const worst = assertSameScores(scoresOf('vllm.jsonl').lines, scoresOf('local.jsonl').lines, 1e-3, 'vLLM');
  assert.equal(scoresOf('vllm.jsonl').header['template'], 'chatml');
  const prompts = vllm.bodies.slice(before).flatMap((b) => b.prompt as unknown[]);
  assert.ok(prompts.length > 0 && prompts.every((p) => Array.isArray(p) && p.every((t) => Number.isInteger(t))), 'every prompt goes as token ids');
  console.log(`vLLM: 15 conversations x ${ANCHORS} conversation anchors, golden scores equal, largest delta difference ${worst.toExponential(1)}`);
});

test('protocol test: through SGLang, the same golden scores, and the candidate\'s tokens come from its prefix cache (ChatML is prefix-preserving)', { timeout: 300_000 }, async () => {
  const served = await nuggets('score', records, '--anchors', anchors, '--model', `sglang+${sglang.url}`, '--template', 'chatml', '--out', 'sglang.jsonl');
  assert.equal(served.code, 0, served.stderr);
  const worst = assertSameScores(scoresOf('sglang.jsonl').lines, scoresOf('local.jsonl').lines, 1e-3, 'SGLang');
  const share = /\(([\d.]+)% from its prefix cache\)/.exec(served.stdout);
  assert.ok(share && Number(share[1]) > 30, `most positions come from the cache: ${served.stdout}`);
  assert.doesNotMatch(served.stdout, /not prefix-preserving/);
  const itemsSent = sglang.bodies.flatMap((b) => b.input_ids as number[][]);
  assert.ok(itemsSent.every((ids) => Array.isArray(ids) && ids.every((t) => Number.isInteger(t))), 'every item goes as input_ids');
  console.log(`SGLang: golden scores equal, largest delta difference ${worst.toExponential(1)}; ${share![1]}% of positions from the prefix cache`);
});

test('a template that is not prefix-preserving: SGLang scores the same numbers and says so in the summary', { timeout: 300_000 }, async () => {
  // The turn count written first: the candidate's rendering is no token prefix of its pairs', which have more turns.
  const moving = join(dir, 'moving.jinja');
  writeFileSync(moving, "turns: {{ messages | length }}\n" + CHATML_TEMPLATE);
  const local = await nuggets('score', records, '--anchors', anchors, '--template', moving, '--threads', '1', '--out', 'moving-local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  const served = await nuggets('score', records, '--anchors', anchors, '--model', `sglang+${sglang.url}`, '--template', moving, '--out', 'moving-sglang.jsonl');
  assert.equal(served.code, 0, served.stderr);
  assertSameScores(scoresOf('moving-sglang.jsonl').lines, scoresOf('moving-local.jsonl').lines, 1e-3, 'SGLang, moving template');
  assert.match(served.stdout, /15 of 15 records .*not prefix-preserving/);
});

test('a served model\'s own template comes from its --tokenizer folder (or hub repository); without one, the message names the flags to add', async () => {
  const missing = await nuggets('score', records, '--anchors', anchors, '--model', vllm.url, '--out', 'none.jsonl');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /served model's own chat template is not known here/);
  assert.match(missing.stderr, /--tokenizer <the served model's folder>/);
  assert.match(missing.stderr, /--template chatml or --template FILE\.jinja/);
  assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(existsSync(join(dir, 'none.jsonl')), false, 'nothing written');

  const own = await nuggets('score', records, '--anchors', anchors, '--model', `sglang+${sglang.url}`, '--tokenizer', join(dir, 'served-model'), '--out', 'own.jsonl');
  assert.equal(own.code, 0, own.stderr);
  assert.match(own.stderr, /chat template chat:[0-9a-f]{16} \(.*chat_template\.jinja\)/);
  // The folder's template is ChatML's text: the same numbers as the built-in one.
  assertSameScores(scoresOf('own.jsonl').lines, scoresOf('local.jsonl').lines, 1e-3, 'SGLang with the folder\'s template');

  // The same files as a hub repository: --tokenizer hf:owner/name downloads them (verified) into the cache.
  const folder = join(dir, 'served-model');
  const hub = await FakeHub.start({ 'nuggets/served-chat': Object.fromEntries(['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'].map((f) => [f, join(folder, f)])) });
  const saved = process.env['HF_ENDPOINT'];
  process.env['HF_ENDPOINT'] = hub.endpoint;
  try {
    const fromHub = await nuggets('score', records, '--anchors', anchors, '--model', vllm.url, '--tokenizer', 'hf:nuggets/served-chat', '--cache-dir', join(dir, 'cache'), '--out', 'hub.jsonl');
    assert.equal(fromHub.code, 0, fromHub.stderr);
    assert.match(fromHub.stderr, /chat template chat:[0-9a-f]{16} \(.*nuggets.served-chat.*chat_template\.jinja\)/);
    assert.ok(existsSync(join(dir, 'cache', 'hub', 'nuggets', 'served-chat')), 'downloaded into the hub cache');
    assert.deepEqual(scoresOf('hub.jsonl').header['template'], scoresOf('own.jsonl').header['template'], 'the same template text, the same key');
    assertSameScores(scoresOf('hub.jsonl').lines, scoresOf('local.jsonl').lines, 1e-3, 'vLLM with the hub repository\'s template');
  } finally {
    if (saved === undefined) delete process.env['HF_ENDPOINT'];
    else process.env['HF_ENDPOINT'] = saved;
    await hub.close();
  }
});

test('Alpaca records under --template chatml: vLLM and SGLang give the local engine\'s scores', { timeout: 300_000 }, async () => {
  const local = await nuggets('score', alpaca, '--anchors', alpacaAnchors, '--template', 'chatml', '--threads', '1', '--out', 'alpaca-local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  for (const [name, model] of [['vllm', vllm.url], ['sglang', `sglang+${sglang.url}`]] as const) {
    const served = await nuggets('score', alpaca, '--anchors', alpacaAnchors, '--model', model, '--template', 'chatml', '--out', `alpaca-${name}.jsonl`);
    assert.equal(served.code, 0, served.stderr);
    assertSameScores(scoresOf(`alpaca-${name}.jsonl`).lines, scoresOf('alpaca-local.jsonl').lines, 1e-3, `${name}, Alpaca under chatml`);
  }
});

test('--turns all: the header records it, multi-turn records get other perplexities than --turns last, served equals local, and a rerun with another --turns is refused', { timeout: 300_000 }, async () => {
  const local = await nuggets('score', records, '--anchors', anchors, '--template', 'chatml', '--turns', 'all', '--threads', '1', '--out', 'all-local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  const all = scoresOf('all-local.jsonl');
  const last = scoresOf('local.jsonl');
  assert.equal(all.header['turns'], 'all');
  assert.equal(last.header['turns'], undefined, 'the default, last, is not written: headers from before --turns read the same');
  const turnCounts = readDataset(records).records.map((r) => r.turns!.length);
  all.lines.forEach((line, i) => {
    assert.equal(line.golden_score, last.lines[i]!.golden_score, 'the golden score does not depend on --turns');
    if (turnCounts[i] === 2) assert.ok(Math.abs(line.ppl_cond! - last.lines[i]!.ppl_cond!) < 1e-9, `record ${i}: one assistant turn, the same perplexity`);
    else assert.notEqual(line.ppl_cond, last.lines[i]!.ppl_cond, `record ${i}: ${turnCounts[i]} turns pool several assistant turns`);
  });
  const served = await nuggets('score', records, '--anchors', anchors, '--model', vllm.url, '--template', 'chatml', '--turns', 'all', '--out', 'all-vllm.jsonl');
  assert.equal(served.code, 0, served.stderr);
  assertSameScores(scoresOf('all-vllm.jsonl').lines, all.lines, 1e-3, 'vLLM, --turns all');

  const mixed = await nuggets('score', records, '--anchors', anchors, '--template', 'chatml', '--threads', '1', '--out', 'all-local.jsonl');
  assert.equal(mixed.code, 1);
  assert.match(mixed.stderr, /--turns all instead of --turns last/);
  const bad = await nuggets('score', records, '--anchors', anchors, '--template', 'chatml', '--turns', 'first', '--out', 'bad.jsonl');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--turns expects last or all \(got "first"\)/);
});

test('agree --template chatml: conversations are compared as score scores them; the demo against itself through vLLM ranks alike, and without a template the message says which flag to add', { timeout: 300_000 }, async () => {
  const r = await nuggets('agree', records, '--anchors', anchors, '--model', 'demo', '--model', vllm.url, '--template', 'chatml', '--sample', '15', '--threads', '1', '--min-score', '0.5');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /chat template chatml/);
  assert.match(r.stdout, /on 15 records/);
  assert.match(r.stdout, /Spearman, golden score:\s+1\.000/);
  assert.match(r.stdout, /--min-score 0.5 decisions:\s+100\.0% agree/);
  const none = await nuggets('agree', records, '--anchors', anchors, '--model', 'demo', '--model', vllm.url, '--sample', '4', '--threads', '1');
  assert.equal(none.code, 1);
  assert.match(none.stderr, /has no chat template[\s\S]*--template chatml/);
  const paper = await nuggets('agree', records, '--anchors', anchors, '--model', 'demo', '--model', 'demo', '--template', 'paper', '--sample', '4');
  assert.equal(paper.code, 1);
  assert.match(paper.stderr, /holds conversations \(sharegpt records\), which the paper's Alpaca template cannot score/);
  const format = await nuggets('agree', records, '--anchors', anchors, '--model', 'demo', '--model', 'demo', '--format', 'messages', '--sample', '4');
  assert.equal(format.code, 1, 'a ShareGPT file read as messages records has none to compare');
  assert.match(format.stderr, /identity-15\.sharegpt\.json:\d+: record skipped: it has no "messages" field/);
});

test('whole-turn truncation and early stop: conversations too long for a 256-token context lose whole turns from their start as the local engine drops them, and --min-score bounds are the local ones', { timeout: 300_000 }, async () => {
  // The demo model told its context is 256 tokens; a server keeps one more for the token it would generate, so it is told 257.
  const short = join(dir, 'short-model');
  mkdirSync(short, { recursive: true });
  for (const file of ['model.onnx', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(demoModel, file), join(short, file));
  const config = JSON.parse(readFileSync(join(demoModel, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(short, 'config.json'), JSON.stringify({ ...config, n_positions: 256, n_ctx: 256 }));
  const flags = ['--anchors', anchors, '--template', 'chatml', '--max-anchor-tokens', '128', '--min-score', '0.5', '--batch-size', '2'];
  const local = await nuggets('score', records, ...flags, '--model', short, '--threads', '1', '--out', 'short-local.jsonl');
  assert.equal(local.code, 0, local.stderr);
  const expected = readFileSync(join(dir, 'short-local.jsonl'), 'utf8').split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l) as Line & { bound?: string });
  const truncated = expected.filter((l) => l.truncated).length;
  assert.ok(truncated >= 5, `most conversations are cut to fit (${truncated} of ${expected.length})`);
  assert.ok(expected.some((l) => l.bound !== undefined), 'some records stopped early with a bound');
  for (const [name, model] of [['vllm', vllm.url], ['sglang', `sglang+${sglang.url}`]] as const) {
    const served = await nuggets('score', records, ...flags, '--model', model, '--context-length', '257', '--out', `short-${name}.jsonl`);
    assert.equal(served.code, 0, served.stderr);
    const actual = readFileSync(join(dir, `short-${name}.jsonl`), 'utf8').split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l) as Line & { bound?: string });
    assert.deepEqual(actual.map((l) => [l.id, l.truncated, l.bound]), expected.map((l) => [l.id, l.truncated, l.bound]), `${name}: the same records cut, the same bounds`);
    actual.forEach((line, i) => line.deltas.forEach((d, k) => {
      const w = expected[i]!.deltas[k]!;
      assert.equal(d === null, w === null, `${name}: record ${i}, anchor ${k} skipped by the early stop in both or neither`);
      if (d !== null && w !== null) assert.ok(Math.abs(d - w) < 1e-3, `${name}: record ${i}, anchor ${k}: ${d} vs ${w}`);
    }));
  }
  console.log(`truncation: ${truncated} of ${expected.length} conversations cut to a 256-token context, ${expected.filter((l) => l.bound).length} with a --min-score bound; served scores and bounds equal the local ones`);
});
