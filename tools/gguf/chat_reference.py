"""Independent naive reference for conversations scored with a GGUF model's own chat template, for the tests.

Development and test tooling only: nothing a user runs needs Python. It computes ALGORITHM.md's
"Conversations and chat templates" numbers without any of the engine's code:

- the template is the GGUF file's own `tokenizer.chat_template`, read by the `gguf` package (not from
  the model folder the importer wrote), and its special tokens (bos_token, eos_token, unk_token,
  pad_token) are the texts of the file's token ids;
- it is rendered by `jinja2` as transformers' apply_chat_template renders it (a sandboxed environment
  with trim_blocks and lstrip_blocks, loop controls, raise_exception, tojson), never by @huggingface/jinja;
- rendered text is tokenized without special tokens by the `tokenizers` package (Hugging Face's Rust
  library) on the tokenizer.json given, never by @huggingface/tokenizers;
- spans are token counts of separately tokenized texts: the prompt P, then P + response;
- every sequence is scored by reference.py's float64 forward (GGUFModel). The pairs of one candidate share
  a token prefix: the longest one common to them all, found here, runs once and its float64 keys and
  values serve the pairs (the numbers of one whole sequence per pair, at a fraction of the cost).

Usage (stdin JSON -> stdout JSON):

    {"gguf": "model.gguf", "tokenizer": "folder/tokenizer.json", "max_anchor_tokens": 64,
     "candidates": [[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}], ...],
     "anchors": [[...], ...]}
    -> {"template": the GGUF's chat template text, "special": {"bos_token": ...},
        "anchors": [{"prompt": P0, "tokens": [...], "from": F, "scored": n, "sum": s0}],
        "pairs": [[{"prompt": P1, "tokens": [...], "from": F, "sum": s1}, ...] per candidate],
        "deltas": [[s1 - s0 per anchor] per candidate], "golden": [fraction of deltas > 0 per candidate],
        "shared_prefix": [tokens run once per candidate]}

An anchor whose n(a) <= 0 is excluded (its delta is null and it does not count in the golden score).
Requires: pip install gguf==0.19.0 numpy jinja2 tokenizers (tools/setup.sh).
"""
import json
import math
import os
import sys

# OpenBLAS uses every core unless OPENBLAS_NUM_THREADS says otherwise. On a quiet 2-core machine that is faster
# (test/unit/gguf-model.test.ts's 24x10 span check: 75 s, against 109 s with one thread); on cores shared with
# other busy processes its spinning threads were measured 19x slower: set OPENBLAS_NUM_THREADS=1 there.

import jinja2
import jinja2.ext
import jinja2.sandbox
from tokenizers import Tokenizer

sys.dont_write_bytecode = True  # no __pycache__ left in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import GGUFModel, run_groups  # noqa: E402  (the float64 forward beside this file)


def field_value(reader, key):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def template_and_specials(reader, path):
    """The file's chat template and the texts of its special token ids, as the gguf package reads them."""
    template = field_value(reader, 'tokenizer.chat_template')
    if template is None:
        raise SystemExit(f'chat_reference.py: {path} has no tokenizer.chat_template')
    tokens = field_value(reader, 'tokenizer.ggml.tokens')
    special = {}
    for name, key in (('bos_token', 'bos_token_id'), ('eos_token', 'eos_token_id'), ('unk_token', 'unknown_token_id'), ('pad_token', 'padding_token_id')):
        token_id = field_value(reader, f'tokenizer.ggml.{key}')
        if token_id is not None:
            special[name] = tokens[int(token_id)]
    return template, special


def compile_template(text):
    """jinja2, set up as transformers sets it up for chat templates."""
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters['tojson'] = tojson
    env.globals['raise_exception'] = raise_exception
    return env.from_string(text)


def main():
    job = json.load(sys.stdin)
    model = GGUFModel(job['gguf'])
    template_text, special = template_and_specials(model.reader, job['gguf'])
    template = compile_template(template_text)
    tokenizer = Tokenizer.from_file(job['tokenizer'])
    limit = int(job['max_anchor_tokens'])

    def render(turns, generation_prompt):
        return template.render(messages=turns, add_generation_prompt=generation_prompt, **special)

    def tok(text):
        return tokenizer.encode(text, add_special_tokens=False).ids

    anchors = []
    for turns in job['anchors']:
        context, response = turns[:-1], turns[-1]['content']
        prompt = render(context, True)
        start = len(tok(prompt))
        tokens = tok(prompt + response)[:limit]
        scored = len(tokens) - start
        s0 = None
        if scored > 0:
            (values, _), = model.score_rows([(tokens, start, len(tokens))])
            s0 = math.fsum(values)
        anchors.append({'prompt': prompt, 'tokens': tokens, 'from': start, 'scored': max(0, scored), 'sum': s0})

    all_pairs, all_deltas, golden, shared = [], [], [], []
    for candidate in job['candidates']:
        pairs = []
        for a, turns in zip(anchors, job['anchors']):
            if a['scored'] == 0:
                pairs.append(None)
                continue
            prompt = render(candidate + turns[:-1], True)
            start = len(tok(prompt))
            tokens = tok(prompt + turns[-1]['content'])[:start + a['scored']]
            pairs.append({'prompt': prompt, 'tokens': tokens, 'from': start})
        scored_pairs = [p for p in pairs if p is not None]
        if not scored_pairs:
            raise SystemExit('chat_reference.py: every anchor is excluded (n(a) <= 0): raise max_anchor_tokens')
        # The longest token prefix all pairs share, ending before the earliest scored position.
        common = min(p['from'] for p in scored_pairs) - 1
        first = scored_pairs[0]['tokens']
        for p in scored_pairs[1:]:
            k = 0
            while k < common and p['tokens'][k] == first[k]:
                k += 1
            common = k
        prefix = first[:common]
        shared.append(common)
        # One float64 pass over the shared prefix, then every pair's remaining tokens continue its keys and values.
        rows = [{'tokens': p['tokens'][common:], 'from': p['from'], 'to': len(p['tokens'])} for p in scored_pairs]
        sums = iter(run_groups(model, [{'prefix': prefix, 'rows': rows}])['sums'] if common > 0 else
                    [math.fsum(values) for values, _ in model.score_rows([(p['tokens'], p['from'], len(p['tokens'])) for p in scored_pairs])])
        deltas = []
        for a, p in zip(anchors, pairs):
            if p is None:
                deltas.append(None)
                continue
            p['sum'] = next(sums)
            deltas.append(p['sum'] - a['sum'])
        counted = [d for d in deltas if d is not None]
        golden.append(sum(1 for d in counted if d > 0) / len(counted))
        all_pairs.append(pairs)
        all_deltas.append(deltas)

    json.dump({'template': template_text, 'special': special, 'anchors': anchors, 'pairs': all_pairs,
               'deltas': all_deltas, 'golden': golden, 'shared_prefix': shared}, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
