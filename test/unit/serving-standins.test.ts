/**
 * The serving stand-ins (test/support/vllm-server.ts, sglang-server.ts) compute independently of the engine:
 * neither they nor any module they import (transitively, within this repository) comes from server/, so a
 * tokenization or batching bug shared with the engine cannot pass the protocol tests on both sides.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers';

/** Every repository module `entry` imports, itself included, followed through relative imports. */
function importClosure(entry: string): { modules: string[]; bare: string[] } {
  const seen = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)) {
      const spec = m[1] ?? m[2] ?? m[3] ?? m[4]!;
      if (!spec.startsWith('.')) {
        bare.add(spec);
        continue;
      }
      const base = resolve(dirname(file), spec);
      const target = [`${base}.ts`, join(base, 'index.ts'), base].find((p) => existsSync(p));
      assert.ok(target, `${relative(repoRoot, file)} imports ${spec}, which was not found`);
      visit(target);
    }
  };
  visit(entry);
  return { modules: [...seen].map((f) => relative(repoRoot, f).split('\\').join('/')), bare: [...bare] };
}

for (const standin of ['vllm-server.ts', 'sglang-server.ts']) {
  test(`the ${standin} stand-in imports nothing from server/ (nor anything that does)`, () => {
    const { modules, bare } = importClosure(join(repoRoot, 'test', 'support', standin));
    assert.ok(modules.includes('test/support/onnx-standin.ts'), `it computes with the shared plain-ONNX helper: ${modules.join(', ')}`);
    assert.deepEqual(modules.filter((m) => !m.startsWith('test/support/')), [], 'only test/support/ modules');
    for (const own of ['onnxruntime-node', '@huggingface/tokenizers']) assert.ok(bare.includes(own), `its own ${own}: ${bare.join(', ')}`);
    assert.ok(!bare.some((b) => b.includes('server')), `no package path into server/: ${bare.join(', ')}`);
  });
}

test('the closure follows imports: a module that imports server/ is seen', () => {
  const { modules } = importClosure(join(repoRoot, 'test', 'unit', 'serving.test.ts'));
  assert.ok(modules.some((m) => m.startsWith('server/')), modules.join(', '));
});
