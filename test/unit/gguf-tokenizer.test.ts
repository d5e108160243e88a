/**
 * The tokenizer rebuilt from a GGUF file's metadata (server/model/gguf/tokenizer-files.ts) against an
 * independent oracle: llama.cpp's own tokenizer on the same file, through node-llama-cpp's prebuilt
 * binary (a devDependency; the file is loaded vocabulary-only, no weights).
 *
 * Special-token strings in the text ("<|im_start|>" in a record) are matched as the special tokens on
 * both sides: the engine's tokenizer library matches added special tokens in any text it encodes, and
 * llama.cpp is asked to do the same (`tokenize(text, true)`: parse_special on). Neither side adds a
 * BOS or EOS here (add_special off); whether they are added is checked against llama.cpp's flags.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { NuggetsError } from '../../server/io/errors';
import { readGguf, type GgufFile, type GgufValue } from '../../server/model/gguf/file';
import { tokenizerFiles } from '../../server/model/gguf/tokenizer-files';
import { TextTokenizer } from '../../server/model/tokenizer';
import { scratchDir, sharedData, smollm2Gguf } from '../helpers';

/** Texts that stress the pre-tokenizer: digits, code, emoji, CJK, Arabic, whitespace runs, special-token strings. */
const HARD_CASES = [
  '12345 and 3.14159',
  'In 2024, 1,000,000 people paid $19.99 (or €17,50) for 3/4 of a 12-pack: ½ off, ² and ³, ٣٤٥ and １２３.',
  'def f(x):\n    if x > 0:\n\treturn x ** 2  # square\n    return -x\n',
  '\tfor (let i = 0; i < n; i++) {\n\t\tsum += a[i];\n\t}\n',
  '👋🏽 héllo',
  '👨‍👩‍👧‍👦 family, 🇫🇷 flag, e\u0301 combining, ﬁ ligature',
  '你好，世界',
  'こんにちは世界。今日は良い天気ですね。',
  '안녕하세요 세계',
  'مرحبا بالعالم، كيف حالك؟',
  'Привет, мир! Ελληνικά.',
  'a    b\n\n\n  c',
  'trailing spaces   ',
  '   leading spaces',
  ' ',
  '\n',
  'tabs\t\tand\r\nwindows\r\nlines',
  'non\u00a0breaking\u2003em\u3000ideographic\u0085next\ufeffbom\u200bzero-width',
  "It's they're we've I'm you'll he'd IT'S 'quoted'",
  '<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n',
  'a<|im_start|>b<|im_end|>c <|endoftext|> <repo_name>x<file_sep>',
  '<|im_start|', // not a whole special token
  'https://example.com/path?q=1&r=2#frag e-mail: someone@example.org',
  'ALL CAPS WORDS and MiXeD cAsE',
  'a NUL \u0000 and other controls \u0001\u007f\u009b',
  '...!!!???---___===+++',
];

/** The instruction, input and output of every `stride`-th record of the real Alpaca datasets, as stored (not trimmed), the seed tasks and ShareGPT turns. */
function datasetTexts(stride = 3): string[] {
  const texts: string[] = [];
  for (const file of ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json']) {
    const records = JSON.parse(readFileSync(sharedData(file), 'utf8')) as Record<string, unknown>[];
    // all 18,000 records' texts would take longer than the test needs
    for (let i = 0; i < records.length; i += stride) {
      for (const field of ['instruction', 'input', 'output']) {
        const value = records[i]![field];
        if (typeof value === 'string' && value !== '') texts.push(value);
      }
    }
  }
  for (const line of readFileSync(sharedData('alpaca-seed-tasks.jsonl'), 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const task = JSON.parse(line) as { instruction: string; instances: { input: string; output: string }[] };
    texts.push(task.instruction);
    for (const instance of task.instances) texts.push(...[instance.input, instance.output].filter((t) => t !== ''));
  }
  const conversations = JSON.parse(readFileSync(sharedData('fastchat-identity.sharegpt.json'), 'utf8')) as { conversations: { value: string }[] }[];
  for (const conversation of conversations.slice(0, 100)) texts.push(...conversation.conversations.map((turn) => turn.value));
  return texts;
}

/**
 * llama.cpp with `path` loaded vocabulary-only, from node-llama-cpp's prebuilt CPU binary (never a
 * download or a build); llama.cpp's log goes into a failure's message. Before loading, node-llama-cpp
 * estimates memory by loading the file's layout without data: on a file with no tensors that prints
 * "missing tensor 'token_embd.weight' ... failed to load model" and is harmless.
 */
async function llamaCpp(path: string) {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const log: string[] = [];
  const llama = await getLlama({
    gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
    logLevel: LlamaLogLevel.warn, logger: (level, message) => { log.push(`${level}: ${message}`); },
  });
  try {
    return { llama, model: await llama.loadModel({ modelPath: path, vocabOnly: true }) };
  } catch (err) {
    await llama.dispose();
    throw new Error(`llama.cpp could not load ${path}: ${(err as Error).message}\n${log.join('\n')}`);
  }
}

test("the tokenizer rebuilt from the SmolLM2 GGUF gives llama.cpp's ids for every text", async () => {
  const path = smollm2Gguf();
  const started = Date.now();
  const { tokenizerJson, tokenizerConfig } = tokenizerFiles(readGguf(path));
  // the engine's own wrapper of @huggingface/tokenizers, as scoring uses it
  const ours = new TextTokenizer(tokenizerJson, tokenizerConfig, `${path} (rebuilt tokenizer.json)`);
  const built = Date.now() - started;
  assert.equal(ours.vocabularySize, 49152);

  const { llama, model } = await llamaCpp(path);
  try {
    // What the post-processor adds follows llama.cpp's flags (SmolLM2: add_bos_token false, no EOS).
    const probe = ours.encode('Hello', true);
    const bare = ours.encode('Hello', false);
    assert.deepEqual(probe, [...(model.tokens.shouldPrependBosToken ? [model.tokens.bos!] : []), ...bare, ...(model.tokens.shouldAppendEosToken ? [model.tokens.eos!] : [])]);
    assert.equal(tokenizerConfig['bos_token'], '<|im_start|>');
    assert.equal(tokenizerConfig['eos_token'], '<|im_end|>');
    assert.equal(tokenizerConfig['pad_token'], '<|im_end|>');
    assert.equal(tokenizerConfig['unk_token'], '<|endoftext|>');
    assert.equal(tokenizerConfig['model_max_length'], 8192);
    assert.match(String(tokenizerConfig['chat_template']), /<\|im_start\|>/);

    const texts = [...HARD_CASES, ...datasetTexts()];
    let ourTime = 0;
    let tokens = 0;
    const differing: string[] = [];
    const undecoded: string[] = [];
    for (const text of texts) {
      const t0 = performance.now();
      const mine = ours.encode(text, false);
      ourTime += performance.now() - t0;
      const theirs = Array.from(model.tokenize(text, true));
      tokens += theirs.length;
      if (mine.length !== theirs.length || mine.some((id, i) => id !== theirs[i])) {
        differing.push(`${JSON.stringify(text.slice(0, 200))}\n    ours:      ${mine.slice(0, 40).join(' ')}\n    llama.cpp: ${theirs.slice(0, 40).join(' ')}`);
      } else if (ours.decode(mine) !== text) {
        undecoded.push(`${JSON.stringify(text.slice(0, 200))} decodes to ${JSON.stringify(ours.decode(mine).slice(0, 200))}`);
      }
    }
    const same = texts.length - differing.length;
    console.log(`tokenizer: ${same}/${texts.length} texts identical to llama.cpp (${tokens} tokens; rebuilt in ${built} ms, our encoding ${Math.round(ourTime)} ms)`);
    assert.ok(texts.length >= 5000, `only ${texts.length} texts`);
    assert.equal(differing.length, 0, `${differing.length} of ${texts.length} texts tokenize differently; the first:\n  ${differing.slice(0, 5).join('\n  ')}`);
    assert.equal(undecoded.length, 0, `${undecoded.length} texts do not decode back to themselves; the first:\n  ${undecoded.slice(0, 5).join('\n  ')}`);
    // "fast enough": the engine tokenizes every record of a dataset before scoring it
    assert.ok(ourTime < 30_000, `encoding ${texts.length} texts took ${Math.round(ourTime)} ms`);
  } finally {
    await model.dispose();
    await llama.dispose();
  }
});

/** A GGUF file as readGguf returns it, made in memory from metadata alone. */
function ggufInMemory(path: string, entries: [string, GgufValue][]): GgufFile {
  return { path, version: 3, size: 0, metadata: new Map(entries), tensors: new Map(), dataOffset: 0 };
}

test('a GGUF tokenizer the importer cannot rebuild is refused with the file and the kind named', () => {
  const vocabulary: [string, GgufValue][] = [
    ['general.architecture', 'bert'],
    ['tokenizer.ggml.tokens', ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'hello']],
    ['tokenizer.ggml.token_type', [3, 2, 3, 3, 1]],
  ];
  const bert = ggufInMemory('/models/bge-small.Q8_0.gguf', [['tokenizer.ggml.model', 'bert'], ...vocabulary]);
  assert.throws(() => tokenizerFiles(bert), (err: unknown) => {
    assert.ok(err instanceof NuggetsError);
    assert.match(err.message, /\/models\/bge-small\.Q8_0\.gguf/);
    assert.match(err.message, /WordPiece/);
    assert.match(err.message, /"bert"/);
    return true;
  });
  const t5 = ggufInMemory('/models/flan-t5.gguf', [['tokenizer.ggml.model', 't5'], ...vocabulary]);
  assert.throws(() => tokenizerFiles(t5), /\/models\/flan-t5\.gguf has a SentencePiece Unigram \(T5\) tokenizer \(tokenizer\.ggml\.model "t5"\)/);
  const odd = ggufInMemory('/models/odd.gguf', [['tokenizer.ggml.model', 'made-up'], ...vocabulary]);
  assert.throws(() => tokenizerFiles(odd), /\/models\/odd\.gguf has a tokenizer of an unknown kind \(tokenizer\.ggml\.model "made-up"\)/);
  // a byte-level BPE whose pre-tokenizer is not known is refused too, naming it
  const pre = ggufInMemory('/models/new.gguf', [['tokenizer.ggml.model', 'gpt2'], ['tokenizer.ggml.pre', 'brand-new'], ['tokenizer.ggml.merges', []], ...vocabulary]);
  assert.throws(() => tokenizerFiles(pre), /\/models\/new\.gguf .*pre-tokenizer "brand-new"/);
  // no tokenizer at all
  assert.throws(() => tokenizerFiles(ggufInMemory('/models/bare.gguf', [])), /\/models\/bare\.gguf has no tokenizer/);
});

/** GGUF metadata values with their GGUF types, for writing a file. */
type Typed = { str: string } | { u32: number } | { f32: number } | { bool: boolean } | { strs: string[] } | { f32s: number[] } | { i32s: number[] };

/** A GGUF file with metadata and no tensors (GGUF.md §1), enough for llama.cpp to load its vocabulary. */
function writeGguf(path: string, entries: [string, Typed][]): void {
  const parts: Buffer[] = [];
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); parts.push(b); };
  const u64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); parts.push(b); };
  const str = (s: string) => { const bytes = Buffer.from(s, 'utf8'); u64(bytes.length); parts.push(bytes); };
  parts.push(Buffer.from('GGUF'));
  u32(3);
  u64(0);
  u64(entries.length);
  for (const [key, value] of entries) {
    str(key);
    if ('str' in value) { u32(8); str(value.str); }
    else if ('u32' in value) { u32(4); u32(value.u32); }
    else if ('f32' in value) { u32(6); const b = Buffer.alloc(4); b.writeFloatLE(value.f32); parts.push(b); }
    else if ('bool' in value) { u32(7); parts.push(Buffer.from([value.bool ? 1 : 0])); }
    else if ('strs' in value) { u32(9); u32(8); u64(value.strs.length); value.strs.forEach(str); }
    else if ('f32s' in value) { u32(9); u32(6); u64(value.f32s.length); const b = Buffer.alloc(4 * value.f32s.length); value.f32s.forEach((f, i) => b.writeFloatLE(f, 4 * i)); parts.push(b); }
    else { u32(9); u32(5); u64(value.i32s.length); const b = Buffer.alloc(4 * value.i32s.length); value.i32s.forEach((n, i) => b.writeInt32LE(n, 4 * i)); parts.push(b); }
  }
  const length = parts.reduce((n, p) => n + p.length, 0);
  parts.push(Buffer.alloc((32 - (length % 32)) % 32));
  writeFileSync(path, Buffer.concat(parts));
}

/** GPT-2's byte-level alphabet, reversed: the byte each of its 256 characters stands for. */
function byteLevelDecoder(): Map<string, number> {
  const bytes: number[] = [];
  for (let b = 33; b <= 126; b++) bytes.push(b);
  for (let b = 161; b <= 172; b++) bytes.push(b);
  for (let b = 174; b <= 255; b++) bytes.push(b);
  const chars = bytes.map((b) => b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bytes.includes(b)) { bytes.push(b); chars.push(256 + n++); }
  return new Map(bytes.map((b, i) => [String.fromCharCode(chars[i]!), b]));
}

test("a SentencePiece (llama) GGUF vocabulary rebuilt as tokenizer.json gives llama.cpp's ids", async () => {
  // No Llama-2-style GGUF is at hand, so one is made: SentencePiece pieces and scores from SmolLM2's
  // learned BPE vocabulary (its tokens that are whole UTF-8 text, spaces as "▁", scored by merge order),
  // every character of a piece also a piece (as SentencePiece vocabularies have), byte fallback tokens,
  // and one user-defined token. llama.cpp tokenizes it with its own SentencePiece code (llm_tokenizer_spm).
  const smol = readGguf(smollm2Gguf());
  const decoder = byteLevelDecoder();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const pieces = new Map<string, number>();
  const chars = new Set<string>();
  (smol.metadata.get('tokenizer.ggml.tokens') as string[]).forEach((token, id) => {
    if (id < 17) return; // SmolLM2's control tokens
    let text: string;
    try {
      text = utf8.decode(Uint8Array.from(Array.from(token, (c) => decoder.get(c) ?? 0)));
    } catch {
      return; // part of a multi-byte character
    }
    const piece = text.replaceAll(' ', '▁');
    if (piece === '' || pieces.has(piece)) return;
    pieces.set(piece, -id);
    for (const c of piece) chars.add(c);
  });
  for (const c of chars) if (!pieces.has(c)) pieces.set(c, -100_000 - pieces.size);
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`), '<|tool|>', ...pieces.keys()];
  const types = [2, 3, 3, ...new Array<number>(256).fill(6), 4, ...new Array<number>(pieces.size).fill(1)];
  const scores = [0, 0, 0, ...new Array<number>(256).fill(0), 0, ...pieces.values()];
  const path = join(scratchDir('gguf-spm'), 'synthetic-spm.gguf');
  writeGguf(path, [
    ['general.architecture', { str: 'llama' }],
    ['general.name', { str: 'synthetic sentencepiece vocabulary' }],
    ['llama.context_length', { u32: 4096 }],
    ['llama.embedding_length', { u32: 64 }],
    ['llama.block_count', { u32: 1 }],
    ['llama.feed_forward_length', { u32: 128 }],
    ['llama.attention.head_count', { u32: 1 }],
    ['llama.attention.layer_norm_rms_epsilon', { f32: 1e-5 }],
    ['tokenizer.ggml.model', { str: 'llama' }],
    ['tokenizer.ggml.tokens', { strs: tokens }],
    ['tokenizer.ggml.scores', { f32s: scores }],
    ['tokenizer.ggml.token_type', { i32s: types }],
    ['tokenizer.ggml.bos_token_id', { u32: 1 }],
    ['tokenizer.ggml.eos_token_id', { u32: 2 }],
    ['tokenizer.ggml.unknown_token_id', { u32: 0 }],
    // add_bos_token and add_space_prefix absent: llama.cpp's SentencePiece defaults (both true)
  ]);

  const { tokenizerJson, tokenizerConfig } = tokenizerFiles(readGguf(path));
  const ours = new Tokenizer(tokenizerJson, tokenizerConfig);
  assert.equal(tokenizerConfig['add_bos_token'], true);
  assert.equal(tokenizerConfig['bos_token'], '<s>');
  assert.equal(tokenizerConfig['unk_token'], '<unk>');
  assert.equal(tokenizerConfig['model_max_length'], 4096);

  const { llama, model } = await llamaCpp(path);
  try {
    assert.equal(model.tokens.shouldPrependBosToken, true);
    assert.deepEqual(ours.encode('Hello world', { add_special_tokens: true }).ids, [1, ...Array.from(model.tokenize('Hello world', true))]);

    // Decoding is checked on texts without added tokens (after which the tokenizer puts a "▁" of its own)
    // and without U+FEFF, which the library's ByteFallback decoder (a TextDecoder) drops as a byte-order mark.
    const texts = [...HARD_CASES, 'a</s>b <s> c', 'call <|tool|>search(x)<|tool|> now', '<0x41> is not a byte token in text', ...datasetTexts(10)];
    const differing: string[] = [];
    const undecoded: string[] = [];
    for (const text of texts) {
      const mine = ours.encode(text, { add_special_tokens: false }).ids;
      const theirs = Array.from(model.tokenize(text, true));
      if (mine.length !== theirs.length || mine.some((id, i) => id !== theirs[i])) {
        differing.push(`${JSON.stringify(text.slice(0, 200))}\n    ours:      ${mine.slice(0, 40).join(' ')}\n    llama.cpp: ${theirs.slice(0, 40).join(' ')}`);
      } else if (!/<\/?s>|<\|tool\|>|\ufeff/.test(text) && ours.decode(mine, { skip_special_tokens: false }) !== text) {
        undecoded.push(`${JSON.stringify(text.slice(0, 200))} decodes to ${JSON.stringify(ours.decode(mine).slice(0, 200))}`);
      }
    }
    console.log(`sentencepiece tokenizer: ${texts.length - differing.length}/${texts.length} texts identical to llama.cpp (${tokens.length} tokens in the made-up vocabulary)`);
    assert.equal(differing.length, 0, `${differing.length} of ${texts.length} texts tokenize differently; the first:\n  ${differing.slice(0, 5).join('\n  ')}`);
    assert.equal(undecoded.length, 0, `${undecoded.length} texts do not decode back to themselves; the first:\n  ${undecoded.slice(0, 5).join('\n  ')}`);
  } finally {
    await model.dispose();
    await llama.dispose();
  }
});
