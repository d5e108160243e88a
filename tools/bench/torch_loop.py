"""The paper's scoring loop in PyTorch, on the same weights as an ONNX model folder, for the benchmark's
side-by-side comparison: GPT-2-shaped models (the demo's module, weights read back from the graph) and
the Llama/Qwen2 stand-ins (tools/standins/llama.py, weights from the folder's reference/weights.pt).
As in the authors' released code: for each candidate, one forward pass over the prefix with the
key/value cache kept, then batches of anchors against that cache expanded over the batch, log-softmax
over the vocabulary, and the response span's log-probabilities summed.

Reads a workload JSON written by the benchmark ({"candidates": [[ids]], "anchors": [{"tokens": [...],
"responseFrom": n}], "batchSize": b}) so that tokenization is identical, and prints one JSON line with
the time and the scores (which the benchmark checks against its own).

    /usr/bin/python3 tools/bench/torch_loop.py --model models/demo --workload w.json --threads 2
"""
import argparse
import json
import os
import resource
import sys
import time

import onnx
import torch
from onnx import numpy_helper

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, os.path.join(TOOLS, 'demo_model'))
sys.path.insert(0, os.path.join(TOOLS, 'standins'))
from gpt import GPT  # noqa: E402
import llama  # noqa: E402


def load_from_onnx(folder: str) -> GPT:
    """Rebuilds the torch module from the ONNX graph's initializers: named ones map by name, the linear
    weights (folded into MatMul initializers at export) by the order of the MatMul nodes."""
    config = json.load(open(os.path.join(folder, 'config.json')))
    model = GPT(config['vocab_size'], config['n_positions'], config['n_embd'], config['n_layer'], config['n_head'])
    graph = onnx.load(os.path.join(folder, 'model.onnx')).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    state = {name[len('model.'):]: w for name, w in weights.items() if name.startswith('model.')}
    matmuls = [n.input[1] for n in graph.node if n.op_type == 'MatMul' and n.input[1] in weights and not n.input[1].startswith('model.')]
    names = [f'blocks.{i}.{p}.weight' for i in range(config['n_layer']) for p in ('c_attn', 'c_proj', 'c_fc', 'mlp_proj')]
    for name, w in zip(names, matmuls):
        state[name] = weights[w].t().contiguous()
    model.load_state_dict(state, strict=True)
    return model.eval()


class LlamaLoop(torch.nn.Module):
    """A Llama/Qwen2 stand-in behind the GPT module's calling convention: (ids, mask, positions,
    past) -> (logits, past), past being the key/value tensors of every layer (empty before the prefix)."""

    def __init__(self, folder: str):
        super().__init__()
        config = json.load(open(os.path.join(folder, 'config.json')))
        shape = json.load(open(os.path.join(folder, 'STANDIN.json')))['shape']
        self.decoder = llama.Decoder(shape)
        self.decoder.load_state_dict(torch.load(os.path.join(folder, 'reference', 'weights.pt')), strict=True)
        self.empty = [torch.zeros(1, shape['kv_heads'], 0, shape['head_dim']) for _ in range(2 * shape['layers'])]
        self.max_position = config['max_position_embeddings']

    def forward(self, ids, mask, positions, past=None):
        logits, *present = self.decoder(ids, mask, positions, *(past if past is not None else self.empty))
        return logits, present


def load(folder: str):
    if os.path.exists(os.path.join(folder, 'STANDIN.json')):
        return LlamaLoop(folder).eval()
    return load_from_onnx(folder)


def context_of(model) -> int:
    return model.max_position if isinstance(model, LlamaLoop) else model.wpe.num_embeddings


@torch.inference_mode()
def score(model, candidates, anchors, batch_size: int):
    results = []
    for prefix in candidates:
        ids = torch.tensor([prefix])
        p = len(prefix)
        _, past = model(ids, torch.ones_like(ids), torch.arange(p).unsqueeze(0))
        sums = []
        for start in range(0, len(anchors), batch_size):
            batch = anchors[start:start + batch_size]
            b = len(batch)
            width = max(len(a['tokens']) for a in batch)
            x = torch.zeros(b, width, dtype=torch.long)
            mask = torch.zeros(b, p + width, dtype=torch.long)
            mask[:, :p] = 1
            for i, a in enumerate(batch):
                x[i, :len(a['tokens'])] = torch.tensor(a['tokens'])
                mask[i, p:p + len(a['tokens'])] = 1
            pos = (torch.arange(width) + p).clamp(max=context_of(model) - 1).unsqueeze(0).expand(b, width)
            expanded = [t.expand(b, -1, -1, -1) for t in past]
            logits, _ = model(x, mask, pos, expanded)
            logp = logits.log_softmax(-1)
            for i, a in enumerate(batch):
                n = len(a['tokens'])
                targets = torch.tensor(a['tokens'][a['responseFrom']:n])
                rows = torch.arange(a['responseFrom'] - 1, n - 1)
                sums.append(logp[i, rows, targets].sum().item())
        results.append(sums)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--workload', required=True)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    workload = json.load(open(args.workload))
    model = load(args.model)
    # One warm-up candidate, as the benchmark warms up its own paths.
    score(model, workload['candidates'][:1], workload['anchors'][:workload['batchSize']], workload['batchSize'])
    start = time.perf_counter()
    sums = score(model, workload['candidates'], workload['anchors'], workload['batchSize'])
    seconds = time.perf_counter() - start
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({'seconds': seconds, 'oneShot': sums, 'maxRssMB': max_rss_mb}))


if __name__ == '__main__':
    main()
