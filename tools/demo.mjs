// `npm start`: the main job on the bundled demo model and sample. Chooses 20 k-means anchors, scores
// every record (summary table on stdout), and writes the top 10% as demo-output/golden.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';

const sample = 'samples/mixed-120.alpaca.json';
const out = 'demo-output';
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const steps = [
  ['anchors', sample, '--kmeans', '20', '--seed', '0', '--out', `${out}/anchors.json`],
  ['score', sample, '--anchors', `${out}/anchors.json`, '--out', `${out}/scores.jsonl`],
  ['select', sample, '--scores', `${out}/scores.jsonl`, '--top-percent', '10', '--out', `${out}/golden.json`],
];
for (const args of steps) {
  console.log(`\n$ nuggets ${args.join(' ')}`);
  const r = spawnSync(process.execPath, ['dist/cli.js', ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
