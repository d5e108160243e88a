/** The paper's prompt template (ALGORITHM.md). Changing it changes every score, so it is versioned. */
import type { Example } from '../dataset';

export const TEMPLATE_ID = 'nuggets-alpaca-v1';

export function queryText(e: Pick<Example, 'instruction' | 'input'>): string {
  return e.input !== ''
    ? `Instruction:\n${e.instruction}\nInput:\n${e.input}\nResponse:\n`
    : `Instruction:\n${e.instruction}\nResponse:\n`;
}

export function fullText(e: Example): string {
  return queryText(e) + e.output;
}
