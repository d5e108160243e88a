/**
 * What Select Golden Subset offers: the rules, their short labels and descriptions, and which one is
 * suggested first. Plain data and decisions, without vscode, so that they can be tested alone.
 */
import type { SelectionRule } from '../server/protocol';

export type RuleGroup = 'Suggested' | 'Threshold' | 'Top percent' | 'Top k' | 'Diverse: skipping near-duplicates';

export interface RuleChoice {
  group: RuleGroup;
  /** Short enough for the quick pick never to cut it ("Top 10%, diverse"); the detail goes to `description`. */
  label: string;
  description: string;
  rule: SelectionRule;
  /** Records it keeps, as previewed. */
  kept: number;
}

/** The paper's choice: the top 1% (at least one record, as top-percent rounds up). */
const isPaper = (rule: SelectionRule): boolean => rule.kind === 'top-percent' && rule.percent === 1 && rule.diverse === undefined;

/** The rules offered, in their groups' order, for a dataset of `total` records. */
export function offeredRules(total: number): { group: RuleGroup; rule: SelectionRule }[] {
  const diverse: RuleGroup = 'Diverse: skipping near-duplicates';
  return [
    ...[0.85, 0.8, 0.5].map((minScore) => ({ group: 'Threshold' as const, rule: { kind: 'min-score' as const, minScore } })),
    ...[1, 10, 25].map((percent) => ({ group: 'Top percent' as const, rule: { kind: 'top-percent' as const, percent } })),
    { group: 'Top k', rule: { kind: 'top', count: Math.max(1, Math.min(100, total)) } },
    { group: diverse, rule: { kind: 'top-percent', percent: 10, diverse: 0.9 } },
    { group: diverse, rule: { kind: 'min-score', minScore: 0.5, diverse: 0.9 } },
  ];
}

/** "Golden score ≥ 0.85", "Top 1%", "Top 100", "Top 10%, diverse": a rule in a few words. */
export function shortLabel(rule: SelectionRule): string {
  const size = rule.kind === 'min-score' ? `Golden score ≥ ${rule.minScore}` : rule.kind === 'top' ? `Top ${rule.count}`
    : rule.kind === 'top-percent' ? `Top ${rule.percent}%` : 'Every record within the bounds';
  return rule.diverse !== undefined ? `${size}, diverse` : size;
}

/** A rule in full, for messages: "Top 10% of records, diverse (cosine < 0.9)". */
export function fullLabel(rule: SelectionRule): string {
  const diverse = rule.diverse !== undefined ? `, diverse (cosine < ${rule.diverse})` : '';
  switch (rule.kind) {
    case 'min-score': return `Golden score ≥ ${rule.minScore}${diverse}`;
    case 'top': return `Top ${rule.count} records${diverse}`;
    case 'top-percent': return `Top ${rule.percent}% of records${diverse}`;
    case 'all': return `Every record within the bounds${diverse}`;
  }
}

/**
 * The choices in the order shown, the suggested one first: the paper's top 1% when it keeps a record, else the
 * first threshold that keeps one, else the first rule that keeps any (accepting the default never writes nothing
 * while something can be written). `counts[i]` is what `rules[i]` keeps.
 */
export function ruleChoices(rules: readonly { group: RuleGroup; rule: SelectionRule }[], counts: readonly number[], total: number): RuleChoice[] {
  const keeps = (n: number): string => `keeps ${n} of ${total} (${total > 0 ? ((100 * n) / total).toFixed(1) : '0.0'}%)`;
  const choices = rules.map(({ group, rule }, i): RuleChoice => {
    const detail = [
      ...(rule.diverse !== undefined ? [`cosine < ${rule.diverse} to every kept record`] : []),
      ...(isPaper(rule) ? ['the paper\'s choice'] : []),
    ];
    return { group, label: shortLabel(rule), description: [...detail, keeps(counts[i] ?? 0)].join(' · '), rule, kept: counts[i] ?? 0 };
  });
  const suggested = [choices.find((c) => isPaper(c.rule) && c.kept > 0), choices.find((c) => c.rule.kind === 'min-score' && c.rule.diverse === undefined && c.kept > 0),
    choices.find((c) => c.kept > 0), choices.find((c) => isPaper(c.rule))].find((c) => c !== undefined);
  if (!suggested) return choices;
  return [{ ...suggested, group: 'Suggested' }, ...choices.filter((c) => c !== suggested)];
}
