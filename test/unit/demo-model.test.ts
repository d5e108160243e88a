import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { readDataset } from '../../server/records/dataset';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { LocalBackend } from '../../server/scoring/local';
import { demoModel } from '../helpers';

test('the demo model learns in context: an anchor given as its own one-shot candidate becomes more likely for >= 90% of 100 held-out records', async () => {
  const backend = await LocalBackend.open(demoModel);
  try {
    const records = readDataset(join(demoModel, 'heldout-check.json')).records;
    assert.equal(records.length, 100);
    const prepared = await backend.prepareAnchors(records, DEFAULT_OPTIONS);
    let positive = 0;
    let total = 0;
    for (let i = 0; i < records.length; i++) {
      const { oneShot } = await backend.oneShot(records[i]!, prepared, [i]);
      const delta = oneShot[0]! - prepared.zeroShot[i]!;
      if (delta > 0) positive++;
      total += delta;
    }
    console.log(`demo model one-shot self check: ${positive}/100 positive, mean delta ${(total / 100).toFixed(2)} nats`);
    assert.ok(positive >= 90, `${positive}/100 positive`);
  } finally {
    await backend.dispose();
  }
});
