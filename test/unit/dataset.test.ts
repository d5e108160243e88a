import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseDataset, recordId } from '../../server/records/dataset';
import { NuggetsError } from '../../server/io/errors';
import { sharedData } from '../helpers';

test('reads a real Alpaca JSON file with each record\'s range and content id', () => {
  const path = sharedData('gpteacher-roleplay.alpaca.json');
  const text = readFileSync(path, 'utf8');
  const { format, records } = parseDataset(text, path);
  assert.equal(format, 'json');
  assert.equal(records.length, 3146);
  const r = records[7]!;
  assert.equal(JSON.parse(text.slice(r.start, r.end)).instruction.trim(), r.instruction);
  assert.equal(r.id, recordId(r));
  assert.match(r.id, /^[0-9a-f]{16}$/);
});

test('maps Self-Instruct seed tasks to one record per instance', () => {
  const path = sharedData('alpaca-seed-tasks.jsonl');
  const { format, records } = parseDataset(readFileSync(path, 'utf8'), path);
  assert.equal(format, 'jsonl');
  assert.ok(records.length >= 175);
  assert.ok(records.every((r) => r.instruction !== '' && typeof r.output === 'string'));
});

test('malformed JSON names the line and column', () => {
  const text = '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]';
  assert.throws(() => parseDataset(text, 'bad.json'), (err: unknown) => err instanceof NuggetsError && /bad\.json:3:\d+: malformed JSON/.test(err.message));
});

test('a non-string field names the record and the field', () => {
  const text = JSON.stringify([{ instruction: 'a', output: 'b' }, { instruction: 'c', input: 4, output: 'd' }]);
  assert.throws(() => parseDataset(text, 'x.json'), /record 1 field "input" is a number, not a string/);
});

test('a missing output names the record', () => {
  const text = JSON.stringify([{ instruction: 'a' }]);
  assert.throws(() => parseDataset(text, 'x.json'), /record 0 has no "output" field/);
});

test('an empty dataset is refused', () => {
  assert.throws(() => parseDataset('[]', 'empty.json'), /has no records/);
  assert.throws(() => parseDataset('\n\n', 'empty.jsonl'), /has no records/);
});

test('one bad line in a JSON Lines file names that line', () => {
  const lines = [JSON.stringify({ instruction: 'a', output: 'b' }), '{"instruction": "c", "output": ', JSON.stringify({ instruction: 'e', output: 'f' })];
  assert.throws(() => parseDataset(lines.join('\n'), 'x.jsonl'), /x\.jsonl:2:\d+: malformed JSON on line 2/);
});

test('record ranges survive brackets, commas and escaped quotes inside strings', () => {
  const records = [
    { instruction: 'Close ] the } array, "now"', input: '[{,}]', output: 'a\\"b\\\\' },
    { instruction: 'Nested', output: 'x', extra: { list: [1, [2, { y: '}' }]], s: '\\u005d' } },
    { instruction: 'Last', input: '', output: '\n\t,' },
  ];
  const text = `  [\n${records.map((r) => JSON.stringify(r, null, 3)).join(' ,\n\n')}\r\n]\n`;
  const parsed = parseDataset(text, 'tricky.json').records;
  assert.equal(parsed.length, 3);
  parsed.forEach((r, i) => assert.deepEqual(JSON.parse(text.slice(r.start, r.end)), records[i]));
});
