/**
 * The anchor set each document is scored against: its own choice (anchor-choice.ts), else the
 * nuggets.anchors setting. Anchors files are read once per change and remembered in the score book, so
 * that hovers can name the anchors of any score; descriptions say how the anchors were chosen.
 */
import { basename } from 'node:path';
import { readAnchors, type AnchorSet } from '../records/anchors';
import type { ScoreBook } from './score-book';
import { AnchorChoices, describeAnchors, type AnchorOrigin } from './anchor-choice';
import { mtimeOf } from './model-identity';

export class AnchorsPerDocument {
  readonly choices: AnchorChoices;
  /** Anchors files as last read, by path, with the modification time they were read at. */
  private readonly read = new Map<string, { stamp: number; set: AnchorSet }>();

  constructor(
    documentsFile: string,
    private readonly book: ScoreBook,
    /** The nuggets.anchors setting in effect: the anchors of documents without their own. */
    private readonly setting: () => string | null,
    private readonly log: (message: string) => void,
  ) {
    this.choices = new AnchorChoices(documentsFile);
  }

  /** The anchors file the document is scored against, or undefined when it has none yet. */
  pathFor(uri: string): string | undefined {
    return this.choices.get(uri)?.path ?? this.setting() ?? undefined;
  }

  /** "k-means 100 of this file", "anchors.json (nuggets.anchors setting)"; null when the document has no anchors yet. */
  describe(uri: string): string | null {
    const chosen = this.choices.get(uri);
    if (chosen) return describeAnchors(chosen, uri);
    const setting = this.setting();
    return setting ? `${basename(setting)} (nuggets.anchors setting)` : null;
  }

  /** The document's anchor set as its file reads now; undefined (and logged) when it cannot be read. */
  setFor(uri: string): AnchorSet | undefined {
    const path = this.pathFor(uri);
    if (!path) return undefined;
    const stamp = mtimeOf(path);
    const cached = this.read.get(path);
    if (cached && cached.stamp === stamp) return cached.set;
    try {
      const set = readAnchors(path);
      this.read.set(path, { stamp, set });
      this.book.rememberAnchors(set); // so that hovers name these anchors, wherever the file came from
      return set;
    } catch (err) {
      this.log(`cannot read the anchors for ${uri}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Makes `set` the document's anchors; returns the path of its copy in the score book. */
  assign(uri: string, set: AnchorSet, origin: AnchorOrigin): string {
    const path = this.book.rememberAnchors(set);
    this.choices.set(uri, { path, origin });
    return path;
  }

  /** The anchor set's name for people: how the document's anchors were chosen, or for an earlier set (a stale score's) its size. */
  label(uri: string, hash: string, count: number): string {
    const description = this.setFor(uri)?.hash === hash ? this.describe(uri) : null;
    return description ?? `an earlier set of ${count} anchors`;
  }
}
