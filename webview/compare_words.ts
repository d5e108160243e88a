/**
 * The words of the dashboard's Compare Models section (drawn by webview/compare.ts): the last comparison of the
 * dataset's current model with another, each figure with what it means. An undefined Spearman is named as
 * undefined, with its reason, never printed as a number. Without the DOM, so that it can be tested alone.
 */
import type { CompareModelsResult } from './protocol-types';

export interface ComparisonFigure {
  figure: string;
  value: string;
  meaning: string;
}

const percent = (x: number, digits = 0): string => `${(100 * x).toFixed(digits)}%`;

/** One row per figure: its name, its value (or "undefined"), and what it says about the two models. */
export function comparisonFigures(c: CompareModelsResult): ComparisonFigure[] {
  return [
    {
      figure: 'Spearman rank correlation, golden score',
      value: c.goldenSpearman === null ? 'undefined' : c.goldenSpearman.toFixed(3),
      meaning: c.goldenSpearman === null
        ? `Undefined: ${c.goldenSpearmanUndefined ?? 'the golden scores could not be ranked'}.`
        : 'How alike the two models order the sample by golden score: 1 is the same order, 0 no relation, −1 the reverse order.',
    },
    {
      figure: 'Spearman rank correlation, IFD',
      value: c.ifdSpearman === null ? 'undefined' : c.ifdSpearman.toFixed(3),
      meaning: c.ifdSpearman === null
        ? `Undefined: ${c.ifdPairs < 3 ? `both models define IFD for ${c.ifdPairs} record${c.ifdPairs === 1 ? '' : 's'} only; a rank correlation needs at least 3` : 'one model gave every record the same IFD'}.`
        : `The same for IFD (instruction-following difficulty), over the ${c.ifdPairs} records where both models define it.`,
    },
    {
      figure: 'Top-10% overlap',
      value: percent(c.top10Overlap),
      meaning: 'Of the records the current model ranks in the best 10% of the sample, the share the other model ranks there too.',
    },
    {
      figure: `Decisions at golden score ≥ ${c.threshold}`,
      value: `${percent(c.decisionAgreement, 1)} agree`,
      meaning: `Records that both models keep, or both leave out, at this threshold. The current model keeps ${c.kept[0]} of ${c.sample}, the other ${c.kept[1]}.`,
    },
  ];
}

/** The sentence above the figures: whether the current model can stand in for the other, and on what. */
export function comparisonHeadline(c: CompareModelsResult): { parts: Array<string | { name: string }> } {
  const [current, other] = c.models;
  return {
    parts: c.standsIn
      ? [{ name: current }, ' can stand in for ', { name: other }, `: it ranks these ${c.sample} random records alike.`]
      : [{ name: current }, ' cannot stand in for ', { name: other }, `: it ranks these ${c.sample} random records differently (a stand-in needs a golden Spearman of at least 0.80 and 60% of the top 10% shared).`],
  };
}

