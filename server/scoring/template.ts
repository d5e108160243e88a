/** The paper's prompt template (ALGORITHM.md). Changing it changes every score, so it is versioned. */
import type { Example } from '../records/dataset';
import { NuggetsError } from '../io/errors';

export const TEMPLATE_ID = 'nuggets-alpaca-v1';

export function queryText(e: Pick<Example, 'instruction' | 'input'>): string {
  return e.input !== ''
    ? `Instruction:\n${e.instruction}\nInput:\n${e.input}\nResponse:\n`
    : `Instruction:\n${e.instruction}\nResponse:\n`;
}

export function fullText(e: Example): string {
  return queryText(e) + e.output;
}

/** A record's text for embeddings (k-means anchors, diversity): full(e) for Alpaca records, the turns' contents for conversations. */
export function recordText(e: Example): string {
  return e.turns ? e.turns.map((t) => t.content).join('\n') : fullText(e);
}

/** The record as the paper's template reads it; a conversation has no such reading, and says so. */
export function paperExample(e: Example): Example {
  if (e.turns) {
    throw new NuggetsError(
      'A conversation record cannot be scored with the paper\'s Alpaca template.',
      'Score conversations from the command line with a chat template: --template chat (the model\'s own), --template chatml or --template FILE.jinja.',
    );
  }
  return e;
}
