"""Write small synthetic GGUF models (arch llama or qwen2) for the GGUF importer's tests.

Development and test tooling only: nothing a user runs needs Python. The files are complete
models in the shape llama.cpp's converter writes them (tensor names, metadata keys, a
tokenizer, a chat template) with random weights, so that one small file exercises every
tensor type the importer claims to read.

Usage:

    python3 tools/gguf/make_gguf.py --arch llama|qwen2 --out X.gguf
        [--types Q4_0,Q4_1,Q5_0,Q5_1,Q8_0,Q4_K,Q5_K,Q6_K,F16,BF16,F32]
        [--layers 2 --hidden 256 --heads 4 --kv-heads 2 --ffn 512 --vocab V]
        [--tied | --untied] [--seed S] [--spm] [--merges N] [--no-check]
    python3 tools/gguf/make_gguf.py --shape-0.5b --out qwen-0.5b-shaped.gguf [--seed S]

Weights: every 2-D matrix (token_embd, per layer attn_q, attn_k, attn_v, attn_output,
ffn_gate, ffn_up, ffn_down, then output when --untied) gets the listed types round-robin in
that order, so each type lands on at least one matrix (an error if there are fewer matrices
than types, or if a type's block does not divide the matrix's ne[0]: K-quants need ne[0] %
256 == 0). Norms are F32 (around 1.0), qwen2's attn_q/k/v biases F32. Float weights are
N(0, 0.02) with ~0.2% outliers x8; they are quantized with gguf.quants for the types gguf-py
can quantize (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, BF16) and with a simple min/max quantizer written
here for Q4_K, Q5_K and Q6_K (gguf-py only dequantizes those). After writing, the file is read
back with gguf.GGUFReader and every tensor dequantized by gguf.quants and compared with its
float source (relative RMS error per type is printed; --no-check skips this) -- so the
K-quant bit packing below is checked against llama.cpp's own Python reference.

Tokenizer (default, "gpt2"): byte-level BPE: the 256 GPT-2 bytes_to_unicode symbols, --merges
(300) merges learned greedily from the text in /work/shared/data/*.json, control tokens
<|endoftext|>, <|im_start|>, <|im_end|> (token_type 3; others 1). llama: control tokens first
(ids 0,1,2 like SmolLM2), pre "smollm", bos <|im_start|>, eos <|im_end|>; qwen2: control
tokens after the merges (like Qwen2.5), pre "qwen2", bos <|endoftext|>, eos <|im_end|>;
add_bos_token false; ChatML chat template. --spm: a SentencePiece ("llama") tokenizer:
<unk>, <s>, </s> (types 2, 3, 3), <0x00>..<0xFF> (type 6), pieces with U+2581 for spaces and
float scores (-rank; BPE-trained so every piece is reachable by pairwise merges), then
<|im_start|>, <|im_end|> (type 3); add_bos_token true, add_space_prefix true. --vocab V pads
the vocabulary to V with "[PAD{i}]" tokens (type 5, UNUSED) as convert_hf_to_gguf does, or
trims merges so it fits.

--shape-0.5b: a Qwen2.5-0.5B-shaped file (qwen2, 24 layers, hidden 896, 14 heads, 2 kv heads,
ffn 4864, vocab 151936, tied) with the types of a Q4_K_M file of that shape (GGUF.md section 1,
llama-quant.cpp): attn_q/k/output, ffn_gate/up Q5_0 (Q4_K falls back: 896 % 256 != 0); attn_v
Q8_0 where use_more_bits(i, 24) (Q6_K falls back to Q8_0) else Q5_0; ffn_down Q6_K where
use_more_bits else Q4_K (4864 = 19 * 256); token_embd Q8_0 (tied output: Q6_K falls back).
Tensors are generated and written one at a time (about 400 MB on disk).

Requires: pip install gguf==0.19.0 numpy (no torch).
"""
import argparse
import collections
import glob
import json
import os
import re
import sys
import time
import zlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

QK_K = 256
DATA_GLOB = '/work/shared/data/*.json'
ALL_TYPES = 'Q4_0,Q4_1,Q5_0,Q5_1,Q8_0,Q4_K,Q5_K,Q6_K,F16,BF16,F32'
LAYER_MATRICES = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down']
GGUF_PY_QUANTIZES = {T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.BF16}


# ----------------------------------------------------------------------------- K-quants
# Simple (non-searching) min/max quantizers producing valid ggml blocks; layouts from
# ggml-common.h / ggml-quants.c (see /work/shared/design/GGUF.md section 1).

def _f16(values):
    """Round to fp16; returns (fp16 array, its float32 value)."""
    h = values.astype(np.float16)
    return h, h.astype(np.float32)


def _pack_scale_min_k4(sc, mn):
    """sc, mn: [B, 8] ints 0..63 -> [B, 12] bytes, inverse of get_scale_min_k4."""
    sc = sc.astype(np.uint8)
    mn = mn.astype(np.uint8)
    out = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    out[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = mn[:, 0:4] | ((mn[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 0xF) | ((mn[:, 4:8] & 0xF) << 4)
    return out


def _kquant_affine(x, levels):
    """Shared part of Q4_K / Q5_K: x [B, 256] -> (d16, dmin16, sc, mn, q [B, 8, 32])."""
    sub = x.reshape(-1, 8, 32)
    lo = np.minimum(sub.min(axis=-1), 0.0)
    hi = np.maximum(sub.max(axis=-1), 0.0)
    scale = (hi - lo) / levels  # [B, 8]
    d16, d = _f16(np.maximum(scale.max(axis=-1), 1e-12) / 63.0)
    dmin16, dmin = _f16(np.maximum((-lo).max(axis=-1), 1e-12) / 63.0)
    sc = np.clip(np.rint(scale / d[:, None]), 1, 63)
    mn = np.clip(np.rint(-lo / dmin[:, None]), 0, 63)
    eff_scale = (d[:, None] * sc).astype(np.float32)
    eff_min = (dmin[:, None] * mn).astype(np.float32)
    q = np.clip(np.rint((sub + eff_min[..., None]) / eff_scale[..., None]), 0, levels).astype(np.uint8)
    return d16, dmin16, sc, mn, q


def quantize_q4_k(x):
    x = x.reshape(-1, QK_K).astype(np.float32)
    d16, dmin16, sc, mn, q = _kquant_affine(x, 15)
    q = q.reshape(-1, 4, 2, 32)  # chunk c: sub-blocks 2c (low nibble) and 2c+1 (high nibble)
    qs = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(-1, 128)
    return np.concatenate([d16.view(np.uint8).reshape(-1, 2), dmin16.view(np.uint8).reshape(-1, 2),
                           _pack_scale_min_k4(sc, mn), qs], axis=1)


def quantize_q5_k(x):
    x = x.reshape(-1, QK_K).astype(np.float32)
    d16, dmin16, sc, mn, q = _kquant_affine(x, 31)
    q = q.reshape(-1, 4, 2, 32)
    low = q & 0xF
    qs = (low[:, :, 0, :] | (low[:, :, 1, :] << 4)).reshape(-1, 128)
    high = (q >> 4).astype(np.uint8)  # [B, 4, 2, 32]
    qh = np.zeros((q.shape[0], 32), dtype=np.uint8)
    for c in range(4):
        qh |= high[:, c, 0, :] << (2 * c)
        qh |= high[:, c, 1, :] << (2 * c + 1)
    return np.concatenate([d16.view(np.uint8).reshape(-1, 2), dmin16.view(np.uint8).reshape(-1, 2),
                           _pack_scale_min_k4(sc, mn), qh, qs], axis=1)


def quantize_q6_k(x):
    x = x.reshape(-1, QK_K).astype(np.float32)
    sub = x.reshape(-1, 16, 16)
    s = np.abs(sub).max(axis=-1) / 31.0  # [B, 16]
    d16, d = _f16(np.maximum(s.max(axis=-1), 1e-12) / 127.0)
    sc = np.clip(np.rint(s / d[:, None]), 1, 127).astype(np.int8)
    eff = (d[:, None] * sc.astype(np.float32))[..., None]
    q = (np.clip(np.rint(sub / eff), -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 128)  # halves
    ql = np.zeros((q.shape[0], 2, 64), dtype=np.uint8)
    qh = np.zeros((q.shape[0], 2, 32), dtype=np.uint8)
    a, b, c, e = q[:, :, 0:32], q[:, :, 32:64], q[:, :, 64:96], q[:, :, 96:128]
    ql[:, :, 0:32] = (a & 0xF) | ((c & 0xF) << 4)
    ql[:, :, 32:64] = (b & 0xF) | ((e & 0xF) << 4)
    qh[:, :, :] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)
    return np.concatenate([ql.reshape(-1, 128), qh.reshape(-1, 64), sc.view(np.uint8),
                           d16.view(np.uint8).reshape(-1, 2)], axis=1)


OWN_QUANTIZERS = {T.Q4_K: quantize_q4_k, T.Q5_K: quantize_q5_k, T.Q6_K: quantize_q6_k}


def encode(x, qtype, chunk_rows=4096):
    """float32 [rows, cols] -> (array to write, raw_dtype or None). Quantized types become uint8
    [rows, bytes_per_row]; done in row chunks into one preallocated array to bound memory."""
    if qtype == T.F32:
        return np.ascontiguousarray(x, dtype=np.float32), None
    if qtype == T.F16:
        return x.astype(np.float16), None
    rows, cols = x.shape
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    out = np.empty((rows, cols // block * size), dtype=np.uint8)
    for s in range(0, rows, chunk_rows):
        part = x[s:s + chunk_rows]
        if qtype in OWN_QUANTIZERS:
            out[s:s + chunk_rows] = OWN_QUANTIZERS[qtype](part).reshape(part.shape[0], -1)
        else:
            out[s:s + chunk_rows] = gguf.quants.quantize(part, qtype)
    return out, qtype


# ----------------------------------------------------------------------------- tokenizers

def corpus_words(limit_chars=1_500_000):
    """Words (with their leading space) and counts from the instruction data."""
    texts, total = [], 0
    for path in sorted(glob.glob(DATA_GLOB)):
        records = json.load(open(path, encoding='utf-8'))
        for rec in records[:1500]:
            if 'conversations' in rec:
                parts = [turn.get('value', '') for turn in rec['conversations']]
            else:
                parts = [rec.get('instruction', ''), rec.get('input', ''), rec.get('output', '')]
            text = '\n'.join(p for p in parts if p)
            texts.append(text)
            total += len(text)
            if total > limit_chars:
                break
    # GPT-2-like pre-tokenization (digits one by one, as smollm's pre-tokenizer does)
    pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+|\d| ?[^\s\w]+|\s+(?!\S)|\s+""")
    counts = collections.Counter()
    for text in texts:
        counts.update(pat.findall(text))
    return counts


def train_bpe(word_counts, n_merges):
    """Greedy BPE: word_counts {tuple(symbols): count} -> list of (left, right) merges, the most
    frequent adjacent pair first (ties: the larger pair). Pair counts are kept incrementally."""
    words = [list(w) for w in word_counts if len(w) > 1]
    freq = [c for w, c in word_counts.items() if len(w) > 1]
    pairs = collections.Counter()
    where = collections.defaultdict(set)
    for i, w in enumerate(words):
        for pair in zip(w, w[1:]):
            pairs[pair] += freq[i]
            where[pair].add(i)
    merges = []
    while len(merges) < n_merges and pairs:
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pairs[best] <= 0:
            break
        merges.append(best)
        joined = best[0] + best[1]
        for i in sorted(where.pop(best, ())):
            w, c = words[i], freq[i]
            for pair in zip(w, w[1:]):
                pairs[pair] -= c
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == best[0] and w[j + 1] == best[1]:
                    out.append(joined)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for pair in zip(out, out[1:]):
                pairs[pair] += c
                where[pair].add(i)
        for pair in [k for k, v in pairs.items() if v <= 0]:
            del pairs[pair]
    return merges


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode map (same order as GPT-2's encoder)."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


CONTROL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
SMOL_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                 "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
                 "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
QWEN_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                 "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
                 "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
CHATML_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
                   "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def pad_vocab(tokens, types, scores, vocab):
    if vocab is not None:
        if vocab < len(tokens):
            raise SystemExit(f'make_gguf.py: --vocab {vocab} is smaller than the tokenizer ({len(tokens)})')
        for i in range(len(tokens), vocab):
            tokens.append(f'[PAD{i}]')
            types.append(int(gguf.TokenType.UNUSED))
            if scores is not None:
                scores.append(-1e9)


def gpt2_tokenizer(arch, n_merges, vocab):
    if vocab is not None:
        n_merges = min(n_merges, vocab - 256 - len(CONTROL))
    b2u = bytes_to_unicode()
    counts = corpus_words()
    words = collections.Counter()
    for w, c in counts.items():
        words[tuple(b2u[b] for b in w.encode('utf-8'))] += c
    merges = train_bpe(words, n_merges)
    pieces = list(b2u.values())
    seen = set(pieces)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            pieces.append(a + b)
    if arch == 'llama':  # SmolLM2: control tokens first
        tokens = CONTROL + pieces
        types = [3] * len(CONTROL) + [1] * len(pieces)
        ids = {'bos': 1, 'eos': 2, 'unk': 0, 'pad': 2}
    else:  # Qwen2.5: control tokens after the learned vocabulary
        tokens = pieces + CONTROL
        types = [1] * len(pieces) + [3] * len(CONTROL)
        base = len(pieces)
        ids = {'bos': base, 'eos': base + 2, 'pad': base}
    pad_vocab(tokens, types, None, vocab)
    return {
        'model': 'gpt2', 'pre': 'smollm' if arch == 'llama' else 'qwen2',
        'tokens': tokens, 'types': types, 'scores': None,
        'merges': [f'{a} {b}' for a, b in merges], 'ids': ids,
        'summary': f'{len(merges)} merges',
        'add_bos': False, 'add_space_prefix': None,
        'template': SMOL_TEMPLATE if arch == 'llama' else QWEN_TEMPLATE,
    }


def spm_tokenizer(n_merges, vocab):
    counts = corpus_words()
    words = collections.Counter()
    chars = collections.Counter()
    for w, c in counts.items():
        if w.isspace():
            continue
        piece = '\u2581' + w.lstrip(' ') if w.startswith(' ') else w
        piece = piece.replace(' ', '\u2581')
        words[tuple(piece)] += c
        for ch in piece:
            chars[ch] += c
    alphabet = [ch for ch, c in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])) if c >= 5]
    fixed = 3 + 256 + 2
    if vocab is not None:
        n_merges = min(n_merges, max(0, vocab - fixed - len(alphabet)))
    merges = train_bpe(words, n_merges)
    tokens = ['<unk>', '<s>', '</s>'] + [f'<0x{b:02X}>' for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0] * len(tokens)
    seen = set(tokens)
    rank = 0
    for a, b in merges:  # merged pieces, best first: score -rank
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
            types.append(1)
            scores.append(float(-rank))
            rank += 1
    for ch in alphabet:  # single characters last, lowest scores (as in Llama's vocab)
        if ch not in seen:
            seen.add(ch)
            tokens.append(ch)
            types.append(1)
            scores.append(float(-rank))
            rank += 1
    for name in ('<|im_start|>', '<|im_end|>'):
        tokens.append(name)
        types.append(3)
        scores.append(0.0)
    pad_vocab(tokens, types, scores, vocab)
    return {
        'model': 'llama', 'pre': 'default', 'tokens': tokens, 'types': types, 'scores': scores,
        'merges': None, 'ids': {'bos': 1, 'eos': 2, 'unk': 0},
        'summary': f'{rank} scored pieces',
        'add_bos': True, 'add_space_prefix': True, 'template': CHATML_TEMPLATE,
    }


# ----------------------------------------------------------------------------- model plan

def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def plan(args):
    """-> list of (name, numpy shape [out, in] or [n], type, kind) in file order."""
    d, H, KV, ff, L = args.hidden, args.heads, args.kv_heads, args.ffn, args.layers
    hd = d // H
    shapes = {'attn_q': (H * hd, d), 'attn_k': (KV * hd, d), 'attn_v': (KV * hd, d),
              'attn_output': (d, H * hd), 'ffn_gate': (ff, d), 'ffn_up': (ff, d), 'ffn_down': (d, ff)}
    matrices = [('token_embd.weight', (args.vocab, d))]
    for i in range(L):
        matrices += [(f'blk.{i}.{m}.weight', shapes[m]) for m in LAYER_MATRICES]
    if not args.tied:
        matrices.append(('output.weight', (args.vocab, d)))

    if args.shape_05b:
        def pick(name):
            if name == 'token_embd.weight':
                return T.Q8_0
            i = int(name.split('.')[1])
            if '.attn_v.' in name:
                return T.Q8_0 if use_more_bits(i, L) else T.Q5_0
            if '.ffn_down.' in name:
                return T.Q6_K if use_more_bits(i, L) else T.Q4_K
            return T.Q5_0
        typed = [(n, s, pick(n)) for n, s in matrices]
    else:
        types = [T[t.strip().upper()] for t in args.types.split(',') if t.strip()]
        if len(matrices) < len(types):
            raise SystemExit(f'make_gguf.py: {len(matrices)} matrices cannot hold {len(types)} types; add --layers')
        typed = [(n, s, types[k % len(types)]) for k, (n, s) in enumerate(matrices)]
    for name, shape, qtype in typed:
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        if shape[1] % block:
            raise SystemExit(f'make_gguf.py: {name} has ne[0] = {shape[1]}, not a multiple of the '
                             f'{qtype.name} block ({block}); change --hidden/--ffn or --types')

    out = []
    by_name = {n: (s, t) for n, s, t in typed}
    out.append(('token_embd.weight',) + by_name['token_embd.weight'] + ('matrix',))
    for i in range(L):
        p = f'blk.{i}.'
        out.append((p + 'attn_norm.weight', (d,), T.F32, 'norm'))
        for m in LAYER_MATRICES:
            out.append((p + m + '.weight',) + by_name[p + m + '.weight'] + ('matrix',))
            if args.arch == 'qwen2' and m in ('attn_q', 'attn_k', 'attn_v'):
                out.append((p + m + '.bias', (shapes[m][0],), T.F32, 'bias'))
        out.append((p + 'ffn_norm.weight', (d,), T.F32, 'norm'))
    out.append(('output_norm.weight', (d,), T.F32, 'norm'))
    if not args.tied:
        out.append(('output.weight',) + by_name['output.weight'] + ('matrix',))
    return out


def source(args, name, shape, kind):
    """The float32 values a tensor is made from (deterministic per seed and name)."""
    rng = np.random.default_rng([args.seed, zlib.crc32(name.encode())])
    if kind == 'norm':
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= 0.05 if kind == 'bias' else 0.02
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, size=max(1, flat.size // 500))] *= 8.0  # ~0.2% outliers
    return x


def nbytes(shape, qtype):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = int(np.prod(shape))
    return n // block * size


def file_type(entries, shape_05b):
    if shape_05b:
        return gguf.LlamaFileType.MOSTLY_Q4_K_M
    counts = collections.Counter(t for _, _, t, kind in entries if kind == 'matrix')
    common = counts.most_common(1)[0][0]
    return {T.F32: gguf.LlamaFileType.ALL_F32, T.F16: gguf.LlamaFileType.MOSTLY_F16,
            T.BF16: gguf.LlamaFileType.MOSTLY_BF16, T.Q4_0: gguf.LlamaFileType.MOSTLY_Q4_0,
            T.Q4_1: gguf.LlamaFileType.MOSTLY_Q4_1, T.Q5_0: gguf.LlamaFileType.MOSTLY_Q5_0,
            T.Q5_1: gguf.LlamaFileType.MOSTLY_Q5_1, T.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
            T.Q4_K: gguf.LlamaFileType.MOSTLY_Q4_K_M, T.Q5_K: gguf.LlamaFileType.MOSTLY_Q5_K_M,
            T.Q6_K: gguf.LlamaFileType.MOSTLY_Q6_K}.get(common, gguf.LlamaFileType.GUESSED)


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--arch', choices=['llama', 'qwen2'], default='llama')
    ap.add_argument('--types', default=ALL_TYPES)
    ap.add_argument('--out', required=True)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--hidden', type=int, default=256)
    ap.add_argument('--heads', type=int, default=4)
    ap.add_argument('--kv-heads', type=int, default=2)
    ap.add_argument('--ffn', type=int, default=512)
    ap.add_argument('--vocab', type=int, default=None, help='pad (or trim merges) to this many tokens')
    ap.add_argument('--merges', type=int, default=300)
    tie = ap.add_mutually_exclusive_group()
    tie.add_argument('--tied', dest='tied', action='store_true', default=True)
    tie.add_argument('--untied', dest='tied', action='store_false')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--spm', action='store_true', help='SentencePiece ("llama") tokenizer instead of byte-level BPE')
    ap.add_argument('--shape-0.5b', dest='shape_05b', action='store_true')
    ap.add_argument('--no-check', dest='check', action='store_false')
    args = ap.parse_args()
    started = time.time()

    if args.shape_05b:
        args.arch, args.layers, args.hidden, args.heads, args.kv_heads = 'qwen2', 24, 896, 14, 2
        args.ffn, args.vocab, args.tied = 4864, 151936, True
    if args.hidden % args.heads or args.heads % args.kv_heads:
        raise SystemExit('make_gguf.py: hidden must divide by heads, heads by kv-heads')
    hd = args.hidden // args.heads

    tok = spm_tokenizer(args.merges, args.vocab) if args.spm else gpt2_tokenizer(args.arch, args.merges, args.vocab)
    args.vocab = len(tok['tokens'])
    entries = plan(args)

    a = args.arch
    w = gguf.GGUFWriter(args.out, a)
    w.add_type('model')
    w.add_name('Qwen2.5-0.5B-shaped synthetic' if args.shape_05b else f'synthetic {a} {args.layers}x{args.hidden}')
    w.add_context_length(32768 if args.shape_05b else 2048)
    w.add_embedding_length(args.hidden)
    w.add_block_count(args.layers)
    w.add_feed_forward_length(args.ffn)
    w.add_head_count(args.heads)
    w.add_head_count_kv(args.kv_heads)
    w.add_rope_freq_base(1000000.0 if a == 'qwen2' else 100000.0)
    w.add_layer_norm_rms_eps(1e-6 if a == 'qwen2' else 1e-5)
    w.add_rope_dimension_count(hd)
    w.add_vocab_size(args.vocab)
    w.add_file_type(int(file_type(entries, args.shape_05b)))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model(tok['model'])
    w.add_tokenizer_pre(tok['pre'])
    w.add_token_list(tok['tokens'])
    w.add_token_types(tok['types'])
    if tok['scores'] is not None:
        w.add_token_scores(tok['scores'])
    if tok['merges'] is not None:
        w.add_token_merges(tok['merges'])
    w.add_bos_token_id(tok['ids']['bos'])
    w.add_eos_token_id(tok['ids']['eos'])
    if 'unk' in tok['ids']:
        w.add_unk_token_id(tok['ids']['unk'])
    if 'pad' in tok['ids']:
        w.add_pad_token_id(tok['ids']['pad'])
    w.add_add_bos_token(tok['add_bos'])
    if tok['add_space_prefix'] is not None:
        w.add_add_space_prefix(tok['add_space_prefix'])
    w.add_chat_template(tok['template'])

    # streaming: declare every tensor, write the header, then generate and write one at a time
    for name, shape, qtype, kind in entries:
        if qtype in (T.F32, T.F16):
            w.add_tensor_info(name, shape, np.dtype(np.float32 if qtype == T.F32 else np.float16),
                              nbytes(shape, qtype))
        else:
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            w.add_tensor_info(name, (shape[0], shape[1] // block * size), np.dtype(np.uint8),
                              nbytes(shape, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, qtype, kind in entries:
        x = source(args, name, shape, kind)
        data, _ = encode(x if x.ndim == 2 else x[None, :], qtype)
        w.write_tensor_data(data.reshape(-1) if x.ndim == 1 else data)
    w.close()
    written = time.time() - started

    counts = collections.Counter((qtype.name, kind) for _, _, qtype, kind in entries)
    size = os.path.getsize(args.out)
    print(f'wrote {args.out}: arch {a}, {args.layers} layers, hidden {args.hidden}, heads {args.heads}/{args.kv_heads}, '
          f'ffn {args.ffn}, vocab {args.vocab} ({tok["model"]}, {tok["summary"]}), '
          f'{"tied" if args.tied else "untied"}, {len(entries)} tensors, {size / 1e6:.1f} MB, {written:.1f} s')
    for (tname, kind), n in sorted(counts.items()):
        print(f'  {tname:5s} {kind:6s} x{n}')
    for name, shape, qtype, kind in entries:
        if kind == 'matrix' and (args.layers <= 4 or name.startswith(('blk.0.', 'blk.3.', 'token_embd', 'output'))):
            print(f'  {name:28s} {qtype.name:5s} ne={list(reversed(shape))}')

    if args.check:
        r = gguf.GGUFReader(args.out)
        worst = collections.defaultdict(float)
        for t in r.tensors:
            name = t.name
            entry = next(e for e in entries if e[0] == name)
            x = source(args, name, entry[1], entry[3])
            assert t.tensor_type == entry[2], (name, t.tensor_type, entry[2])
            assert list(t.shape) == list(reversed(entry[1])), (name, t.shape, entry[1])
            raw = np.asarray(t.data)
            if x.ndim == 1:
                x, raw = x[None, :], raw[None, :]
            err = ref = 0.0
            for s in range(0, x.shape[0], 8192):  # row chunks: bounded memory on the 0.5B file
                y = gguf.quants.dequantize(raw[s:s + 8192], t.tensor_type).reshape(-1, x.shape[1])
                part = x[s:s + 8192].astype(np.float64)
                err += float(np.sum((y - part) ** 2))
                ref += float(np.sum(part ** 2))
            rel = (err / ref) ** 0.5
            worst[t.tensor_type.name] = max(worst[t.tensor_type.name], rel)
        print('check (read back with GGUFReader, dequantized with gguf.quants): worst relative RMS error per type:')
        for tname, rel in sorted(worst.items()):
            print(f'  {tname:5s} {rel:.4f}')
        print(f'check done in {time.time() - started - written:.1f} s')


if __name__ == '__main__':
    main()
