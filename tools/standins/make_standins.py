"""Stand-ins for the real models that Nuggets offers, with random weights and the real families'
files: config.json fields, tokenizer.json / tokenizer_config.json forms, and the hub's ONNX layout
and variants. No real weights can be downloaded here; these let the tests run every path a user
takes (see README, Models).

    /usr/bin/python3 tools/standins/make_standins.py --out .cache/standins

writes, each in a few seconds and a few MB:
  smollm2/          Llama as in SmolLM2-135M-Instruct (GQA, tied embeddings, byte-level BPE)
  qwen2/            Qwen2 as in Qwen2.5-0.5B-Instruct (q/k/v biases; NFC + regex Split, ChatML tokens)
  qwen2-external/   the same model, fp32 in the external-data layout (onnx/model.onnx + model.onnx_data)
  llama2-sp/        Llama-2 style (separate output matrix, SentencePiece-style BPE with byte fallback, BOS)
  unsupported/      graphs of kinds the engine refuses (encoder-only, encoder-decoder, no past/logits)

Each model folder holds onnx/model.onnx (fp32), onnx/model_quantized.onnx (dynamic int8),
onnx/model_q4.onnx (MatMulNBits, 4-bit blocks of 32) and onnx/model_fp16.onnx, and reference/weights.pt
(the PyTorch state dict, for tools/standins/reference.py). A folder is rewritten only when this
generator's files or the arguments change (STANDIN.json records their hash).

Real shapes for the benchmark, one folder at a time, e.g. SmolLM2-135M's:
    make_standins.py --out .cache/bench --only smollm2 --name smollm2-135m --layers 30 --hidden 576 \\
        --heads 9 --kv-heads 3 --intermediate 1536 --vocab-size 49152
With --vocab-size above the tokenizer's size the embedding and output matrices get the full size
(so the work per token is the real model's) while the tokenizer keeps its small learned vocabulary:
ids past it are never produced. --external-data writes the fp32 graph as model.onnx + model.onnx_data.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import llama  # noqa: E402
import variants  # noqa: E402

FAMILIES = {
    'smollm2': dict(
        tokenizer=bpe.smollm2_tokenizer, merges=1200, layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128,
        qkv_bias=False, tied=True, rope_theta=100000.0, eps=1e-5, context=8192, round_vocab=1,
        config={'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'attention_bias': False,
                'attention_dropout': 0.0, 'hidden_act': 'silu', 'initializer_range': 0.041666666666666664,
                'mlp_bias': False, 'pretraining_tp': 1, 'rope_scaling': None, 'torch_dtype': 'bfloat16',
                'transformers_version': '4.42.3', 'use_cache': True,
                'transformers.js_config': {'kv_cache_dtype': {'q4f16': 'float16', 'fp16': 'float16'}}}),
    'qwen2': dict(
        tokenizer=bpe.qwen2_tokenizer, merges=1200, layers=2, hidden=96, heads=6, kv_heads=2, intermediate=160,
        qkv_bias=True, tied=True, rope_theta=1000000.0, eps=1e-6, context=32768, round_vocab=64,
        config={'architectures': ['Qwen2ForCausalLM'], 'model_type': 'qwen2', 'attention_dropout': 0.0,
                'hidden_act': 'silu', 'initializer_range': 0.02, 'max_window_layers': 21, 'rope_scaling': None,
                'sliding_window': 32768, 'torch_dtype': 'bfloat16', 'transformers_version': '4.43.1',
                'use_cache': True, 'use_sliding_window': False}),
    'llama2-sp': dict(
        tokenizer=bpe.sentencepiece_tokenizer, merges=1000, layers=2, hidden=64, heads=4, kv_heads=4, intermediate=172,
        qkv_bias=False, tied=False, rope_theta=10000.0, eps=1e-5, context=4096, round_vocab=1,
        config={'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'hidden_act': 'silu',
                'initializer_range': 0.02, 'pretraining_tp': 1, 'rope_scaling': None, 'torch_dtype': 'float16',
                'transformers_version': '4.31.0.dev0', 'use_cache': True}),
}
VARIANTS = {'fp32': 'model.onnx', 'quantized': 'model_quantized.onnx', 'q4': 'model_q4.onnx', 'fp16': 'model_fp16.onnx'}


def training_texts(data_dir, limit_chars=400_000):
    """Real instruction records from the shared datasets, in the scoring template, interleaved."""
    per_file = []
    for name in sorted(os.listdir(data_dir)):
        path = os.path.join(data_dir, name)
        if name.endswith('.alpaca.json'):
            records = json.load(open(path, encoding='utf-8'))
        elif name.endswith('.jsonl'):
            records = []
            for line in open(path, encoding='utf-8'):
                task = json.loads(line)
                records += [{'instruction': task['instruction'], **inst} for inst in task.get('instances', [])]
        else:
            continue
        per_file.append([f"Instruction:\n{r['instruction']}\n" + (f"Input:\n{r['input']}\n" if r.get('input') else '')
                         + f"Response:\n{r['output']}" for r in records])
    texts, total, i = [], 0, 0
    while total < limit_chars and any(i < len(f) for f in per_file):
        for f in per_file:
            if i < len(f):
                texts.append(f[i])
                total += len(f[i])
        i += 1
    return texts


def generator_hash(args):
    h = hashlib.sha256()
    for name in sorted(os.listdir(HERE)):
        if name.endswith('.py'):
            h.update(name.encode())
            h.update(open(os.path.join(HERE, name), 'rb').read())
    h.update(json.dumps(args, sort_keys=True).encode())
    return h.hexdigest()[:16]


def up_to(n, multiple):
    return -(-n // multiple) * multiple


def write_json(path, value):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write('\n')


def make_model(folder, family, shape, tokenizers, variant_names, external, seed):
    spec = FAMILIES[family]
    tmp = f'{folder}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, 'onnx'))
    os.makedirs(os.path.join(tmp, 'reference'))
    tokenizer, tokenizer_config, special_ids = tokenizers(family, shape['merges'])
    tokens = 1 + max([*tokenizer['model']['vocab'].values(), *(t['id'] for t in tokenizer['added_tokens'])])
    vocab = shape['vocab_size'] or up_to(tokens, spec['round_vocab'])
    if vocab < tokens:
        raise SystemExit(f'--vocab-size {vocab} is below the tokenizer\'s {tokens} tokens')
    c = dict(vocab=vocab, layers=shape['layers'], hidden=shape['hidden'], heads=shape['heads'], kv_heads=shape['kv_heads'],
             head_dim=shape['hidden'] // shape['heads'], intermediate=shape['intermediate'], qkv_bias=spec['qkv_bias'],
             tied=spec['tied'], rope_theta=spec['rope_theta'], eps=spec['eps'])
    if shape['hidden'] % shape['heads'] or shape['heads'] % shape['kv_heads']:
        raise SystemExit('--hidden must be a multiple of --heads, and --heads of --kv-heads')
    config = dict(spec['config'])
    config.update({
        'hidden_size': c['hidden'], 'intermediate_size': c['intermediate'], 'max_position_embeddings': spec['context'],
        'num_attention_heads': c['heads'], 'num_hidden_layers': c['layers'], 'num_key_value_heads': c['kv_heads'],
        'rms_norm_eps': c['eps'], 'rope_theta': c['rope_theta'], 'tie_word_embeddings': c['tied'], 'vocab_size': vocab,
        **special_ids,
    })
    write_json(os.path.join(tmp, 'config.json'), dict(sorted(config.items())))
    write_json(os.path.join(tmp, 'tokenizer.json'), tokenizer)
    write_json(os.path.join(tmp, 'tokenizer_config.json'), tokenizer_config)

    torch.manual_seed(seed)
    model = llama.Decoder(c)
    llama.randomize(model, seed)
    torch.save(model.state_dict(), os.path.join(tmp, 'reference', 'weights.pt'))
    fp32 = os.path.join(tmp, 'onnx', 'model.onnx')
    llama.export(model, fp32)
    graph = onnx.load(fp32)
    rewrites = {'quantized': variants.dynamic_int8, 'q4': variants.matmul_nbits_4, 'fp16': variants.float16_io}
    for name in variant_names:
        if name == 'fp32':
            continue
        rewritten = rewrites[name](onnx.load(fp32))
        onnx.checker.check_model(rewritten)
        onnx.save(rewritten, os.path.join(tmp, 'onnx', VARIANTS[name]))
    # The exporter writes a model over 2 GB as one file per tensor beside model.onnx: all of them are
    # in `graph` now, and give way to fp32 written as one file or as model.onnx + model.onnx_data.
    for f in os.listdir(os.path.join(tmp, 'onnx')):
        if f not in VARIANTS.values() or f == 'model.onnx':
            os.remove(os.path.join(tmp, 'onnx', f))
    if external:
        onnx.save_model(graph, fp32, save_as_external_data=True, all_tensors_to_one_file=True,
                        location='model.onnx_data', size_threshold=1024)
    elif 'fp32' in variant_names:
        onnx.save(graph, fp32)
    params = sum(p.numel() for p in model.parameters())
    return tmp, {'family': family, 'parameters': params, 'tokenizer_tokens': tokens, 'shape': c}


def unsupported_graphs(folder):
    """Small valid graphs of kinds the engine does not score, for its bad-input tests."""
    os.makedirs(folder, exist_ok=True)
    table = numpy_helper.from_array(np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32), 'table')

    def ids(name):
        return helper.make_tensor_value_info(name, TensorProto.INT64, ['batch_size', 'sequence_length'])

    def floats(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ['batch_size', 'sequence_length', 8])

    def save(name, inputs, outputs, nodes):
        graph = helper.make_graph(nodes, name, inputs, outputs, [table])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 14)])
        onnx.checker.check_model(model)
        onnx.save(model, os.path.join(folder, f'{name}.onnx'))

    # BERT-like: token type ids in, hidden states out.
    save('encoder-only', [ids('input_ids'), ids('attention_mask'), ids('token_type_ids')], [floats('last_hidden_state')],
         [helper.make_node('Gather', ['table', 'input_ids'], ['embedded']),
          helper.make_node('Gather', ['table', 'token_type_ids'], ['typed']),
          helper.make_node('Add', ['embedded', 'typed'], ['last_hidden_state'])])
    # T5/BART-like: the decoder reads encoder inputs and its own decoder_input_ids.
    save('encoder-decoder', [ids('input_ids'), ids('decoder_input_ids')], [floats('logits')],
         [helper.make_node('Gather', ['table', 'input_ids'], ['encoded']),
          helper.make_node('ReduceMean', ['encoded'], ['context'], axes=[1], keepdims=1),
          helper.make_node('Gather', ['table', 'decoder_input_ids'], ['decoded']),
          helper.make_node('Add', ['decoded', 'context'], ['logits'])])
    # A decoder exported for feature extraction: no past key/values, no logits.
    save('no-past-no-logits', [ids('input_ids'), ids('attention_mask')], [floats('last_hidden_state')],
         [helper.make_node('Gather', ['table', 'input_ids'], ['last_hidden_state'])])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True, help='the folder that receives one subfolder per stand-in')
    ap.add_argument('--data', default=os.path.join(HERE, '..', '..', '..', 'shared', 'data'), help='real records to train tokenizers on')
    ap.add_argument('--only', choices=sorted(FAMILIES), help='one family (with the shape flags below)')
    ap.add_argument('--name', help='the output folder for --only (default: the family\'s name)')
    ap.add_argument('--variants', default='fp32,quantized,q4,fp16', help='comma-separated: ' + ','.join(VARIANTS))
    ap.add_argument('--external-data', action='store_true', help='fp32 as onnx/model.onnx + onnx/model.onnx_data')
    for flag in ('layers', 'hidden', 'heads', 'kv-heads', 'intermediate', 'merges'):
        ap.add_argument(f'--{flag}', type=int)
    ap.add_argument('--vocab-size', type=int, help='embedding rows (default: the tokenizer\'s size, rounded as the family does)')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    if (args.name or any(getattr(args, f) for f in ('layers', 'hidden', 'heads', 'kv_heads', 'intermediate', 'vocab_size', 'merges'))) and not args.only:
        ap.error('--name and the shape flags need --only <family>')
    chosen = [v.strip() for v in args.variants.split(',') if v.strip()]
    for v in chosen:
        if v not in VARIANTS:
            ap.error(f'unknown variant {v}')

    jobs = []
    for family in ([args.only] if args.only else list(FAMILIES)):
        spec = FAMILIES[family]
        shape = {k: getattr(args, k) or spec[k] for k in ('layers', 'hidden', 'heads', 'kv_heads', 'intermediate', 'merges')}
        shape['vocab_size'] = args.vocab_size
        if args.only:
            jobs.append((args.name or family, family, shape, chosen, args.external_data))
        else:
            jobs.append((family, family, shape, chosen, False))
            if family == 'qwen2':
                jobs.append(('qwen2-external', family, shape, ['fp32'], True))
    os.makedirs(args.out, exist_ok=True)
    texts = []
    learned = {}

    def tokenizers(family, merges):
        if (family, merges) not in learned:
            texts[:] = texts or training_texts(args.data)
            learned[(family, merges)] = FAMILIES[family]['tokenizer'](texts, merges)
        return learned[(family, merges)]

    for name, family, shape, names, external in jobs:
        folder = os.path.join(args.out, name)
        stamp = generator_hash({'family': family, 'shape': shape, 'variants': names, 'external': external, 'seed': args.seed})
        stamp_file = os.path.join(folder, 'STANDIN.json')
        if os.path.exists(stamp_file) and json.load(open(stamp_file)).get('generator') == stamp:
            print(f'{folder}: up to date')
            continue
        tmp, about = make_model(folder, family, shape, tokenizers, names, external, args.seed)
        write_json(os.path.join(tmp, 'STANDIN.json'), {'generator': stamp, 'variants': names, 'external_data': external, **about})
        # Swapped in whole; when another run of the generator got there first, its folder is kept.
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f'{folder}: {about["parameters"] / 1e6:.2f}M parameters, {about["tokenizer_tokens"]} tokenizer tokens, '
              f'vocabulary {about["shape"]["vocab"]}, variants {", ".join(names)}{" (external data)" if external else ""}')
    if not args.only:
        unsupported = os.path.join(args.out, 'unsupported')
        stamp = generator_hash({'unsupported': True})
        stamp_file = os.path.join(unsupported, 'STANDIN.json')
        if not (os.path.exists(stamp_file) and json.load(open(stamp_file)).get('generator') == stamp):
            unsupported_graphs(unsupported)
            write_json(stamp_file, {'generator': stamp})


if __name__ == '__main__':
    main()
