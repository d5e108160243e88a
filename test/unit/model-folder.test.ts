import assert from 'node:assert/strict';
import { closeSync, cpSync, openSync, readSync, statSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readModelFolder } from '../../server/model/folder';
import { demoModel, scratchDir } from '../helpers';

test("a model folder's fingerprint follows its graph's bytes, also when the graph is rewritten in place", () => {
  const folder = join(scratchDir('folder'), 'demo');
  cpSync(demoModel, folder, { recursive: true });
  const first = readModelFolder(folder).fingerprint;
  assert.equal(readModelFolder(folder).fingerprint, first, 'the same files: the same fingerprint');
  assert.equal(readModelFolder(demoModel).fingerprint, first, 'a copy is the same model');

  // One byte of the graph changed, the size kept: a new fingerprint (the graph's hash is not reused).
  const onnx = join(folder, 'model.onnx');
  const { size, mtime } = statSync(onnx);
  const fd = openSync(onnx, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, size - 1);
  writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, size - 1);
  closeSync(fd);
  utimesSync(onnx, mtime, new Date(mtime.getTime() + 5000));
  assert.equal(statSync(onnx).size, size);
  assert.notEqual(readModelFolder(folder).fingerprint, first);
});
