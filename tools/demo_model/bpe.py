"""A byte-level BPE tokenizer: training, encoding, and the Hugging Face tokenizer.json it loads as.

The encoder here mirrors what @huggingface/tokenizers does with the emitted tokenizer.json
(GPT-2 pre-tokenization regex over the byte-to-unicode alphabet, then merges by rank), so the
token sequences the model is trained on are the ones the engine will feed it.
"""
from __future__ import annotations

import collections
import json
from typing import Dict, Iterable, List, Tuple

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
SPECIAL_TOKEN = "<|endoftext|>"

_pretokenize = regex.compile(GPT2_PATTERN)


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


BYTE_CHAR = bytes_to_unicode()


def pre_tokens(text: str) -> List[str]:
    return ["".join(BYTE_CHAR[b] for b in piece.encode("utf-8")) for piece in _pretokenize.findall(text)]


def train(texts: Iterable[str], vocab_size: int) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    word_counts = collections.Counter()
    for text in texts:
        word_counts.update(pre_tokens(text))
    vocab: Dict[str, int] = {SPECIAL_TOKEN: 0}
    for b in range(256):
        vocab[BYTE_CHAR[b]] = len(vocab)

    words = [list(w) for w in word_counts]
    counts = [word_counts[w] for w in word_counts]
    pair_counts: Dict[Tuple[str, str], int] = collections.defaultdict(int)
    pair_words: Dict[Tuple[str, str], set] = collections.defaultdict(set)
    for wi, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += counts[wi]
            pair_words[pair].add(wi)

    merges: List[Tuple[str, str]] = []
    while len(vocab) < vocab_size and pair_counts:
        best = max(pair_counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pair_counts[best] < 2:
            break
        merged = best[0] + best[1]
        merges.append(best)
        vocab[merged] = len(vocab)
        for wi in list(pair_words[best]):
            symbols = words[wi]
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] -= counts[wi]
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
            out: List[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == best[0] and symbols[i + 1] == best[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            words[wi] = out
            for pair in zip(out, out[1:]):
                pair_counts[pair] += counts[wi]
                pair_words[pair].add(wi)
        pair_words.pop(best, None)
    return vocab, merges


class Encoder:
    def __init__(self, vocab: Dict[str, int], merges: List[Tuple[str, str]]):
        self.vocab = vocab
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.cache: Dict[str, List[int]] = {}

    def _word(self, word: str) -> List[int]:
        hit = self.cache.get(word)
        if hit is not None:
            return hit
        symbols = list(word)
        while len(symbols) > 1:
            ranked = [(self.ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
            rank, i = min(ranked)
            if rank == 1 << 30:
                break
            symbols = symbols[:i] + [symbols[i] + symbols[i + 1]] + symbols[i + 2:]
        ids = [self.vocab[s] for s in symbols]
        self.cache[word] = ids
        return ids

    def encode(self, text: str) -> List[int]:
        ids: List[int] = []
        for word in pre_tokens(text):
            ids.extend(self._word(word))
        return ids


def tokenizer_json(vocab: Dict[str, int], merges: List[Tuple[str, str]]) -> dict:
    special = {"id": 0, "content": SPECIAL_TOKEN, "single_word": False, "lstrip": False,
               "rstrip": False, "normalized": False, "special": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        # "With special tokens" means a leading <|endoftext|> as BOS: the candidate prefix gets it, anchors do not.
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": SPECIAL_TOKEN, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": SPECIAL_TOKEN, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {SPECIAL_TOKEN: {"id": SPECIAL_TOKEN, "ids": [0], "tokens": [SPECIAL_TOKEN]}},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges],
        },
    }


def save(folder: str, vocab: Dict[str, int], merges: List[Tuple[str, str]], max_length: int) -> None:
    with open(f"{folder}/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, merges), f, ensure_ascii=False, separators=(",", ":"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": SPECIAL_TOKEN, "eos_token": SPECIAL_TOKEN,
              "unk_token": None, "add_bos_token": True, "model_max_length": max_length,
              "clean_up_tokenization_spaces": False}
    with open(f"{folder}/tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
