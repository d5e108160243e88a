"""The GPT-2 architecture used by the demo model and the benchmark models, and its ONNX export in the
Optimum layout (input_ids, attention_mask, position_ids, past_key_values.{i}.key/value in; logits,
present.{i}.key/value out)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- GPT-2 architecture

class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x, bias, past_k=None, past_v=None):
        b, s, d = x.shape
        hd = d // self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q = q.view(b, s, self.heads, hd).transpose(1, 2)
        k = k.view(b, s, self.heads, hd).transpose(1, 2)
        v = v.view(b, s, self.heads, hd).transpose(1, 2)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd)) + bias
        y = att.softmax(dim=-1) @ v
        y = y.transpose(1, 2).reshape(b, s, d)
        x = x + self.c_proj(y)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, k, v


class GPT(nn.Module):
    def __init__(self, vocab: int, positions: int, d: int, layers: int, heads: int):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(positions, d)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask, position_ids, past=None):
        """attention_mask covers past + current tokens (1 = real, 0 = padding)."""
        s = input_ids.shape[1]
        total = attention_mask.shape[1]
        past_len = total - s
        query_pos = torch.arange(s, device=input_ids.device).unsqueeze(1) + past_len
        key_pos = torch.arange(total, device=input_ids.device).unsqueeze(0)
        allowed = (key_pos <= query_pos).unsqueeze(0) & (attention_mask[:, None, :] > 0)
        # A large finite negative keeps fully masked (padding) rows finite instead of NaN.
        bias = torch.where(allowed, torch.zeros((), dtype=torch.float32), torch.full((), -1e9)).unsqueeze(1)
        x = self.wte(input_ids) + self.wpe(position_ids)
        presents = []
        for i, block in enumerate(self.blocks):
            pk, pv = (past[2 * i], past[2 * i + 1]) if past is not None else (None, None)
            x, k, v = block(x, bias, pk, pv)
            presents += [k, v]
        logits = self.ln_f(x) @ self.wte.weight.t()
        return logits, presents


class OnnxWrapper(nn.Module):
    """Flat signature for torch.onnx.export with the Optimum names."""

    def __init__(self, model: GPT):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *past):
        logits, presents = self.model(input_ids, attention_mask, position_ids, list(past))
        return (logits, *presents)


# ---------------------------------------------------------------- export

def export_onnx(model: GPT, path: str, layers: int, heads: int, d: int) -> None:
    model.eval()
    hd = d // heads
    b, s, past_len = 2, 3, 4
    ids = torch.randint(0, 100, (b, s))
    mask = torch.ones(b, past_len + s, dtype=torch.long)
    pos = torch.arange(past_len, past_len + s).unsqueeze(0).expand(b, s)
    past = [torch.randn(b, heads, past_len, hd) for _ in range(2 * layers)]
    past_names = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    present_names = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    dynamic = {"input_ids": {0: "batch_size", 1: "sequence_length"},
               "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
               "position_ids": {0: "batch_size", 1: "sequence_length"},
               "logits": {0: "batch_size", 1: "sequence_length"}}
    for n in past_names:
        dynamic[n] = {0: "batch_size", 2: "past_sequence_length"}
    for n in present_names:
        dynamic[n] = {0: "batch_size", 2: "total_sequence_length"}
    torch.onnx.export(OnnxWrapper(model), (ids, mask, pos, *past), path,
                      input_names=["input_ids", "attention_mask", "position_ids", *past_names],
                      output_names=["logits", *present_names], dynamic_axes=dynamic, opset_version=14,
                      do_constant_folding=True)
