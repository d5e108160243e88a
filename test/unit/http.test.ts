/**
 * The HTTP layer (server/io/http.ts) against local servers that stall at connect, on headers and
 * mid-body, drip slowly, drop connections and ask to be retried later. Each test has its own time
 * limit, so a timeout that never fires fails the test instead of hanging the suite.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RequestCancelled, retryAfterMs, send, TransientHttpError, withRetries } from '../../server/io/http';
import { StallingServer, type Behaviour } from '../support/stalling-server';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const LIMIT = { timeout: 10_000 };

async function withServer<T>(behaviours: Behaviour[], run: (server: StallingServer) => Promise<T>, body?: string): Promise<T> {
  const server = await StallingServer.start(behaviours, body);
  try {
    return await run(server);
  } finally {
    await server.close();
  }
}

async function elapsed(run: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = Date.now();
  try {
    await run();
    return { ms: Date.now() - started, error: undefined };
  } catch (error) {
    return { ms: Date.now() - started, error };
  }
}

test('a server that accepts the connection and never answers times out, even after garbage collection', LIMIT, async () => {
  await withServer(['silent'], async (server) => {
    // Collect garbage while the request waits: a timeout kept only by a weak reference would be lost here.
    const collecting = setInterval(() => gc(), 20);
    const { ms, error } = await elapsed(() => send(server.url, {}, { timeoutMs: 300 }));
    clearInterval(collecting);
    assert.ok(error instanceof TransientHttpError, String(error));
    assert.match(error.message, /gave no answer within 300 ms/);
    assert.ok(ms >= 280 && ms < 2000, `${ms} ms`);
  });
});

test('a server that reads the request and sends no headers times out', LIMIT, async () => {
  await withServer(['no-headers'], async (server) => {
    const { ms, error } = await elapsed(() => send(server.url, { method: 'POST', body: '{"a":1}' }, { timeoutMs: 300 }));
    assert.ok(error instanceof TransientHttpError && /gave no answer within 300 ms/.test(error.message), String(error));
    assert.ok(ms < 2000, `${ms} ms`);
  });
});

test('a server that stalls mid-body times out between chunks', LIMIT, async () => {
  await withServer(['mid-body'], async (server) => {
    const answer = await send(server.url, {}, { timeoutMs: 300 });
    assert.equal(answer.status, 200);
    const { ms, error } = await elapsed(() => answer.text());
    assert.ok(error instanceof TransientHttpError && /gave no data within 300 ms/.test(error.message), String(error));
    assert.ok(ms >= 280 && ms < 2000, `${ms} ms`);
  }, JSON.stringify({ filler: 'x'.repeat(4000) }));
});

test('a slow server that keeps sending is not cut off: the timeout is per chunk, not per answer', LIMIT, async () => {
  await withServer(['drip'], async (server) => {
    const answer = await send(server.url, {}, { timeoutMs: 250 });
    const { ms, error } = await elapsed(async () => assert.equal(await answer.text(), '{"slowly":"but surely"}'));
    assert.equal(error, undefined);
    assert.ok(ms > 250, `the whole answer took ${ms} ms, longer than the timeout`);
  }, '{"slowly":"but surely"}');
});

test('dropped connections are retried with backoff until an answer comes', LIMIT, async () => {
  await withServer(['reset', 'reset', 'ok'], async (server) => {
    const problems: string[] = [];
    const text = await withRetries({ timeoutMs: 1000, retries: 3, retryDelayMs: 10 }, async () => (await send(server.url, {}, { timeoutMs: 1000 })).text(), (p) => problems.push(p));
    assert.equal(text, '{"ok":true}');
    assert.equal(server.connections, 3);
    assert.equal(problems.length, 2);
    assert.match(problems[0]!, /fetch failed \((ECONNRESET|UND_ERR_SOCKET)\)/);
  });
});

test('retries stop after the limit with the last problem', LIMIT, async () => {
  await withServer(['no-headers'], async (server) => {
    let attempts = 0;
    const { error } = await elapsed(() => withRetries({ timeoutMs: 100, retries: 2, retryDelayMs: 1 }, async () => {
      attempts++;
      return (await send(server.url, {}, { timeoutMs: 100 })).text();
    }));
    assert.ok(error instanceof TransientHttpError && /gave no answer within 100 ms/.test(error.message));
    assert.equal(attempts, 3);
    assert.equal(error.attempts, 3);
  });
});

test('timeoutRetries bounds the retries after timeouts: retried at once, without backoff, so a hung server ends the request within (timeoutRetries + 1) x the timeout', LIMIT, async () => {
  await withServer(['no-headers'], async (server) => {
    let attempts = 0;
    const retried: boolean[] = [];
    const { ms, error } = await elapsed(() => withRetries({ timeoutMs: 200, retries: 6, retryDelayMs: 2000, timeoutRetries: 1 }, async () => {
      attempts++;
      return (await send(server.url, {}, { timeoutMs: 200 })).text();
    }, (_problem, err) => retried.push(err.timedOut)));
    assert.ok(error instanceof TransientHttpError && error.timedOut, String(error));
    assert.equal(attempts, 2);
    assert.equal(error.attempts, 2);
    assert.deepEqual(retried, [true]);
    assert.ok(ms < 1000, `${ms} ms: no backoff after a timeout`);
  });
  // Other problems keep every retry.
  await withServer(['reset', 'reset', 'reset', 'ok'], async (server) => {
    const text = await withRetries({ timeoutMs: 1000, retries: 3, retryDelayMs: 1, timeoutRetries: 1 }, async () => (await send(server.url, {}, { timeoutMs: 1000 })).text());
    assert.equal(text, '{"ok":true}');
  });
});

test('Retry-After is honoured: in seconds or as a date, capped at a minute', LIMIT, async () => {
  let calls = 0;
  const server = createServer((_req, res) => {
    calls++;
    if (calls === 1) {
      res.writeHead(503, { 'retry-after': '1' });
      res.end('busy');
      return;
    }
    res.end('fine');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const { ms } = await elapsed(async () => {
      const text = await withRetries({ timeoutMs: 1000, retries: 2, retryDelayMs: 1 }, async () => {
        const answer = await send(url, {}, { timeoutMs: 1000 });
        if (answer.status === 503) {
          await answer.discard();
          throw new TransientHttpError('busy', retryAfterMs(answer.headers.get('retry-after')));
        }
        return answer.text();
      });
      assert.equal(text, 'fine');
    });
    assert.ok(ms >= 950, `waited ${ms} ms for a Retry-After of 1 s`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  assert.equal(retryAfterMs('3600'), 60_000);
  assert.ok(Math.abs(retryAfterMs(new Date(Date.now() + 5000).toUTCString())! - 5000) < 1500);
  assert.equal(retryAfterMs('soon'), undefined);
});

test('cancelling aborts a request in flight at once, and the wait before a retry', LIMIT, async () => {
  await withServer(['silent'], async (server) => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const { ms, error } = await elapsed(() => send(server.url, {}, { timeoutMs: 60_000, signal: controller.signal }));
    assert.ok(error instanceof RequestCancelled, String(error));
    assert.ok(ms < 1000, `${ms} ms`);

    const again = new AbortController();
    setTimeout(() => again.abort(), 100);
    const waiting = await elapsed(() => withRetries({ timeoutMs: 50, retries: 5, retryDelayMs: 30_000, signal: again.signal }, async () => (await send(server.url, {}, { timeoutMs: 50, signal: again.signal })).text()));
    assert.ok(waiting.error instanceof RequestCancelled, String(waiting.error));
    assert.ok(waiting.ms < 1000, `${waiting.ms} ms`);
  });
});

test('an answer far larger than expected is refused, not read forever', LIMIT, async () => {
  await withServer(['ok'], async (server) => {
    const answer = await send(server.url, {}, { timeoutMs: 1000 });
    await assert.rejects(answer.text(100), /more than 100 bytes/);
  }, 'y'.repeat(5000));
});
