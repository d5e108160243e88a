/** The short table printed after a score run: the distribution and the best records. */
import type { DatasetRecord } from '../dataset';
import type { CandidateScore } from '../scoring/golden';
import { rank } from '../select';

export function printSummary(records: DatasetRecord[], scores: Map<string, CandidateScore>, out: NodeJS.WriteStream = process.stdout): void {
  const scored = records.flatMap((record) => {
    const score = scores.get(record.id);
    return score ? [{ record, score }] : [];
  });
  if (scored.length === 0) return;
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
  out.write('\ntop records\n  index  golden  wins      mean delta  instruction\n');
  for (const { record, score } of rank(scored).slice(0, 5)) {
    const instruction = record.instruction.replace(/\s+/g, ' ');
    out.write(`  ${String(record.index).padStart(5)}  ${score.goldenScore.toFixed(2).padStart(6)}  ${`${score.wins}/${score.anchors}`.padEnd(8)}  ${score.meanDelta.toFixed(3).padStart(10)}  ${instruction.length > 60 ? instruction.slice(0, 59) + '…' : instruction}\n`);
  }
}
