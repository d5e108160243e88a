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
