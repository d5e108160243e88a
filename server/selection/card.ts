/**
 * The selection card, `<subset>.card.json`, written beside every subset: what the subset was made
 * from and how (dataset, model, anchors, template, rule, signal summaries, seed, tool version, time),
 * so that a reader can tell how it was made and `nuggets select --card` can make it again and check
 * that it gets the same records.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { DatasetRecord } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import { hashFile, writeFileAtomic } from '../io/files';
import { parquetShards } from '../records/shards';
import type { ScoredRecord, SelectableRecord, SelectionRule } from './select';
import { SIGNALS, type SignalSummary } from '../signals';
import type { ScoringKey } from '../records/store';

export interface SelectionCard {
  nuggets_card: 1;
  subset: { file: string; records: number; ids_sha256: string };
  /** Paths are relative to the card's folder. */
  source: { dataset: string; path: string; content_sha256: string; records: number };
  scores: string[];
  model: { name: string; fingerprint: string; variant: string | null };
  anchors: { hash: string; count: number; source: string | null };
  template: string;
  maxAnchorTokens: number;
  separator: string;
  rule: SelectionRule;
  /** 'random': a same-size random subset for ablations, drawn with `seed`. */
  baseline: 'random' | null;
  seed: number | null;
  /** What diversity compared, and how many records it skipped as near-duplicates. */
  similarity: 'embedding' | 'tfidf' | null;
  skippedAsDuplicates: number;
  /** Problem records (server/records/problems.ts) the rule left out; `rule.problems` says whether it did. */
  problemsLeftOut: number;
  /** Each signal over the subset's records. */
  signals: Record<string, SignalSummary>;
  tool: { name: 'nuggets'; version: string };
  created: string;
}

export function cardPathFor(subsetPath: string): string {
  return subsetPath.replace(/\.json$/i, '') + '.card.json';
}

/** A content hash of the chosen records' ids in dataset order: two selections are equal when it is. */
export function idsHash(records: readonly Pick<DatasetRecord, 'index' | 'id'>[]): string {
  const ids = [...records].sort((a, b) => a.index - b.index).map((r) => r.id);
  return createHash('sha256').update(ids.join('\n')).digest('hex');
}

export function datasetHash(path: string): string {
  // A folder of Parquet shards: its shards' names and contents, in reading order.
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    const hash = createHash('sha256');
    for (const shard of parquetShards(path)) hashFile(hash.update(`${basename(shard)}\u0000`), shard);
    return hash.digest('hex');
  }
  return hashFile(createHash('sha256'), path).digest('hex');
}

export interface CardInput {
  subsetPath: string;
  datasetPath: string;
  /** datasetHash(datasetPath), computed once by callers that write several cards of one dataset. */
  datasetSha256: string;
  records: number;
  scoresPaths: string[];
  /** What the scores depend on, with the model variant and anchors file when known. */
  header: ScoringKey & { model: { variant?: string | null }; anchors: { source?: string | null } };
  rule: SelectionRule;
  chosen: readonly ScoredRecord<SelectableRecord>[];
  baseline: 'random' | null;
  seed: number | null;
  similarity: 'embedding' | 'tfidf' | null;
  skippedAsDuplicates: number;
  problemsLeftOut: number;
}

export function writeCard(input: CardInput): string {
  const path = cardPathFor(input.subsetPath);
  const folder = dirname(resolve(path));
  const card: SelectionCard = {
    nuggets_card: 1,
    subset: { file: basename(input.subsetPath), records: input.chosen.length, ids_sha256: idsHash(input.chosen.map((c) => c.record)) },
    source: { dataset: basename(input.datasetPath), path: relative(folder, resolve(input.datasetPath)), content_sha256: input.datasetSha256, records: input.records },
    scores: input.scoresPaths.map((p) => relative(folder, resolve(p))),
    model: { name: input.header.model.name, fingerprint: input.header.model.fingerprint, variant: input.header.model.variant ?? null },
    anchors: { hash: input.header.anchors.hash, count: input.header.anchors.count, source: input.header.anchors.source ?? null },
    template: input.header.template,
    maxAnchorTokens: input.header.maxAnchorTokens,
    separator: input.header.separator,
    // Written out even when it is the default, so that a card says which rule it was made under.
    rule: { ...input.rule, problems: input.rule.problems ?? 'left-out' },
    baseline: input.baseline,
    seed: input.seed,
    similarity: input.similarity,
    skippedAsDuplicates: input.skippedAsDuplicates,
    problemsLeftOut: input.problemsLeftOut,
    signals: Object.fromEntries(SIGNALS.map((s) => [s.name, s.summarize(input.chosen.map((c) => s.valueOf(c.score)))])),
    tool: { name: 'nuggets', version: toolVersion() },
    created: new Date().toISOString(),
  };
  writeFileAtomic(path, JSON.stringify(card, null, 2) + '\n');
  return path;
}

export function readCard(path: string): SelectionCard & { folder: string } {
  let card: Partial<SelectionCard>;
  try {
    card = JSON.parse(readFileSync(path, 'utf8')) as Partial<SelectionCard>;
  } catch (err) {
    throw new NuggetsError(`Cannot read the selection card ${path}: ${(err as NodeJS.ErrnoException).code ?? 'not JSON'}.`);
  }
  if (card.nuggets_card !== 1 || !card.source || !card.rule || !Array.isArray(card.scores) || !card.subset) {
    throw new NuggetsError(`${path} is not a Nuggets selection card.`, 'Cards are written beside subsets as <subset>.card.json.');
  }
  // A card written before problem records were left out kept them: made again, it keeps them still.
  const rule: SelectionRule = { ...card.rule, problems: card.rule.problems ?? 'kept' };
  return { ...(card as SelectionCard), rule, folder: dirname(resolve(path)) };
}

/** The card's dataset, checked to be the same content. */
export function cardDataset(card: SelectionCard & { folder: string }): string {
  const path = join(card.folder, card.source.path);
  if (!existsSync(path)) throw new NuggetsError(`The card's dataset ${card.source.path} is not found beside the card (${path}).`);
  if (datasetHash(path) !== card.source.content_sha256) {
    throw new NuggetsError(`${path} is not the dataset the card was made from: its content changed.`, 'A selection is reproduced only from the same dataset.');
  }
  return path;
}

let knownVersion: string | undefined;

/** The package's version, from the package.json above wherever this file runs (looked up once). */
export function toolVersion(): string {
  knownVersion ??= findToolVersion();
  return knownVersion;
}

function findToolVersion(): string {
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'nuggets' && pkg.version) return pkg.version;
    }
  }
  return 'unknown';
}
