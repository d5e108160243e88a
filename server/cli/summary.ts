/** The short table printed after a score run: the distribution and the best records. */
import type { DatasetRecord } from '../records/dataset';
import { formatGolden, type CandidateScore } from '../scoring/golden';
import { countProblems, findProblems } from '../records/problems';
import { rank } from '../selection/select';
import { SIGNALS } from '../signals';

/**
 * A record as the summary keeps it through a run, whatever the dataset's size: its id and index, its instruction cut
 * to the table's width, and its output only as empty or not (all that findProblems reads of it).
 */
export interface SummaryRecord {
  id: string;
  index: number;
  instruction: string;
  input: string;
  output: string;
}

export function summaryRecord(r: DatasetRecord): SummaryRecord {
  return { id: r.id, index: r.index, instruction: r.instruction.slice(0, INSTRUCTION_WIDTH + 1), input: '', output: r.output === '' ? '' : '…' };
}

const INSTRUCTION_WIDTH = 60;

export function printSummary(records: readonly SummaryRecord[], scores: Map<string, CandidateScore>, out: NodeJS.WriteStream = process.stdout): void {
  const scored = records.flatMap((record) => {
    const score = scores.get(record.id);
    return score ? [{ record, score }] : [];
  });
  if (scored.length === 0) return;
  const bounded = scored.filter((x) => x.score.bound);
  if (bounded.length > 0) {
    const t = bounded[0]!.score.bound!.threshold;
    const above = scored.filter((x) => x.score.goldenScore >= t).length;
    const anchorsTotal = scored.reduce((n, x) => n + x.score.anchors, 0);
    const anchorsScored = scored.reduce((n, x) => n + x.score.deltas.filter((d) => !Number.isNaN(d)).length, 0);
    out.write(`\nearly stop at ${t}: ${above} of ${scored.length} records >= ${t}; ${bounded.length} carry a bound instead of a score; `
      + `${anchorsScored} of ${anchorsTotal} one-shot passes run (${((100 * (anchorsTotal - anchorsScored)) / anchorsTotal).toFixed(1)}% saved)\n`);
    return;
  }
  const buckets = new Array<number>(10).fill(0);
  for (const { score } of scored) buckets[Math.min(9, Math.floor(score.goldenScore * 10))]!++;
  const widest = Math.max(...buckets);
  out.write('\ngolden score   records\n');
  buckets.forEach((n, i) => {
    const bar = '#'.repeat(widest > 0 ? Math.round((30 * n) / widest) : 0);
    out.write(`  ${(i / 10).toFixed(1)}-${((i + 1) / 10).toFixed(1)}    ${String(n).padStart(6)}  ${bar}\n`);
  });
  const mean = scored.reduce((s, x) => s + x.score.goldenScore, 0) / scored.length;
  const atLeast = (t: number): string => {
    const n = scored.filter((x) => x.score.goldenScore >= t).length;
    return `${n} (${((100 * n) / scored.length).toFixed(1)}%)`;
  };
  const truncated = scored.filter((x) => x.score.truncated).length;
  out.write(`mean ${mean.toFixed(3)}; >= 0.5: ${atLeast(0.5)}; >= 0.85: ${atLeast(0.85)}${truncated ? `; ${truncated} cut to fit the context` : ''}\n`);
  out.write('\nsignal         mean       p10    median       p90  missing\n');
  for (const signal of SIGNALS) {
    const summary = signal.summarize(scored.map((x) => signal.valueOf(x.score)));
    if (summary.count === 0) continue;
    const cell = (v: number | null): string => signal.format(v).padStart(9);
    out.write(`  ${signal.name.padEnd(10)} ${cell(summary.mean)} ${cell(summary.p10)} ${cell(summary.median)} ${cell(summary.p90)}  ${String(summary.missing).padStart(7)}\n`);
  }
  // Problem records are never selected: they are not listed among the best, but counted.
  const problems = findProblems(records);
  const problemIndexes = new Set(problems.map((p) => p.index));
  if (problems.length > 0) out.write(`\n${countProblems(problems)}: scored, never selected (select --keep-problems includes them)\n`);
  out.write('\ntop records\n  index  golden  wins      mean delta  instruction\n');
  for (const { record, score } of rank(scored.filter((x) => !problemIndexes.has(x.record.index))).slice(0, 5)) {
    const instruction = record.instruction.replace(/\s+/g, ' ');
    out.write(`  ${String(record.index).padStart(5)}  ${formatGolden(score).padStart(6)}  ${`${score.wins}/${score.anchors}`.padEnd(8)}  ${score.meanDelta.toFixed(3).padStart(10)}  ${instruction.length > INSTRUCTION_WIDTH ? instruction.slice(0, INSTRUCTION_WIDTH - 1) + '…' : instruction}\n`);
  }
}
