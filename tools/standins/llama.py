"""The decoder of the Llama family (SmolLM2, Llama-2) and of Qwen2 (the same with q/k/v biases), as a
PyTorch module made for ONNX export in the Optimum layout:

  input_ids [B, S], attention_mask [B, P + S], position_ids [B, S], past_key_values.{i}.key/value
  [B, kv_heads, P, head_dim]  ->  logits [B, S, V], present.{i}.key/value [B, kv_heads, P + S, head_dim]

Pieces, from the architectures' descriptions: RMSNorm before attention and before the MLP and at the
end; rotary position embeddings computed from position_ids with rope_theta (the two halves of each
head rotated against each other); grouped-query attention (kv_heads key/value heads, each shared by
heads / kv_heads query heads; the cache keeps the kv_heads, rotated keys); a SiLU-gated MLP
(down(silu(gate(x)) * up(x))); the output matrix tied to the embeddings or separate.
"""
import math

import torch
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, width, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    turned = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + turned * sin


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = c['heads'], c['kv_heads'], c['head_dim']
        width, inner = c['hidden'], c['intermediate']
        self.input_layernorm = RMSNorm(width, c['eps'])
        self.q_proj = nn.Linear(width, self.heads * self.head_dim, bias=c['qkv_bias'])
        self.k_proj = nn.Linear(width, self.kv_heads * self.head_dim, bias=c['qkv_bias'])
        self.v_proj = nn.Linear(width, self.kv_heads * self.head_dim, bias=c['qkv_bias'])
        self.o_proj = nn.Linear(self.heads * self.head_dim, width, bias=False)
        self.post_attention_layernorm = RMSNorm(width, c['eps'])
        self.gate_proj = nn.Linear(width, inner, bias=False)
        self.up_proj = nn.Linear(width, inner, bias=False)
        self.down_proj = nn.Linear(inner, width, bias=False)

    def forward(self, x, cos, sin, bias, past_k, past_v):
        b, s, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k = torch.cat((past_k, k), dim=2)
        v = torch.cat((past_v, v), dim=2)
        group = self.heads // self.kv_heads
        total = k.shape[2]
        k_all = k[:, :, None].expand(b, self.kv_heads, group, total, self.head_dim).reshape(b, self.heads, total, self.head_dim)
        v_all = v[:, :, None].expand(b, self.kv_heads, group, total, self.head_dim).reshape(b, self.heads, total, self.head_dim)
        weights = torch.softmax(q @ k_all.transpose(2, 3) / math.sqrt(self.head_dim) + bias, dim=-1)
        attended = (weights @ v_all).transpose(1, 2).reshape(b, s, self.heads * self.head_dim)
        x = x + self.o_proj(attended)
        h = self.post_attention_layernorm(x)
        x = x + self.down_proj(nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))
        return x, k, v


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c['vocab'], c['hidden'])
        self.layers = nn.ModuleList(Block(c) for _ in range(c['layers']))
        self.norm = RMSNorm(c['hidden'], c['eps'])
        self.lm_head = None if c['tied'] else nn.Linear(c['hidden'], c['vocab'], bias=False)
        inv_freq = 1.0 / (c['rope_theta'] ** (torch.arange(0, c['head_dim'], 2, dtype=torch.float32) / c['head_dim']))
        self.register_buffer('inv_freq', inv_freq, persistent=False)

    def forward(self, input_ids, attention_mask, position_ids, *past):
        x = self.embed_tokens(input_ids)
        angles = position_ids[..., None].float() * self.inv_freq
        angles = torch.cat((angles, angles), dim=-1)[:, None]
        cos, sin = angles.cos(), angles.sin()
        s = input_ids.shape[1]
        past_len = past[0].shape[2]
        query_pos = torch.arange(s)[:, None] + past_len
        key_pos = torch.arange(past_len + s)[None, :]
        allowed = (key_pos <= query_pos)[None, None] & (attention_mask[:, None, None, :] > 0)
        bias = torch.where(allowed, torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))
        present = []
        for i, block in enumerate(self.layers):
            x, k, v = block(x, cos, sin, bias, past[2 * i], past[2 * i + 1])
            present += [k, v]
        x = self.norm(x)
        logits = x @ self.embed_tokens.weight.t() if self.lm_head is None else self.lm_head(x)
        return (logits, *present)


def randomize(model, seed):
    """Random weights scaled so that the model is far from uniform: each matrix's outputs have about
    unit variance, norm weights near 1, biases small, embeddings of unit scale, and logits with a
    standard deviation of about 2.5 (the final norm is scaled down where the output matrix is the
    unit-scale embedding). Distinct values keep every parameter its own initializer in the export."""
    gen = torch.Generator().manual_seed(seed)
    final_scale = 2.5 / math.sqrt(model.c['hidden']) if model.c['tied'] else 2.5
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == 'norm.weight':
                p.copy_(final_scale * (1 + 0.1 * torch.randn(p.shape, generator=gen)))
            elif name.endswith('layernorm.weight'):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name == 'embed_tokens.weight':
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))


def export(model, path):
    c = model.c
    model.eval()
    b, s, past_len = 2, 3, 4
    ids = torch.randint(0, c['vocab'], (b, s))
    mask = torch.ones(b, past_len + s, dtype=torch.long)
    positions = torch.arange(past_len, past_len + s)[None].expand(b, s)
    past = [torch.randn(b, c['kv_heads'], past_len, c['head_dim']) for _ in range(2 * c['layers'])]
    past_names = [f'past_key_values.{i}.{kv}' for i in range(c['layers']) for kv in ('key', 'value')]
    present_names = [f'present.{i}.{kv}' for i in range(c['layers']) for kv in ('key', 'value')]
    axes = {'input_ids': {0: 'batch_size', 1: 'sequence_length'},
            'attention_mask': {0: 'batch_size', 1: 'total_sequence_length'},
            'position_ids': {0: 'batch_size', 1: 'sequence_length'},
            'logits': {0: 'batch_size', 1: 'sequence_length'}}
    axes.update({n: {0: 'batch_size', 2: 'past_sequence_length'} for n in past_names})
    axes.update({n: {0: 'batch_size', 2: 'total_sequence_length'} for n in present_names})
    with torch.no_grad():
        torch.onnx.export(model, (ids, mask, positions, *past), path,
                          input_names=['input_ids', 'attention_mask', 'position_ids', *past_names],
                          output_names=['logits', *present_names], dynamic_axes=axes, opset_version=14,
                          do_constant_folding=True)
