/**
 * The engine's one HTTP layer: the hub client (model/hub.ts) and the serving backend
 * (scoring/serving.ts) send every request through it.
 *
 * - Timeouts that fire: each attempt has its own timer and AbortController. (A signal made by
 *   `AbortSignal.any([AbortSignal.timeout(ms), ...])` never fires on Node 20 once garbage collection
 *   has collected the timeout signal.) The timer covers the connection and the answer's headers, then
 *   restarts for each chunk of the body, so a server that stalls mid-body is caught too.
 * - Cancellation: the caller's signal aborts the request in flight at once, and any wait between retries.
 * - Retries with backoff: `withRetries` repeats an attempt that failed for a reason worth another try
 *   (no connection, no answer in time, a body cut off, 429, 5xx), honouring Retry-After.
 */
import { sleep } from './abort';
import { NuggetsError } from './errors';

export interface RequestLimits {
  /** Milliseconds an attempt may wait for its answer's headers, and then for each chunk of the body. */
  timeoutMs: number;
  /** Aborts the request in flight (and any wait between attempts). */
  signal?: AbortSignal;
}

export interface RetryPolicy extends RequestLimits {
  /** Attempts after the first one. */
  retries: number;
  /** Wait before the first retry, doubled after each (at most 30 s), unless the server sends Retry-After. */
  retryDelayMs: number;
  /**
   * Of those retries, how many may follow an attempt that got no answer in time (default: all). A timed-out
   * attempt is retried at once, without backoff, so that a hung server ends the request within
   * (timeoutRetries + 1) x timeoutMs instead of every retry's timeout and backoff added up.
   */
  timeoutRetries?: number;
}

/** The longest Retry-After honoured: a server asking for more is waited on this long, then tried again. */
const MAX_RETRY_AFTER_MS = 60_000;

/** A failure worth another attempt: no connection, no answer in time, a body cut off, or 429 / 5xx. */
export class TransientHttpError extends Error {
  /** Attempts made before this error ended the request (set by withRetries). */
  attempts = 1;

  /** `timedOut`: the attempt got no answer (or no next chunk) within its timeout. */
  constructor(message: string, readonly retryAfterMs?: number, readonly timedOut = false) {
    super(message);
    this.name = 'TransientHttpError';
  }
}

/** The caller's signal aborted the request. */
export class RequestCancelled extends NuggetsError {
  constructor(what = 'Request', hint?: string) {
    super(`${what} cancelled.`, hint);
  }
}

export interface HttpAnswer {
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  /** The body as text; more than `maxBytes` is refused (a server that never stops is not read forever). */
  text(maxBytes?: number): Promise<string>;
  /** The body's chunks as they arrive, each within the timeout. */
  chunks(): AsyncIterable<Uint8Array>;
  /** Drops the body unread. Every answer must be read or discarded. */
  discard(): Promise<void>;
}

/** One attempt: resolves with the status and headers once they arrive within the timeout. */
export async function send(url: string, init: Omit<RequestInit, 'signal'>, limits: RequestLimits): Promise<HttpAnswer> {
  const { signal, timeoutMs } = limits;
  if (signal?.aborted) throw new RequestCancelled();
  const controller = new AbortController();
  let waitingFor: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const arm = (what: string): void => {
    clearTimeout(timer);
    waitingFor = undefined;
    timer = setTimeout(() => {
      waitingFor = what;
      controller.abort();
    }, timeoutMs);
  };
  const onCancel = (): void => controller.abort();
  signal?.addEventListener('abort', onCancel, { once: true });
  const finish = (): void => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onCancel);
  };
  const failure = (err: unknown): Error => {
    if (signal?.aborted) return new RequestCancelled();
    if (waitingFor) return new TransientHttpError(`${url} gave no ${waitingFor} within ${formatMs(timeoutMs)}`, undefined, true);
    return new TransientHttpError(`${url}: ${describeNetworkError(err)}`);
  };

  arm('answer');
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: controller.signal });
  } catch (err) {
    finish();
    throw failure(err);
  }
  clearTimeout(timer);
  if (!res.body) finish();

  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (!res.body) return;
    const reader = res.body.getReader();
    try {
      for (;;) {
        arm('data');
        let next: { done: boolean; value?: Uint8Array };
        try {
          next = await reader.read();
        } catch (err) {
          throw failure(err);
        }
        clearTimeout(timer);
        if (next.done || !next.value) return;
        yield next.value;
      }
    } finally {
      finish();
      reader.releaseLock();
    }
  }

  return {
    url,
    status: res.status,
    headers: res.headers,
    chunks,
    async text(maxBytes = 256 << 20): Promise<string> {
      const parts: Buffer[] = [];
      let size = 0;
      for await (const chunk of chunks()) {
        size += chunk.length;
        if (size > maxBytes) {
          await res.body?.cancel().catch(() => undefined);
          throw new NuggetsError(`${url} answered with more than ${maxBytes} bytes; that is not an answer this client expects.`);
        }
        parts.push(Buffer.from(chunk));
      }
      return Buffer.concat(parts).toString('utf8');
    },
    async discard(): Promise<void> {
      finish();
      await res.body?.cancel().catch(() => undefined);
    },
  };
}

/**
 * Runs `attempt` until it succeeds, fails for good (any error other than TransientHttpError), or has
 * been retried `policy.retries` times (`policy.timeoutRetries` times after timeouts); then its last
 * TransientHttpError is thrown, with the attempts made. `onRetry` hears each problem retried.
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: (index: number) => Promise<T>, onRetry?: (problem: string, error: TransientHttpError) => void): Promise<T> {
  let timeouts = 0;
  for (let index = 0; ; index++) {
    try {
      return await attempt(index);
    } catch (err) {
      if (!(err instanceof TransientHttpError)) throw err;
      err.attempts = index + 1;
      if (err.timedOut) timeouts++;
      if (index >= policy.retries || (err.timedOut && timeouts > (policy.timeoutRetries ?? Infinity))) throw err;
      onRetry?.(err.message, err);
      if (err.timedOut && policy.timeoutRetries !== undefined) continue;
      const backoff = Math.min(30_000, policy.retryDelayMs * 2 ** index) * (0.75 + Math.random() / 2);
      await sleep(err.retryAfterMs ?? backoff, policy.signal, () => new RequestCancelled());
    }
  }
}

/** Retry-After in seconds or as an HTTP date, in milliseconds (capped); undefined when absent or unreadable. */
/**
 * 429 and 5xx are worth another attempt (after Retry-After, when the server says): thrown as a TransientHttpError,
 * "`what` answered 503`detail`".
 */
export function throwIfBusy(answer: HttpAnswer, what: string = answer.url, detail = ''): void {
  if (answer.status === 429 || answer.status >= 500) throw new TransientHttpError(`${what} answered ${answer.status}${detail}`, retryAfterMs(answer.headers.get('retry-after')));
}

export function retryAfterMs(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms)) : undefined;
}

/** undici's "fetch failed" with the reason underneath (ECONNREFUSED, ECONNRESET, a DNS failure). */
function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message;
  const message = err instanceof Error ? err.message : String(err);
  return why ? `${message} (${why})` : message;
}

function formatMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
