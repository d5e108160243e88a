"""An independent PyTorch forward of a stand-in's weights, for the tests: it reads the model's
config.json as transformers would (hidden_size, num_attention_heads, num_key_value_heads,
rms_norm_eps, rope_theta, tie_word_embeddings) and reference/weights.pt, and computes, in float64,
one whole sequence at a time with no cache and no padding, the summed log-probability of each row's
target tokens. It shares no code with the exported module (tools/standins/llama.py).

    echo '[{"model": ".cache/standins/smollm2", "rows": [{"tokens": [5, 9, 7], "from": 1, "to": 3}]}]' \\
        | /usr/bin/python3 tools/standins/reference.py
    -> [[-4.2...]]     (per model, per row)

`from`/`to`: the positions whose tokens are scored, each given every token before it.
"""
import json
import os
import sys

import torch


def forward(config, weights, tokens):
    d = config['hidden_size']
    heads = config['num_attention_heads']
    kv_heads = config.get('num_key_value_heads', heads)
    head_dim = d // heads
    eps = config['rms_norm_eps']
    w = {k: v.double() for k, v in weights.items()}
    n = len(tokens)

    def norm(x, weight):
        return weight * x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps)

    # Rotary embedding: dimension pair (j, j + head_dim/2) of position p turns by p * theta^(-2j/head_dim).
    freq = config['rope_theta'] ** (-torch.arange(0, head_dim // 2, dtype=torch.float64) * 2 / head_dim)
    angle = torch.arange(n, dtype=torch.float64)[:, None] * freq[None, :]
    cos, sin = torch.cos(angle), torch.sin(angle)

    def turn(x):  # x: [heads, n, head_dim]
        first, second = x[..., :head_dim // 2], x[..., head_dim // 2:]
        return torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)

    future = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    x = w['embed_tokens.weight'][torch.tensor(tokens)]
    for i in range(config['num_hidden_layers']):
        p = f'layers.{i}.'
        h = norm(x, w[p + 'input_layernorm.weight'])

        def project(name, count):
            y = h @ w[p + name + '.weight'].T
            if p + name + '.bias' in w:
                y = y + w[p + name + '.bias']
            return y.reshape(n, count, head_dim).permute(1, 0, 2)

        q = turn(project('q_proj', heads))
        k = turn(project('k_proj', kv_heads))
        v = project('v_proj', kv_heads)
        share = heads // kv_heads
        k = k.repeat_interleave(share, dim=0)
        v = v.repeat_interleave(share, dim=0)
        scores = (q @ k.transpose(1, 2)) / head_dim ** 0.5
        scores = scores.masked_fill(future, float('-inf'))
        out = torch.softmax(scores, dim=-1) @ v  # [heads, n, head_dim]
        x = x + out.permute(1, 0, 2).reshape(n, d) @ w[p + 'o_proj.weight'].T
        h = norm(x, w[p + 'post_attention_layernorm.weight'])
        gate = h @ w[p + 'gate_proj.weight'].T
        x = x + ((gate * torch.sigmoid(gate)) * (h @ w[p + 'up_proj.weight'].T)) @ w[p + 'down_proj.weight'].T
    x = norm(x, w['norm.weight'])
    out_matrix = w['embed_tokens.weight'] if config.get('tie_word_embeddings') else w['lm_head.weight']
    return torch.log_softmax(x @ out_matrix.T, dim=-1)


def main():
    answers = []
    with torch.no_grad():
        for job in json.load(sys.stdin):
            config = json.load(open(os.path.join(job['model'], 'config.json')))
            weights = torch.load(os.path.join(job['model'], 'reference', 'weights.pt'))
            sums = []
            for row in job['rows']:
                logprobs = forward(config, weights, row['tokens'])
                sums.append(sum(float(logprobs[t - 1, row['tokens'][t]]) for t in range(row['from'], row['to'])))
            answers.append(sums)
    json.dump(answers, sys.stdout)


if __name__ == '__main__':
    main()
