import { existsSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Errors a user can act on. Everything the engine rejects on purpose is a NuggetsError whose
 * message says what was wrong, where, and what to do; the command line prints only the message.
 */
export class NuggetsError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'NuggetsError';
  }

  /** The message with its hint, as shown to a user. */
  describe(): string {
    return this.hint ? `${this.message}\n  ${this.hint}` : this.message;
  }
}

/** 1-based line and column of a character offset, for messages. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * What a failed file operation means, in words a user can act on: `Cannot read dataset data.json: it
 * is a folder, not a file.` rather than a bare EISDIR. `action` says what was being done ("read dataset").
 */
export function fileError(err: unknown, action: string, path: string): NuggetsError {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT': return existsSync(dirname(path))
      ? new NuggetsError(`Cannot ${action} ${path}: no such file.`, 'Check the path.')
      : new NuggetsError(`Cannot ${action} ${path}: the folder ${dirname(path)} does not exist.`, 'Check the path, or create the folder first.');
    case 'EISDIR': return new NuggetsError(`Cannot ${action} ${path}: it is a folder, not a file.`, 'Give the path of the file inside it.');
    case 'ENOTDIR': return new NuggetsError(`Cannot ${action} ${path}: a part of the path is a file, not a folder.`, 'Check the path.');
    case 'ELOOP': return new NuggetsError(`Cannot ${action} ${path}: it is a symbolic link that loops (it points, directly or through other links, back to itself).`, 'Point the link at a real file, or give the file\'s own path.');
    case 'EACCES':
    case 'EPERM': return new NuggetsError(`Cannot ${action} ${path}: permission denied.`, 'Check the file\'s permissions.');
    case 'EROFS': return new NuggetsError(`Cannot ${action} ${path}: the file system is read-only.`, 'Write to another folder.');
    case 'ENOSPC':
    case 'EDQUOT': return new NuggetsError(`Cannot ${action} ${path}: the disk is full.`, 'Free some space and run the command again.');
    case 'EFBIG': return new NuggetsError(`Cannot ${action} ${path}: the file would pass the size limit for files (ulimit -f).`, 'Raise the limit or write elsewhere.');
    default: return new NuggetsError(`Cannot ${action} ${path}: ${code ?? (err instanceof Error ? err.message : String(err))}`);
  }
}

/** Why a failed write ran out of room ("disk full", ...), or undefined when it failed for another reason. */
export function outOfSpace(err: unknown): string | undefined {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOSPC': return 'disk full';
    case 'EDQUOT': return 'disk quota exceeded';
    case 'EFBIG': return 'file size limit (ulimit -f) reached';
    default: return undefined;
  }
}
