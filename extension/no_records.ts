/**
 * A file with no records (`[]`, or nothing but blank lines) reads as no dataset to the server, which leaves other
 * JSON alone; a command run on it says that it has no records instead of calling it something else. Plain
 * decisions, without vscode, so that they can be tested alone.
 */

/** "data.json has no records: …" when `text` is an empty JSON array or blank; undefined otherwise. */
export function noRecordsMessage(name: string, text: string): string | undefined {
  const body = text.replace(/^\uFEFF/, '').trim();
  if (body !== '' && !/^\[\s*\]$/.test(body)) return undefined;
  return `${name} has no records: add {"instruction", "input", "output"} records to it (a JSON array, or one object per line), then run the command again.`;
}
