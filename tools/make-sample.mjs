// Cuts the bundled sample (samples/mixed-120.alpaca.json) from the real datasets in ../shared/data:
// 40 records from each Alpaca file, all from the demo model's held-out records (never trained on)
// and outside its 100-record self-check set. Deterministic; run once, the output is committed.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';

const files = ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json'];
const trim = (r) => [r.instruction.trim(), (r.input ?? '').trim(), r.output.trim()];
const id = (r) => createHash('sha256').update(trim(r).join('\u0000')).digest('hex').slice(0, 16);
const check = new Set(JSON.parse(readFileSync('models/demo/heldout-check.json', 'utf8')).map(id));
const sample = [];
for (const file of files) {
  const records = JSON.parse(readFileSync(`../shared/data/${file}`, 'utf8'));
  const heldOut = records.filter((r) => parseInt(id(r).slice(0, 2), 16) < 8 && !check.has(id(r)));
  sample.push(...heldOut.slice(0, 40));
}
mkdirSync('samples', { recursive: true });
writeFileSync('samples/mixed-120.alpaca.json', JSON.stringify(sample, null, 2) + '\n');
console.log(`wrote ${sample.length} records`);
