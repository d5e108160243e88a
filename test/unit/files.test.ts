/** Outputs never touch the inputs and are never seen half written (server/io/files.ts). */
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { assertNotInput, writeFileAtomic } from '../../server/io/files';
import { scratchDir } from '../helpers';

test('an atomic write replaces the file whole: a reader that opened the old file reads the old file to its end', () => {
  const dir = scratchDir('atomic');
  const path = join(dir, 'subset.json');
  const old = JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ instruction: `old ${i}`, output: 'o' })));
  writeFileSync(path, old);
  const reader = openSync(path, 'r');
  try {
    writeFileAtomic(path, '[]');
    const buffer = Buffer.alloc(old.length + 16);
    const read = readSync(reader, buffer, 0, buffer.length, 0);
    assert.equal(buffer.toString('utf8', 0, read), old);
  } finally {
    closeSync(reader);
  }
  assert.equal(readFileSync(path, 'utf8'), '[]');
  assert.deepEqual(readdirSync(dir), ['subset.json'], 'no temporary file is left');
});

test('a write that fails says where and leaves no temporary file beside the target', () => {
  const dir = scratchDir('atomic-fails');
  const path = join(dir, 'card.md');
  mkdirSync(path); // a folder where the file should go: the rename fails
  assert.throws(() => writeFileAtomic(path, 'text'), (err: Error) => err.message.includes(path));
  assert.deepEqual(readdirSync(dir), ['card.md']);
});

test('an output path that names an input, however it is spelled, is refused', () => {
  const dir = scratchDir('not-input');
  const dataset = join(dir, 'data.json');
  for (const spelled of [`${dir}/sub/../data.json`, `${dir}//./data.json`, relative(process.cwd(), dataset)]) {
    assert.throws(() => assertNotInput(spelled, ['other.json', dataset]), /Refusing to write .*data\.json: it is an input of this command and is never modified/, spelled);
  }
  assert.doesNotThrow(() => assertNotInput(join(dir, 'data.golden.json'), [dataset]));
});
