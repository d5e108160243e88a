"""Tokenizers for the stand-in models, trained here on real instruction text and written in the
tokenizer.json / tokenizer_config.json forms of the real families:

- byte-level BPE, as SmolLM2 (special tokens first, digits split one by one) and Qwen2.5 (NFC
  normalizer, a regex Split pre-tokenizer, ChatML added tokens after the BPE vocabulary);
- SentencePiece-style BPE, as Llama-2 (a Metaspace pre-tokenizer that turns spaces into "▁" and
  prepends one, byte fallback to <0xNN> tokens, and a BOS added by a TemplateProcessing post-processor).

The merges are learned by a plain BPE trainer over pre-tokenized words. Training splits words with
Python's `re`, which has no Unicode property classes, so its split only approximates the real
pattern; that changes which merges are learned, never whether the tokenizer is valid: encoding is
done by the tokenizer library with the real pattern.
"""
import heapq
import re
import unicodedata
from collections import Counter, defaultdict

SMOLLM2_SPECIAL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<repo_name>', '<reponame>', '<file_sep>',
                   '<filename>', '<gh_stars>', '<issue_start>', '<issue_comment>', '<issue_closed>',
                   '<jupyter_start>', '<jupyter_text>', '<jupyter_code>', '<jupyter_output>',
                   '<jupyter_script>', '<empty_output>']
QWEN2_ADDED = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>',
               '<|box_start|>', '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>',
               '<|vision_end|>', '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>', '<tool_call>',
               '</tool_call>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>',
               '<|repo_name|>', '<|file_sep|>']
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
CHATML_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                   "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

# An approximation of the byte-level families' split with `re` (letters: [^\W\d_]; digits one by one).
_TRAIN_SPLIT = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+|\d| ?[^\s\w]+|_+|\s+(?!\S)|\s+")


def byte_alphabet():
    """The byte-level alphabet: each byte as one printable character (printable bytes as themselves,
    the rest shifted past 255), so that every string of bytes is a string of visible characters."""
    printable = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    table = {}
    shift = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shift)
            shift += 1
    return table


def learn_merges(words, merges_wanted, alphabet):
    """Plain BPE: repeatedly merge the most frequent adjacent pair (ties: the smallest pair) over
    `words` (a Counter of symbol tuples). Pair counts are kept up to date word by word."""
    words = [(list(w), n) for w, n in words.items()]
    pairs = Counter()
    where = defaultdict(set)
    for i, (w, n) in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += n
            where[(a, b)].add(i)
    vocab = list(alphabet)
    known = set(vocab)
    merges = []
    # A heap of (-count, pair) with stale entries skipped when popped: ties go to the smallest pair.
    heap = [(-n, p) for p, n in pairs.items()]
    heapq.heapify(heap)
    while len(merges) < merges_wanted and heap:
        negative, best = heapq.heappop(heap)
        if pairs.get(best, 0) != -negative:
            continue
        if -negative < 2:
            break
        merged = best[0] + best[1]
        merges.append(best)
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
        for i in list(where[best]):
            w, n = words[i]
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] -= n
                if pairs[(a, b)] <= 0:
                    del pairs[(a, b)]
            out = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == best[0] and w[j + 1] == best[1]:
                    out.append(merged)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = (out, n)
            for a, b in zip(out, out[1:]):
                pairs[(a, b)] += n
                where[(a, b)].add(i)
            for pair in set(zip(w, w[1:])) | set(zip(out, out[1:])):
                if pairs.get(pair, 0) > 0:
                    heapq.heappush(heap, (-pairs[pair], pair))
        del where[best]
        pairs.pop(best, None)
    return vocab, merges


def _byte_level_words(texts, nfc):
    table = byte_alphabet()
    words = Counter()
    for text in texts:
        if nfc:
            text = unicodedata.normalize('NFC', text)
        for piece in _TRAIN_SPLIT.findall(text):
            words[tuple(table[b] for b in piece.encode('utf-8'))] += 1
    return words, [table[b] for b in range(256)]


def _bpe_model(vocab, merges, **fields):
    model = {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
             'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False}
    model.update(fields)
    model['vocab'] = vocab
    model['merges'] = [[a, b] for a, b in merges]
    return model


def _added(token, i, special=True, normalized=False):
    return {'id': i, 'content': token, 'single_word': False, 'lstrip': False, 'rstrip': False,
            'normalized': normalized, 'special': special}


def smollm2_tokenizer(texts, merges_wanted):
    """SmolLM2's form: 17 special tokens at ids 0-16, then the byte-level BPE vocabulary; digits split
    one by one; nothing added around a text (no BOS)."""
    words, alphabet = _byte_level_words(texts, nfc=False)
    pieces, merges = learn_merges(words, merges_wanted, alphabet)
    vocab = {t: i for i, t in enumerate(SMOLLM2_SPECIAL)}
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    tokenizer = {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [_added(t, i) for i, t in enumerate(SMOLLM2_SPECIAL)],
        'normalizer': None,
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Digits', 'individual_digits': True},
            {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True}]},
        'post_processor': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': False, 'use_regex': True},
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
        'model': _bpe_model(vocab, merges),
    }
    config = {
        'add_prefix_space': False,
        'added_tokens_decoder': {str(i): _added(t, i) for i, t in enumerate(SMOLLM2_SPECIAL)},
        'additional_special_tokens': ['<|im_start|>', '<|im_end|>'],
        'bos_token': '<|im_start|>', 'eos_token': '<|im_end|>', 'pad_token': '<|im_end|>', 'unk_token': '<|endoftext|>',
        'chat_template': CHATML_TEMPLATE, 'clean_up_tokenization_spaces': False,
        'model_max_length': 8192, 'tokenizer_class': 'GPT2Tokenizer', 'vocab_size': len(vocab),
    }
    return tokenizer, config, {'bos_token_id': 1, 'eos_token_id': 2, 'pad_token_id': 2}


def qwen2_tokenizer(texts, merges_wanted):
    """Qwen2.5's form: NFC, the regex Split, byte-level BPE, and the ChatML added tokens after the BPE
    vocabulary; nothing added around a text."""
    words, alphabet = _byte_level_words(texts, nfc=True)
    pieces, merges = learn_merges(words, merges_wanted, alphabet)
    vocab = {p: i for i, p in enumerate(pieces)}
    added = [_added(t, len(vocab) + k) for k, t in enumerate(QWEN2_ADDED)]
    for entry in added[14:16]:
        entry['special'] = False  # <tool_call> and </tool_call> are plain added tokens in Qwen2.5
    tokenizer = {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': added,
        'normalizer': {'type': 'NFC'},
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Split', 'pattern': {'Regex': QWEN2_SPLIT}, 'behavior': 'Isolated', 'invert': False},
            {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False}]},
        'post_processor': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False},
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False},
        'model': _bpe_model(vocab, merges, continuing_subword_prefix='', end_of_word_suffix='', ignore_merges=False),
    }
    config = {
        'add_bos_token': False, 'add_prefix_space': False,
        'added_tokens_decoder': {str(e['id']): e for e in added},
        'additional_special_tokens': ['<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>',
                                      '<|box_start|>', '<|box_end|>', '<|quad_start|>', '<|quad_end|>',
                                      '<|vision_start|>', '<|vision_end|>', '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>'],
        'bos_token': None, 'chat_template': CHATML_TEMPLATE, 'clean_up_tokenization_spaces': False,
        'eos_token': '<|im_end|>', 'errors': 'replace', 'model_max_length': 131072, 'pad_token': '<|endoftext|>',
        'split_special_tokens': False, 'tokenizer_class': 'Qwen2Tokenizer', 'unk_token': None,
    }
    ids = {e['content']: e['id'] for e in added}
    return tokenizer, config, {'bos_token_id': ids['<|endoftext|>'], 'eos_token_id': ids['<|im_end|>']}


def sentencepiece_tokenizer(texts, merges_wanted):
    """Llama-2's form: <unk> <s> </s>, the 256 byte tokens <0x00>..<0xFF>, then pieces; spaces become
    "▁" and one "▁" is prepended to each text (Metaspace, prepend_scheme "first"); characters outside
    the vocabulary fall back to their UTF-8 bytes; the post-processor adds <s> in front."""
    space = '\u2581'
    chars = Counter()
    words = Counter()
    for text in texts:
        marked = space + text.replace(' ', space)
        for word in re.findall(space + '?[^' + space + '\n]+|\n', marked):
            if word != '\n':
                words[tuple(word)] += 1
                chars.update(word)
    # Characters seen often become pieces; the rest (and every newline) are written as bytes, as in Llama-2.
    alphabet = sorted(c for c, n in chars.items() if n >= 20)
    words = Counter({w: n for w, n in words.items() if all(c in alphabet for c in w)})
    pieces, merges = learn_merges(words, merges_wanted, alphabet)
    vocab = {'<unk>': 0, '<s>': 1, '</s>': 2}
    for b in range(256):
        vocab['<0x%02X>' % b] = len(vocab)
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    specials = [_added(t, i) for i, t in enumerate(['<unk>', '<s>', '</s>'])]
    tokenizer = {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': specials,
        'normalizer': None,
        'pre_tokenizer': {'type': 'Metaspace', 'replacement': space, 'prepend_scheme': 'first', 'split': False},
        'post_processor': {'type': 'TemplateProcessing',
                           'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
                           'pair': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                                    {'SpecialToken': {'id': '<s>', 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
                           'special_tokens': {'<s>': {'id': '<s>', 'ids': [1], 'tokens': ['<s>']}}},
        'decoder': {'type': 'Sequence', 'decoders': [
            {'type': 'Replace', 'pattern': {'String': space}, 'content': ' '},
            {'type': 'ByteFallback'}, {'type': 'Fuse'},
            {'type': 'Strip', 'content': ' ', 'start': 1, 'stop': 0}]},
        'model': _bpe_model(vocab, merges, unk_token='<unk>', fuse_unk=True, byte_fallback=True),
    }
    config = {
        'add_bos_token': True, 'add_eos_token': False,
        'added_tokens_decoder': {str(e['id']): e for e in specials},
        'bos_token': '<s>', 'eos_token': '</s>', 'unk_token': '<unk>', 'pad_token': None,
        'clean_up_tokenization_spaces': False, 'legacy': False, 'model_max_length': 2048,
        'sp_model_kwargs': {}, 'tokenizer_class': 'LlamaTokenizer', 'use_default_system_prompt': False,
    }
    return tokenizer, config, {'bos_token_id': 1, 'eos_token_id': 2}
