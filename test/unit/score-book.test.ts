/**
 * The editor's score book (server/lsp/score-book.ts) with real records scored by the demo model: Clear Scores
 * takes the cleared records' embeddings out of the float16 sidecar along with their scores, so that nearest
 * neighbours and diversity never use them again, in this process or after a reload from disk, while every
 * other record keeps its vector.
 */
import assert from 'node:assert/strict';
import fs, { appendFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { before, test } from 'node:test';
import { anchorSet } from '../../server/records/anchors';
import { ScoreBook } from '../../server/lsp/score-book';
import { DEFAULT_OPTIONS } from '../../server/scoring/backend';
import { scoreCandidate, type CandidateScore } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { TEMPLATE_ID } from '../../server/scoring/template';
import { embeddingsPathFor, readEmbeddings } from '../../server/signals/embedding-file';
import { ScoresWriter, type ScoringKey } from '../../server/records/store';
import { demoModel, scratchDir, sharedRecords } from '../helpers';

const records = sharedRecords('gsm8k-train.alpaca.json', [0, 1, 2, 3, 4, 5]);
const anchors = sharedRecords('gsm8k-train.alpaca.json', [100, 101, 102, 103]);
let scores: CandidateScore[];
let key: ScoringKey;

before(async () => {
  const backend = await LocalBackend.open(demoModel, { threads: 1, cacheDir: scratchDir('score-book-cache') });
  try {
    const prepared = await backend.prepareAnchors(anchors, DEFAULT_OPTIONS);
    scores = [];
    for (const record of records) scores.push(await scoreCandidate(backend, prepared, record));
    const { name, fingerprint } = backend.identity;
    key = {
      model: { name, fingerprint }, anchors: { hash: anchorSet(anchors).hash, count: anchors.length }, template: TEMPLATE_ID,
      maxAnchorTokens: DEFAULT_OPTIONS.maxAnchorTokens, separator: DEFAULT_OPTIONS.separator,
    };
  } finally {
    await backend.dispose();
  }
  assert.ok(scores.every((s) => s.embedding !== undefined), 'the demo model gives every record an embedding');
});

/** Stores `list` as one scoring run does. */
function store(book: ScoreBook, list: readonly CandidateScore[]): void {
  assert.equal(book.startRun(key), true);
  for (const score of list) book.append(key, score);
  book.endRun(key);
}

const idsOf = (list: readonly CandidateScore[]): string[] => list.map((s) => s.id).sort();
const sorted = (ids: Iterable<string>): string[] => [...ids].sort();

test('Clear Scores takes the cleared records\' embeddings out of the sidecar; the others keep theirs, also after a reload from disk', () => {
  const storage = scratchDir('score-book-clear');
  const book = new ScoreBook(storage);
  store(book, scores);
  const sidecar = embeddingsPathFor(book.scoresPathOf(key));
  const stored = book.embeddingsOf(key)!;
  assert.deepEqual(sorted(stored.keys()), idsOf(scores));
  const sidecarBefore = readFileSync(sidecar);
  const dimension = scores[0]!.embedding!.length;

  const cleared = [scores[1]!, scores[4]!];
  assert.equal(book.clear(new Set(idsOf(cleared))), 2);
  const kept = scores.filter((s) => !cleared.includes(s));
  for (const [what, reader] of [['this book', book], ['a book read again from disk', new ScoreBook(storage)]] as const) {
    const vectors = reader.embeddingsOf(key)!;
    assert.deepEqual(sorted(vectors.keys()), idsOf(kept), `${what}: the embeddings of the records still scored`);
    for (const s of kept) assert.deepEqual([...vectors.get(s.id)!], [...stored.get(s.id)!], `${what}: record ${s.index}'s vector unchanged`);
    assert.deepEqual(sorted(reader.scoresOf(key).keys()), idsOf(kept), `${what}: scores`);
  }
  // The file itself lost the two entries (the command line's select --diverse reads it directly), and no more.
  assert.deepEqual(sorted(readEmbeddings(sidecar)!.vectors.keys()), idsOf(kept));
  assert.equal(statSync(sidecar).size, sidecarBefore.length - 2 * (8 + 2 * dimension));

  // A sidecar that could not be rewritten (a full disk) still lends no vector to a record without a score.
  writeFileSync(sidecar, sidecarBefore);
  assert.deepEqual(sorted(new ScoreBook(storage).embeddingsOf(key)!.keys()), idsOf(kept));
  book.close();
});

test('a clear during this window\'s own run: the run goes on storing embeddings, into the rewritten sidecar', () => {
  const storage = scratchDir('score-book-run');
  const book = new ScoreBook(storage);
  assert.equal(book.startRun(key), true);
  for (const score of scores.slice(0, 3)) book.append(key, score);
  assert.equal(book.clear(new Set([scores[0]!.id])), 1);
  for (const score of scores.slice(3)) book.append(key, score);
  book.endRun(key);
  const expected = idsOf(scores.slice(1));
  for (const reader of [book, new ScoreBook(storage)]) {
    assert.deepEqual(sorted(reader.embeddingsOf(key)!.keys()), expected);
    assert.deepEqual(sorted(reader.scoresOf(key).keys()), expected);
  }
  book.close();
});

test('clearing every record removes the sidecar with the scores file; a record scored again has its embedding again', () => {
  const storage = scratchDir('score-book-all');
  const book = new ScoreBook(storage);
  store(book, scores);
  const sidecar = embeddingsPathFor(book.scoresPathOf(key));
  assert.equal(book.clear(new Set(idsOf(scores))), scores.length);
  assert.ok(!existsSync(book.scoresPathOf(key)) && !existsSync(sidecar), 'neither file is left');
  assert.equal(book.embeddingsOf(key), undefined);

  store(book, [scores[2]!]);
  assert.deepEqual(sorted(new ScoreBook(storage).embeddingsOf(key)!.keys()), [scores[2]!.id]);
  book.close();
});

test('a clear whose rewrite fails (a full disk) keeps every score and leaves no temporary file beside them', () => {
  const storage = scratchDir('score-book-clear-fails');
  const book = new ScoreBook(storage);
  store(book, scores);
  const path = book.scoresPathOf(key);
  const before = readFileSync(path);
  // The rewrite fails after its temporary file was made, as a disk that fills up does.
  const append = ScoresWriter.prototype.append;
  let appended = 0;
  ScoresWriter.prototype.append = function failing(this: ScoresWriter, score: CandidateScore): void {
    if (++appended > 2) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    append.call(this, score);
  };
  try {
    assert.throws(() => book.clear(new Set([scores[0]!.id])), /no space left/);
  } finally {
    ScoresWriter.prototype.append = append;
  }
  assert.deepEqual(readdirSync(dirname(path)).filter((name) => name.includes('.clearing-')), []);
  assert.deepEqual(readFileSync(path), before, 'the scores file is untouched');
  assert.deepEqual(sorted(new ScoreBook(storage).scoresOf(key).keys()), idsOf(scores));
  book.close();
});

/** Every file in the scores folder, by name, with its bytes. */
function folderBytes(folder: string): Map<string, string> {
  return new Map(readdirSync(folder).sort().map((name) => [name, readFileSync(`${folder}/${name}`).toString('hex')]));
}

test('Clear Scores is all or nothing across files: a failure on the second file, writing its rewrite or putting it in place, leaves every scores file and sidecar as it was', () => {
  const other: ScoringKey = { ...key, anchors: { hash: anchorSet(anchors.slice(0, 3)).hash, count: 3 } };
  const faults: { what: string; inject: () => () => void }[] = [
    {
      what: 'writing the second rewrite (a full disk)',
      inject: () => {
        const open = ScoresWriter.open;
        let opened = 0;
        ScoresWriter.open = function failing(...args: Parameters<typeof ScoresWriter.open>): ScoresWriter {
          if (++opened === 2) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          return open.apply(ScoresWriter, args);
        };
        return () => (ScoresWriter.open = open);
      },
    },
    {
      what: 'renaming the second rewrite into place',
      inject: () => {
        const rename = fs.renameSync;
        let renamed = 0;
        fs.renameSync = function failing(from: fs.PathLike, to: fs.PathLike): void {
          if (String(from).includes('.jsonl.clearing-') && ++renamed === 2) throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
          rename(from, to);
        };
        return () => (fs.renameSync = rename);
      },
    },
  ];
  for (const fault of faults) {
    const storage = scratchDir('score-book-clear-all-or-nothing');
    const book = new ScoreBook(storage);
    store(book, scores);
    assert.equal(book.startRun(other), true);
    for (const score of scores) book.append(other, score);
    book.endRun(other);
    const folder = dirname(book.scoresPathOf(key));
    const before = folderBytes(folder);
    assert.equal([...before.keys()].filter((name) => name.endsWith('.jsonl')).length, 2, 'two scores files');
    assert.equal([...before.keys()].filter((name) => name.includes('embeddings')).length, 2, 'each with its sidecar');
    const cleared = new Set([scores[0]!.id, scores[3]!.id]);
    const restore = fault.inject();
    try {
      assert.throws(() => book.clear(cleared), /no space left|i\/o error/, fault.what);
    } finally {
      restore();
    }
    assert.deepEqual(folderBytes(folder), before, `${fault.what}: every file as it was, nothing left beside them`);
    for (const k of [key, other]) {
      assert.deepEqual(sorted(book.scoresOf(k).keys()), idsOf(scores), `${fault.what}: every score still shown`);
      assert.deepEqual(sorted(new ScoreBook(storage).scoresOf(k).keys()), idsOf(scores));
    }
    // With the fault gone, the clear happens in both files.
    assert.equal(book.clear(cleared), 4);
    for (const k of [key, other]) {
      assert.deepEqual(sorted(new ScoreBook(storage).scoresOf(k).keys()), idsOf(scores.filter((s) => !cleared.has(s.id))));
      assert.deepEqual(sorted(new ScoreBook(storage).embeddingsOf(k)!.keys()), idsOf(scores.filter((s) => !cleared.has(s.id))));
    }
    assert.deepEqual([...folderBytes(folder).keys()].filter((name) => /clearing|before-clear/.test(name)), []);
    book.close();
  }
});

test('a run appends to a scores file read to its end without reading it whole; lines another writer added are read first', () => {
  const storage = scratchDir('score-book-resume');
  const book = new ScoreBook(storage);
  store(book, scores.slice(0, 2));
  const path = book.scoresPathOf(key);
  // Another writer (another window, a command-line run) appends a record meanwhile.
  const other = ScoresWriter.open(path, { nuggets_scores: 1, ...key, dataset: 'other', shard: null, created: new Date().toISOString() });
  other.append(scores[2]!);
  other.close();
  const open = ScoresWriter.open;
  let wholeReads = 0;
  ScoresWriter.open = (...args: Parameters<typeof open>): ScoresWriter => {
    wholeReads++;
    return open(...args);
  };
  try {
    store(book, scores.slice(3, 5));
    assert.equal(wholeReads, 0, 'the file read to its end is appended to as it is');
    // A line cut short (a run killed mid-write) is not read to the end: that file is read whole and cut back.
    appendFileSync(path, '{"index": 9, "id": "cut sh');
    store(book, scores.slice(5));
    assert.equal(wholeReads, 1, 'a file with a line cut short is read whole');
  } finally {
    ScoresWriter.open = open;
  }
  book.close();
  assert.deepEqual(sorted(new ScoreBook(storage).scoresOf(key).keys()), idsOf(scores), 'every record once, from disk');
  assert.equal(readFileSync(path, 'utf8').split('\n').filter((line) => line.includes('"golden_score"')).length, scores.length);
});
