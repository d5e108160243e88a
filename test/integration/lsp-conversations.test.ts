/**
 * Conversations in the editor: the built language server (dist/server.js) over stdio, on the real ShareGPT
 * sample (samples/identity-15.sharegpt.json) and on a messages JSON Lines file made from real conversations of
 * ../shared/data/fastchat-identity.sharegpt.json, with the demo model and the built-in ChatML template. The
 * command line (dist/cli.js) and the editor share one scores file for the same dataset, model, anchors and
 * template, and compute the same numbers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ResponseError } from 'vscode-languageserver-protocol/node';
import { readAnchors } from '../../server/records/anchors';
import { readDataset } from '../../server/records/dataset';
import { keyName } from '../../server/lsp/score-book';
import { readModelFolder } from '../../server/model/folder';
import * as protocol from '../../server/protocol';
import { CHATML_TEMPLATE, templateKey } from '../../server/scoring/chat-template';
import { demoModel, repoRoot, runCli, sharedData } from '../helpers';
import { TestClient } from './lsp-client';

const work = mkdtempSync(join(tmpdir(), 'nuggets-lsp-chat-'));
const storagePath = join(work, 'storage');
const sample = join(repoRoot, 'samples', 'identity-15.sharegpt.json');
const sampleUri = pathToFileURL(sample).toString();
const sampleText = readFileSync(sample, 'utf8');
const anchorsPath = join(work, 'chat-anchors.json');

/**
 * Ten real conversations as messages records (the first ten different ones from index 100: the identity data repeats
 * some), then one whose final assistant turn is cut off (a problem record).
 */
const messagesPath = join(work, 'identity.messages.jsonl');
const messagesUri = pathToFileURL(messagesPath).toString();
const fastchat = JSON.parse(readFileSync(sharedData('fastchat-identity.sharegpt.json'), 'utf8')) as { id: string; conversations: { from: string; value: string }[] }[];
const asMessages = (c: (typeof fastchat)[number]): { role: string; content: string }[] => c.conversations.map((t) => ({ role: t.from === 'human' ? 'user' : 'assistant', content: t.value }));
const distinct = fastchat.slice(100).filter((c, i, all) => all.findIndex((o) => JSON.stringify(o.conversations) === JSON.stringify(c.conversations)) === i);
const messagesText = [
  ...distinct.slice(0, 10).map((c) => JSON.stringify({ id: c.id, messages: asMessages(c) })),
  JSON.stringify({ id: distinct[10]!.id, messages: asMessages(distinct[10]!).slice(0, -1) }),
].join('\n') + '\n';
writeFileSync(messagesPath, messagesText);

const settings: protocol.ServerSettings = {
  model: demoModel, anchors: anchorsPath, maxAnchorTokens: 200, batchSize: 16, threads: 1, scoringAllowed: true, template: 'chatml',
};

let client: TestClient;
/** The scores file the editor keeps for the demo model, the anchors and `template` (score-book.ts keyName). */
let storedPath: (template: string) => string;

/** Golden scores of a CLI scores file, by record id. */
function cliScores(path: string): Map<string, number> {
  const [, ...lines] = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { id: string; golden_score: number });
  return new Map(lines.map((l) => [l.id, l.golden_score]));
}

/** The first line of the record at `index` in a JSON array file (the line of its opening brace). */
function recordLine(text: string, path: string, index: number): number {
  const record = readDataset(path).records[index]!;
  return text.slice(0, record.start).split('\n').length - 1;
}

describe('conversations in the editor', () => {
  before(async () => {
    const chosen = await runCli(work, ['anchors', sample, '--random', '5', '--seed', '3', '--out', anchorsPath]);
    assert.equal(chosen.code, 0, chosen.stderr);
    const fingerprint = readModelFolder(demoModel).fingerprint;
    const anchors = readAnchors(anchorsPath);
    storedPath = (template) => join(storagePath, 'scores', `${keyName({
      model: { name: 'demo', fingerprint }, anchors: { hash: anchors.hash, count: anchors.anchors.length }, template, maxAnchorTokens: 200, separator: '',
    })}.jsonl`);
    client = await TestClient.start({ storagePath, settings });
  });

  after(async () => {
    await client?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  test('scores the CLI wrote with --template chatml show on the ShareGPT sample at once, equal, and Score Dataset computes none again', async () => {
    const cli = await runCli(work, ['score', sample, '--anchors', anchorsPath, '--template', 'chatml', '--threads', '1', '--out', storedPath('chatml')]);
    assert.equal(cli.code, 0, cli.stderr);
    const expected = cliScores(storedPath('chatml'));
    assert.equal(expected.size, 15);
    await client.open(sampleUri, sampleText);
    const shown = await client.waitForScores(sampleUri, (p) => p.full, 'the sample\'s scores');
    assert.equal(shown.total, 15);
    assert.equal(shown.scored, 15, 'every conversation has a current score from the CLI\'s file');
    for (const r of shown.records) {
      assert.equal(r.stale, false);
      assert.equal(r.score?.goldenScore, expected.get(r.id), `record ${r.index}`);
    }
    const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: sampleUri } });
    assert.equal(result.scoredNow, 0);
    assert.equal(result.scored, 15);
  });

  test('the hover of a conversation shows its turns with roles, escaped and isolated, and its golden score', async () => {
    const hover = await client.hover(sampleUri, recordLine(sampleText, sample, 0) + 1);
    assert.ok(hover, 'a hover on the first conversation');
    assert.match(hover, /\*\*◆ Golden score /);
    assert.match(hover, /\*\*Conversation\*\* · 4 turns/);
    assert.match(hover, /\*\*user\*\*: \u2068Who are you\\\?\u2069/);
    assert.match(hover, /\*\*assistant\*\* \*\(scored\)\*: \u2068You too!?\\?!?\u2069/);
    assert.doesNotMatch(hover, /\]\(|<[a-z]/i, 'no link or HTML forms from the dataset text');
  });

  test('the dashboard\'s table shows a conversation by its last user turn, its scored turn and its number of turns', async () => {
    const page = await client.connection.sendRequest(protocol.tablePage, { textDocument: { uri: sampleUri }, offset: 0, limit: 3 });
    assert.equal(page.total, 15);
    const turns = (JSON.parse(sampleText) as { conversations: { from: string; value: string }[] }[]).slice(0, 3).map((c) => c.conversations);
    assert.deepEqual(page.rows.map((r) => ({ instruction: r.instruction, input: r.input, output: r.output, turns: r.turns })), turns.map((t) => ({
      instruction: t.filter((x) => x.from === 'human').at(-1)!.value, input: '', output: t.at(-1)!.value, turns: t.length,
    })));
    assert.ok(page.rows.every((r) => r.score && !r.stale));
  });

  test('a messages JSON Lines file: scored in the editor as the CLI scores it, its problem conversation marked, counted and never scored', async () => {
    await client.open(messagesUri, messagesText, 'jsonl');
    const first = await client.waitForScores(messagesUri, (p) => p.full, 'the messages file\'s scores');
    // Eleven records shown, ten to score: the one that cannot be scored is not waited for.
    assert.equal(first.records.length, 11);
    assert.equal(first.total, 10);
    const problem = first.records[10]!;
    assert.equal(problem.problem?.mark, 'unscorable');
    assert.match(problem.problem!.reason, /cannot be scored: its last turn is a user turn/);
    // A conversation the sample also holds (the identity data repeats its conversations) has its score already: a
    // record's id is a hash of its turns, whatever format it is written in.
    const already = first.records.filter((r) => r.score && !r.stale).length;
    assert.ok(already < 10);
    const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: messagesUri } });
    assert.equal(result.scoredNow, 10 - already);
    assert.equal(result.scored, 10);
    assert.equal(result.total, 10);
    const hover = await client.hover(messagesUri, 10);
    assert.match(hover!, /Cannot be scored/);
    assert.match(hover!, /Never selected: cannot be scored\\: its last turn is a user turn/);
    // Its turns are shown, none marked as scored.
    assert.match(hover!, new RegExp(`\\*\\*Conversation\\*\\* · ${asMessages(distinct[10]!).length - 1} turns`));
    assert.doesNotMatch(hover!, /\(scored\)/);

    const cliOut = join(work, 'messages.cli.jsonl');
    const cli = await runCli(work, ['score', messagesPath, '--anchors', anchorsPath, '--template', 'chatml', '--threads', '1', '--out', cliOut]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stderr, /record skipped: its last turn is a user turn/);
    const expected = cliScores(cliOut);
    const shown = client.scores(messagesUri).flatMap((p) => p.records).filter((r) => r.score && !r.stale);
    const byId = new Map(shown.map((r) => [r.id, r.score!.goldenScore]));
    assert.equal(expected.size, 10);
    let largest = 0;
    for (const [id, golden] of expected) {
      assert.ok(byId.has(id), `the editor scored ${id}`);
      largest = Math.max(largest, Math.abs(byId.get(id)! - golden));
    }
    assert.ok(new Set(expected.values()).size > 2, 'the scores tell records apart');
    console.log(`editor vs CLI on ${expected.size} messages records: largest golden-score difference ${largest}`);
    assert.equal(largest, 0);
    // The reverse: the CLI on the file the editor wrote to, with the same template, finds every record there.
    const resumed = await runCli(work, ['score', messagesPath, '--anchors', anchorsPath, '--template', 'chatml', '--threads', '1', '--out', storedPath('chatml')]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /scoring 0 records .*; 10 already in /);

    // Every record that can be scored is: selection goes ahead, leaves the problem conversation out, and counts it.
    const preview = await client.connection.sendRequest(protocol.selectionPreview, { textDocument: { uri: messagesUri }, rules: [{ kind: 'top', count: 20 }] });
    assert.deepEqual(preview, { counts: [10], scored: 10, total: 10 });
    const subset = await client.connection.sendRequest(protocol.selectSubset, { textDocument: { uri: messagesUri }, rule: { kind: 'top', count: 20 } });
    assert.equal(subset.kept, 10);
    assert.match(subset.problemsLeftOut ?? '', /1 problem record \(1 that cannot be scored\)/);
    const written = readFileSync(subset.path, 'utf8');
    assert.ok(!written.includes(JSON.stringify(distinct[10]!.id)), 'the unscorable conversation is not in the subset');
  });

  test('nuggets.format names the format: the messages file read as Alpaca is named as not parsing (where and why), and reads again under auto', async () => {
    const problemOf = (from: number): Promise<protocol.DatasetProblemParams> => client.waitFor((r) => r.method === protocol.datasetProblemNotification.method
      && (r.params as protocol.DatasetProblemParams).uri === messagesUri, 'a dataset problem notification', 60_000, from).then((r) => r.params as protocol.DatasetProblemParams);
    let from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, format: 'alpaca' });
    const problem = await problemOf(from);
    assert.match(problem.problem!.message, /record 0 has no "instruction" field/);
    assert.equal(problem.problem!.range.start.line, 0);
    from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, format: 'auto' });
    assert.equal((await problemOf(from)).problem, null);
    const shown = await client.waitForScores(messagesUri, (p) => p.full, 'the messages file read again', from);
    assert.equal(shown.scored, 10);
  });

  test('another template is another key: the CLI refuses to add to the editor\'s chatml file with a template file, and the editor shows chatml scores as stale under it', async () => {
    const file = join(work, 'mine.jinja');
    const text = CHATML_TEMPLATE.replace("'<|im_end|>'", "'</s>'");
    writeFileSync(file, text);
    const before = readFileSync(storedPath('chatml'), 'utf8');
    const refused = await runCli(work, ['score', sample, '--anchors', anchorsPath, '--template', file, '--threads', '1', '--out', storedPath('chatml')]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`template chatml instead of ${templateKey(text)}`));
    assert.equal(readFileSync(storedPath('chatml'), 'utf8'), before, 'the file is left as it was');

    const from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, template: file });
    const shown = await client.waitForScores(sampleUri, (p) => p.full, 'the sample under the template file', from);
    assert.equal(shown.scored, 0, 'no chatml score counts under the template file');
    assert.ok(shown.records.every((r) => r.score && r.stale), 'the chatml scores show stale');
    await client.connection.sendNotification(protocol.didChangeSettings, settings);
  });

  test('records a template file cannot render (it raises on a system turn) are problem records: marked, said why, never scored', async () => {
    const file = join(work, 'no-system.jinja');
    writeFileSync(file, `{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}${CHATML_TEMPLATE}`);
    const path = join(work, 'system.messages.jsonl');
    const uri = pathToFileURL(path).toString();
    const [plain, other] = distinct.slice(20, 22).map(asMessages);
    const text = [
      JSON.stringify({ messages: plain }),
      JSON.stringify({ messages: [{ role: 'system', content: 'You are a helpful assistant.' }, ...other!] }),
    ].join('\n') + '\n';
    writeFileSync(path, text);
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, template: file });
    await client.open(uri, text, 'jsonl');
    const shown = await client.waitForScores(uri, (p) => p.full && p.records[1]?.problem !== undefined, 'the system conversation marked');
    assert.equal(shown.records[0]!.problem, undefined);
    assert.equal(shown.records[1]!.problem?.mark, 'unscorable');
    assert.match(shown.records[1]!.problem!.reason, /the chat template \(.*no-system\.jinja\) cannot render it: System role not supported/);
    const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri } });
    assert.equal(result.scoredNow, 1);
    assert.equal(result.total, 1);
    await client.connection.sendNotification(protocol.didChangeSettings, settings);
  });

  test('the demo model has no chat template: Score Dataset with template auto says so in plain words and marks the answer for Use ChatML', async () => {
    const from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, template: 'auto' });
    await client.waitForScores(sampleUri, (p) => p.full, 'the sample under template auto', from);
    await assert.rejects(client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: sampleUri } }), (err: unknown) => {
      assert.ok(err instanceof ResponseError);
      assert.match(err.message, /The model demo has no chat template .* cannot score conversations/);
      assert.match(err.message, /ChatML/);
      assert.deepEqual(err.data, { noChatTemplate: true });
      return true;
    });
    await client.connection.sendNotification(protocol.didChangeSettings, settings);
  });
});
