/**
 * The borders between rooms (ARCHITECTURE.md), checked on the bundles the build writes: the extension
 * host never loads ONNX Runtime or the tokenizer, and the server never imports `vscode`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { repoRoot } from '../helpers';

interface Metafile {
  inputs: Record<string, { imports: { path: string; external?: boolean }[] }>;
}

function bundle(name: string): { text: string; inputs: string[]; externals: string[] } {
  const text = readFileSync(join(repoRoot, 'dist', `${name}.js`), 'utf8');
  const meta = JSON.parse(readFileSync(join(repoRoot, 'dist', `${name}.meta.json`), 'utf8')) as Metafile;
  const externals = Object.values(meta.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path));
  return { text, inputs: Object.keys(meta.inputs), externals };
}

const required = (text: string): string[] => [...text.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]!);

before(() => {
  execFileSync(process.execPath, [join(repoRoot, 'tools', 'build.mjs')], { cwd: repoRoot, stdio: 'pipe' });
});

test('dist/extension.js holds no model runtime, tokenizer or engine scoring code', () => {
  const { text, inputs, externals } = bundle('extension');
  assert.ok(inputs.some((i) => i.startsWith('extension/')));
  assert.deepEqual(inputs.filter((i) => /onnxruntime|tokenizers|server\/(scoring|model|lsp)\//.test(i)), []);
  assert.ok(!/onnxruntime|@huggingface\/tokenizers/.test(text), 'no mention of onnxruntime or the tokenizer package');
  assert.deepEqual([...new Set(externals.filter((e) => !e.startsWith('node:') && !isBuiltin(e)))], ['vscode']);
  // Of the server's code, only the protocol file (types and message names) crosses the border.
  assert.deepEqual(inputs.filter((i) => i.startsWith('server/')), ['server/protocol.ts']);
});

test('dist/server.js and dist/scoring-worker.js never require vscode', () => {
  for (const name of ['server', 'scoring-worker']) {
    const { text, inputs, externals } = bundle(name);
    assert.ok(!externals.includes('vscode'), `${name} imports vscode`);
    assert.ok(!required(text).includes('vscode'), `${name}.js requires vscode`);
    assert.deepEqual(inputs.filter((i) => i.startsWith('extension/') || i.startsWith('webview/')), []);
  }
  // The model runtime is loaded by the worker only: the server's message loop never runs a model.
  assert.ok(!required(bundle('server').text).includes('onnxruntime-node'));
  assert.ok(required(bundle('scoring-worker').text).includes('onnxruntime-node'));
});

function isBuiltin(name: string): boolean {
  return (require('node:module') as typeof import('node:module')).builtinModules.includes(name);
}
