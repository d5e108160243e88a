/**
 * A document that reads as an Alpaca dataset but does not parse as one (a missing comma, a record without its
 * output): what is wrong and where, for the editor to name and go to (protocol datasetProblemNotification).
 */
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { parseDataset } from '../dataset';
import { NuggetsError } from '../errors';
import type { DatasetProblem } from '../protocol';
import { HEAD_LENGTH, mayBeAlpaca } from './parsed';

/**
 * The problem that keeps `document` from being a dataset; undefined when it parses, or does not read as an
 * Alpaca dataset at all (other JSON is none of Nuggets' business).
 */
export function datasetProblem(document: TextDocument): DatasetProblem | undefined {
  const text = document.getText();
  if (!mayBeAlpaca(text.slice(0, HEAD_LENGTH))) return undefined;
  try {
    parseDataset(text, document.uri);
    return undefined;
  } catch (err) {
    if (!(err instanceof NuggetsError)) throw err;
    return problemOf(err, document);
  }
}

/**
 * The dataset parser's messages start with where: "<source>:<line>:<column>: ", "<source>:<line>: " or
 * "<source>:<line> (instance k): " (1-based), or "<source>: " for the whole file.
 */
export function problemOf(err: NuggetsError, document: TextDocument): DatasetProblem {
  const prefix = `${document.uri}:`;
  const rest = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  const at = /^(\d+)(?::(\d+))?(?: \([^)]*\))?: /.exec(rest);
  const line = at ? Math.max(0, Number(at[1]) - 1) : 0;
  const character = at?.[2] !== undefined ? Math.max(0, Number(at[2]) - 1) : 0;
  const start = document.positionAt(document.offsetAt({ line, character }));
  return {
    message: (at ? rest.slice(at[0].length) : rest.replace(/^ /, '')).trim(),
    range: { start, end: start },
    ...(err.hint ? { hint: err.hint } : {}),
  };
}
