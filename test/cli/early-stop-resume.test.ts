/**
 * `nuggets score --min-score` resumed: the stored records are learned first (server/scoring/anchor-order.ts), so a
 * run stopped after 20 records and resumed writes, line for line, the scores file of one uninterrupted run.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, scratchDir, sharedData } from '../helpers';

test('a resumed --min-score run skips the same anchors as one uninterrupted run', { timeout: 300_000 }, async () => {
  const dir = scratchDir('early-stop-resume');
  const records = (JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')) as unknown[]).slice(1000, 1040);
  const pool = (JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')) as unknown[]).slice(2000, 2100);
  writeFileSync(join(dir, 'data.json'), JSON.stringify(records));
  writeFileSync(join(dir, 'pool.json'), JSON.stringify(pool));
  const anchors = await runCli(dir, ['anchors', 'pool.json', '--kmeans', '24', '--out', 'anchors.json']);
  assert.equal(anchors.code, 0, anchors.stderr);
  const score = (dataset: string, out: string): ReturnType<typeof runCli> =>
    runCli(dir, ['score', dataset, '--anchors', 'anchors.json', '--out', out, '--min-score', '0.85', '--batch-size', '8', '--threads', '1']);

  const whole = await score('data.json', 'whole.jsonl');
  assert.equal(whole.code, 0, whole.stderr);
  // Interrupted after 20 records: the same file cut there, then the run again on the whole file.
  const lines = readFileSync(join(dir, 'whole.jsonl'), 'utf8').split('\n');
  writeFileSync(join(dir, 'resumed.jsonl'), lines.slice(0, 21).join('\n') + '\n');
  const resumed = await score('data.json', 'resumed.jsonl');
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /20 already in resumed\.jsonl, skipped/);
  const body = (file: string): string[] => readFileSync(join(dir, file), 'utf8').split('\n').slice(1);
  assert.deepEqual(body('resumed.jsonl'), body('whole.jsonl'));
  // The order changed during the run: the bounded records do not all leave the same anchors unscored.
  const skipped = new Set(body('whole.jsonl').filter((l) => l.includes('"bound"')).map((l) => JSON.stringify((JSON.parse(l) as { deltas: unknown[] }).deltas.map((d) => d === null))));
  assert.ok(skipped.size > 1);
});
