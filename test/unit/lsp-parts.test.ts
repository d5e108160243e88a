import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { escapeMarkdown, hoverMarkdown, shorten, turnsMarkdown } from '../../server/lsp/markdown';
import { ModelIdentity } from '../../server/lsp/model-identity';
import { markUnrenderable, parseDocument, readDocument, recordAtLine, scorableRecords } from '../../server/lsp/parsed';
import { describeProblem, problemMark } from '../../server/records/problems';
import { ChatTemplate, CHATML_TEMPLATE, chatmlTemplate } from '../../server/scoring/chat-template';
import type { ScoringWorker } from '../../server/lsp/worker';
import type { ServerSettings } from '../../server/protocol';
import { demoModel, scratchDir } from '../helpers';

test('dataset text is escaped so that no Markdown construct can form', () => {
  const hostile = '[x](command:foo) <img src=x onerror=alert(1)> `code` **bold** # h\n- item https://e.co www.e.co a@b.co &amp; |';
  const escaped = escapeMarkdown(hostile);
  assert.equal(escaped.replace(/\\./g, '').match(/[!-/:-@[-`{-~]/g), null);
  assert.ok(!escaped.includes('\n'));
  assert.equal(escaped.replace(/\\(.)/g, '$1'), hostile.replace(/\s+/g, ' '));
});

test('shorten cuts on code points and marks the cut', () => {
  assert.equal(shorten('a  b\n c', 10), 'a b c');
  assert.equal(shorten('😀'.repeat(10), 4), '😀😀😀…');
});

test('a hover lists the anchors helped and hurt most, largest first', () => {
  const anchors = ['one', 'two', 'three', 'four', 'five'].map((instruction) => ({ instruction, input: '', output: '' }));
  const markdown = hoverMarkdown({
    score: { index: 0, id: 'x', goldenScore: 0.4, wins: 2, anchors: 5, meanDelta: -0.1, deltas: [0.5, -1.25, 2, -0.01, 0], truncated: false },
    stale: false, anchors, top: 3,
  });
  assert.match(markdown, /Golden score 0\.40\*\* · 2\/5 anchors helped · mean Δ -0\.100 nats/);
  const rows = [...markdown.matchAll(/^\| ([+-][\d.]+) \| (\d+)\\\. \u2068(\w+)\u2069 \|$/gm)].map((m) => [m[1], m[3]]);
  assert.deepEqual(rows, [['+2.000', 'three'], ['+0.500', 'one'], ['-1.250', 'two'], ['-0.010', 'four']]);
});

test('a hover shows anchor instructions and the model name as text: no link, command or HTML forms from them', () => {
  const hostile = '[Clear](command:nuggets.clearScores) <img src=x onerror=alert(1)> |';
  const markdown = hoverMarkdown({
    score: { index: 0, id: 'x', goldenScore: 1, wins: 1, anchors: 1, meanDelta: 0.5, deltas: [0.5], truncated: false },
    stale: false, anchors: [{ instruction: hostile, input: '', output: '' }],
    source: { model: '<b>model</b>](command:x)', anchors: '[a](http://e.co)', demo: false },
  });
  const row = markdown.split('\n').find((line) => line.startsWith('| +0.500 |'))!;
  assert.equal(row, `| +0.500 | 1\\. \u2068${String.raw`\[Clear\]\(command\:nuggets\.clearScores\) \<img src\=x onerror\=alert\(1\)\> \|`}\u2069 |`);
  assert.ok(markdown.includes(`Model \u2068${String.raw`\<b\>model\<\/b\>\]\(command\:x\)`}\u2069 · anchors: \u2068${String.raw`\[a\]\(http\:\/\/e\.co\)`}\u2069`), markdown);
  assert.doesNotMatch(markdown, /(?<!\\)[[<]/);
});

test('in a hover, an anchor\'s text and the model\'s name are isolated: right-to-left text cannot reorder the words around them', () => {
  const anchors = [{ instruction: 'ترجم النص \u2069\u202E', input: '', output: '' }];
  const markdown = hoverMarkdown({
    score: { index: 0, id: 'x', goldenScore: 1, wins: 1, anchors: 1, meanDelta: 1, deltas: [1], truncated: false },
    stale: false, anchors, source: { model: 'نموذج', anchors: 'k-means 1 of this file', demo: false },
  });
  assert.match(markdown, /\| 1\\\. \u2068ترجم النص \u202E\u2069 \|/, 'a stray closing isolate in the text cannot end the isolation early');
  assert.match(markdown, /Model \u2068نموذج\u2069 · anchors: \u2068k\\-means 1 of this file\u2069/);
});

test('any line of a record finds that record; lines between records find none', () => {
  const text = '[\n  {\n    "instruction": "a",\n    "output": "b"\n  },\n\n  {"instruction": "c", "output": "d"}\n]\n';
  const parsed = parseDocument(TextDocument.create('file:///d.json', 'json', 1, text))!;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((line) => recordAtLine(parsed, line)), [undefined, 0, 0, 0, 0, undefined, 1, undefined]);
});

test('JSON that is not a dataset is left alone', () => {
  const settingsFile = JSON.stringify({ name: 'assistant', prompt: 'You are terse.', messages: ['hi'] }, null, 2);
  for (const text of ['{"name": "x", "version": "1"}', '[1, 2, 3]', '[{"question": "a", "answer": "b"}]', '', settingsFile]) {
    assert.equal(parseDocument(TextDocument.create('file:///x.json', 'json', 1, text)), undefined, text);
  }
  const jsonl = '{"instruction": "a", "output": "b"}\n{"instruction": "c", "input": "i", "output": "d"}\n';
  assert.equal(parseDocument(TextDocument.create('file:///x.jsonl', 'jsonl', 1, jsonl))!.records.length, 2);
  // A JSON Lines dataset broken on its first line still reads as one (its problem is shown), not as other JSON.
  const broken = readDocument(TextDocument.create('file:///x.jsonl', 'jsonl', 1, '{"messages": [{"role": "user", "content": "Hi"}\n'));
  assert.ok(broken && 'problem' in broken, 'a problem, not undefined');
});

test('the editor reads every format the command line reads, detected per file or as the format setting names it', () => {
  const turns = [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi!' }];
  const files: [string, unknown][] = [
    ['messages', { messages: turns }],
    ['sharegpt', { conversations: [{ from: 'human', value: 'Say hi.' }, { from: 'gpt', value: 'Hi!' }] }],
    ['prompt-completion', { prompt: 'Say hi.', completion: 'Hi!' }],
    ['alpaca with history', { instruction: 'Say hi.', output: 'Hi!', history: [['Hello?', 'Hello.']] }],
  ];
  const ids = new Set<string>();
  for (const [name, record] of files) {
    const parsed = parseDocument(TextDocument.create('file:///c.jsonl', 'jsonl', 1, `${JSON.stringify(record)}\n`))!;
    assert.ok(parsed, name);
    assert.equal(parsed.conversations, true, name);
    assert.deepEqual(parsed.records[0]!.turns!.slice(-2), turns, name);
    if (name !== 'alpaca with history') ids.add(parsed.records[0]!.id);
  }
  assert.equal(ids.size, 1, 'the same conversation has one id in every format');
  const dolly = parseDocument(TextDocument.create('file:///d.json', 'json', 1, '[{"instruction": "Say hi.", "context": "", "response": "Hi!"}]'))!;
  assert.equal(dolly.conversations, false);
  assert.equal(dolly.records[0]!.output, 'Hi!');
  // Records carrying both shapes: the setting decides.
  const both = JSON.stringify([{ instruction: 'Say bye.', output: 'Bye', messages: turns }]);
  assert.equal(parseDocument(TextDocument.create('file:///b.json', 'json', 1, both))!.records[0]!.output, 'Hi!');
  assert.equal(parseDocument(TextDocument.create('file:///b.json', 'json', 1, both), 'alpaca')!.records[0]!.output, 'Bye');
});

test('records that cannot be scored stay in place as unscorable problem records, with why; the others keep their ranges', () => {
  const lines = [
    { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] },
    { messages: [{ role: 'user', content: 'Hi' }, { role: 'user', content: 'Anyone?' }] },
    { messages: [{ role: 'user', content: 'Bye' }, { role: 'assistant', content: 'Goodbye' }] },
  ];
  const text = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
  const parsed = parseDocument(TextDocument.create('file:///p.jsonl', 'jsonl', 1, text))!;
  assert.deepEqual(parsed.records.map((r) => r.index), [0, 1, 2]);
  assert.deepEqual(parsed.ranges.map((r) => r.start.line), [0, 1, 2]);
  assert.deepEqual(parsed.problems.get(1), { unscorable: 'it has no assistant turn' });
  assert.deepEqual([...parsed.problems.keys()], [1]);
  assert.match(parsed.records[1]!.id, /^unscorable:/);
  assert.deepEqual(scorableRecords(parsed).map((r) => r.output), ['Hello', 'Goodbye']);
  assert.equal(describeProblem(parsed.problems.get(1)!), 'cannot be scored: it has no assistant turn');
  assert.equal(problemMark(parsed.problems.get(1)!), 'unscorable');
});

test('a conversation in a hover: roles, text escaped and isolated (no link, HTML or command forms), the scored turn marked, long ones cut', () => {
  const hostile = '[click](command:nuggets.clearScores) <img src=x> \u202Eevil\u2069 *bold*';
  const text = turnsMarkdown([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: hostile }, { role: 'assistant', content: 'Fine.' }]);
  assert.match(text, /^\*\*Conversation\*\* · 3 turns/);
  assert.match(text, /\*\*system\*\*: \u2068Be brief\\\.\u2069/);
  assert.match(text, /\*\*assistant\*\* \*\(scored\)\*: \u2068Fine\\\.\u2069$/);
  const user = text.split('\n').find((l) => l.startsWith('**user**'))!;
  const dataset = user.slice(user.indexOf('\u2068') + 1, user.lastIndexOf('\u2069'));
  assert.equal(dataset, escapeMarkdown('[click](command:nuggets.clearScores) <img src=x> \u202Eevil *bold*'), 'every punctuation character of the turn is escaped');
  assert.doesNotMatch(dataset, /(^|[^\\])[[\]()<>*]/, 'no unescaped bracket, parenthesis, angle bracket or asterisk');
  assert.ok(!dataset.includes('\u2069'), 'the turn\'s own isolate closer is dropped');
  const long = Array.from({ length: 12 }, (_, k) => ({ role: k % 2 === 0 ? 'user' as const : 'assistant' as const, content: `turn ${k + 1}` }));
  const cut = turnsMarkdown(long);
  assert.match(cut, /turn 1\u2069/);
  assert.match(cut, /… 7 earlier turns/);
  assert.deepEqual([...cut.matchAll(/turn (\d+)\u2069/g)].map((m) => Number(m[1])), [1, 9, 10, 11, 12]);
});

test('records the chat template raises on become unscorable problem records; under the paper template they are not', () => {
  const raising = new ChatTemplate(`{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}${CHATML_TEMPLATE}`, 'no-system.jinja', 'chat:x', {});
  const text = [
    JSON.stringify({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] }),
    JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] }),
  ].join('\n');
  const parsed = parseDocument(TextDocument.create('file:///s.jsonl', 'jsonl', 1, text))!;
  markUnrenderable(parsed, raising);
  assert.deepEqual(parsed.problems.get(0), { unscorable: 'the chat template (no-system.jinja) cannot render it: no system role' });
  assert.equal(parsed.problems.has(1), false);
  markUnrenderable(parsed, chatmlTemplate());
  assert.equal(parsed.problems.size, 0);
});

test('in an untrusted workspace the server opens no model it would download, import or call; a model folder is only read', async () => {
  const gguf = join(scratchDir('untrusted-gguf'), 'weights.gguf');
  writeFileSync(gguf, 'GGUF');
  // The scoring worker, recording which models it was asked to open.
  const opened: string[] = [];
  const worker = { identify: (model: string) => (opened.push(model), Promise.resolve({ name: model, fingerprint: 'f' })) } as unknown as ScoringWorker;
  const settings = (model: string, scoringAllowed: boolean): ServerSettings => ({ model, anchors: null, maxAnchorTokens: 200, batchSize: 8, threads: 1, scoringAllowed });
  const untrusted = new ModelIdentity(worker, () => undefined);
  for (const model of ['hf:owner/name', 'http://evil.example:8000/v1', 'ollama:llama3', gguf]) {
    assert.equal(await untrusted.of(settings(model, false), { threads: 1 }), undefined, model);
    assert.equal(untrusted.error, 'Scoring is disabled in untrusted workspaces.');
  }
  assert.deepEqual(opened, []);
  assert.deepEqual(await untrusted.of(settings(demoModel, false), { threads: 1 }), { name: demoModel, fingerprint: 'f' });
  assert.deepEqual(await new ModelIdentity(worker, () => undefined).of(settings(gguf, true), { threads: 1 }), { name: gguf, fingerprint: 'f' }, 'trusted, the same file is opened');
  assert.deepEqual(opened, [demoModel, gguf]);
});

test('while a model lookup is under way, stored scores are shown under the identity found last time (remembered in storage); a run waits for the lookup, and a lookup that finds another identity has the documents shown again', async () => {
  const file = join(scratchDir('remembered-identity'), 'models.json');
  const endpoint = 'http://gpu.example:8000/v1';
  const settings: ServerSettings = { model: endpoint, anchors: null, maxAnchorTokens: 200, batchSize: 8, threads: 1, scoringAllowed: true };
  // A worker whose lookups end only when the test says.
  const pending: ((identity: { name: string; fingerprint: string }) => void)[] = [];
  const worker = { identify: () => new Promise((resolve) => pending.push(resolve)) } as unknown as ScoringWorker;

  // A first session: nothing remembered, so the lookup is waited for; its answer is remembered.
  const first = new ModelIdentity(worker, () => undefined, file);
  const found = first.of(settings, { threads: 1 });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(pending.length, 1);
  pending[0]!({ name: 'served A', fingerprint: 'aaaa' });
  assert.deepEqual(await found, { name: 'served A', fingerprint: 'aaaa' });

  // A later session, the endpoint not answering: the remembered identity at once, for showing scores only.
  const later = new ModelIdentity(worker, () => undefined, file);
  let changed = 0;
  later.onChanged = () => changed++;
  assert.deepEqual(await later.of(settings, { threads: 1 }), { name: 'served A', fingerprint: 'aaaa' });
  let runGot: unknown = 'waiting';
  const run = later.of(settings, { threads: 1 }, { signal: new AbortController().signal }).then((identity) => (runGot = identity));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(runGot, 'waiting', 'a run waits for the lookup itself');
  // The endpoint now serves another model: the run gets it, and the documents are shown again.
  pending[1]!({ name: 'served B', fingerprint: 'bbbb' });
  await run;
  assert.deepEqual(runGot, { name: 'served B', fingerprint: 'bbbb' });
  assert.equal(changed, 1);
  assert.deepEqual(await later.of(settings, { threads: 1 }), { name: 'served B', fingerprint: 'bbbb' });
  assert.deepEqual(Object.values(JSON.parse(readFileSync(file, 'utf8')) as object), [{ name: 'served B', fingerprint: 'bbbb' }]);
});
