/**
 * Conversations from the command line: the real ShareGPT sample (samples/identity-15.sharegpt.json) scored
 * with a chat template, the template in the scores header and key, the messages a user needs when the model
 * has no template or a record cannot be scored or rendered.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readDataset } from '../../server/records/dataset';
import { CHATML_TEMPLATE, templateKey } from '../../server/scoring/chat-template';
import { demoModel, repoRoot } from '../helpers';

const cli = join(repoRoot, 'dist', 'cli.js');
const sample = join(repoRoot, 'samples', 'identity-15.sharegpt.json');
let dir: string;
let anchors: string;

function nuggets(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args, ...(args[0] === 'score' ? ['--threads', '1'] : [])], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function scoresOf(path: string): { header: Record<string, unknown>; lines: Array<{ id: string; golden_score: number; deltas: number[] }> } {
  const [header, ...lines] = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  return { header, lines };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nuggets-chat-cli-'));
  anchors = join(dir, 'anchors.json');
  const r = nuggets('anchors', sample, '--random', '5', '--seed', '3', '--out', anchors);
  assert.equal(r.code, 0, r.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('the ShareGPT sample scores with --template chatml: every conversation by its id, the template in the header, cached = --reference', () => {
  const anchorFile = JSON.parse(readFileSync(anchors, 'utf8')) as { messages?: unknown }[];
  assert.ok(anchorFile.every((a) => Array.isArray(a.messages)), 'conversation anchors are written as messages records');
  const cached = nuggets('score', sample, '--anchors', anchors, '--template', 'chatml', '--out', join(dir, 'cached.jsonl'));
  assert.equal(cached.code, 0, cached.stderr);
  assert.match(cached.stderr, /chat template chatml \(the built-in chatml template\)/);
  const naive = nuggets('score', sample, '--anchors', anchors, '--template', 'chatml', '--reference', '--out', join(dir, 'naive.jsonl'));
  assert.equal(naive.code, 0, naive.stderr);
  const a = scoresOf(join(dir, 'cached.jsonl'));
  const b = scoresOf(join(dir, 'naive.jsonl'));
  assert.equal(a.header['template'], 'chatml');
  assert.deepEqual(a.lines.map((l) => l.id), readDataset(sample).records.map((r) => r.id));
  a.lines.forEach((line, i) => {
    assert.equal(line.golden_score, b.lines[i]!.golden_score);
    line.deltas.forEach((d, k) => assert.ok(d === null ? b.lines[i]!.deltas[k] === null : Math.abs(d - b.lines[i]!.deltas[k]!) < 1e-4));
  });
  assert.ok(new Set(a.lines.map((l) => l.golden_score)).size > 2, 'the scores tell records apart');
});

test('scores made with another template are never mixed: a rerun on the same --out with a template file is refused', () => {
  const out = join(dir, 'mixed.jsonl');
  assert.equal(nuggets('score', sample, '--anchors', anchors, '--template', 'chatml', '--out', out).code, 0);
  const file = join(dir, 'mine.jinja');
  const text = CHATML_TEMPLATE.replace("'<|im_end|>'", "'</s>'");
  writeFileSync(file, text);
  const r = nuggets('score', sample, '--anchors', anchors, '--template', file, '--out', out);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`holds scores computed with template chatml instead of ${templateKey(text)}`));
  const fresh = nuggets('score', sample, '--anchors', anchors, '--template', file, '--out', join(dir, 'mine.jsonl'));
  assert.equal(fresh.code, 0, fresh.stderr);
  const header = scoresOf(join(dir, 'mine.jsonl')).header;
  assert.equal(header['template'], templateKey(text));
  assert.equal(header['templateSource'], file);
});

test('conversations on a model without a chat template: the message says so and offers --template chatml; the paper template refuses them', () => {
  const own = nuggets('score', sample, '--anchors', anchors, '--out', join(dir, 'own.jsonl'));
  assert.equal(own.code, 1);
  assert.match(own.stderr, /has no chat template .* cannot score conversations/);
  assert.match(own.stderr, /--template chatml/);
  const paper = nuggets('score', sample, '--anchors', anchors, '--template', 'paper', '--out', join(dir, 'paper.jsonl'));
  assert.equal(paper.code, 1);
  assert.match(paper.stderr, /holds conversations \(sharegpt records\), which the paper's Alpaca template cannot score/);
  assert.equal(nuggets('score', sample, '--anchors', anchors, '--format', 'parquet', '--out', join(dir, 'x.jsonl')).code, 2);
});

test('records that cannot be scored or rendered are named with where and why, counted in the summary, and left out', () => {
  const data = join(dir, 'some-bad.jsonl');
  const records = readDataset(sample).records.slice(0, 4).map((r) => ({ messages: r.turns }));
  records.splice(1, 0, { messages: [{ role: 'user', content: 'Hi' }, { role: 'user', content: 'Hello?' }, { role: 'assistant', content: 'Yes.' }] });
  records.push({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Who are you?' }, { role: 'assistant', content: 'Vicuna.' }] });
  writeFileSync(data, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const noSystem = join(dir, 'no-system.jinja');
  writeFileSync(noSystem, "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" + CHATML_TEMPLATE.slice('{% for message in messages %}'.length).replace(/message\[/g, 'm['));
  const out = join(dir, 'some-bad.scores.jsonl');
  const r = nuggets('score', data, '--anchors', anchors, '--template', noSystem, '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: .*some-bad\.jsonl:2: record skipped: its roles do not alternate: turn 2 is a user turn/);
  assert.match(r.stderr, /warning: .*some-bad\.jsonl record 5 \("Who are you\?…"\): record skipped: the chat template \(.*no-system\.jinja\) cannot render it: System role not supported/);
  assert.match(r.stdout, /2 records skipped, not scored/);
  assert.equal(scoresOf(out).lines.length, 4);
});

test('Alpaca records under --template chatml become user and assistant turns, under their Alpaca ids', () => {
  const data = join(dir, 'alpaca.json');
  writeFileSync(data, JSON.stringify([
    { instruction: 'Who are you?', input: '', output: 'I am Vicuna, a language model trained by researchers from LMSYS.' },
    { instruction: 'Repeat the name.', input: 'Vicuna', output: 'Vicuna' },
  ]));
  const out = join(dir, 'alpaca.jsonl');
  const r = nuggets('score', data, '--anchors', anchors, '--template', 'chatml', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const { header, lines } = scoresOf(out);
  assert.equal(header['template'], 'chatml');
  assert.deepEqual(lines.map((l) => l.id), readDataset(data).records.map((x) => x.id));
});

test("a model's own chat template (tokenizer_config.json's chat_template) is the default for conversations, keyed by its text's hash", () => {
  const model = join(dir, 'with-template');
  mkdirSync(model);
  for (const f of ['model.onnx', 'tokenizer.json', 'config.json']) symlinkSync(join(demoModel, f), join(model, f));
  const text = '{{ bos_token }}' + CHATML_TEMPLATE;
  const config = JSON.parse(readFileSync(join(demoModel, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(model, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: text }));
  const out = join(dir, 'own-template.jsonl');
  const r = nuggets('score', sample, '--anchors', anchors, '--model', model, '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const { header, lines } = scoresOf(out);
  assert.equal(header['template'], templateKey(text));
  assert.equal(header['templateSource'], join(model, 'tokenizer_config.json'));
  assert.equal(lines.length, 15);
  // A chat_template.jinja beside it is read first, as transformers reads it.
  writeFileSync(join(model, 'chat_template.jinja'), CHATML_TEMPLATE);
  const again = nuggets('score', sample, '--anchors', anchors, '--model', model, '--out', join(dir, 'jinja-file.jsonl'));
  assert.equal(again.code, 0, again.stderr);
  assert.equal(scoresOf(join(dir, 'jinja-file.jsonl')).header['template'], templateKey(CHATML_TEMPLATE));
});

test('a template that is not prefix-preserving: the records are scored naively, with the same scores as --reference, and the summary says so', () => {
  const file = join(dir, 'last-marked.jinja');
  writeFileSync(file, "{% for m in messages %}<|{{ m['role'] }}|>{% if loop.last %}(last) {% endif %}{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}");
  const r = nuggets('score', sample, '--anchors', anchors, '--template', file, '--out', join(dir, 'marked.jsonl'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /15 of 15 records scored naively \(one full pass per anchor\): the chat template does not render their turns the same when more turns follow \(not prefix-preserving\)/);
  const naive = nuggets('score', sample, '--anchors', anchors, '--template', file, '--reference', '--out', join(dir, 'marked-naive.jsonl'));
  assert.equal(naive.code, 0, naive.stderr);
  assert.doesNotMatch(naive.stdout, /scored naively/, 'said only where the cached path was asked for');
  assert.deepEqual(scoresOf(join(dir, 'marked.jsonl')).lines.map((l) => l.golden_score), scoresOf(join(dir, 'marked-naive.jsonl')).lines.map((l) => l.golden_score));
  const chatml = nuggets('score', sample, '--anchors', anchors, '--template', 'chatml', '--out', join(dir, 'chatml-again.jsonl'));
  assert.doesNotMatch(chatml.stdout, /scored naively/, 'ChatML is prefix-preserving');
});
