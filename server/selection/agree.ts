/**
 * Whether one model ranks records as another does (ALGORITHM.md, last section): both score the same
 * random sample, and their golden scores (and IFD) are compared by rank. Pure functions over the two
 * score lists, so the editor command and the CLI print the same figures.
 */
import type { DatasetRecord } from '../records/dataset';
import type { CandidateScore } from '../scoring/golden';
import { rank } from './select';
import { golden } from '../signals/golden';
import { ifd } from '../signals/ifd';

export interface Agreement {
  sample: number;
  /** Spearman rank correlation of the golden scores (ties get their average rank). */
  goldenSpearman: number | null;
  /** Spearman of IFD over the records where both models define it, and how many those are. */
  ifdSpearman: number | null;
  ifdPairs: number;
  /** Share of the first model's top 10% (golden, then mean delta, then order) that is in the second's. */
  top10Overlap: number;
  /** Share of records on the same side of the threshold for both models. */
  decisionAgreement: number;
  threshold: number;
  /** Records each model keeps at the threshold. */
  kept: [number, number];
  verdict: string;
}

/** Average ranks (1-based), ties sharing the mean of their positions. */
export function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const out = new Array<number>(values.length);
  for (let start = 0; start < order.length;) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]!.v === order[start]!.v) end++;
    for (let k = start; k <= end; k++) out[order[k]!.i] = (start + end) / 2 + 1;
    start = end + 1;
  }
  return out;
}

/** Pearson correlation of the ranks; null when either side is constant or there are fewer than 3 pairs. */
export function spearman(a: readonly number[], b: readonly number[]): number | null {
  if (a.length !== b.length || a.length < 3) return null;
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (a.length + 1) / 2;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (ra[i]! - mean) * (rb[i]! - mean);
    saa += (ra[i]! - mean) ** 2;
    sbb += (rb[i]! - mean) ** 2;
  }
  return saa === 0 || sbb === 0 ? null : sab / Math.sqrt(saa * sbb);
}

/** Compares two models' scores of the same records (`first` and `second` in record order). */
export function agreement(records: readonly DatasetRecord[], first: readonly CandidateScore[], second: readonly CandidateScore[], threshold: number, names: [string, string]): Agreement {
  const n = records.length;
  const goldenSpearman = spearman(first.map((s) => golden.valueOf(s)!), second.map((s) => golden.valueOf(s)!));
  const both = first.map((s, i) => [ifd.valueOf(s), ifd.valueOf(second[i]!)] as const).filter((p): p is readonly [number, number] => p[0] !== null && p[1] !== null);
  const ifdSpearman = spearman(both.map((p) => p[0]), both.map((p) => p[1]));
  const k = Math.max(1, Math.ceil(n / 10));
  const top = (scores: readonly CandidateScore[]): Set<string> =>
    new Set(rank(records.map((record, i) => ({ record, score: scores[i]! }))).slice(0, k).map((s) => s.record.id));
  const topFirst = top(first);
  const topSecond = top(second);
  const top10Overlap = [...topFirst].filter((id) => topSecond.has(id)).length / k;
  const keptFirst = first.map((s) => s.goldenScore >= threshold);
  const keptSecond = second.map((s) => s.goldenScore >= threshold);
  const decisionAgreement = keptFirst.filter((x, i) => x === keptSecond[i]).length / n;
  const kept: [number, number] = [keptFirst.filter(Boolean).length, keptSecond.filter(Boolean).length];
  return { sample: n, goldenSpearman, ifdSpearman, ifdPairs: both.length, top10Overlap, decisionAgreement, threshold, kept, verdict: verdictOf(goldenSpearman, top10Overlap, names) };
}

/** Stands in when the ranking agrees strongly (Spearman >= 0.8) and most of the top 10% is shared (>= 60%). */
export function standsIn(goldenSpearman: number | null, top10Overlap: number): boolean {
  return goldenSpearman !== null && goldenSpearman >= 0.8 && top10Overlap >= 0.6;
}

export function verdictOf(goldenSpearman: number | null, top10Overlap: number, [first, second]: [string, string]): string {
  const rho = goldenSpearman === null ? 'undefined' : goldenSpearman.toFixed(2);
  if (standsIn(goldenSpearman, top10Overlap)) {
    return `${first} can stand in for ${second}: it ranks this sample alike (Spearman ${rho}, ${Math.round(100 * top10Overlap)}% of the top 10% shared).`;
  }
  return `${first} cannot stand in for ${second}: its ranking differs (Spearman ${rho}, ${Math.round(100 * top10Overlap)}% of the top 10% shared; a stand-in needs >= 0.80 and >= 60%).`;
}

/** A compared model's name in the report: its identity's name, and the variant when one was chosen. */
export function modelLabel(name: string, variant: string | undefined): string {
  return variant ? `${name} (${variant})` : name;
}

/** The report, as the CLI prints it and the editor shows it. */
export function formatAgreement(a: Agreement, names: [string, string]): string {
  const num = (x: number | null): string => (x === null ? '—' : x.toFixed(3));
  return [
    `${names[0]} vs ${names[1]} on ${a.sample} records`,
    `  Spearman, golden score:      ${num(a.goldenSpearman)}`,
    `  Spearman, IFD:               ${num(a.ifdSpearman)} (${a.ifdPairs} records with IFD from both)`,
    `  top-10% overlap:             ${(100 * a.top10Overlap).toFixed(0)}%`,
    `  --min-score ${a.threshold} decisions:  ${(100 * a.decisionAgreement).toFixed(1)}% agree (keeps ${a.kept[0]} vs ${a.kept[1]})`,
    a.verdict,
  ].join('\n');
}
