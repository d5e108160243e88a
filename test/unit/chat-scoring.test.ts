/**
 * Conversations under chat templates (ALGORITHM.md, "Conversations and chat templates"): the engine's golden
 * scores, on its cached and naive paths, against an independent naive reference written here from that page:
 * the whole text of each pair rendered with @huggingface/jinja's own Template, tokenized by
 * @huggingface/tokenizers directly (without special tokens), spans as token counts of the separately
 * tokenized prompt, and one plain onnxruntime session run over each whole sequence. Real ShareGPT records
 * (fastchat-identity) and made-up ones with a system turn; a ChatML template and a Llama-2-style one.
 * Then the pitfalls: a template that raises on a system role, one that is not prefix-preserving, one that
 * writes BOS when the tokenizer would add one too, and strftime_now.
 */
import assert from 'node:assert/strict';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { parseDataset, readDataset, type DatasetRecord, type Turn } from '../../server/records/dataset';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { ChatRenderer } from '../../server/scoring/chat-render';
import { CHATML_TEMPLATE, ChatTemplate, chatmlTemplate, PINNED_NOW, templateKey } from '../../server/scoring/chat-template';
import { scoreCandidate } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { demoModel, scratchDir, sharedData } from '../helpers';

const LLAMA2_TEMPLATE = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
  + '{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}'
  + "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
  + "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
  + "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/** Marks the last turn: the candidate's own rendering changes once the anchor's turns follow it. */
const LAST_MARKED_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{% if loop.last %}(last) {% endif %}{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

const SPECIAL = { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' };
const MAX_ANCHOR_TOKENS = 200;

let candidates: DatasetRecord[];
let anchors: DatasetRecord[];
let reference: Reference;

/** The page's computation, written out plainly: nothing of the engine's rendering, tokenizing or passes. */
class Reference {
  private constructor(private readonly session: ort.InferenceSession, private readonly tokenizer: Tokenizer) {}

  static async open(): Promise<Reference> {
    const tokenizer = new Tokenizer(JSON.parse(readFileSync(join(demoModel, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(demoModel, 'tokenizer_config.json'), 'utf8')));
    return new Reference(await ort.InferenceSession.create(join(demoModel, 'model.onnx'), { intraOpNumThreads: 1 }), tokenizer);
  }

  tok(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** Golden score and deltas of `candidate` against `anchorSet` with template text `text`. */
  async golden(text: string, candidate: Turn[], anchorSet: Turn[][], maxAnchorTokens = MAX_ANCHOR_TOKENS, contextLength = Infinity): Promise<{ golden: number; deltas: number[]; kept: number; cut: number }> {
    const template = new Template(text);
    const render = (turns: Turn[], gen: boolean): string => template.render({ messages: turns, add_generation_prompt: gen, ...SPECIAL });
    const anchorsRendered = anchorSet.map((a) => {
      const ctx = a.slice(0, -1);
      const resp = a[a.length - 1]!.content;
      const p0 = render(ctx, true);
      const n = Math.min(this.tok(p0 + resp).length, maxAnchorTokens) - this.tok(p0).length;
      assert.ok(n > 0);
      return { ctx, resp, p0, n };
    });
    // Too long for the context: whole turns off the candidate's start, then tokens off every sequence's start.
    const pairsOf = (turns: Turn[]): { ids: number[]; from: number }[] => anchorsRendered.map(({ ctx, resp, n }) => {
      const p1 = render([...turns, ...ctx], true);
      return { ids: this.tok(p1 + resp).slice(0, this.tok(p1).length + n), from: this.tok(p1).length };
    });
    let turns = candidate;
    let pairs = pairsOf(turns);
    const longest = (): number => Math.max(this.tok(render(turns, false)).length, ...pairs.map((p) => p.ids.length));
    while (longest() > contextLength && turns.length > 1) {
      turns = turns.slice(1);
      pairs = pairsOf(turns);
    }
    const cut = Math.max(0, longest() - contextLength);
    const deltas: number[] = [];
    for (const [i, { p0, resp, n }] of anchorsRendered.entries()) {
      const s0 = await this.sum(this.tok(p0 + resp), this.tok(p0).length, n);
      const s1 = await this.sum(pairs[i]!.ids.slice(cut), pairs[i]!.from - cut, n);
      deltas.push(s1 - s0);
    }
    return { golden: deltas.filter((d) => d > 0).length / deltas.length, deltas, kept: turns.length, cut };
  }

  /** ppl_cond of a conversation: exp of minus the mean log-probability of the final turn given the turns before it. */
  async pplCond(text: string, turns: Turn[]): Promise<number> {
    const p = new Template(text).render({ messages: turns.slice(0, -1), add_generation_prompt: true, ...SPECIAL });
    const ids = this.tok(p + turns[turns.length - 1]!.content);
    const from = this.tok(p).length;
    return Math.exp(-(await this.sum(ids, from, ids.length - from)) / (ids.length - from));
  }

  /**
   * ppl_cond under --turns all: every assistant turn k given the turns before it, each its own sequence; the spans'
   * log-probabilities added, and their token counts, before the mean.
   */
  async pplCondAll(text: string, turns: Turn[]): Promise<number> {
    let total = 0;
    let count = 0;
    for (let k = 0; k < turns.length; k++) {
      if (turns[k]!.role !== 'assistant') continue;
      const p = new Template(text).render({ messages: turns.slice(0, k), add_generation_prompt: true, ...SPECIAL });
      const ids = this.tok(p + turns[k]!.content);
      const from = this.tok(p).length;
      total += await this.sum(ids, from, ids.length - from);
      count += ids.length - from;
    }
    return Math.exp(-total / count);
  }

  /** Σ log p(ids[t] | ids[<t]) for t in [from, from + n), one whole-sequence pass with an empty past, log-softmax in float64. */
  private async sum(ids: number[], from: number, n: number): Promise<number> {
    const length = from + n;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.slice(0, length), BigInt), [1, length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(length).fill(1n), [1, length]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length }, (_, i) => BigInt(i)), [1, length]),
    };
    for (const name of this.session.inputNames.filter((i) => i.startsWith('past_key_values.'))) {
      const shape = (this.session.inputMetadata.find((m) => m.name === name) as unknown as { shape: (number | string)[] }).shape;
      feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, Number(shape[1]), 0, Number(shape[3])]);
    }
    const logits = (await this.session.run(feeds, ['logits']))['logits']!;
    const vocab = logits.dims[2]!;
    const data = logits.data as Float32Array;
    let total = 0;
    for (let t = from; t < length; t++) {
      const row = (t - 1) * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) max = Math.max(max, data[row + v]!);
      let z = 0;
      for (let v = 0; v < vocab; v++) z += Math.exp(data[row + v]! - max);
      total += data[row + ids[t]!]! - max - Math.log(z);
    }
    return total;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

before(async () => {
  const identity = readDataset(sharedData('fastchat-identity.sharegpt.json')).records;
  // 8 real conversations of 2, 4 and 6 turns, and 2 made-up ones with a system turn.
  const made = parseDataset(JSON.stringify([
    { messages: [{ role: 'system', content: 'You are a terse assistant.' }, { role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Blue.' }] },
    { messages: [{ role: 'system', content: 'Answer in one sentence.' }, { role: 'user', content: 'What is your name?' }, { role: 'assistant', content: 'I am Vicuna, a language model.' }, { role: 'user', content: 'Who made you?' }, { role: 'assistant', content: 'Researchers at LMSYS made me.' }] },
  ]), 'made.json').records;
  candidates = [...[0, 1, 2, 50, 101, 150, 202, 251].map((i) => identity[i]!), ...made];
  anchors = [300, 333, 367, 401, 434, 480].map((i) => identity[i]!);
  reference = await Reference.open();
});

after(async () => {
  await reference.release();
});

for (const [name, text] of [['ChatML', CHATML_TEMPLATE], ['Llama-2-style', LLAMA2_TEMPLATE]] as const) {
  for (const path of ['cached', 'naive'] as const) {
    test(`${name} template, ${path} path: the engine's golden scores equal the independent naive reference on 10 conversations x 6 anchors`, async (t) => {
      const backend = await LocalBackend.open(demoModel, { path, threads: 1 });
      try {
        const template = new ChatTemplate(text, name, templateKey(text), SPECIAL);
        const prepared = await backend.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, chatTemplate: template });
        let worst = 0;
        for (const record of candidates) {
          const score = await scoreCandidate(backend, prepared, record);
          const expected = await reference.golden(text, record.turns!, anchors.map((a) => a.turns!));
          assert.equal(score.goldenScore, expected.golden, `record ${record.index}: golden score`);
          score.deltas.forEach((d, i) => (worst = Math.max(worst, Math.abs(d - expected.deltas[i]!))));
        }
        t.diagnostic(`largest |delta - reference delta|: ${worst.toExponential(2)}`);
        assert.ok(worst < 1e-4, `largest delta difference ${worst}`);
        assert.equal(backend.costNote(), undefined, 'both templates are prefix-preserving: no record was scored naively');
      } finally {
        await backend.dispose();
      }
    });
  }
}

test('anchors cut to maxAnchorTokens: only the first n(a) response tokens are scored, in s1 as in s0 (two anchors of 6 cut here)', async () => {
  const backend = await LocalBackend.open(demoModel, { threads: 1 });
  try {
    const prepared = await backend.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, maxAnchorTokens: 180, chatTemplate: chatmlTemplate(SPECIAL) });
    assert.deepEqual([...prepared.responseTokens], [3, 3, 37, 10, 7, 3], 'anchors 4 and 5 (170 and 173 prompt tokens) keep 10 and 7 of their 24 response tokens');
    for (const record of candidates.slice(0, 4)) {
      const score = await scoreCandidate(backend, prepared, record);
      const expected = await reference.golden(CHATML_TEMPLATE, record.turns!, anchors.map((a) => a.turns!), 180);
      assert.equal(score.goldenScore, expected.golden);
      score.deltas.forEach((d, i) => assert.ok(Math.abs(d - expected.deltas[i]!) < 1e-4, `record ${record.index} anchor ${i}: ${d} vs ${expected.deltas[i]}`));
    }
  } finally {
    await backend.dispose();
  }
});

test('a candidate too long for the context loses whole turns from its start, then tokens; cached and naive paths give the reference numbers', async () => {
  // The demo model with a 150-token context: a 6-turn conversation loses turns, one with a long answer loses tokens too.
  const model = scratchDir('short-context');
  for (const f of ['model.onnx', 'tokenizer.json', 'tokenizer_config.json']) symlinkSync(join(demoModel, f), join(model, f));
  writeFileSync(join(model, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(demoModel, 'config.json'), 'utf8')), n_positions: 150, n_ctx: 150 }));
  const identity = readDataset(sharedData('fastchat-identity.sharegpt.json')).records;
  const shortAnchors = [301, 304, 307].map((i) => identity[i]!);
  assert.ok(shortAnchors.every((a) => a.turns!.length === 2));
  const longAnswer = parseDataset(JSON.stringify([{ messages: [
    { role: 'user', content: 'Tell me about yourself.' },
    { role: 'assistant', content: Array.from({ length: 40 }, (_, i) => `Fact ${i + 1}: I am Vicuna.`).join(' ') },
  ] }]), 'long.json').records[0]!;
  const sixTurns = identity[2]!;
  assert.equal(sixTurns.turns!.length, 6);
  const cases: string[] = [];
  for (const path of ['cached', 'naive'] as const) {
    const backend = await LocalBackend.open(model, { path, threads: 1 });
    try {
      const prepared = await backend.prepareAnchors(shortAnchors, { ...DEFAULT_OPTIONS, maxAnchorTokens: 60, chatTemplate: chatmlTemplate(SPECIAL) });
      for (const record of [sixTurns, longAnswer]) {
        const score = await scoreCandidate(backend, prepared, record);
        const expected = await reference.golden(CHATML_TEMPLATE, record.turns!, shortAnchors.map((a) => a.turns!), 60, 150);
        assert.ok(score.truncated, 'marked truncated');
        assert.equal(score.goldenScore, expected.golden);
        score.deltas.forEach((d, i) => assert.ok(Math.abs(d - expected.deltas[i]!) < 1e-4, `${path}: anchor ${i}: ${d} vs ${expected.deltas[i]}`));
        cases.push(`${expected.kept} of ${record.turns!.length} turns kept, ${expected.cut} tokens cut`);
      }
    } finally {
      await backend.dispose();
    }
  }
  assert.equal(cases[0], cases[2]);
  assert.match(cases[0]!, /^[2-5] of 6 turns kept, 0 tokens cut$/, 'the 6-turn conversation loses whole turns only');
  assert.match(cases[1]!, /^1 of 2 turns kept, [1-9]\d* tokens cut$/, 'the long answer loses its question, then tokens');
});

test('ppl_cond of a conversation is over its final turn given the turns before it (ChatML: read from the prefix pass; Llama-2-style: a pass of its own)', async () => {
  const backend = await LocalBackend.open(demoModel, { threads: 1 });
  try {
    for (const text of [CHATML_TEMPLATE, LLAMA2_TEMPLATE]) {
      const prepared = await backend.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, chatTemplate: new ChatTemplate(text, 't', templateKey(text), SPECIAL) });
      for (const record of [candidates[2]!, candidates[9]!]) {
        const score = await scoreCandidate(backend, prepared, record);
        const expected = await reference.pplCond(text, record.turns!);
        const got = score.signals!['ppl_cond'] as number;
        assert.ok(Math.abs(got - expected) / expected < 1e-5, `record ${record.index}: ppl_cond ${got} vs ${expected}`);
      }
    }
  } finally {
    await backend.dispose();
  }
});

test('--turns all: ppl_cond pools every assistant turn given the turns before it (ChatML and Llama-2-style), and equals --turns last on a two-turn record', async () => {
  const backend = await LocalBackend.open(demoModel, { threads: 1 });
  try {
    for (const text of [CHATML_TEMPLATE, LLAMA2_TEMPLATE]) {
      const template = new ChatTemplate(text, 't', templateKey(text), SPECIAL);
      const all = await backend.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, chatTemplate: template, turns: 'all' });
      const last = await backend.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, chatTemplate: template });
      for (const record of [candidates[1]!, candidates[2]!, candidates[9]!]) {
        const got = (await scoreCandidate(backend, all, record)).signals!['ppl_cond'] as number;
        const expected = await reference.pplCondAll(text, record.turns!);
        assert.ok(Math.abs(got - expected) / expected < 1e-5, `record ${record.index} (${record.turns!.length} turns): ppl_cond ${got} vs ${expected}`);
        const finalOnly = (await scoreCandidate(backend, last, record)).signals!['ppl_cond'] as number;
        if (record.turns!.filter((t) => t.role === 'assistant').length === 1) assert.ok(Math.abs(got - finalOnly) / finalOnly < 1e-6);
        else assert.ok(Math.abs(got - finalOnly) / finalOnly > 1e-3, `record ${record.index}: pooling several turns changes ppl_cond`);
      }
    }
  } finally {
    await backend.dispose();
  }
});

test('a template that is not prefix-preserving is scored naively, gives the reference numbers, and the summary says so', async () => {
  const backend = await LocalBackend.open(demoModel, { threads: 1 });
  try {
    const template = new ChatTemplate(LAST_MARKED_TEMPLATE, 'last-marked', templateKey(LAST_MARKED_TEMPLATE), SPECIAL);
    const prepared = await backend.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, chatTemplate: template });
    for (const record of candidates.slice(0, 3)) {
      const score = await scoreCandidate(backend, prepared, record);
      const expected = await reference.golden(LAST_MARKED_TEMPLATE, record.turns!, anchors.map((a) => a.turns!));
      assert.equal(score.goldenScore, expected.golden);
      score.deltas.forEach((d, i) => assert.ok(Math.abs(d - expected.deltas[i]!) < 1e-4, `record ${record.index} anchor ${i}: ${d} vs ${expected.deltas[i]}`));
    }
    assert.match(backend.costNote() ?? '', /^3 of 3 records scored naively .*not prefix-preserving/);
  } finally {
    await backend.dispose();
  }
});

test('a template that raises on a system role names the record it cannot render', async () => {
  const noSystem = "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
  const backend = await LocalBackend.open(demoModel, { threads: 1 });
  try {
    const template = new ChatTemplate(noSystem, 'no-system.jinja', templateKey(noSystem), SPECIAL);
    const prepared = await backend.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, chatTemplate: template });
    const withSystem = candidates[8]!;
    await assert.rejects(scoreCandidate(backend, prepared, withSystem), (err: Error) => {
      assert.match(err.message, /no-system\.jinja\) cannot render record 0 \("Name a colour\.…"\): System role not supported/);
      return true;
    });
    const plain = await scoreCandidate(backend, prepared, candidates[0]!);
    assert.equal(plain.anchors, 6, 'a record without a system turn is scored');
  } finally {
    await backend.dispose();
  }
});

test('a template that writes BOS itself: rendered text is tokenized without special tokens, so the sequence holds one BOS, not two', async () => {
  const withBos = '{{ bos_token }}' + CHATML_TEMPLATE;
  const tokenizerConfig = JSON.parse(readFileSync(join(demoModel, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(tokenizerConfig['add_bos_token'], true, 'the demo tokenizer adds a BOS of its own');
  const backend = await LocalBackend.open(demoModel, { threads: 1 });
  try {
    const template = new ChatTemplate(withBos, 'bos.jinja', templateKey(withBos), SPECIAL);
    const renderer = new ChatRenderer(template, backend.tokenizer);
    const anchor = await renderer.anchor(anchors[0]!, MAX_ANCHOR_TOKENS, () => 'anchor');
    assert.equal(anchor.tokens[0], 0, 'BOS (<|endoftext|>, id 0) first');
    assert.notEqual(anchor.tokens[1], 0, 'and only once');
    const prepared = await backend.prepareAnchors(anchors, { ...DEFAULT_OPTIONS, chatTemplate: template });
    const score = await scoreCandidate(backend, prepared, candidates[1]!);
    const expected = await reference.golden(withBos, candidates[1]!.turns!, anchors.map((a) => a.turns!));
    score.deltas.forEach((d, i) => assert.ok(Math.abs(d - expected.deltas[i]!) < 1e-4));
  } finally {
    await backend.dispose();
  }
});

test('strftime_now is pinned: a template that writes the date renders the same day whenever it runs', () => {
  const dated = "{{ 'Today: ' + strftime_now('%d %B %Y') + ' (' + strftime_now('%a %b %e') + ')' }}";
  const rendered = new ChatTemplate(dated, 'dated.jinja', templateKey(dated), {}).render([], false);
  assert.equal(rendered, 'Today: 26 July 2024 (Fri Jul 26)');
  assert.equal(PINNED_NOW.toISOString(), '2024-07-26T00:00:00.000Z');
});

test('the built-in chatml template is the text ALGORITHM.md gives', () => {
  const turns: Turn[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }];
  assert.equal(chatmlTemplate().render(turns, false), '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n');
  assert.equal(chatmlTemplate().render(turns.slice(0, 2), true), '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(chatmlTemplate().key, 'chatml');
});
