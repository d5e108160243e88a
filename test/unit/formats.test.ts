/**
 * Record formats, detected per file (JSON array and JSON Lines) or named: messages, ShareGPT,
 * prompt/completion, Alpaca with system and history, Dolly. Conversations become checked turns with
 * content ids that do not depend on the format; records that cannot be scored are named and skipped.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { conversationId, parseDataset, readDataset, recordId } from '../../server/records/dataset';
import { sharedData } from '../helpers';

const TURNS = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Who are you?' },
  { role: 'assistant', content: 'I am Vicuna.' },
  { role: 'user', content: 'Who made you?' },
  { role: 'assistant', content: 'LMSYS.' },
] as const;

test('ShareGPT (real: fastchat-identity): 500 conversations, human/gpt mapped to user/assistant, contents trimmed', () => {
  const raw = JSON.parse(readFileSync(sharedData('fastchat-identity.sharegpt.json'), 'utf8')) as { conversations: { from: string; value: string }[] }[];
  const dataset = readDataset(sharedData('fastchat-identity.sharegpt.json'));
  assert.equal(dataset.recordFormat, 'sharegpt');
  assert.equal(dataset.records.length, 500);
  assert.deepEqual(dataset.rejected, []);
  dataset.records.forEach((record, i) => {
    assert.deepEqual(record.turns, raw[i]!.conversations.map((c) => ({ role: c.from === 'human' ? 'user' : 'assistant', content: c.value.trim() })));
    assert.equal(record.output, record.turns!.at(-1)!.content);
    assert.equal(record.id, conversationId(record.turns!));
  });
  assert.equal(new Set(dataset.records.map((r) => r.id)).size, new Set(raw.map((r) => JSON.stringify(r.conversations))).size);
});

test('the same conversation as messages, ShareGPT and prompt/completion lists has the same turns and id', () => {
  const messages = parseDataset(JSON.stringify([{ messages: TURNS }]), 'm.json').records[0]!;
  const fromOf = { system: 'system', user: 'human', assistant: 'gpt' } as const;
  const sharegpt = parseDataset(JSON.stringify([{ conversations: TURNS.map((t) => ({ from: fromOf[t.role], value: ` ${t.content}\n` })) }]), 's.json').records[0]!;
  const promptCompletion = parseDataset(JSON.stringify({ prompt: TURNS.slice(0, 4), completion: TURNS.slice(4) }) + '\n', 'p.jsonl');
  assert.equal(promptCompletion.format, 'jsonl');
  assert.equal(promptCompletion.recordFormat, 'prompt-completion');
  assert.deepEqual(messages.turns, TURNS);
  assert.deepEqual(sharegpt.turns, TURNS);
  assert.deepEqual(promptCompletion.records[0]!.turns, TURNS);
  assert.equal(sharegpt.id, messages.id);
  assert.equal(promptCompletion.records[0]!.id, messages.id);
  // ShareGPT's user/assistant spelling reads the same.
  const spelled = parseDataset(JSON.stringify([{ conversations: TURNS.map((t) => ({ from: t.role, value: t.content })) }]), 's2.json').records[0]!;
  assert.equal(spelled.id, messages.id);
});

test('prompt/completion strings are one user turn and one assistant turn', () => {
  const { records } = parseDataset('{"prompt": "Say hi.", "completion": " Hi!"}\n{"prompt": "Count to 2.", "completion": "1, 2"}\n', 'pc.jsonl');
  assert.deepEqual(records.map((r) => r.turns), [
    [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi!' }],
    [{ role: 'user', content: 'Count to 2.' }, { role: 'assistant', content: '1, 2' }],
  ]);
});

test('Alpaca records keep their ids; with a system prompt or history they are conversations', () => {
  const text = JSON.stringify([
    { instruction: 'Add 2 and 3.', input: '', output: '5' },
    { instruction: 'Translate.', input: 'bonjour', output: 'hello', system: 'You translate French.', history: [['Hi', 'Hello! Send French text.']] },
    { instruction: 'Add 1 and 1.', input: '', output: '2', system: '', history: [] },
  ]);
  const { records, recordFormat } = parseDataset(text, 'a.json');
  assert.equal(recordFormat, 'alpaca');
  // The id every scores file written so far holds: sha256 of the trimmed fields joined by NUL, first 16 hex digits.
  assert.equal(records[0]!.id, createHash('sha256').update('Add 2 and 3.\u0000\u00005').digest('hex').slice(0, 16));
  assert.equal(records[0]!.turns, undefined);
  assert.deepEqual(records[1]!.turns, [
    { role: 'system', content: 'You translate French.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello! Send French text.' },
    { role: 'user', content: 'Translate.\n\nbonjour' },
    { role: 'assistant', content: 'hello' },
  ]);
  assert.equal(records[2]!.turns, undefined, 'an empty system prompt and history leave a plain Alpaca record');
  assert.equal(records[2]!.id, recordId({ instruction: 'Add 1 and 1.', input: '', output: '2' }));
});

test('Dolly records read as Alpaca records (context is the input), with the same id', () => {
  const { records, recordFormat } = parseDataset(JSON.stringify([{ instruction: 'Summarise.', context: 'A long text.', response: 'Short.', category: 'summarization' }]), 'd.json');
  assert.equal(recordFormat, 'dolly');
  assert.deepEqual({ ...records[0]!, original: undefined, start: 0, end: 0 }, {
    instruction: 'Summarise.', input: 'A long text.', output: 'Short.', index: 0, id: recordId({ instruction: 'Summarise.', input: 'A long text.', output: 'Short.' }), start: 0, end: 0, original: undefined,
  });
});

test('conversations that cannot be scored are named (file:line, why) and skipped; the others keep their position in the file as their index', () => {
  const lines = [
    { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] },
    { messages: [{ role: 'user', content: 'Hi' }, { role: 'user', content: 'Anyone?' }, { role: 'assistant', content: 'Yes' }] },
    { messages: [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'Hi' }] },
    { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: '   ' }] },
    { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'Bye' }] },
    { messages: [{ role: 'user', content: 'Hi' }, { role: 'tool', content: '{}' }] },
    { messages: [{ role: 'assistant', content: 'I start.' }, { role: 'user', content: 'Fine' }, { role: 'assistant', content: 'Good' }] },
    { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: [{ type: 'text', text: 'Hello' }] }] },
    { messages: [{ role: 'user', content: 'Bye' }, { role: 'assistant', content: 'Goodbye' }] },
  ];
  const text = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
  const dataset = parseDataset(text, 'chat.jsonl');
  assert.deepEqual(dataset.records.map((r) => [r.index, r.output]), [[0, 'Hello'], [8, 'Goodbye']]);
  // Each rejected record's text in the file, for the editor to mark it in place.
  assert.deepEqual(dataset.rejected.map((r) => text.slice(r.start, r.end)), lines.slice(1, 8).map((l) => JSON.stringify(l)));
  // The turns of those that could be read, for the editor to show.
  assert.deepEqual(dataset.rejected[0]!.turns, [{ role: 'user', content: 'Hi' }, { role: 'user', content: 'Anyone?' }, { role: 'assistant', content: 'Yes' }]);
  assert.equal(dataset.rejected[4]!.turns, undefined, 'a role no format has: no turns');
  assert.deepEqual(dataset.rejected.map(({ start: _start, end: _end, turns: _turns, ...r }) => r), [
    { where: 'chat.jsonl:2', position: 1, why: 'its roles do not alternate: turn 2 is a user turn where an assistant turn belongs (an optional system turn first, then user and assistant in turn)' },
    { where: 'chat.jsonl:3', position: 2, why: 'it has no assistant turn' },
    { where: 'chat.jsonl:4', position: 3, why: 'its final assistant turn is empty' },
    { where: 'chat.jsonl:5', position: 4, why: 'its last turn is a user turn: it has no final assistant turn to score' },
    { where: 'chat.jsonl:6', position: 5, why: 'turn 2 has the role "tool", not one of system, user, assistant' },
    { where: 'chat.jsonl:7', position: 6, why: 'its roles do not alternate: turn 1 is an assistant turn where a user turn belongs (an optional system turn first, then user and assistant in turn)' },
    { where: 'chat.jsonl:8', position: 7, why: "turn 2's content is an array, not a string" },
  ]);
});

test('--format overrides detection: a file whose records carry both shapes is read as the format named', () => {
  const text = JSON.stringify([{ instruction: 'Say hi.', output: 'Hi', messages: [{ role: 'user', content: 'Say bye.' }, { role: 'assistant', content: 'Bye' }] }]);
  assert.equal(parseDataset(text, 'x.json').records[0]!.output, 'Bye');
  const asAlpaca = parseDataset(text, 'x.json', 'alpaca');
  assert.equal(asAlpaca.recordFormat, 'alpaca');
  assert.equal(asAlpaca.records[0]!.output, 'Hi');
  assert.equal(asAlpaca.records[0]!.turns, undefined);
});
