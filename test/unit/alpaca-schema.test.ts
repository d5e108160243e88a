/**
 * The JSON schema contributed for instruction datasets (Alpaca and the chat formats) (package.json contributes.jsonValidation), checked with
 * vscode-json-languageservice, the library behind VS Code's own JSON diagnostics.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { getLanguageService, TextDocument, type Diagnostic } from 'vscode-json-languageservice';
import { repoRoot, sharedData } from '../helpers';

const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  contributes: { jsonValidation: { fileMatch: string[]; url: string }[] };
};
const contribution = manifest.contributes.jsonValidation[0]!;
const schemaUri = 'file:///alpaca.schema.json';
const service = getLanguageService({
  schemaRequestService: async (uri) => {
    if (uri !== schemaUri) throw new Error(`unexpected schema request ${uri}`);
    return readFileSync(join(repoRoot, contribution.url), 'utf8');
  },
});
service.configure({ validate: true, schemas: [{ uri: schemaUri, fileMatch: contribution.fileMatch }] });

async function diagnose(text: string, name = 'data.alpaca.json'): Promise<Diagnostic[]> {
  const document = TextDocument.create(`file:///work/${name}`, 'json', 1, text);
  return service.doValidation(document, service.parseJSONDocument(document));
}

test('the contributed schema exists and applies to Alpaca file names', () => {
  assert.equal(contribution.url, './media/alpaca.schema.json');
  assert.ok(contribution.fileMatch.includes('*.alpaca.json'));
});

test('a real Alpaca file validates without diagnostics', async () => {
  assert.deepEqual(await diagnose(readFileSync(sharedData('gpteacher-toolformer.alpaca.json'), 'utf8')), []);
});

test('malformed records get diagnostics at the record and field at fault', async () => {
  const text = [
    '[',
    '  {"instruction": "Add 2 and 3.", "input": "", "output": "5"},',
    '  {"instruction": "Name a colour.", "input": ""},',
    '  {"instruction": "Double it.", "input": 4, "output": "8"},',
    '  {"instruction": "", "output": "nothing asked"}',
    ']',
  ].join('\n');
  const diagnostics = await diagnose(text);
  const at = (line: number): string[] => diagnostics.filter((d) => d.range.start.line === line).map((d) => d.message);
  assert.deepEqual(at(1), []);
  assert.match(at(2).join(' '), /output/);
  assert.match(at(3).join(' '), /string/i);
  assert.deepEqual(at(4), ['The instruction is empty: state the task.']);
});

test('other JSON files are not checked against it', async () => {
  assert.deepEqual(await diagnose('{"name": "x"}', 'package.json'), []);
});

/** Real conversations (FastChat's identity data, Apache-2.0) and real Alpaca records, written in each chat format. */
function realRecords(): { sharegpt: string; messages: string; promptCompletion: string; dolly: string; alpacaHistory: string } {
  const chats = JSON.parse(readFileSync(sharedData('fastchat-identity.sharegpt.json'), 'utf8')) as { conversations: { from: string; value: string }[] }[];
  const alpaca = (JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')) as { instruction: string; input: string; output: string }[]).slice(0, 20);
  const turns = (c: (typeof chats)[number]): { role: string; content: string }[] => c.conversations.map((t) => ({ role: t.from === 'human' ? 'user' : 'assistant', content: t.value }));
  const some = chats.slice(0, 30);
  return {
    sharegpt: readFileSync(join(repoRoot, 'samples', 'identity-15.sharegpt.json'), 'utf8'),
    messages: JSON.stringify(some.map((c) => ({ messages: turns(c) })), null, 2),
    promptCompletion: JSON.stringify([
      ...alpaca.slice(0, 10).map((r) => ({ prompt: r.instruction, completion: r.output })),
      ...some.slice(0, 10).map((c) => ({ prompt: turns(c).slice(0, -1), completion: turns(c).slice(-1) })),
    ], null, 2),
    dolly: JSON.stringify(alpaca.map((r) => ({ instruction: r.instruction, context: r.input, response: r.output, category: 'open_qa' })), null, 2),
    alpacaHistory: JSON.stringify(some.filter((c) => c.conversations.length >= 4).map((c) => {
      const t = turns(c);
      const pairs: [string, string][] = [];
      for (let k = 0; k + 2 < t.length; k += 2) pairs.push([t[k]!.content, t[k + 1]!.content]);
      return { system: 'You are a helpful assistant.', instruction: t[t.length - 2]!.content, input: '', output: t[t.length - 1]!.content, history: pairs };
    }), null, 2),
  };
}

test('real records in every chat format validate without diagnostics: ShareGPT, messages, prompt/completion (strings and message lists), Dolly, Alpaca with system and history', async () => {
  for (const [format, text] of Object.entries(realRecords())) {
    assert.deepEqual(await diagnose(text, 'data.sharegpt.json'), [], format);
  }
  for (const name of ['data.sharegpt.json', 'data.messages.json', 'data.dolly.json']) assert.ok(contribution.fileMatch.some((m) => new RegExp(`^${m.replace(/\./g, '\\.').replace(/\*/g, '.*')}$`).test(name)), name);
});

test('malformed chat records get diagnostics at the record at fault', async () => {
  const text = [
    '[',
    '  {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},',
    '  {"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "{}"}]},',
    '  {"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]},',
    '  {"prompt": "Add 2 and 3.", "completion": 5},',
    '  {"instruction": "Go on.", "output": "Done.", "history": [["Hi", "Hello", "extra"]]},',
    '  {"instruction": "Name a colour.", "context": "", "response": 7}',
    ']',
  ].join('\n');
  const diagnostics = await diagnose(text);
  const at = (line: number): string[] => diagnostics.filter((d) => d.range.start.line === line).map((d) => d.message);
  assert.deepEqual(at(1), []);
  for (const line of [2, 3, 4, 5, 6]) assert.ok(at(line).length > 0, `line ${line} has a diagnostic`);
  assert.match(at(2).join(' '), /system|user|assistant/);
  assert.match(at(3).join(' '), /human|gpt/);
});
