/**
 * The engine's folders are its data flow (README, Layout): io, then records in, the model, scoring, signals and
 * selection out. Each folder imports only the folders before it, read here from every relative import in
 * server/, so that a loop (the store taking its score type from the scoring, as it once did) fails a test.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers';

/** What each engine folder may import, besides itself. */
const ALLOWED: Record<string, readonly string[]> = {
  io: [],
  signals: ['io'],
  records: ['io', 'signals', 'scoring/template.ts'],
  model: ['io', 'records'],
  scoring: ['io', 'records', 'model', 'signals', 'protocol.ts'],
  selection: ['io', 'records', 'scoring', 'signals'],
};

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
}

test('each engine folder imports only the folders before it (records in, model, scoring, signals, selection out)', () => {
  const server = join(repoRoot, 'server');
  const crossings: string[] = [];
  let checked = 0;
  for (const [folder, allowed] of Object.entries(ALLOWED)) {
    const files = readdirSync(join(server, folder), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length > 0, `server/${folder} holds TypeScript files`);
    for (const f of files) {
      const file = join(server, folder, f);
      for (const spec of importsOf(file)) {
        const target = relative(server, resolve(dirname(file), spec)).replace(/\\/g, '/');
        checked++;
        const top = target.split('/')[0]!;
        const ok = top === folder || allowed.some((a) => (a.endsWith('.ts') ? `${target}.ts` === a || target === a : top === a));
        if (!ok) crossings.push(`server/${folder}/${f} imports server/${target}`);
      }
    }
  }
  assert.ok(checked > 100, `${checked} imports read`);
  assert.deepEqual(crossings, []);
});
