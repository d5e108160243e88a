/** A command run on a file with no records says so (extension/no_records.ts), in the words the command line uses. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noRecordsMessage } from '../../extension/no_records';

test('an empty array, an empty file and blank lines have no records; other JSON is not called empty', () => {
  for (const text of ['[]', '\uFEFF[ \n ]\n', '', '\n  \n']) {
    assert.equal(noRecordsMessage('data.json', text), 'data.json has no records: add {"instruction", "input", "output"} records to it (a JSON array, or one object per line), then run the command again.');
  }
  for (const text of ['{}', '[1]', '{"name": "x"}', '[{"instruction": "a", "output": "b"}]']) assert.equal(noRecordsMessage('data.json', text), undefined, text);
});
