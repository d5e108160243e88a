/**
 * What differs on macOS and Windows, simulated here (the tests run on Linux): the cache folder each
 * system expects, Windows drive-letter document URIs, backslash paths, and CRLF datasets.
 */
import assert from 'node:assert/strict';
import { win32 } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseDataset } from '../../server/records/dataset';
import { defaultCacheDir } from '../../server/io/files';

test('the cache lives where each system keeps caches, and NUGGETS_CACHE wins everywhere', () => {
  assert.equal(defaultCacheDir('win32', { LOCALAPPDATA: 'C:\\Users\\Ann\\AppData\\Local' }, 'C:\\Users\\Ann'), 'C:\\Users\\Ann\\AppData\\Local\\nuggets\\Cache');
  assert.equal(defaultCacheDir('win32', {}, 'C:\\Users\\Ann'), 'C:\\Users\\Ann\\AppData\\Local\\nuggets\\Cache');
  assert.equal(defaultCacheDir('darwin', { XDG_CACHE_HOME: '/ignored' }, '/Users/ann'), '/Users/ann/Library/Caches/nuggets');
  assert.equal(defaultCacheDir('linux', {}, '/home/ann'), '/home/ann/.cache/nuggets');
  assert.equal(defaultCacheDir('linux', { XDG_CACHE_HOME: '/var/cache/ann' }, '/home/ann'), '/var/cache/ann/nuggets');
  for (const platform of ['win32', 'darwin', 'linux'] as const) {
    assert.equal(defaultCacheDir(platform, { NUGGETS_CACHE: '/srv/nuggets' }, '/home/ann'), '/srv/nuggets');
  }
  assert.ok(!defaultCacheDir('win32', {}, 'C:\\Users\\Ann').includes('/'), 'no forward slash in a Windows path');
});

test('a Windows document URI as VS Code sends it (drive letter, escaped colon) maps to the file and back', () => {
  const uri = 'file:///c%3A/Users/Ann/My%20Data/alpaca_data.json';
  const path = fileURLToPath(uri, { windows: true });
  assert.equal(path, 'c:\\Users\\Ann\\My Data\\alpaca_data.json');
  assert.equal(win32.basename(path), 'alpaca_data.json');
  assert.equal(win32.join(win32.dirname(path), 'alpaca_data.golden-top10pct.json'), 'c:\\Users\\Ann\\My Data\\alpaca_data.golden-top10pct.json');
  assert.equal(pathToFileURL(path, { windows: true }).href.toLowerCase(), 'file:///c:/users/ann/my%20data/alpaca_data.json');
});

test('a dataset saved with Windows line ends reads the same records, with ranges on the right lines', () => {
  const records = [{ instruction: 'Add 2 and 3.', input: '', output: '5' }, { instruction: 'Name a colour.', input: '', output: 'Blue' }];
  const lf = JSON.stringify(records, null, 2);
  const crlf = lf.replace(/\n/g, '\r\n');
  const a = parseDataset(lf, 'lf.json');
  const b = parseDataset(crlf, 'crlf.json');
  assert.deepEqual(b.records.map((r) => r.id), a.records.map((r) => r.id));
  const lineOf = (text: string, offset: number): number => text.slice(0, offset).split('\n').length - 1;
  assert.deepEqual(b.records.map((r) => lineOf(crlf, r.start)), a.records.map((r) => lineOf(lf, r.start)));
});
