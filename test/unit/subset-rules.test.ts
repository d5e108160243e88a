/** Select Golden Subset's choices (extension/subset_rules.ts): accepting the default writes records, and no label is cut. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fullLabel, offeredRules, ruleChoices } from '../../extension/subset_rules';

/** What the quick pick shows of a label before cutting it at a narrow width. */
const WIDEST_LABEL = 28;

test('the suggested rule, first in the pick, is the paper\'s top 1% when it keeps records, not a threshold that keeps none', () => {
  const offered = offeredRules(400);
  // ≥ 0.85 and ≥ 0.8 keep nothing in this dataset; top 1% keeps 4.
  const counts = offered.map(({ rule }) => (rule.kind === 'min-score' ? (rule.minScore >= 0.8 ? 0 : 120) : rule.kind === 'top-percent' ? Math.ceil(4 * rule.percent) : 100));
  const choices = ruleChoices(offered, counts, 400);
  assert.deepEqual([choices[0]!.group, choices[0]!.label, choices[0]!.kept], ['Suggested', 'Top 1%', 4]);
  assert.equal(choices[0]!.description, 'the paper\'s choice · keeps 4 of 400 (1.0%)');
  assert.equal(choices.filter((c) => c.label === 'Top 1%').length, 1, 'offered once');
  assert.equal(choices.length, offered.length);
});

test('when the top 1% keeps nothing (every record a problem record but a few), the first threshold that keeps a record is suggested', () => {
  const offered = offeredRules(50);
  const counts = offered.map(({ rule }) => (rule.kind === 'min-score' && rule.minScore === 0.5 && rule.diverse === undefined ? 2 : 0));
  const first = ruleChoices(offered, counts, 50)[0]!;
  assert.deepEqual([first.group, first.label, first.kept], ['Suggested', 'Golden score ≥ 0.5', 2]);
});

test('labels are short; a diverse rule\'s detail goes to its description', () => {
  const offered = offeredRules(1000);
  const choices = ruleChoices(offered, offered.map(() => 10), 1000);
  for (const c of choices) assert.ok(c.label.length <= WIDEST_LABEL, `"${c.label}" fits`);
  const diverse = choices.find((c) => c.rule.diverse !== undefined && c.rule.kind === 'top-percent')!;
  assert.equal(diverse.label, 'Top 10%, diverse');
  assert.equal(diverse.description, 'cosine < 0.9 to every kept record · keeps 10 of 1000 (1.0%)');
  assert.equal(fullLabel(diverse.rule), 'Top 10% of records, diverse (cosine < 0.9)');
});
