"""Train the bundled demo model: a small GPT-2-architecture causal LM with a byte-level BPE
tokenizer, on the real instruction data in ../shared/data, exported to ONNX in the Optimum
layout (input_ids, attention_mask, position_ids, past_key_values.{i}.key/value in; logits,
present.{i}.key/value out).

Run with Debian's PyTorch (see MACHINE-NOTES):
    /usr/bin/python3 tools/demo_model/train.py --data ../shared/data --out models/demo --minutes 40

Why the training stream looks the way it does: Nuggets scores a record by how much it helps as a
one-shot demonstration, so the model must learn to use earlier records in its context. Windows of
1,024 tokens are packed with several whole records in a row, tokenized exactly as the engine
tokenizes them (the first with a BOS, the rest without, no separator), mostly from one source
dataset so that format carries over, and some records repeat within a window so that copying
(induction) emerges in the time budget.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
from gpt import GPT, export_onnx  # noqa: E402

ALPACA_FILES = ["gsm8k-train.alpaca.json", "gpteacher-toolformer.alpaca.json", "gpteacher-roleplay.alpaca.json"]
SEED_TASKS = "alpaca-seed-tasks.jsonl"
MAX_ANCHOR_TOKENS = 200


# ---------------------------------------------------------------- records, exactly as the engine sees them

def trimmed(record: dict) -> Tuple[str, str, str]:
    return record["instruction"].strip(), record.get("input", "").strip(), record["output"].strip()


def query_text(instruction: str, inp: str) -> str:
    if inp:
        return f"Instruction:\n{instruction}\nInput:\n{inp}\nResponse:\n"
    return f"Instruction:\n{instruction}\nResponse:\n"


def record_id(instruction: str, inp: str, output: str) -> str:
    """Same content hash as the engine's record id (server/dataset)."""
    return hashlib.sha256(f"{instruction}\u0000{inp}\u0000{output}".encode("utf-8")).hexdigest()[:16]


def is_held_out(rid: str) -> bool:
    """About 3% of records (first byte of the id < 8) never enter training."""
    return int(rid[:2], 16) < 8


def load_sources(data_dir: str) -> Dict[str, List[Tuple[str, str, str]]]:
    sources: Dict[str, List[Tuple[str, str, str]]] = {}
    for name in ALPACA_FILES:
        with open(os.path.join(data_dir, name), encoding="utf-8") as f:
            sources[name] = [trimmed(r) for r in json.load(f)]
    seeds = []
    with open(os.path.join(data_dir, SEED_TASKS), encoding="utf-8") as f:
        for line in f:
            task = json.loads(line)
            for inst in task["instances"]:
                seeds.append((task["instruction"].strip(), inst["input"].strip(), inst["output"].strip()))
    sources[SEED_TASKS] = seeds
    return sources


# ---------------------------------------------------------------- the training stream

class Stream:
    def __init__(self, sources: Dict[str, List[List[int]]], ctx: int, bos: int, rng: random.Random,
                 repeat_previous: float, repeat_any: float):
        self.repeat_previous, self.repeat_any = repeat_previous, repeat_any
        self.sources = {k: v for k, v in sources.items() if v}
        self.names = list(self.sources)
        self.weights = [len(self.sources[n]) for n in self.names]
        self.ctx, self.bos, self.rng = ctx, bos, rng

    def _pick(self, source: str | None) -> List[int]:
        name = source or self.rng.choices(self.names, self.weights)[0]
        return self.rng.choice(self.sources[name])

    def window(self) -> List[int]:
        rng = self.rng
        source = rng.choices(self.names, self.weights)[0] if rng.random() < 0.7 else None
        tokens: List[int] = [self.bos] if rng.random() < 0.5 else []
        placed: List[List[int]] = []
        while len(tokens) < self.ctx + 1:
            r = rng.random()
            if placed and r < self.repeat_previous:
                rec = placed[-1]  # the exact one-shot self check pattern: a record right after itself
            elif placed and r < self.repeat_previous + self.repeat_any:
                rec = rng.choice(placed)
            else:
                rec = self._pick(source)
            placed.append(rec)
            tokens.extend(rec)
        return tokens[: self.ctx + 1]

    def batch(self, size: int) -> torch.Tensor:
        return torch.tensor([self.window() for _ in range(size)], dtype=torch.long)


# ---------------------------------------------------------------- the one-shot self check

@torch.no_grad()
def response_logprob(model: GPT, prefix: List[int], query: List[int], full: List[int]) -> float:
    tokens = prefix + full
    ids = torch.tensor([tokens])
    mask = torch.ones_like(ids)
    pos = torch.arange(len(tokens)).unsqueeze(0)
    logits, _ = model(ids, mask, pos)
    logp = logits[0].log_softmax(-1)
    start = len(prefix) + len(query)
    return sum(logp[t - 1, tokens[t]].item() for t in range(start, len(tokens)))


def anchor_tokens(enc: bpe.Encoder, rec: Tuple[str, str, str]) -> Tuple[List[int], List[int]]:
    q = enc.encode(query_text(rec[0], rec[1]))
    full = enc.encode(query_text(rec[0], rec[1]) + rec[2])[:MAX_ANCHOR_TOKENS]
    return q, full


def self_check(model: GPT, enc: bpe.Encoder, records: List[Tuple[str, str, str]], ctx: int, bos: int) -> Tuple[float, float]:
    """Share of records whose response becomes more likely with the record itself as one-shot candidate."""
    model.eval()
    deltas = []
    for rec in records:
        q, full = anchor_tokens(enc, rec)
        prefix = [bos] + enc.encode(query_text(rec[0], rec[1]) + rec[2])
        prefix = prefix[-(ctx - len(full)):]
        deltas.append(response_logprob(model, prefix, q, full) - response_logprob(model, [], q, full))
    model.train()
    return sum(d > 0 for d in deltas) / len(deltas), sum(deltas) / len(deltas)


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="models/demo")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--d", type=int, default=192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=40.0, help="wall-clock budget for the optimisation loop")
    ap.add_argument("--check-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat-previous", type=float, default=0.15, help="chance a record repeats the one before it")
    ap.add_argument("--repeat-any", type=float, default=0.20, help="chance a record repeats an earlier one in the window")
    ap.add_argument("--init-from", help="continue from a checkpoint (state_dict) saved by an earlier run")
    ap.add_argument("--prior-seconds", type=float, default=0.0, help="training time of the run being continued, for the report")
    ap.add_argument("--prior-steps", type=int, default=0, help="steps of the run being continued, for the report")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(os.cpu_count() or 2)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()

    sources = load_sources(args.data)
    train_recs: Dict[str, List[Tuple[str, str, str]]] = {}
    held_out: Dict[str, List[Tuple[str, str, str]]] = {}
    for name, recs in sources.items():
        train_recs[name] = [r for r in recs if not is_held_out(record_id(*r))]
        held_out[name] = [r for r in recs if is_held_out(record_id(*r))]
    n_train = sum(map(len, train_recs.values()))
    n_held = sum(map(len, held_out.values()))
    print(f"records: {n_train} train, {n_held} held out", flush=True)

    texts = [query_text(r[0], r[1]) + r[2] for recs in train_recs.values() for r in recs]
    vocab, merges = bpe.train(texts, args.vocab)
    enc = bpe.Encoder(vocab, merges)
    bpe.save(args.out, vocab, merges, args.ctx)
    print(f"tokenizer: {len(vocab)} tokens, {len(merges)} merges ({time.time() - t0:.0f}s)", flush=True)

    token_sources = {n: [enc.encode(query_text(r[0], r[1]) + r[2]) for r in recs] for n, recs in train_recs.items()}
    n_tokens = sum(len(t) for v in token_sources.values() for t in v)
    print(f"training corpus: {n_tokens} tokens ({sum(len(t) for t in texts) / n_tokens:.2f} chars/token)", flush=True)

    # The check set: 100 held-out Alpaca records drawn across the three files, committed beside the model.
    pool = [r for n in ALPACA_FILES for r in held_out[n]]
    check = random.Random(1).sample(pool, 100)
    with open(os.path.join(args.out, "heldout-check.json"), "w", encoding="utf-8") as f:
        json.dump([{"instruction": r[0], "input": r[1], "output": r[2]} for r in check], f, indent=1, ensure_ascii=False)

    model = GPT(len(vocab), args.ctx, args.d, args.layers, args.heads)
    if args.init_from:
        model.load_state_dict(torch.load(args.init_from))
        print(f"continuing from {args.init_from} ({args.prior_steps} steps, {args.prior_seconds:.0f}s)", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    stream = Stream(token_sources, args.ctx, vocab[bpe.SPECIAL_TOKEN], rng, args.repeat_previous, args.repeat_any)
    budget = args.minutes * 60
    start = time.time()
    warmup = 50
    step, loss_ema, history = 0, None, []
    while step < args.max_steps:
        elapsed = time.time() - start
        if elapsed > budget:
            break
        # Cosine schedule over the wall-clock budget (or the step cap, whichever ends first).
        progress = max(step / args.max_steps, elapsed / budget)
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = stream.batch(args.batch)
        x, y = batch[:, :-1], batch[:, 1:]
        pos = torch.arange(args.ctx).unsqueeze(0).expand_as(x)
        logits, _ = model(x, torch.ones_like(x), pos)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
        if step % 10 == 0:
            print(f"step {step} loss {loss.item():.3f} ema {loss_ema:.3f} lr {lr:.2e} {time.time() - start:.0f}s", flush=True)
        if step % args.check_every == 0:
            share, mean = self_check(model, enc, check[:30], args.ctx, vocab[bpe.SPECIAL_TOKEN])
            history.append({"step": step, "positive_share_30": share, "mean_delta_30": mean, "loss_ema": loss_ema})
            print(f"  self-check (30 records): {share:.0%} positive, mean delta {mean:+.2f} nats", flush=True)
            torch.save(model.state_dict(), os.path.join(args.out, "..", "demo-checkpoint.pt"))

    train_seconds = time.time() - start
    share, mean = self_check(model, enc, check, args.ctx, vocab[bpe.SPECIAL_TOKEN])
    print(f"final self-check (100 held-out records): {share:.0%} positive, mean delta {mean:+.2f} nats", flush=True)

    export_onnx(model, os.path.join(args.out, "model.onnx"), args.layers, args.heads, args.d)
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": len(vocab),
              "n_positions": args.ctx, "n_ctx": args.ctx, "n_embd": args.d, "n_layer": args.layers,
              "n_head": args.heads, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
              "bos_token_id": 0, "eos_token_id": 0, "tie_word_embeddings": True, "use_cache": True}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    report = {"parameters": n_params, "steps": args.prior_steps + step, "batch": args.batch, "context": args.ctx,
              "tokens_seen": (args.prior_steps + step) * args.batch * args.ctx,
              "train_seconds": round(args.prior_seconds + train_seconds),
              "total_seconds": round(time.time() - t0), "final_loss_ema": round(loss_ema or 0, 4),
              "train_records": n_train, "held_out_records": n_held, "corpus_tokens": n_tokens,
              "self_check_positive_share": share, "self_check_mean_delta_nats": round(mean, 3), "history": history,
              "args": vars(args)}
    with open(os.path.join(args.out, "training-report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({k: v for k, v in report.items() if k != "history"}), flush=True)


if __name__ == "__main__":
    main()
