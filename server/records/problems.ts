/**
 * Problem records: records that are never golden, whatever they score. An empty (or whitespace-only)
 * instruction or output teaches nothing, and an exact repeat of an earlier record (the same instruction,
 * input and output) would put the same example into a subset twice. They are still scored (the scores
 * file stays complete, and fixing one rescores only it), but every selection leaves them out unless it is
 * asked to keep them (`--keep-problems`; SelectionRule.problems). The one rule the command line, the
 * language server's hovers, badges and dashboard, and selection all read.
 */
import type { Example } from './dataset';

/**
 * `unscorable`: a record the engine cannot score at all (a conversation whose roles do not alternate, with no
 * assistant turn or an empty final one, or that the chat template refuses), with why. The command line lists
 * such records and leaves them out; the editor marks them in place.
 */
export type ProblemReason = 'empty-instruction' | 'empty-output' | 'empty' | { duplicateOf: number } | { unscorable: string };

export interface RecordProblem {
  /** The record's index, 0-based, as in the scores file and exports. */
  index: number;
  reason: ProblemReason;
}

/**
 * The problem records of a dataset, in order. Records are compared by their content id (dataset.ts: the hash
 * of the trimmed fields, so whitespace-only fields are empty here too); the first of repeated records is not a
 * problem unless it is empty.
 */
export function findProblems(records: readonly (Example & { id: string; index: number })[]): RecordProblem[] {
  const problems: RecordProblem[] = [];
  const firstById = new Map<string, number>();
  for (const record of records) {
    const reason = problemOf(record, firstById.get(record.id));
    if (reason) problems.push({ index: record.index, reason });
    if (!firstById.has(record.id)) firstById.set(record.id, record.index);
  }
  return problems;
}

function problemOf(record: Example, duplicateOf: number | undefined): ProblemReason | undefined {
  const noInstruction = record.instruction === '';
  const noOutput = record.output === '';
  if (noInstruction && noOutput) return 'empty';
  if (noInstruction) return 'empty-instruction';
  if (noOutput) return 'empty-output';
  return duplicateOf !== undefined ? { duplicateOf } : undefined;
}

/** "empty output", "repeats index 3": why the record is never selected (hovers, dashboard, CLI). */
export function describeProblem(reason: ProblemReason): string {
  if (typeof reason === 'object') return 'unscorable' in reason ? `cannot be scored: ${reason.unscorable}` : `repeats index ${reason.duplicateOf}`;
  return { 'empty-instruction': 'empty instruction', 'empty-output': 'empty output', empty: 'empty instruction and output' }[reason];
}

/** The short mark a badge carries: "empty", "duplicate" or "unscorable". */
export function problemMark(reason: ProblemReason): 'empty' | 'duplicate' | 'unscorable' {
  return typeof reason === 'object' ? ('unscorable' in reason ? 'unscorable' : 'duplicate') : 'empty';
}

/** What the editor is told of a problem record: its badge's mark and the reason. */
export function problemInfo(reason: ProblemReason): { mark: 'empty' | 'duplicate' | 'unscorable'; reason: string } {
  return { mark: problemMark(reason), reason: describeProblem(reason) };
}

/** "3 problem records (2 empty instruction or output, 1 exact duplicate of an earlier record)". */
export function countProblems(problems: readonly RecordProblem[]): string {
  const unscorable = problems.filter((p) => typeof p.reason === 'object' && 'unscorable' in p.reason).length;
  const duplicates = problems.filter((p) => typeof p.reason === 'object').length - unscorable;
  const empty = problems.length - duplicates - unscorable;
  const parts = [
    ...(empty > 0 ? [`${empty} with an empty instruction or output`] : []),
    ...(duplicates > 0 ? [`${duplicates} ${duplicates === 1 ? 'exact duplicate' : 'exact duplicates'} of an earlier record`] : []),
    ...(unscorable > 0 ? [`${unscorable} that cannot be scored`] : []),
  ];
  return `${problems.length} problem ${problems.length === 1 ? 'record' : 'records'} (${parts.join(', ')})`;
}
