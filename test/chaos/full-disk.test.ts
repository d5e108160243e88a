/**
 * A disk that fills up while scores are written: a real full disk, a 32 KiB tmpfs mounted for the test
 * (ENOSPC), which needs root (CI runs as root). Where it cannot be mounted the tests fail with an error
 * saying so: they never pass without the condition they test. A file size limit (`ulimit -f`, EFBIG) has
 * its own test. Each: a message saying how many records are safe, exit 1, no stack trace, a file of
 * complete lines, and a rerun (the CLI's and the editor's) that resumes once there is room.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ResponseError } from 'vscode-languageserver-protocol/node';
import * as protocol from '../../server/protocol';
import { TestClient } from '../integration/lsp-client';
import { demoModel, scratchDir } from '../helpers';
import { assertFails, assertSameScores, cli, nuggets, scoreLines, writeRecords, type Ran } from './harness';

const RECORDS = 30;
const dir = scratchDir('chaos-disk');
const dataset = join(dir, 'data.json');
const anchors = join(dir, 'anchors.json');
const reference = join(dir, 'reference.jsonl');
const PAGE = 4096;
const DISK = 8 * PAGE;

/** A 32 KiB tmpfs; an error where this process may not mount one. */
function mountSmallDisk(): string {
  const cannot = 'the full-disk tests need a real full disk: a 32 KiB tmpfs, which only root may mount (run them as root, as CI does)';
  if (process.getuid?.() !== 0) throw new Error(`${cannot}; this process runs as uid ${process.getuid?.()}`);
  const mountPoint = mkdtempSync(join(tmpdir(), 'nuggets-full-disk-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK}`, 'tmpfs', mountPoint], { encoding: 'utf8' });
  if (r.status === 0) return mountPoint;
  rmSync(mountPoint, { recursive: true, force: true });
  throw new Error(`${cannot}; mount -t tmpfs failed (exit ${r.status}): ${r.stderr || r.error?.message}`);
}

/** `nuggets ...args` with the per-file size limit at `blocks` KiB. */
function nuggetsWithFileLimit(blocks: number, ...args: string[]): Ran {
  const quoted = [process.execPath, cli, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('bash', ['-c', `ulimit -f ${blocks} && exec ${quoted}`], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const score = (out: string): string[] => ['score', dataset, '--anchors', anchors, '--out', out];

describe('a full disk while scoring', () => {
  /** The mounted tmpfs, or why it could not be mounted: then each test that needs it fails with that error. */
  let disk: string | Error = new Error('not mounted yet');
  const smallDisk = (): string => {
    if (disk instanceof Error) throw disk;
    return disk;
  };

  before(() => {
    writeRecords(dataset, 'gsm8k-train.alpaca.json', RECORDS);
    writeRecords(anchors, 'gsm8k-train.alpaca.json', 3, 200);
    const r = nuggets(dir, ...score(reference));
    assert.equal(r.code, 0, r.stderr);
    try {
      disk = mountSmallDisk();
    } catch (err) {
      disk = err as Error;
    }
  });

  after(() => {
    if (disk instanceof Error) return;
    spawnSync('umount', [disk]);
    rmSync(disk, { recursive: true, force: true });
  });

  /** Fills the disk so that `free` bytes stay free. */
  const fill = (free: number): string => {
    const pad = join(smallDisk(), 'pad');
    writeFileSync(pad, Buffer.alloc(DISK - free));
    return pad;
  };

  test('mid-run: "disk full while writing FILE; N records are safe", exit 1, and a rerun resumes', (t) => {
    const out = join(smallDisk(), 'scores.jsonl');
    t.diagnostic(`real ENOSPC: a ${DISK / 1024} KiB tmpfs at ${smallDisk()}`);
    fill(3 * PAGE); // a page for the lock file, one for the scores, one for the embeddings beside them
    const failed = nuggets(dir, ...score(out));
    assertFails(failed, 1, /disk full while writing .*scores\.jsonl(\.embeddings)?; \d+ records are safe/);
    assert.match(failed.stderr, /Free some space and run the same command again/);
    const safe = Number(/; (\d+) records are safe/.exec(failed.stderr)![1]);
    assert.ok(safe > 0 && safe < RECORDS, `${safe} records written before the disk filled`);
    assert.equal(scoreLines(out).length, safe, 'exactly the records said to be safe are in the file');
    assert.ok(readFileSync(out, 'utf8').endsWith('\n'), 'no line cut short');
    assert.equal(existsSync(`${out}.lock`), false, 'the lock is released');

    rmSync(join(smallDisk(), 'pad'));
    const resumed = nuggets(dir, ...score(out));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`${safe} already in .*, skipped`));
    assertSameScores(out, reference, RECORDS);
    rmSync(out);
    rmSync(`${out}.embeddings`, { force: true });
  });

  test('when not even the header fits, no file is left to block the rerun', (t) => {
    const out = join(smallDisk(), 'header.jsonl');
    t.diagnostic('real ENOSPC on the tmpfs: one page free, which the lock file takes');
    fill(PAGE);
    const failed = nuggets(dir, ...score(out));
    assertFails(failed, 1, /disk full while writing .*header\.jsonl(\.embeddings)?; 0 records are safe\./);
    assert.equal(existsSync(out), false, 'no 0-byte or header-only scores file');
    assert.equal(existsSync(`${out}.embeddings`), false, 'no header-only embeddings file');
    rmSync(join(smallDisk(), 'pad'));
    const rerun = nuggets(dir, ...score(out)); // the corrected run: room on the disk
    assert.equal(rerun.code, 0, rerun.stderr);
    assertSameScores(out, reference, RECORDS);
  });

  test('a file size limit (EFBIG) is named as such, and the records before it are kept', () => {
    const out = join(dir, 'efbig.jsonl');
    const failed = nuggetsWithFileLimit(2, ...score(out));
    assertFails(failed, 1, /file size limit \(ulimit -f\) reached while writing .*efbig\.jsonl(\.embeddings)?; \d+ records are safe/);
    const safe = Number(/; (\d+) records are safe/.exec(failed.stderr)![1]);
    assert.equal(scoreLines(out).length, safe);
    assert.ok(readFileSync(out).length <= 2048);
    const resumed = nuggets(dir, ...score(out));
    assert.equal(resumed.code, 0, resumed.stderr);
    assertSameScores(out, reference, RECORDS);
  });

  test('a run that fails on a bad option leaves nothing that refuses the corrected rerun', () => {
    const out = join(dir, 'bad-option.jsonl');
    const failed = nuggets(dir, ...score(out), '--max-anchor-tokens', '5000');
    assertFails(failed, 1, /maxAnchorTokens \(5000\) must be below the model's context length/);
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('bad-option')), [], 'no scores file, no lock');
    const corrected = nuggets(dir, ...score(out));
    assert.equal(corrected.code, 0, corrected.stderr);
    assertSameScores(out, reference, RECORDS);
  });

  test('the editor: a full disk fails the run with the same message, keeps what was stored, and the server goes on', async (t) => {
    for (const left of readdirSync(smallDisk())) rmSync(join(smallDisk(), left), { recursive: true, force: true }); // the tests above leave their files
    const storagePath = join(smallDisk(), 'storage');
    const uri = pathToFileURL(dataset).toString();
    const settings: protocol.ServerSettings = { model: demoModel, anchors, maxAnchorTokens: 200, batchSize: 8, threads: 1, scoringAllowed: true };
    const client = await TestClient.start({ storagePath, settings });
    try {
      await client.open(uri, readFileSync(dataset, 'utf8'));
      await client.waitForScores(uri, (p) => p.full, 'the first scores notification');
      t.diagnostic('real ENOSPC: the storage folder on the tmpfs, two pages left free');
      const { bavail, bsize } = statfsSync(smallDisk());
      writeFileSync(join(smallDisk(), 'pad'), Buffer.alloc(bavail * bsize - 2 * PAGE));
      const failed = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } }).then(() => undefined, (err: unknown) => err);
      assert.ok(failed instanceof ResponseError, 'the run failed');
      assert.match(failed.message, /disk full while writing .*\.jsonl; \d+ records are safe in it\./);
      const safe = Number(/; (\d+) records are safe/.exec(failed.message)![1]);
      const files = readdirSync(join(storagePath, 'scores')).filter((f) => f.endsWith('.jsonl'));
      assert.equal(files.length, 1);
      assert.equal(scoreLines(join(storagePath, 'scores', files[0]!)).length, safe);
      assert.ok(safe > 0 && safe < RECORDS, `${safe} records stored before the disk filled`);
      assert.match((await client.hover(uri, 2)) ?? '', /Golden score/, 'the server still answers, with the stored scores');
      rmSync(join(smallDisk(), 'pad'));
      const rerun = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
      assert.equal(rerun.scoredNow, RECORDS - safe);
      assert.equal(rerun.scored, RECORDS);
      assert.equal(scoreLines(join(storagePath, 'scores', files[0]!)).length, RECORDS, 'the rerun completed the same file');
    } finally {
      // onnxruntime-node can abort while its worker thread is torn down at shutdown, leaving the shutdown request unanswered.
      await Promise.race([client.stop().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 5000))]);
      client.child.kill('SIGKILL');
    }
  });

  test('an empty or header-only scores file left by an older version is replaced, not refused', () => {
    for (const [name, content] of [['zero.jsonl', ''], ['header-only.jsonl', '{"nuggets_scores":1,"model":{"name":"other","fingerprint":"0"},"anchors":{"hash":"x","count":1}}\n'], ['cut-header.jsonl', '{"nuggets_scores":1,"mod']]) {
      const out = join(dir, name);
      writeFileSync(out, content);
      const r = nuggets(dir, ...score(out));
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assertSameScores(out, reference, RECORDS);
    }
  });
});
