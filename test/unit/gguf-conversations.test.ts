/**
 * The real SmolLM2-135M-Instruct weights (a chat model, GGUF Q4_1) scoring real conversations with their own chat
 * template: the GGUF's tokenizer.chat_template, which the importer writes into the model folder and `--template chat`
 * (the default for conversations) reads. Checked against an independent naive reference (tools/gguf/chat_reference.py)
 * that shares no code with the engine: the template read from the GGUF by the `gguf` package and rendered by Python's
 * jinja2 as transformers renders it; the texts tokenized by the `tokenizers` package (Hugging Face's Rust library) on the
 * tokenizer.json the importer wrote (the engine tokenizes with @huggingface/tokenizers, whose ids on that file equal
 * llama.cpp's, gguf-tokenizer.test.ts); spans counted from the separately tokenized prompt; every pair scored by the
 * float64 forward of tools/gguf/reference.py. 8 conversations (2, 4 and 6 turns from fastchat-identity, and one with a
 * system turn of its own) x 5 anchors cut to 96 tokens: the rendered texts, token ids, golden scores (equal) and deltas
 * (within 1e-3 nats, as gguf-model.test.ts) on the cached path, which SmolLM2's prefix-preserving template allows, and
 * on the naive path. SmolLM2's template adds its default system turn ("You are a helpful AI assistant named SmolLM,
 * trained by Hugging Face") when the first turn is not a system turn: once, at the start of every rendered text.
 * Needs python3 with gguf, jinja2 and tokenizers, and the real file (tools/setup.sh installs them).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseDataset, readDataset, type DatasetRecord, type Turn } from '../../server/records/dataset';
import type { ForwardRow, PrefixCache } from '../../server/model/causal-lm';
import { importGguf } from '../../server/model/gguf/import';
import { DEFAULT_OPTIONS, type PreparedAnchors } from '../../server/scoring/backend';
import { ChatRenderer, renderAnchors } from '../../server/scoring/chat-render';
import { templateKey, type ChatTemplate } from '../../server/scoring/chat-template';
import { scoreCandidate } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { chatTemplateFor, templateNameFor } from '../../server/scoring/template-choice';
import { repoRoot, scratchDir, sharedData, smollm2Gguf } from '../helpers';

interface ReferencePair { prompt: string; tokens: number[]; from: number; sum: number }
interface ReferenceAnswer {
  template: string;
  special: Record<string, string>;
  anchors: Array<{ prompt: string; tokens: number[]; from: number; scored: number; sum: number | null }>;
  pairs: Array<Array<ReferencePair | null>>;
  deltas: Array<Array<number | null>>;
  golden: number[];
  shared_prefix: number[];
}

const MAX_ANCHOR_TOKENS = 96;
const DEFAULT_SYSTEM = '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n';

let folder: string;
let smol: LocalBackend;
let naive: LocalBackend;
let template: ChatTemplate;
let candidates: DatasetRecord[];
let anchors: DatasetRecord[];
let want: ReferenceAnswer;
let referenceSeconds: number;
let cachedScores: EngineScores | undefined;

/** Counts the engine's forward passes that continue a cached prefix, and those that run whole sequences. */
function countPasses(backend: LocalBackend): { continued: number; whole: number } {
  const counts = { continued: 0, whole: 0 };
  const lm = backend.lm;
  const forward = lm.forward.bind(lm);
  lm.forward = (rows: ForwardRow[], prefix?: PrefixCache): Promise<Float64Array[]> => {
    if (prefix) counts.continued++;
    else counts.whole++;
    return forward(rows, prefix);
  };
  return counts;
}

before(async () => {
  folder = importGguf(smollm2Gguf(), { cacheDir: join(scratchDir('gguf-conversations'), 'cache') }).folder;
  smol = await LocalBackend.open(folder, { path: 'cached', threads: 1 });
  naive = await LocalBackend.open(folder, { path: 'naive', threads: 1 });
  template = chatTemplateFor(templateNameFor(undefined, true), smol);
  const identity = readDataset(sharedData('fastchat-identity.sharegpt.json')).records;
  const ownSystem = parseDataset(JSON.stringify([{ messages: [
    { role: 'system', content: 'You are Vicuna. Answer in one sentence.' },
    { role: 'user', content: 'Who are you?' },
    { role: 'assistant', content: 'I am Vicuna, a language model trained by researchers from LMSYS.' },
  ] }]), 'own-system.json').records;
  candidates = [...[0, 1, 2, 50, 101, 150, 202].map((i) => identity[i]!), ...ownSystem];
  anchors = [...identity.slice(300).filter((r) => r.turns!.length === 2).slice(0, 4), identity.slice(300).find((r) => r.turns!.length === 4)!];
  const turns = (r: DatasetRecord): Turn[] => r.turns!.map((t) => ({ role: t.role, content: t.content }));
  const started = Date.now();
  const run = spawnSync('python3', [join(repoRoot, 'tools', 'gguf', 'chat_reference.py')], {
    input: JSON.stringify({ gguf: smollm2Gguf(), tokenizer: join(folder, 'tokenizer.json'), max_anchor_tokens: MAX_ANCHOR_TOKENS, candidates: candidates.map(turns), anchors: anchors.map(turns) }),
    encoding: 'utf8', maxBuffer: 1 << 28,
  });
  if (run.status !== 0) throw new Error(`tools/gguf/chat_reference.py failed (bash tools/setup.sh installs gguf, jinja2 and tokenizers):\n${run.stderr || run.error?.message}`);
  want = JSON.parse(run.stdout) as ReferenceAnswer;
  referenceSeconds = (Date.now() - started) / 1000;
});

after(async () => {
  await smol?.dispose();
  await naive?.dispose();
});

test('the importer writes the GGUF\'s own chat template into the model folder, and --template chat (the default for conversations) scores with it', () => {
  const config = JSON.parse(readFileSync(join(folder, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config['chat_template'], want.template, 'tokenizer_config.json holds the template the gguf package reads from the file');
  assert.equal(template.text, want.template);
  assert.equal(template.key, templateKey(want.template), 'the scores header records its hash');
  assert.equal(template.source, join(folder, 'tokenizer_config.json'));
  assert.deepEqual(template.specialTokens, want.special, 'bos, eos, unk and pad as the file\'s token ids name them');
  assert.ok(want.template.includes('You are a helpful AI assistant named SmolLM'), 'SmolLM2\'s template has a default system turn');
});

test('every rendered text and token sequence equals the reference\'s (jinja2, tokenizers), the default system turn written once where a conversation has none', async () => {
  const renderer = new ChatRenderer(template, smol.tokenizer);
  const engineAnchors = await renderAnchors(renderer, anchors, MAX_ANCHOR_TOKENS);
  engineAnchors.forEach((a, i) => {
    const r = want.anchors[i]!;
    assert.ok(r.scored > 0, `anchor ${i} is scored`);
    assert.equal(template.render(a.context, true), r.prompt, `anchor ${i}: P0`);
    assert.deepEqual(a.tokens, r.tokens, `anchor ${i}: tok(F0) cut after n(a)`);
    assert.equal(a.targetFrom, r.from, `anchor ${i}: span start`);
    assert.equal(a.scored, r.scored, `anchor ${i}: n(a)`);
  });
  const said: string[] = [];
  for (const [c, record] of candidates.entries()) {
    const rendered = await renderer.candidate(record, engineAnchors, smol.identity.contextLength, () => `candidate ${c}`);
    assert.ok(rendered.prefixPreserving, `candidate ${c}: the candidate's rendering is a token prefix of every pair (the cached path applies)`);
    assert.ok(!rendered.truncated);
    rendered.pairs.forEach((p, i) => {
      const r = want.pairs[c]![i]!;
      assert.equal(template.render([...record.turns!, ...anchors[i]!.turns!.slice(0, -1)], true), r.prompt, `candidate ${c} anchor ${i}: P1`);
      assert.deepEqual(p.tokens, r.tokens, `candidate ${c} anchor ${i}: tok(F1) cut after n(a)`);
      assert.equal(p.targetFrom, r.from, `candidate ${c} anchor ${i}: span start`);
    });
    const prompt = want.pairs[c]![0]!.prompt;
    const systemTurns = prompt.split('<|im_start|>system\n').length - 1;
    assert.equal(systemTurns, 1, `candidate ${c}: one system turn in P1`);
    if (record.turns![0]!.role === 'system') {
      assert.ok(!prompt.includes(DEFAULT_SYSTEM) && prompt.startsWith(`<|im_start|>system\n${record.turns![0]!.content}<|im_end|>\n`), `candidate ${c}: its own system turn, no default`);
      said.push('its own system turn kept, no default added');
    } else {
      assert.ok(prompt.startsWith(`${DEFAULT_SYSTEM}<|im_start|>user\n${record.turns![0]!.content}<|im_end|>\n`), `candidate ${c}: the default system turn first`);
    }
  }
  for (const r of want.anchors) assert.ok(r.prompt.startsWith(DEFAULT_SYSTEM), 'P0 starts with the default system turn too');
  said.unshift(`default system turn written once at the start of P0 (${want.anchors.length} anchors) and of P1 (${candidates.length - said.length} candidates without one)`);
  console.log(`SmolLM2's own template: ${said.join('; ')}`);
});

interface EngineScores { golden: number[]; deltas: number[][]; passes: { continued: number; whole: number } }

/** The engine's golden scores and deltas, and how many of its passes continued a cached prefix or ran whole. */
async function engineScores(backend: LocalBackend): Promise<EngineScores> {
  const prepared: PreparedAnchors = await backend.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, maxAnchorTokens: MAX_ANCHOR_TOKENS, chatTemplate: template });
  const passes = countPasses(backend);
  const golden: number[] = [];
  const deltas: number[][] = [];
  for (const record of candidates) {
    const score = await scoreCandidate(backend, prepared, record);
    golden.push(score.goldenScore);
    deltas.push([...score.deltas]);
  }
  return { golden, deltas, passes };
}

function largestDifference(a: number[][], b: Array<Array<number | null>>): number {
  let worst = 0;
  a.forEach((row, c) => row.forEach((d, i) => (worst = Math.max(worst, Math.abs(d - b[c]![i]!)))));
  return worst;
}

test('the real SmolLM2 weights with their own template: golden scores equal the independent float64 reference, deltas within 1e-3 nats, on the cached path', async () => {
  const got = (cachedScores = await engineScores(smol));
  assert.ok(got.passes.continued >= candidates.length, `the pairs continue each candidate's cached prefix (${got.passes.continued} such passes)`);
  assert.equal(smol.costNote(), undefined, 'no record was scored naively');
  assert.ok(want.deltas.every((row) => row.every((d) => d !== null)), 'no anchor excluded');
  assert.deepEqual(got.golden, want.golden);
  const worst = largestDifference(got.deltas, want.deltas);
  const positive = want.deltas.flat().filter((d) => d! > 0).length;
  console.log(`SmolLM2 Q4_1, own chat template, cached path vs float64 reference (jinja2 + tokenizers): golden scores equal on ${candidates.length} conversations x ${anchors.length} anchors `
    + `(${positive} of ${want.deltas.flat().length} deltas positive), max |delta difference| ${worst.toExponential(2)} nats; reference ${referenceSeconds.toFixed(0)} s`);
  assert.ok(worst < 1e-3, `largest delta difference ${worst}`);
});

test('the naive path (one whole pass per pair) gives the cached path\'s golden scores on these conversations, deltas within 1e-3 nats', async () => {
  const cached = cachedScores ?? (await engineScores(smol));
  const full = await engineScores(naive);
  assert.equal(full.passes.continued, 0, 'the naive path reuses no prefix');
  assert.deepEqual(full.golden, cached.golden);
  const worst = largestDifference(full.deltas, cached.deltas);
  console.log(`SmolLM2 own template: naive vs cached path, max |delta difference| ${worst.toExponential(2)} nats (naive vs reference ${largestDifference(full.deltas, want.deltas).toExponential(2)})`);
  assert.ok(worst < 1e-3, `largest delta difference ${worst}`);
  assert.ok(largestDifference(full.deltas, want.deltas) < 1e-3);
});
