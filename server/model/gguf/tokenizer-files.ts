/**
 * Rebuilds a Hugging Face tokenizer.json and tokenizer_config.json from a GGUF file's `tokenizer.ggml.*`
 * metadata (../shared/design/GGUF.md §3), so that a GGUF model runs through the same tokenizer library
 * (@huggingface/tokenizers) as a model folder.
 *
 * The target is llama.cpp's own tokenizer on the same file (llama-vocab.cpp, unicode.cpp): the
 * rebuilt tokenizer gives the ids llama.cpp gives with special-token parsing on and no BOS/EOS added
 * (test/unit/gguf-tokenizer.test.ts measures it on the real SmolLM2 file). Choices made for that:
 *
 * - Byte-level BPE ("gpt2"): every regex of llama.cpp's pre-tokenizer list becomes a `Split` with
 *   `Isolated` behaviour, then `ByteLevel` with `use_regex: false` only maps bytes. Neither the
 *   library's `ByteLevel` regex nor its `Digits` is used: the first is a JavaScript regex whose `\s`
 *   counts U+FEFF and not U+0085, the second splits only ASCII digits, where llama.cpp (and the Rust
 *   tokenizers) use Unicode White_Space and `\p{N}`. A `Split` regex goes through the library's
 *   Oniguruma-to-JavaScript rewrite, which maps `\s` to `\p{White_Space}`.
 * - Control (3), unknown (2) and user-defined (4) tokens, and the names llama.cpp forces to control,
 *   are added tokens matched in the raw text before pre-tokenization, as llama.cpp's
 *   `tokenizer_st_partition` does with special parsing on; control and unknown ones are `special`.
 * - SentencePiece BPE ("llama"): merges are derived from the scores as transformers' GGUF converter
 *   does; the normalizer prepends "▁" to every piece of text between added tokens (llama.cpp prefixes
 *   a space after every special token) and replaces spaces with "▁"; byte fallback for the rest.
 * - BOS/EOS are added by a post-processor only where llama.cpp adds them (`add_bos_token`,
 *   `add_eos_token`, with llama.cpp's defaults when the keys are absent).
 */
import { NuggetsError } from '../../io/errors';
import type { GgufFile, GgufValue } from './file';

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/** `tokenizer.ggml.token_type` values (llama.h `llama_token_type`). */
const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/**
 * Token texts that llama.cpp treats as control tokens whatever their type in the file (llama-vocab.cpp
 * marks them "control-looking" and overrides the type): end-of-turn, end-of-generation and FIM names.
 */
const FORCED_CONTROL = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]',
  '<｜end▁of▁sentence｜>', '<end_of_utterance>', '<|eom_id|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '</s>',
  '[EOS]', '<eos>', '<turn|>', '<|tool_response>', '[e~[',
  '<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>',
  '<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>',
  '<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>',
  '<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]',
  '<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>', '<|file_sep|>',
]);

// Pre-tokenizer regexes, as llama.cpp's llm_tokenizer_bpe lists them (Oniguruma syntax, as tokenizer.json
// files spell them). The GPT-2 one gets back its final `|\s+`, which llama.cpp's hand-written matcher for it has.
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface PreTokenizerFamily {
  regexes: string[];
  /** llama.cpp's `ignore_merges`: a pre-token that is itself in the vocabulary is taken whole. */
  ignoreMerges?: boolean;
  /** llama.cpp's default for add_bos_token when the key is absent. */
  addBos?: boolean;
  /** The original tokenizer.json normalizes to NFC (Qwen2); llama.cpp does not (differs only on non-NFC text). */
  nfc?: boolean;
}

const SMOLLM: PreTokenizerFamily = { regexes: ['\\p{N}', GPT2_REGEX] };
const GPT2: PreTokenizerFamily = { regexes: [GPT2_REGEX] };
const LLAMA3: PreTokenizerFamily = { regexes: [LLAMA3_REGEX], ignoreMerges: true, addBos: true };
const QWEN2: PreTokenizerFamily = { regexes: [QWEN2_REGEX], nfc: true };
/** llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT (a file without tokenizer.ggml.pre, or "default"). */
const DEFAULT: PreTokenizerFamily = { regexes: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_REGEX, '\\p{N}+', '[0-9][0-9][0-9]'] };

/** `tokenizer.ggml.pre` names, grouped as llama.cpp's llama_vocab::impl::load groups them. */
const PRE_TOKENIZERS: Record<string, PreTokenizerFamily> = {
  default: DEFAULT,
  // each digit alone, then GPT-2
  smollm: SMOLLM, starcoder: SMOLLM, refact: SMOLLM, 'command-r': SMOLLM, codeshell: SMOLLM, exaone: SMOLLM,
  'minerva-7b': SMOLLM, mellum2: SMOLLM,
  // GPT-2
  'gpt-2': GPT2, 'phi-2': GPT2, mpt: GPT2, olmo: GPT2, jais: GPT2, trillion: GPT2, 'granite-docling': GPT2, exaone4: GPT2,
  'a.x-4.0': GPT2, mellum: GPT2, gigachat: GPT2, 'jina-es': GPT2, 'jina-de': GPT2, 'jina-v2-es': GPT2, 'jina-v2-de': GPT2,
  // Llama 3
  llama3: LLAMA3, 'llama-v3': LLAMA3, 'llama-bpe': LLAMA3, falcon3: LLAMA3, 'falcon-h1': LLAMA3, pixtral: LLAMA3,
  'midm-2.0': LLAMA3, lfm2: LLAMA3, dbrx: { regexes: [LLAMA3_REGEX] }, 'smaug-bpe': { regexes: [LLAMA3_REGEX] },
  // Qwen2
  qwen2: QWEN2, 'deepseek-r1-qwen': QWEN2, kormo: QWEN2, f2llmv2: QWEN2, megrez: QWEN2, stablelm2: { regexes: [QWEN2_REGEX] },
};

const TOKENIZER_KINDS: Record<string, string> = {
  bert: 'WordPiece (BERT)',
  t5: 'SentencePiece Unigram (T5)',
  rwkv: 'RWKV',
  plamo2: 'PLaMo-2',
  gemma4: 'Gemma 4 SentencePiece-style BPE',
  hybriddna: 'DNA k-mer',
  whitespace: 'whitespace',
  none: 'no-vocabulary',
};

/** tokenizer.json and tokenizer_config.json for the tokenizer stored in a GGUF file; a NuggetsError naming the file if it cannot be rebuilt. */
export function tokenizerFiles(file: GgufFile): TokenizerFiles {
  const meta = new Metadata(file);
  const model = meta.string('tokenizer.ggml.model');
  if (model === undefined) {
    throw new NuggetsError(
      `${file.path} has no tokenizer (no tokenizer.ggml.model in its metadata).`,
      'Use a GGUF file converted with its tokenizer, as llama.cpp\'s convert_hf_to_gguf.py writes them.',
    );
  }
  if (model !== 'gpt2' && model !== 'llama') {
    const kind = TOKENIZER_KINDS[model];
    throw new NuggetsError(
      `${file.path} has ${kind === undefined ? 'a tokenizer of an unknown kind' : `a ${kind} tokenizer`} (tokenizer.ggml.model "${model}"), which the GGUF importer does not rebuild.`,
      'The importer rebuilds the byte-level BPE ("gpt2": SmolLM2, Qwen2, Llama 3) and SentencePiece BPE ("llama": Llama 2, TinyLlama, Mistral) tokenizers. Use the model\'s Hugging Face folder with its tokenizer.json instead.',
    );
  }

  const tokens = meta.stringArray('tokenizer.ggml.tokens', true);
  const types = meta.numberArray('tokenizer.ggml.token_type') ?? [];
  if (types.length > 0 && types.length < tokens.length) throw meta.invalid('tokenizer.ggml.token_type', `has ${types.length} entries for ${tokens.length} tokens`);
  // llama.cpp reads each token as a C string (cut at a NUL) and renames empty ones; the same here
  // keeps ids and vocabulary keys one to one, and a NUL in a text falls back to bytes on both sides.
  const texts = tokens.map((t, i) => {
    const text = t.includes('\0') ? t.slice(0, t.indexOf('\0')) : t;
    return text === '' ? `[EMPTY_${i}]` : text;
  });
  const typeOf = (id: number): number => {
    const type = types[id] ?? TokenType.normal;
    return type !== TokenType.control && FORCED_CONTROL.has(texts[id]!) ? TokenType.control : type;
  };

  const spm = model === 'llama';
  const specialId = (key: string, fallback: number | undefined): number | undefined => {
    const id = meta.number(`tokenizer.ggml.${key}`);
    const chosen = id !== undefined && id >= 0 && id < texts.length ? id : fallback;
    return chosen !== undefined && chosen >= 0 && chosen < texts.length ? chosen : undefined;
  };
  // llama.cpp's defaults: SentencePiece BOS 1, EOS 2, UNK 0; byte-level BPE BOS = EOS = 11 (GPT-2's).
  const bos = specialId('bos_token_id', spm ? 1 : 11);
  const eos = specialId('eos_token_id', spm ? 2 : 11);
  const unk = specialId('unknown_token_id', spm ? 0 : undefined);
  const pad = specialId('padding_token_id', undefined);

  let family: PreTokenizerFamily | undefined;
  if (!spm) {
    const pre = meta.string('tokenizer.ggml.pre') ?? 'default';
    family = PRE_TOKENIZERS[pre];
    if (family === undefined) {
      throw new NuggetsError(
        `${file.path} has a byte-level BPE tokenizer with the pre-tokenizer "${pre}" (tokenizer.ggml.pre), which the GGUF importer does not rebuild.`,
        `Known pre-tokenizers: ${Object.keys(PRE_TOKENIZERS).join(', ')}. Use the model's Hugging Face folder with its tokenizer.json instead.`,
      );
    }
  }
  const addBos = meta.bool('tokenizer.ggml.add_bos_token') ?? (spm || family?.addBos === true);
  const addEos = meta.bool('tokenizer.ggml.add_eos_token') ?? false;
  const addSpacePrefix = meta.bool('tokenizer.ggml.add_space_prefix') ?? true;

  const addedTokens: Record<string, unknown>[] = [];
  for (let id = 0; id < texts.length; id++) {
    const type = typeOf(id);
    if (type !== TokenType.control && type !== TokenType.unknown && type !== TokenType.userDefined) continue;
    addedTokens.push({
      id,
      content: texts[id],
      single_word: false,
      lstrip: false,
      rstrip: false,
      // matched in the raw text, before any normalizer, as llama.cpp matches them
      normalized: false,
      special: type !== TokenType.userDefined,
    });
  }

  const vocab = Object.fromEntries(texts.map((t, i) => [t, i]));
  let tokenizerModel: Record<string, unknown>;
  let normalizer: Record<string, unknown> | null = null;
  let preTokenizer: Record<string, unknown> | null = null;
  let decoder: Record<string, unknown>;
  if (spm) {
    const scores = meta.numberArray('tokenizer.ggml.scores');
    if (scores === undefined) throw meta.invalid('tokenizer.ggml.scores', 'is missing (a SentencePiece tokenizer needs its scores)');
    if (scores.length < texts.length) throw meta.invalid('tokenizer.ggml.scores', `has ${scores.length} entries for ${texts.length} tokens`);
    tokenizerModel = {
      type: 'BPE',
      dropout: null,
      unk_token: unk === undefined ? null : texts[unk],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: mergesFromScores(texts, scores),
    };
    const replaceSpaces = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
    normalizer = addSpacePrefix ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replaceSpaces] } : replaceSpaces;
    decoder = {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    };
  } else {
    const merges = meta.stringArray('tokenizer.ggml.merges', false);
    tokenizerModel = {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: family!.ignoreMerges === true,
      vocab,
      merges: splitMerges(merges),
    };
    if (family!.nfc) normalizer = { type: 'NFC' };
    preTokenizer = {
      type: 'Sequence',
      pretokenizers: [
        ...family!.regexes.map((regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    };
    decoder = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  }

  const tokenizerJson: Record<string, unknown> = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer,
    pre_tokenizer: preTokenizer,
    model: tokenizerModel,
    post_processor: postProcessor(addBos ? bos : undefined, addEos ? eos : undefined, texts),
    decoder,
  };

  const tokenizerConfig: Record<string, unknown> = {
    tokenizer_class: spm ? 'LlamaTokenizerFast' : 'PreTrainedTokenizerFast',
    add_bos_token: addBos,
    add_eos_token: addEos,
    clean_up_tokenization_spaces: false,
  };
  if (bos !== undefined) tokenizerConfig['bos_token'] = texts[bos];
  if (eos !== undefined) tokenizerConfig['eos_token'] = texts[eos];
  if (unk !== undefined) tokenizerConfig['unk_token'] = texts[unk];
  if (pad !== undefined) tokenizerConfig['pad_token'] = texts[pad];
  const template = meta.string('tokenizer.chat_template');
  if (template !== undefined) tokenizerConfig['chat_template'] = template;
  const architecture = meta.string('general.architecture');
  const context = architecture === undefined ? undefined : meta.number(`${architecture}.context_length`);
  if (context !== undefined) tokenizerConfig['model_max_length'] = context;
  return { tokenizerJson, tokenizerConfig };
}

/** "left right" merges as [left, right] pairs, split at the first space after the first character, as llama.cpp splits them. */
function splitMerges(merges: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (const merge of merges) {
    const space = merge.indexOf(' ', 1);
    if (space > 0) pairs.push([merge.slice(0, space), merge.slice(space + 1)]);
  }
  return pairs;
}

/**
 * BPE merges for a SentencePiece vocabulary, from its scores, as transformers' GGUF converter builds
 * them: every split of every piece into two pieces of the vocabulary, ordered by the piece's score
 * (highest first), the splits of one piece by their parts' scores. Merging the best-scored pair first is
 * what llama.cpp's SentencePiece tokenizer does with the scores directly.
 */
function mergesFromScores(texts: string[], scores: number[]): [string, string][] {
  const score = new Map<string, number>();
  for (let i = 0; i < texts.length; i++) if (!score.has(texts[i]!)) score.set(texts[i]!, scores[i]!);
  const merges: { left: string; right: string; score: number; order: number }[] = [];
  for (const [piece, pieceScore] of score) {
    const local: { left: string; right: string; score: number; order: number }[] = [];
    const chars = Array.from(piece);
    let offset = 0;
    for (let k = 1; k < chars.length; k++) {
      offset += chars[k - 1]!.length;
      const left = piece.slice(0, offset);
      const right = piece.slice(offset);
      if (score.has(left) && score.has(right)) local.push({ left, right, score: pieceScore, order: 0 });
    }
    local.sort((a, b) => score.get(b.left)! - score.get(a.left)! || score.get(b.right)! - score.get(a.right)!);
    for (const m of local) merges.push({ ...m, order: merges.length });
  }
  // a stable sort: pieces of equal score keep the vocabulary's order
  merges.sort((a, b) => b.score - a.score || a.order - b.order);
  return merges.map((m) => [m.left, m.right]);
}

/** A TemplateProcessing that adds BOS and/or EOS, or null when neither is added. */
function postProcessor(bos: number | undefined, eos: number | undefined, texts: string[]): Record<string, unknown> | null {
  if (bos === undefined && eos === undefined) return null;
  const special = (id: number | undefined) => (id === undefined ? [] : [{ SpecialToken: { id: texts[id], type_id: 0 } }]);
  const specialTokens: Record<string, unknown> = {};
  for (const id of [bos, eos]) if (id !== undefined) specialTokens[texts[id]!] = { id: texts[id], ids: [id], tokens: [texts[id]] };
  return {
    type: 'TemplateProcessing',
    single: [...special(bos), { Sequence: { id: 'A', type_id: 0 } }, ...special(eos)],
    pair: [...special(bos), { Sequence: { id: 'A', type_id: 0 } }, ...special(eos), ...special(bos), { Sequence: { id: 'B', type_id: 1 } }, ...special(eos)],
    special_tokens: specialTokens,
  };
}

/** Typed reads of the metadata; a value of the wrong type is a NuggetsError naming the file and key. */
class Metadata {
  constructor(private readonly file: GgufFile) {}

  invalid(key: string, what: string): NuggetsError {
    return new NuggetsError(`${this.file.path}: the tokenizer metadata ${key} ${what}.`, 'The file may be damaged or written by an unusual converter; convert the model again with a current llama.cpp.');
  }

  private get(key: string): GgufValue | undefined {
    return this.file.metadata.get(key);
  }

  string(key: string): string | undefined {
    const value = this.get(key);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw this.invalid(key, 'is not a string');
    return value;
  }

  number(key: string): number | undefined {
    const value = this.get(key);
    if (value === undefined) return undefined;
    if (typeof value === 'bigint') return Number(value);
    if (typeof value !== 'number') throw this.invalid(key, 'is not a number');
    return value;
  }

  bool(key: string): boolean | undefined {
    const value = this.get(key);
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') throw this.invalid(key, 'is not a boolean');
    return value;
  }

  stringArray(key: string, nonEmpty: boolean): string[] {
    const value = this.get(key);
    if (value === undefined) throw this.invalid(key, 'is missing');
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw this.invalid(key, 'is not a list of strings');
    if (nonEmpty && value.length === 0) throw this.invalid(key, 'is empty');
    return value as string[];
  }

  numberArray(key: string): number[] | undefined {
    const value = this.get(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) throw this.invalid(key, 'is not a list of numbers');
    return value.map((v) => {
      if (typeof v === 'bigint') return Number(v);
      if (typeof v !== 'number') throw this.invalid(key, 'is not a list of numbers');
      return v;
    });
  }
}
