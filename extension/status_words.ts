/**
 * What the status bar item says to a screen reader (its accessibilityInformation): plain words, without the
 * icons (`$(sync~spin)`, `◆`) or the Markdown escapes (`&nbsp;`) of its text and tooltip. Without vscode, so that
 * it can be tested alone.
 */

export type StatusState =
  | { kind: 'invalid'; problem: string }
  | { kind: 'running'; scored: number; total: number; eta: string; done: number; todo: number }
  | { kind: 'idle'; scored: number; total: number; demo: boolean; source: string };

export function statusLabel(state: StatusState): string {
  switch (state.kind) {
    case 'invalid':
      return `Nuggets: not a valid dataset. ${state.problem} Activate to go to the error.`;
    case 'running':
      return `Nuggets: scoring, ${state.scored} of ${state.total} records scored, ${state.eta}; ${state.done} of ${state.todo} records in this run.`;
    case 'idle': {
      const complete = state.total > 0 && state.scored === state.total;
      const demo = state.demo ? ' Scored by the bundled demo model, which is for trying the tool, not for curation.' : '';
      return complete
        ? `Nuggets: every record is scored, ${state.scored} of ${state.total}${state.source}.${demo} Activate for the dashboard.`
        : `Nuggets: ${state.scored} of ${state.total} records scored${state.source}.${demo} Activate to score the rest.`;
    }
  }
}
