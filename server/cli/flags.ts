/**
 * The command line's options: one parser for every command, and the checks that turn a malformed
 * value into a usage error (exit 2) before any file is read.
 */
import { parseArgs } from 'node:util';

/** A command line that cannot mean anything: printed with the usage, exit 2. */
export class UsageError extends Error {}

export function parse<T extends Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>>(args: string[], options: T) {
  const { values, positionals } = parseArgs({ args: joinNegativeValues(args, options), options, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing <dataset>' : `unexpected arguments: ${positionals.slice(1).join(' ')}`);
  return { values, dataset: positionals[0]! };
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined) throw new UsageError(`missing ${flag}`);
  return value;
}

/** `--threads -3` as `--threads=-3`, so that a negative value is judged by the flag's own check instead of being taken for a flag. */
function joinNegativeValues(args: string[], options: Record<string, { type: 'string' | 'boolean' }>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const next = args[i + 1];
    if (flag.startsWith('--') && options[flag.slice(2)]?.type === 'string' && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`${flag}=${next}`);
      i++;
    } else out.push(flag);
  }
  return out;
}

export function numberFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} expects a number (got "${value}")`);
  return n;
}

/** A whole-number flag of at least `min`. */
export function integerFlag(value: string | undefined, flag: string, min: number): number | undefined {
  const n = numberFlag(value, flag);
  if (n !== undefined && !(Number.isInteger(n) && n >= min)) throw new UsageError(`${flag} expects a whole number of at least ${min} (got "${value}")`);
  return n;
}

/** A number flag within [low, high], or (low, high] when `lowOpen`. */
export function rangeFlag(value: string | undefined, flag: string, low: number, high: number, lowOpen = false): number | undefined {
  const n = numberFlag(value, flag);
  if (n !== undefined && !((lowOpen ? n > low : n >= low) && n <= high)) {
    throw new UsageError(`${flag} must be in ${lowOpen ? '(' : '['}${low}, ${high}] (got "${value}")`);
  }
  return n;
}

