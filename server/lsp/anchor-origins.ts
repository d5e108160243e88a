/**
 * How each anchor set was chosen (file, random or k-means, from which file), by the set's hash, kept in
 * the extension's storage so that views can name the anchor set ("k-means 100 of this file") after
 * restarts and renames. Losing the file loses only the names: views then give the set's size.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../files';
import type { AnchorOrigin } from './anchor-effects';

export class AnchorOrigins {
  private readonly path: string;
  private readonly origins: Record<string, AnchorOrigin>;

  constructor(storagePath: string) {
    this.path = join(storagePath, 'anchor-origins.json');
    this.origins = readOrigins(this.path);
  }

  of(hash: string): AnchorOrigin | undefined {
    return this.origins[hash];
  }

  /** Remembers the first origin of a set (the same records chosen again keep their first name). */
  remember(hash: string, origin: AnchorOrigin): void {
    if (this.origins[hash]) return;
    this.origins[hash] = origin;
    try {
      writeFileAtomic(this.path, JSON.stringify(this.origins, null, 2) + '\n');
    } catch {
      // Only a name is lost: views fall back to the set's size.
    }
  }
}

function readOrigins(path: string): Record<string, AnchorOrigin> {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, AnchorOrigin>) : {};
  } catch {
    return {};
  }
}
