/**
 * What Choose Model offers from this machine: the models Ollama has pulled, listed by the server from a
 * store laid out as Ollama lays it out (here in a scratch folder), as `nuggets.model` values that the
 * engine resolves to the same blobs. And how a GGUF import reads in Score Dataset's progress.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveOllama } from '../../server/model/gguf/ollama';
import { ollamaModels } from '../../server/lsp/model-choices';
import { importText } from '../../server/lsp/model-identity';
import { scratchDir } from '../helpers';

/** Writes a manifest at manifests/<parts...> whose model layer is the blob sha256-<digest>, and that blob. */
function pull(store: string, parts: string[], digest: string): void {
  const manifest = join(store, 'manifests', ...parts);
  mkdirSync(join(manifest, '..'), { recursive: true });
  writeFileSync(manifest, JSON.stringify({
    schemaVersion: 2,
    layers: [
      { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${digest}`, size: 4 },
      { mediaType: 'application/vnd.ollama.image.template', digest: `sha256:${'f'.repeat(64)}`, size: 1 },
    ],
  }));
  mkdirSync(join(store, 'blobs'), { recursive: true });
  writeFileSync(join(store, 'blobs', `sha256-${digest}`), 'GGUF');
}

test('the picker lists every pulled model as ollama:NAME:TAG, library models by their short name, and each resolves to its blob', () => {
  const store = join(scratchDir('ollama-store'), 'models');
  pull(store, ['registry.ollama.ai', 'library', 'smollm2', '135m'], 'a'.repeat(64));
  pull(store, ['registry.ollama.ai', 'library', 'smollm2', 'latest'], 'a'.repeat(64));
  pull(store, ['registry.ollama.ai', 'library', 'qwen2.5', '0.5b-instruct-q4_K_M'], 'b'.repeat(64));
  pull(store, ['registry.ollama.ai', 'someone', 'tiny-llama', 'v1'], 'c'.repeat(64));
  // Not a model: a folder where a tag file belongs is passed over.
  mkdirSync(join(store, 'manifests', 'registry.ollama.ai', 'library', 'broken', 'sub'), { recursive: true });

  const listed = ollamaModels(store);
  assert.equal(listed.store, store);
  assert.deepEqual(listed.models, [
    'ollama:qwen2.5:0.5b-instruct-q4_K_M',
    'ollama:smollm2:135m',
    'ollama:smollm2:latest',
    'ollama:someone/tiny-llama:v1',
  ]);
  // What the picker writes into nuggets.model is what the engine opens.
  assert.deepEqual(listed.models.map((spec) => resolveOllama(spec, store).blob), [
    join(store, 'blobs', `sha256-${'b'.repeat(64)}`),
    join(store, 'blobs', `sha256-${'a'.repeat(64)}`),
    join(store, 'blobs', `sha256-${'a'.repeat(64)}`),
    join(store, 'blobs', `sha256-${'c'.repeat(64)}`),
  ]);
});

test('without an Ollama store, or with an empty one, the picker offers no Ollama models', () => {
  const dir = scratchDir('ollama-none');
  assert.deepEqual(ollamaModels(join(dir, 'missing')), { store: join(dir, 'missing'), models: [] });
  mkdirSync(join(dir, 'empty', 'manifests'), { recursive: true });
  mkdirSync(join(dir, 'empty', 'blobs'), { recursive: true });
  assert.deepEqual(ollamaModels(join(dir, 'empty')).models, []);
});

test('a GGUF import reads in Score Dataset\'s progress as hashing, then a percentage, or as already imported', () => {
  assert.equal(importText('SmolLM2-135M-Instruct.Q4_1.gguf', { phase: 'hashing', done: 0, total: 98_362_432 }), 'hashing SmolLM2-135M-Instruct.Q4_1.gguf (98.4 MB)…');
  assert.equal(importText('SmolLM2-135M-Instruct.Q4_1.gguf', { phase: 'importing', done: 40, total: 100 }), 'importing SmolLM2-135M-Instruct.Q4_1.gguf: 40%');
  assert.equal(importText('ollama:smollm2:135m', { phase: 'importing', done: 999, total: 1000 }), 'importing ollama:smollm2:135m: 99%');
  assert.equal(importText('ollama:smollm2:135m', { phase: 'cached', done: 1, total: 1 }), 'ollama:smollm2:135m: already imported');
});
