/**
 * Which anchor set each dataset uses, remembered in the extension's storage (documents.json) by file URI:
 * kept when the file is renamed or moved (the editor says so: protocol filesRenamed), and handed down to the
 * subsets written from it, so that a renamed file or a new subset opens with its current scores. Each choice
 * remembers how it was made, so that hovers and the dashboard can say which anchors a score is against.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../io/files';
import type { AnchorChoice as Requested } from '../protocol';

/** How a document's anchors were chosen. */
export type AnchorOrigin =
  | { method: 'file'; file: string }
  | { method: 'kmeans' | 'random'; count: number; from: string };

export interface DocumentAnchors {
  /** The anchors file (in extension storage for random and k-means choices). */
  path: string;
  /** Absent in choices remembered before origins were. */
  origin?: AnchorOrigin;
}

export function originOf(choice: Requested, documentUri: string, count: number): AnchorOrigin {
  return choice.method === 'file' ? { method: 'file', file: choice.path } : { method: choice.method, count, from: documentUri };
}

/** "k-means 100 of this file", "random 20 of data.json", "anchors.json": how a document's anchors read to the user. */
export function describeAnchors(anchors: DocumentAnchors, documentUri: string): string {
  const origin = anchors.origin;
  if (!origin) return basename(anchors.path);
  if (origin.method === 'file') return basename(origin.file);
  const of = origin.from === documentUri ? 'this file' : nameOf(origin.from);
  return `${origin.method === 'kmeans' ? 'k-means' : 'random'} ${origin.count} of ${of}`;
}

/** A document's file name, for messages. */
export function nameOf(uri: string): string {
  try {
    return basename(uri.startsWith('file:') ? fileURLToPath(uri) : decodeURIComponent(new URL(uri).pathname));
  } catch {
    return uri;
  }
}

/** `uri` moved with a rename of `oldUri` to `newUri` (the file itself, or a folder above it); undefined when untouched. */
export function renamedUri(uri: string, oldUri: string, newUri: string): string | undefined {
  if (uri === oldUri) return newUri;
  const folder = oldUri.endsWith('/') ? oldUri : `${oldUri}/`;
  return uri.startsWith(folder) ? `${newUri.replace(/\/$/, '')}/${uri.slice(folder.length)}` : undefined;
}

export class AnchorChoices {
  private readonly byUri: Record<string, DocumentAnchors>;

  constructor(private readonly file: string) {
    this.byUri = readChoices(file);
  }

  get(uri: string): DocumentAnchors | undefined {
    return this.byUri[uri];
  }

  set(uri: string, anchors: DocumentAnchors): void {
    this.byUri[uri] = anchors;
    this.save();
  }

  /** A file written from `source` (a subset) scores against the same anchors: its scores are current at once. */
  inherit(source: string, written: string): void {
    const anchors = this.byUri[source];
    if (anchors) this.set(written, anchors);
  }

  /** Files (or folders) renamed or moved: their choices, and the origins naming them, follow. */
  renamed(files: readonly { oldUri: string; newUri: string }[]): void {
    let changed = false;
    for (const { oldUri, newUri } of files) {
      for (const [uri, anchors] of Object.entries(this.byUri)) {
        const origin = anchors.origin;
        const from = origin && origin.method !== 'file' ? renamedUri(origin.from, oldUri, newUri) : undefined;
        const moved = from && origin && origin.method !== 'file' ? { ...anchors, origin: { ...origin, from } } : anchors;
        const to = renamedUri(uri, oldUri, newUri);
        if (to !== undefined) {
          delete this.byUri[uri];
          this.byUri[to] = moved;
          changed = true;
        } else if (moved !== anchors) {
          this.byUri[uri] = moved;
          changed = true;
        }
      }
    }
    if (changed) this.save();
  }

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify(this.byUri, null, 2) + '\n');
  }
}

/** documents.json: URI -> choice; older versions stored the anchors file's path alone. Unreadable: no choices. */
function readChoices(file: string): Record<string, DocumentAnchors> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  const choices: Record<string, DocumentAnchors> = {};
  for (const [uri, entry] of Object.entries(value as Record<string, unknown>)) {
    if (typeof entry === 'string') choices[uri] = { path: entry };
    else if (typeof entry === 'object' && entry !== null && typeof (entry as DocumentAnchors).path === 'string') choices[uri] = entry as DocumentAnchors;
  }
  return choices;
}
