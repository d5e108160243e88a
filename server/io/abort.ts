/** Waiting that a cancellation ends at once. */
import { setMaxListeners } from 'node:events';

/** Resolves after `ms`, or rejects with `cancelled()` as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined, cancelled: () => Error): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(cancelled());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `work` with a signal of its own that aborts when `signal` does. Everything `work` waits on (each
 * request in flight, queued, or between retries) listens to that one, so `signal`, which may outlive many
 * calls, holds a single listener per call however many requests the call makes (Node warns past ten).
 */
export async function withOwnSignal<T>(signal: AbortSignal | undefined, work: (own: AbortSignal) => Promise<T>): Promise<T> {
  const own = new AbortController();
  setMaxListeners(0, own.signal);
  const abort = (): void => own.abort();
  if (signal?.aborted) abort();
  else signal?.addEventListener('abort', abort, { once: true });
  try {
    return await work(own.signal);
  } finally {
    signal?.removeEventListener('abort', abort);
  }
}

/**
 * What `work` resolves with, or undefined as soon as `signal` aborts: for waiting on something shared that
 * the cancelled caller must not stop (a model lookup other requests wait on too). `work` goes on regardless.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (!signal) return work;
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = (): void => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
