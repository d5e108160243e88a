"""Independent float64 forward pass of a GGUF file (arch `llama` or `qwen2`), for the tests.

Development and test tooling only: nothing a user runs needs Python. It is the oracle the
TypeScript GGUF importer (server/model/gguf/*) is checked against, so it shares no code or
layout decisions with it:

- weights are dequantized by the `gguf` package (`gguf.GGUFReader`, `gguf.quants.dequantize`),
  i.e. by llama.cpp's own Python reference, never by our dequantizer;
- Q and K are NOT un-permuted. The GGUF row layout is used as is, with llama.cpp's own rotary
  embedding for that layout: arch `llama` -> LLAMA_ROPE_TYPE_NORM (consecutive pairs (2i, 2i+1) of
  each head turn by pos * theta^(-2i/n_rot)); arch `qwen2` -> NEOX (pairs (i, i + n_rot/2)), plus
  the q/k/v biases.

Model: RMSNorm (w * x / sqrt(mean(x^2) + eps)), grouped-query attention (head h reads kv head
h // (n_head / n_kv)), full causal attention without cache, SiLU-gated MLP
(down(silu(gate x) * up x)), final RMSNorm, LM head = output.weight or the tied token_embd.weight.
Everything is float64; one sequence at a time; no padding.

Usage (stdin JSON -> stdout JSON):

    echo '{"gguf": "model.gguf", "rows": [{"tokens": [5, 9, 7], "from": 1, "to": 3}]}' \\
        | python3 tools/gguf/reference.py
    -> {"sums": [-4.2...], "logprobs": [[-1.3..., -2.9...]]}

For each row, positions t in [from, to) are scored: logprobs[k] = log p(tokens[from+k] |
tokens[:from+k]) (natural log), sums = their sum. 1 <= from <= to <= len(tokens).
A JSON list of such jobs gives a list of answers. Rows that continue one shared prefix can be
given as {"gguf": ..., "groups": [{"prefix": [...], "rows": [{"tokens": [...], "from": F, "to": T}]}]}:
the prefix runs once (its float64 keys and values serve the group's rows), `from`/`to` index the
whole sequence prefix + tokens, and answers come in row order over all groups. Optional "top": K adds "top": per row, per
scored position, the K most likely next tokens as [id, logprob] (best first) -- handy for
sanity checks (SmolLM2-135M-Instruct Q4_1: "The capital of France is" -> " Paris", p ~ 0.77).

Dequantized weights are cached in memory for the whole call (about 8 bytes per parameter:
~1.1 GB for the 135M model). Speed on 2 cores (SmolLM2-135M): ~6 s start-up (GGUF parse +
dequantization) then ~1.2 s per 300-token row; it is float64 GEMM bound (~80 GFLOP per row).
Requires: pip install gguf==0.19.0 numpy (no torch).
"""
import json
import math
import sys

# OpenBLAS uses every core unless OPENBLAS_NUM_THREADS says otherwise. On a quiet 2-core machine that is faster
# (test/unit/gguf-model.test.ts's 24x10 span check: 75 s, against 109 s with one thread); on cores shared with
# other busy processes its spinning threads were measured 19x slower: set OPENBLAS_NUM_THREADS=1 there.

import numpy as np
import gguf


def _field(reader, key, default=None):
    field = reader.fields.get(key)
    if field is None:
        return default
    value = field.contents()
    return value


class GGUFModel:
    def __init__(self, path):
        self.reader = gguf.GGUFReader(path)
        r = self.reader
        self.arch = _field(r, 'general.architecture')
        if self.arch not in ('llama', 'qwen2'):
            raise SystemExit(f'reference.py: unsupported architecture {self.arch!r} (llama, qwen2 only)')
        a = self.arch
        self.n_layer = int(_field(r, f'{a}.block_count'))
        self.d = int(_field(r, f'{a}.embedding_length'))
        self.n_ff = _field(r, f'{a}.feed_forward_length')
        heads = _field(r, f'{a}.attention.head_count')
        kv = _field(r, f'{a}.attention.head_count_kv', heads)
        # head counts may be per-layer arrays; keep a per-layer list either way
        self.heads = list(heads) if isinstance(heads, list) else [heads] * self.n_layer
        self.kv_heads = list(kv) if isinstance(kv, list) else [kv] * self.n_layer
        self.theta = float(_field(r, f'{a}.rope.freq_base', 10000.0))
        self.eps = float(_field(r, f'{a}.attention.layer_norm_rms_epsilon'))
        self.head_dim = int(_field(r, f'{a}.attention.key_length', self.d // self.heads[0]))
        self.n_rot = int(_field(r, f'{a}.rope.dimension_count', self.head_dim))
        self.neox = a == 'qwen2'
        self.tensors = {t.name: t for t in r.tensors}
        self._cache = {}
        self.lm_head_name = 'output.weight' if 'output.weight' in self.tensors else 'token_embd.weight'

    def has(self, name):
        return name in self.tensors

    def load(self, name):
        """Dequantized float64 array in numpy order (reversed GGUF ne: [out, in] for a matrix)."""
        t = self.tensors[name]
        values = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))
        return np.ascontiguousarray(values.reshape(shape), dtype=np.float64)

    def w(self, name):
        """load(name), cached for the whole call."""
        got = self._cache.get(name)
        if got is None:
            got = self._cache[name] = self.load(name)
        return got

    def stacked(self, names):
        """The matrices `names` ([out_i, in] each) stacked along out and transposed to [in, sum out],
        cached: one larger matmul instead of several small ones (q|k|v, gate|up)."""
        key = '|'.join(names)
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = np.ascontiguousarray(np.concatenate([self.load(n) for n in names]).T)
        return got

    def _norm(self, x, name):
        return self.w(name) * x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + self.eps)

    def _rope_tables(self, positions):
        half = self.n_rot // 2
        freq = self.theta ** (-2.0 * np.arange(half, dtype=np.float64) / self.n_rot)
        angle = np.asarray(positions, dtype=np.float64)[:, None] * freq[None, :]  # [n, half]
        return np.cos(angle), np.sin(angle)

    def _rope(self, x, cos, sin):
        """x: [n, heads, head_dim] in GGUF row layout, cos/sin: [n, 1, n_rot/2]; rotates the first
        n_rot dims of each head in place."""
        r = self.n_rot
        if self.neox:  # pairs (i, i + n_rot/2)
            a, b = x[..., :r // 2].copy(), x[..., r // 2:r].copy()
            x[..., :r // 2] = a * cos - b * sin
            x[..., r // 2:r] = a * sin + b * cos
        else:  # LLAMA_ROPE_TYPE_NORM: pairs (2i, 2i+1)
            a, b = x[..., 0:r:2].copy(), x[..., 1:r:2].copy()
            x[..., 0:r:2] = a * cos - b * sin
            x[..., 1:r:2] = a * sin + b * cos

    def hidden(self, sequences, past=None, keep=None):
        """Final normed hidden states for each token sequence in `sequences`, as one array
        [sum of lengths, d] (sequence after sequence).

        The sequences are packed along the token axis so that the position-wise work (norms,
        projections, MLP) runs as a few large matmuls; attention and rotary positions are
        computed per sequence, so each sequence sees only itself, exactly as if run alone
        (no padding, no cross-sequence attention).

        `past`: per layer, the keys and values ([P, kv heads, head_dim], after rotary) of a prefix
        of P tokens that every sequence continues (positions then start at P, and each sequence
        attends to the prefix and to itself). `keep`: a list that receives this call's per-layer
        keys and values (for one sequence: to be the `past` of later calls)."""
        hd = self.head_dim
        offset = 0 if past is None else past[0][0].shape[0]
        lengths = [len(t) for t in sequences]
        bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        n = int(bounds[-1])
        positions = np.concatenate([np.arange(offset, offset + m) for m in lengths])
        cos, sin = self._rope_tables(positions)
        cos, sin = cos[:, None, :], sin[:, None, :]
        # Token j of a sequence sees the whole prefix and its own tokens up to j.
        masks = {m: np.concatenate([np.zeros((m, offset), dtype=bool), np.triu(np.ones((m, m), dtype=bool), k=1)], axis=1) for m in set(lengths)}
        x = self.w('token_embd.weight')[np.concatenate([np.asarray(t, dtype=np.int64) for t in sequences])]
        for i in range(self.n_layer):
            p = f'blk.{i}.'
            H, KV = int(self.heads[i]), int(self.kv_heads[i])
            h = self._norm(x, p + 'attn_norm.weight')
            qkv = h @ self.stacked([p + 'attn_q.weight', p + 'attn_k.weight', p + 'attn_v.weight'])

            def project(name, count, at):
                y = qkv[:, at:at + count * hd]
                if self.has(p + name + '.bias'):
                    y = y + self.w(p + name + '.bias')
                return np.array(y).reshape(n, count, hd)  # [n, count, hd], a copy

            q = project('attn_q', H, 0)
            k = project('attn_k', KV, H * hd)
            v = project('attn_v', KV, (H + KV) * hd)
            self._rope(q, cos, sin)
            self._rope(k, cos, sin)
            if keep is not None:
                keep.append((k.copy(), v.copy()))
            group = H // KV
            out = np.empty((n, H * hd), dtype=np.float64)
            for s, e in zip(bounds[:-1], bounds[1:]):
                qs = q[s:e].transpose(1, 0, 2)  # [H, m, hd]
                k_all = k[s:e] if past is None else np.concatenate([past[i][0], k[s:e]])
                v_all = v[s:e] if past is None else np.concatenate([past[i][1], v[s:e]])
                ks = np.repeat(k_all.transpose(1, 0, 2), group, axis=0)  # head h -> kv head h // group
                vs = np.repeat(v_all.transpose(1, 0, 2), group, axis=0)
                scores = (qs @ ks.transpose(0, 2, 1)) / np.sqrt(hd)
                scores[:, masks[e - s]] = -np.inf
                scores -= scores.max(axis=-1, keepdims=True)
                probs = np.exp(scores)
                probs /= probs.sum(axis=-1, keepdims=True)
                out[s:e] = (probs @ vs).transpose(1, 0, 2).reshape(e - s, H * hd)
            x = x + out @ self.stacked([p + 'attn_output.weight'])
            h = self._norm(x, p + 'ffn_norm.weight')
            gate_up = h @ self.stacked([p + 'ffn_gate.weight', p + 'ffn_up.weight'])
            ff = gate_up.shape[1] // 2
            gate, up = gate_up[:, :ff], gate_up[:, ff:]
            x = x + (gate / (1.0 + np.exp(-gate)) * up) @ self.stacked([p + 'ffn_down.weight'])
        return self._norm(x, 'output_norm.weight')

    def log_probs(self, hidden_rows, chunk=256):
        """Log-softmax over the vocabulary, [rows, vocab]; computed in chunks of rows, in place."""
        head = self.w(self.lm_head_name)
        out = np.empty((hidden_rows.shape[0], head.shape[0]), dtype=np.float64)
        for s in range(0, hidden_rows.shape[0], chunk):
            logits = out[s:s + chunk]
            np.matmul(hidden_rows[s:s + chunk], head.T, out=logits)
            logits -= logits.max(axis=-1, keepdims=True)
            logits -= np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        return out

    def score_rows(self, rows, top=0, pack_tokens=0):
        """rows: [(tokens, from, to)] -> [(logprobs list, top list or None)], in order.

        pack_tokens > 0 runs several rows through one packed forward (see hidden); the default
        runs one sequence per forward, which measured no slower on 2 cores and uses less memory."""
        vocab = int(self.tensors['token_embd.weight'].shape[1])
        for tokens, start, end in rows:
            if not (1 <= start <= end <= len(tokens)):
                raise SystemExit(f'reference.py: need 1 <= from <= to <= len(tokens), '
                                 f'got {start}, {end}, {len(tokens)}')
            if any(t < 0 or t >= vocab for t in tokens):
                raise SystemExit(f'reference.py: token id outside [0, {vocab})')
        results = [None] * len(rows)
        pending = [j for j, (_, start, end) in enumerate(rows) if end > start]
        for j, (_, start, end) in enumerate(rows):
            if end == start:
                results[j] = ([], [] if top else None)
        while pending:
            # pack rows until ~pack_tokens tokens (always at least one row)
            group, size = [], 0
            while pending and (not group or size + rows[pending[0]][2] - 1 <= pack_tokens):
                group.append(pending.pop(0))
                size += rows[group[-1]][2] - 1
            # position t is predicted from the hidden state at t - 1; the last token needs no forward
            seqs = [rows[j][0][:rows[j][2] - 1] for j in group]
            hid = self.hidden(seqs)
            picks, offset = [], 0
            for j, seq in zip(group, seqs):
                _, start, end = rows[j]
                picks.append(np.arange(offset + start - 1, offset + end - 1))
                offset += len(seq)
            lp = self.log_probs(hid[np.concatenate(picks)])
            at = 0
            for j in group:
                tokens, start, end = rows[j]
                count = end - start
                block = lp[at:at + count]
                at += count
                values = [float(block[k, tokens[start + k]]) for k in range(count)]
                best = None
                if top:
                    best = []
                    for k in range(count):
                        ids = np.argsort(-block[k])[:top]
                        best.append([[int(t), float(block[k, t])] for t in ids])
                results[j] = (values, best)
        return results


def run_groups(model, groups):
    """Rows that continue a shared prefix: the prefix runs once and its keys and values serve every
    row of its group (the same numbers as one whole sequence per row, in float64). Each row's
    `tokens` follow the prefix; `from`/`to` index the whole sequence (prefix + tokens), and every
    scored position must lie after the prefix."""
    sums, logprobs = [], []
    for group in groups:
        prefix = [int(t) for t in group['prefix']]
        past = []
        model.hidden([prefix], keep=past)
        rows = [([int(t) for t in row['tokens']], int(row['from']), int(row['to'])) for row in group['rows']]
        for tokens, start, end in rows:
            if not (len(prefix) + 1 <= start <= end <= len(prefix) + len(tokens)):
                raise SystemExit('reference.py: a grouped row must score positions after its prefix')
        # position t is predicted from the hidden state at t - 1; the last token needs no forward
        seqs = [tokens[:end - len(prefix) - 1] for tokens, _, end in rows]
        hid = model.hidden(seqs, past=past)
        picks, offset = [], 0
        for (tokens, start, end), seq in zip(rows, seqs):
            picks.append(np.arange(offset + start - 1 - len(prefix), offset + end - 1 - len(prefix)))
            offset += len(seq)
        lp = model.log_probs(hid[np.concatenate(picks)])
        at = 0
        for tokens, start, end in rows:
            whole = prefix + tokens
            values = [float(lp[at + k, whole[start + k]]) for k in range(end - start)]
            at += end - start
            sums.append(math.fsum(values))
            logprobs.append(values)
    return {'sums': sums, 'logprobs': logprobs}


def run(job):
    model = GGUFModel(job['gguf'])
    if 'groups' in job:
        return run_groups(model, job['groups'])
    top = int(job.get('top', 0))
    rows = [([int(t) for t in row['tokens']], int(row['from']), int(row['to'])) for row in job['rows']]
    results = model.score_rows(rows, top)
    answer = {'sums': [math.fsum(values) for values, _ in results],
              'logprobs': [values for values, _ in results]}
    if top:
        answer['top'] = [best for _, best in results]
    return answer


def main():
    job = json.load(sys.stdin)
    # one job object, or a list of them (one answer each, in order)
    answer = [run(j) for j in job] if isinstance(job, list) else run(job)
    json.dump(answer, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
