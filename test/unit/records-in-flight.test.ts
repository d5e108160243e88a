/**
 * scoreRecords with records in flight (a serving engine's --records-in-flight): scores are handed over in the
 * records' order whatever order they end in, so a scores file stays a prefix of the records; a failing record
 * cancels those after it; an abort reaches every record in flight. A backend of promises the test resolves.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recordId, type DatasetRecord, type Example } from '../../server/records/dataset';
import type { CandidatePasses, OneShotResult, PreparedAnchors, ScoringBackend } from '../../server/scoring/backend';
import { scoreRecords, type CandidateScore } from '../../server/scoring/golden';

const prepared: PreparedAnchors = { count: 2, responseTokens: Int32Array.from([3, 3]), zeroShot: Float64Array.from([-5, -5]) };

function records(n: number): DatasetRecord[] {
  return Array.from({ length: n }, (_, index) => {
    const example = { instruction: `task ${index}`, input: '', output: `answer ${index}` };
    return { ...example, index, id: recordId(example), original: example } as unknown as DatasetRecord;
  });
}

/** Each record's one-shot pass waits until the test settles it (`finish` / `fail`); `signals` holds each call's signal. */
class HeldBackend implements ScoringBackend {
  readonly identity = { name: 'held', fingerprint: 'held', contextLength: 1024 };
  readonly held = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  readonly signals = new Map<number, AbortSignal>();
  inFlight = 0;
  maxInFlight = 0;
  async prepareAnchors(): Promise<PreparedAnchors> {
    return prepared;
  }
  async candidatePasses(): Promise<CandidatePasses> {
    return { conditional: Float64Array.from([-1]), direct: Float64Array.from([-2]), embedding: undefined };
  }
  async oneShot(candidate: Example, _anchors: PreparedAnchors, _indices?: readonly number[], signal?: AbortSignal): Promise<OneShotResult> {
    const index = (candidate as DatasetRecord).index;
    this.signals.set(index, signal!);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise<void>((resolve, reject) => {
        this.held.set(index, { resolve, reject });
        signal?.addEventListener('abort', () => reject(new Error(`record ${index} cancelled`)), { once: true });
      });
    } finally {
      this.inFlight--;
    }
    return { oneShot: Float64Array.from([-4 + index, -6]), truncated: false };
  }
  async dispose(): Promise<void> {}

  async waitFor(index: number): Promise<void> {
    while (!this.held.has(index)) await new Promise((r) => setImmediate(r));
  }
  async finish(index: number): Promise<void> {
    await this.waitFor(index);
    this.held.get(index)!.resolve();
    await new Promise((r) => setImmediate(r));
  }
}

/** The run's error (or undefined), caught as soon as it happens: the test settles records meanwhile. */
function outcome(run: Promise<void>): Promise<unknown> {
  return run.then(() => undefined, (err: unknown) => err);
}

test('records in flight are handed over in the records\' order, whatever order they end in, and at most N at once', async () => {
  const backend = new HeldBackend();
  const handed: number[] = [];
  const run = scoreRecords(backend, prepared, records(6), (s) => handed.push(s.index), undefined, undefined, 3);
  await backend.waitFor(2);
  assert.equal(backend.inFlight, 3);
  await backend.finish(2);
  await backend.finish(1);
  assert.deepEqual(handed, [], 'records 1 and 2 wait for record 0');
  await backend.finish(0);
  assert.deepEqual(handed, [0, 1, 2]);
  for (const i of [5, 4, 3]) await backend.finish(i);
  await run;
  assert.deepEqual(handed, [0, 1, 2, 3, 4, 5]);
  assert.equal(backend.maxInFlight, 3);
});

test('a failing record cancels the records after it; the records before it are still handed over, and the run rejects with its error', async () => {
  const backend = new HeldBackend();
  const handed: number[] = [];
  const run = outcome(scoreRecords(backend, prepared, records(8), (s) => handed.push(s.index), undefined, undefined, 4));
  await backend.waitFor(3);
  await backend.finish(0); // record 4 takes its place
  await backend.waitFor(4);
  backend.held.get(2)!.reject(new Error('record 2 is damaged'));
  await new Promise((r) => setImmediate(r));
  assert.ok([3, 4].every((i) => backend.signals.get(i)!.aborted), 'records 3 and 4 are cancelled');
  assert.equal(backend.signals.get(1)!.aborted, false, 'record 1 goes on');
  assert.equal(backend.held.has(5), false, 'no record starts after a failure');
  await backend.finish(1);
  assert.match(String(await run), /record 2 is damaged/);
  assert.deepEqual(handed, [0, 1]);
});

test('an abort reaches every record in flight; the run keeps the records before the first unfinished one', async () => {
  const backend = new HeldBackend();
  const handed: number[] = [];
  const controller = new AbortController();
  const run = outcome(scoreRecords(backend, prepared, records(8), (s) => handed.push(s.index), controller.signal, undefined, 4));
  await backend.waitFor(3);
  await backend.finish(0);
  await backend.finish(2); // ended, but record 1 has not: not handed over
  await backend.waitFor(5);
  controller.abort();
  assert.match(String(await run), /record 1 cancelled/);
  assert.deepEqual(handed, [0]);
  assert.ok([1, 3, 4, 5].every((i) => backend.signals.get(i)!.aborted), 'every record in flight was aborted');
  assert.equal(backend.held.has(6), false, 'no record starts after the abort');
});

test('a score the store refuses stops the hand-over: nothing after it is handed, and the run rejects with the store\'s error', async () => {
  const backend = new HeldBackend();
  const handed: number[] = [];
  const run = outcome(scoreRecords(backend, prepared, records(4), (s: CandidateScore) => {
    if (s.index === 1) throw new Error('ENOSPC: no space left on device');
    handed.push(s.index);
  }, undefined, undefined, 2));
  await backend.finish(0);
  await backend.finish(2);
  await backend.finish(1);
  assert.match(String(await run), /ENOSPC/);
  assert.deepEqual(handed, [0]);
  assert.equal(backend.signals.get(3)!.aborted, true, 'the record in flight after it is cancelled');
});
