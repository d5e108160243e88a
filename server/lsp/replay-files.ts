/**
 * What a subset written by the editor needs to be made again from the workspace alone (`nuggets select
 * --card`): its scores, copied beside it out of the extension's storage (only the dataset's records, with
 * the embeddings when a diverse rule compared them), and the anchor set the scores were computed against.
 * The card names both by their file names, relative to its folder.
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { NuggetsError } from '../io/errors';
import { assertNotInput, writeFileAtomic } from '../io/files';
import { embeddingsPathFor } from '../signals/embedding-file';

export interface ReplayFiles {
  /** The scores file beside the subset. */
  scores: string;
  /** The anchors file beside the subset, or null when the anchor set has no file. */
  anchors: string | null;
}

/** `data.top100.json` → `data.top100` (the stem the subset's card and its companions share). */
function stemOf(subsetPath: string): string {
  return subsetPath.replace(/\.json$/i, '');
}

/**
 * Writes `<subset>.scores.jsonl` (the header and the lines of `recordIds` from `scoresPath`, byte for byte,
 * so that the scores read back exactly) and `<subset>.anchors.json` (a copy of `anchorsPath`), never over
 * one of `inputs`.
 */
export function writeReplayFiles(
  subsetPath: string, scoresPath: string, recordIds: ReadonlySet<string>, anchorsPath: string | null, withEmbeddings: boolean, inputs: readonly string[],
): ReplayFiles {
  const stem = stemOf(subsetPath);
  const scores = `${stem}.scores.jsonl`;
  const anchors = anchorsPath && existsSync(anchorsPath) ? `${stem}.anchors.json` : null;
  assertNotInput(scores, inputs);
  if (anchors) assertNotInput(anchors, inputs);
  const text = readFileSync(scoresPath, 'utf8');
  // Complete lines only: another window may be appending to the stored file.
  const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((line) => line !== '');
  const [headerLine, ...scoreLines] = lines;
  if (!headerLine) throw new NuggetsError(`The stored scores ${scoresPath} are empty: nothing to write beside the subset.`);
  const header = JSON.parse(headerLine) as { anchors?: { source?: string | null } };
  if (header.anchors) header.anchors.source = anchors ? basename(anchors) : null;
  const kept = scoreLines.filter((line) => recordIds.has((JSON.parse(line) as { id: string }).id));
  writeFileAtomic(scores, [JSON.stringify(header), ...kept].join('\n') + '\n');
  if (anchors) copyFileSync(anchorsPath!, anchors);
  const embeddings = embeddingsPathFor(scoresPath);
  if (withEmbeddings && existsSync(embeddings)) copyFileSync(embeddings, embeddingsPathFor(scores));
  return { scores, anchors };
}
