/**
 * The bad-input corpus: malformed datasets, anchors, scores files and model folders, and bad options.
 * Each case must end with its exit code (1 for bad input, 2 for a usage error), a message that names the
 * file or option at fault, and no stack trace; none may leave a scores file behind.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { demoModel, scratchDir } from '../helpers';
import { assertFails, nuggets, writeRecords } from './harness';

const dir = scratchDir('chaos-input');
const run = (...args: string[]) => nuggets(dir, ...args);
const write = (name: string, content: string | Buffer): string => {
  writeFileSync(join(dir, name), content);
  return name;
};

/** A dataset file nested `levels` deep, unclosed: jsonc's recursive parser would overflow the stack on it. */
const deepUnclosed = (levels: number): string => '['.repeat(levels);

interface Case {
  name: string;
  args: () => string[];
  code: 1 | 2;
  message: RegExp;
}

const score = (dataset: string, ...more: string[]): string[] => ['score', dataset, '--anchors', 'anchors.json', '--out', `out-${dataset.replace(/\W/g, '_')}.jsonl`, ...more];
const select = (...more: string[]): string[] => ['select', 'data.json', '--scores', 'scores.jsonl', '--out', 'golden.json', ...more];

const datasets: Array<[string, string | Buffer, RegExp]> = [
  ['trailing-comma.json', '[{"instruction": "a", "output": "b"},]', /trailing-comma\.json:1:\d+: malformed JSON/],
  ['missing-comma.json', '[\n{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n]', /missing-comma\.json:3:1: malformed JSON/],
  ['deep-array.json', deepUnclosed(100_000), /deep-array\.json:1:100001: malformed JSON \(unexpected end of the text, nested too deeply/],
  ['deep-object.jsonl', '{"a":'.repeat(100_000) + '\n', /deep-object\.jsonl:1:\d+: malformed JSON on line 1 \(unexpected end of the text, nested too deeply/],
  ['deep-broken.json', '['.repeat(100_000) + '}', /deep-broken\.json:1:\d+: malformed JSON \(invalid JSON, nested too deeply/],
  ['deep-valid.json', '['.repeat(100_000) + ']'.repeat(100_000), /deep-valid\.json:1: record 0 is not an object/],
  ['utf16le.json', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('[{"instruction": "a", "output": "b"}]', 'utf16le')]), /utf16le\.json is encoded as UTF-16 \(little-endian\)/],
  ['utf16be.json', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('[{"instruction": "a", "output": "b"}]', 'utf16le').swap16()]), /utf16be\.json is encoded as UTF-16 \(big-endian\)/],
  ['utf16-nobom.json', Buffer.from('[{"instruction": "a", "output": "b"}]', 'utf16le'), /utf16-nobom\.json is encoded as UTF-16 \(little-endian, no byte order mark\)/],
  ['empty.json', '', /empty\.json: the dataset has no records/],
  ['empty-array.json', '[]', /empty-array\.json: the dataset has no records/],
  ['whitespace.jsonl', '\n\n  \n', /whitespace\.jsonl: the dataset has no records/],
  ['no-output.json', '[{"instruction": "a"}]', /no-output\.json:1: record 0 has no "output" field/],
  ['number-field.json', '[{"instruction": 3, "output": "b"}]', /number-field\.json:1: record 0 field "instruction" is a number, not a string/],
  ['null-field.jsonl', '{"instruction": "a", "output": null}\n', /null-field\.jsonl:1: record 0 field "output" is null, not a string/],
  ['string-record.json', '["just text"]', /string-record\.json:1: record 0 is not an object/],
  ['object.json', '{"instruction": "a"}', /object\.json:1: record 0 has no "output" field/],
  ['bad-line.jsonl', '{"instruction": "a", "output": "b"}\n{"instruction": \n', /bad-line\.jsonl:2:\d+: malformed JSON on line 2/],
  ['binary.json', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x01, 0x02, 0x03]), /binary\.json:1:\d+: malformed JSON/],
  ['truncated.json', '[{"instruction": "a", "output": "b"}, {"instruction": "c", "outp', /truncated\.json:1:\d+: malformed JSON/],
];

const cases: Case[] = [
  ...datasets.map(([file, , message]): Case => ({ name: `dataset ${file}`, args: () => score(file), code: 1, message })),
  { name: 'a dataset that does not exist', args: () => score('nowhere.json'), code: 1, message: /Cannot read dataset nowhere\.json: no such file/ },
  { name: 'a dataset that is a folder', args: () => score('a-folder'), code: 1, message: /a-folder is a folder with no \.parquet files\.\n  Give a dataset file \(JSON, JSON Lines or Parquet\) or a folder of Parquet shards/ },
  { name: 'a dataset that is a symlink loop', args: () => score('loop-a.json'), code: 1, message: /Cannot read dataset loop-a\.json: it is a symbolic link that loops/ },
  { name: 'a dataset behind a dangling symlink', args: () => score('dangling.json'), code: 1, message: /Cannot read dataset dangling\.json: no such file/ },
  { name: 'an anchors file that is UTF-16', args: () => ['score', 'data.json', '--anchors', 'utf16le.json', '--out', 'a16.jsonl'], code: 1, message: /utf16le\.json is encoded as UTF-16/ },
  { name: 'an anchors file that does not exist', args: () => ['score', 'data.json', '--anchors', 'nope.json', '--out', 'anope.jsonl'], code: 1, message: /Cannot read anchors file nope\.json: no such file/ },
  { name: 'an anchors file nested 100,000 deep', args: () => ['score', 'data.json', '--anchors', 'deep-array.json', '--out', 'adeep.jsonl'], code: 1, message: /anchors file .*deep-array\.json:1:100001: malformed JSON/ },
  { name: 'an anchors file that is an empty array', args: () => ['score', 'data.json', '--anchors', 'empty-array.json', '--out', 'aempty.jsonl'], code: 1, message: /^nuggets: empty-array\.json: the anchors file has no records\.\n/ },
  { name: 'an anchors file that is not Alpaca', args: () => ['score', 'data.json', '--anchors', 'string-record.json', '--out', 'anot.jsonl'], code: 1, message: /anchors file is not a usable Alpaca file: string-record\.json/ },
  { name: 'a scores file that is not one', args: () => ['select', 'data.json', '--scores', 'data.json', '--top', '1', '--out', 'g.json'], code: 1, message: /data\.json: not a Nuggets scores file/ },
  { name: 'a scores file with a damaged line', args: () => ['select', 'data.json', '--scores', 'damaged.jsonl', '--top', '1', '--out', 'g.json'], code: 1, message: /damaged\.jsonl:2: malformed scores line/ },
  { name: 'a scores file that does not exist', args: () => ['select', 'data.json', '--scores', 'missing.jsonl', '--top', '1', '--out', 'g.json'], code: 1, message: /Cannot read scores file missing\.jsonl: no such file/ },
  { name: 'model.onnx that is a folder', args: () => score('data.json', '--model', 'onnx-folder'), code: 1, message: /onnx-folder\/model\.onnx is a folder, not an ONNX graph/ },
  { name: 'a model folder that does not exist', args: () => score('data.json', '--model', 'no-model'), code: 1, message: /Model folder not found: .*no-model/ },
  { name: 'a model config that is not JSON', args: () => score('data.json', '--model', 'bad-config'), code: 1, message: /bad-config\/config\.json is not valid JSON/ },
  { name: '--max-anchor-tokens past the model context', args: () => score('data.json', '--max-anchor-tokens', '5000'), code: 1, message: /maxAnchorTokens \(5000\) must be below the model's context length \(1024\)/ },
  { name: '--max-anchor-tokens that leaves no anchor a response token', args: () => score('data.json', '--max-anchor-tokens', '3'), code: 1, message: /No anchor has a response token left after cutting anchors to 3 tokens/ },
  { name: '--out in a folder that does not exist', args: () => ['score', 'data.json', '--anchors', 'anchors.json', '--out', 'no/such/folder/s.jsonl'], code: 1, message: /no\/such\/folder\/s\.jsonl\.lock: the folder no\/such\/folder does not exist/ },
  { name: '--out that is a symlink loop (kept as it was)', args: () => ['score', 'data.json', '--anchors', 'anchors.json', '--out', 'loop-a.json'], code: 1, message: /Cannot write scores file loop-a\.json: it is a symbolic link that loops/ },
  { name: '--out that is the dataset', args: () => ['score', 'data.json', '--anchors', 'anchors.json', '--out', 'data.json'], code: 1, message: /Refusing to write data\.json: it is an input/ },
  { name: 'anchors --out in a folder that does not exist', args: () => ['anchors', 'data.json', '--random', '2', '--out', 'nope/a.json'], code: 1, message: /Cannot write nope\/a\.json: the folder nope does not exist/ },
  // Usage errors: exit 2, whatever the files.
  { name: 'select --top 0', args: () => select('--top', '0'), code: 2, message: /--top expects a whole number of at least 1 \(got "0"\)/ },
  { name: 'select --top 1.5', args: () => select('--top', '1.5'), code: 2, message: /--top expects a whole number of at least 1 \(got "1\.5"\)/ },
  { name: 'select --top-percent 150', args: () => select('--top-percent', '150'), code: 2, message: /--top-percent must be in \(0, 100\] \(got "150"\)/ },
  { name: 'select --top-percent 0', args: () => select('--top-percent', '0'), code: 2, message: /--top-percent must be in \(0, 100\]/ },
  { name: 'select --min-score 2', args: () => select('--min-score', '2'), code: 2, message: /--min-score must be in \[0, 1\] \(got "2"\)/ },
  { name: 'select --min-score -0.5', args: () => select('--min-score', '-0.5'), code: 2, message: /--min-score must be in \[0, 1\] \(got "-0\.5"\)/ },
  { name: 'select --min-score=-0.5', args: () => select('--min-score=-0.5'), code: 2, message: /--min-score must be in \[0, 1\] \(got "-0\.5"\)/ },
  { name: 'select --top abc', args: () => select('--top', 'abc'), code: 2, message: /--top expects a number \(got "abc"\)/ },
  { name: 'select with two sizes', args: () => select('--top', '3', '--top-percent', '10'), code: 2, message: /give at most one of --top or --top-percent/ },
  { name: 'score --shard 3/2', args: () => score('data.json', '--shard', '3/2'), code: 2, message: /--shard expects i\/n with 0 <= i < n \(got "3\/2"\)/ },
  { name: 'score --shard 1/0', args: () => score('data.json', '--shard', '1/0'), code: 2, message: /--shard expects i\/n/ },
  { name: 'score --threads -3', args: () => score('data.json', '--threads', '-3'), code: 2, message: /--threads expects a whole number of at least 0 \(got "-3"\)/ },
  { name: 'score --threads=-3', args: () => score('data.json', '--threads=-3'), code: 2, message: /--threads expects a whole number of at least 0 \(got "-3"\)/ },
  { name: 'score --max-anchor-tokens 0', args: () => score('data.json', '--max-anchor-tokens', '0'), code: 2, message: /--max-anchor-tokens expects a whole number of at least 1 \(got "0"\)/ },
  { name: 'score --batch-size 0', args: () => score('data.json', '--batch-size', '0'), code: 2, message: /--batch-size expects a whole number of at least 1/ },
  { name: 'score --min-score 0', args: () => score('data.json', '--min-score', '0'), code: 2, message: /--min-score must be in \(0, 1\]/ },
  { name: 'score --concurrency 0', args: () => score('data.json', '--concurrency', '0'), code: 2, message: /--concurrency expects a whole number of at least 1/ },
  { name: 'score without --out', args: () => ['score', 'data.json', '--anchors', 'anchors.json'], code: 2, message: /missing --out/ },
  { name: 'agree --sample 0', args: () => ['agree', 'data.json', '--anchors', 'anchors.json', '--model', 'demo', '--model', 'demo', '--sample', '0'], code: 2, message: /--sample expects a whole number of at least 1 \(got "0"\)/ },
  { name: 'agree --min-score 2', args: () => ['agree', 'data.json', '--anchors', 'anchors.json', '--model', 'demo', '--model', 'demo', '--min-score', '2'], code: 2, message: /--min-score must be in \[0, 1\] \(got "2"\)/ },
  { name: 'score with an unknown option', args: () => score('data.json', '--frobnicate'), code: 2, message: /Unknown option '--frobnicate'/ },
  { name: 'anchors --kmeans 0', args: () => ['anchors', 'data.json', '--kmeans', '0', '--out', 'a.json'], code: 2, message: /--kmeans expects a whole number of at least 1/ },
  { name: 'anchors --random 2.5', args: () => ['anchors', 'data.json', '--random', '2.5', '--out', 'a.json'], code: 2, message: /--random expects a whole number of at least 1/ },
  { name: 'an unknown command', args: () => ['frobnicate'], code: 2, message: /unknown command "frobnicate"/ },
];

describe('the bad-input corpus', () => {
  before(() => {
    writeRecords(join(dir, 'data.json'), 'gsm8k-train.alpaca.json', 6);
    writeRecords(join(dir, 'anchors.json'), 'gsm8k-train.alpaca.json', 3, 100);
    for (const [file, content] of datasets) write(file, content);
    mkdirSync(join(dir, 'a-folder'));
    symlinkSync('loop-b.json', join(dir, 'loop-a.json'));
    symlinkSync('loop-a.json', join(dir, 'loop-b.json'));
    symlinkSync('gone.json', join(dir, 'dangling.json'));
    const scored = run('score', 'data.json', '--anchors', 'anchors.json', '--out', 'scores.jsonl');
    assert.equal(scored.code, 0, scored.stderr);
    write('damaged.jsonl', `${'{"nuggets_scores":1,"model":{"name":"m","fingerprint":"f"},"anchors":{"hash":"h","count":1}}'}\n{"index":0,"id":"ab\n`);
    for (const folder of ['onnx-folder', 'bad-config']) {
      mkdirSync(join(dir, folder));
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(demoModel, f), join(dir, folder, f));
    }
    mkdirSync(join(dir, 'onnx-folder', 'model.onnx'));
    copyFileSync(join(demoModel, 'model.onnx'), join(dir, 'bad-config', 'model.onnx'));
    write('bad-config/config.json', '{"n_positions": 1024,');
  });

  for (const c of cases) {
    test(c.name, () => {
      const before = new Set(readdirSync(dir));
      assertFails(run(...c.args()), c.code, c.message, c.name);
      const left = readdirSync(dir).filter((f) => !before.has(f));
      assert.deepEqual(left, [], 'a failed command leaves no file behind (no scores file, no lock)');
    });
  }

  test('--threads -3 is not taken for a damaged model file', () => {
    const r = run(...score('data.json', '--threads', '-3'));
    assert.doesNotMatch(r.stderr, /truncated|ONNX/);
  });

  test('a usage error prints the usage; bad input does not', () => {
    assert.match(run(...select('--top', '0')).stderr, /Usage:/);
    assert.doesNotMatch(run(...score('empty.json')).stderr, /Usage:/);
  });

  test('an anchor whose query fills --max-anchor-tokens is named, excluded, and not counted as a loss', () => {
    const long = `Summarize the following text. ${'The committee met again to discuss the budget and the schedule. '.repeat(20)}`;
    write('anchors-one-long.json', JSON.stringify([
      { instruction: 'Name a primary colour.', input: '', output: 'Blue is a primary colour.' },
      { instruction: long, input: '', output: 'They discussed the budget.' },
      { instruction: 'Add 2 and 3.', input: '', output: 'The sum is 5.' },
    ]));
    const r = run('score', 'data.json', '--anchors', 'anchors-one-long.json', '--out', 'excluded.jsonl', '--max-anchor-tokens', '64');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: anchor 2 \("Summarize the following text\. The commit…"\) has no response token left within 64 tokens and is excluded: golden scores count the other 2 of 3 anchors\./);
    const lines = readFileSync(join(dir, 'excluded.jsonl'), 'utf8').split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l) as { golden_score: number; wins: number; anchors: number; deltas: Array<number | null> });
    assert.equal(lines.length, 6);
    for (const l of lines) {
      assert.equal(l.anchors, 2);
      assert.equal(l.deltas[1], null);
      assert.equal(l.golden_score, l.deltas.filter((d) => d !== null && d > 0).length / 2);
    }
    assert.ok(lines.every((l) => [0, 0.5, 1].includes(l.golden_score)), 'shares of 2 anchors, never of 3');
  });

  test('the symbolic links given as dataset and --out are left as they were', () => {
    assert.equal(readlinkSync(join(dir, 'loop-a.json')), 'loop-b.json');
    assert.equal(readlinkSync(join(dir, 'loop-b.json')), 'loop-a.json');
  });

  test('the dataset files are never modified', () => {
    for (const [file, content] of datasets) assert.deepEqual(readFileSync(join(dir, file)), Buffer.from(content), file);
  });
});
