/**
 * `nuggets.turns` in the editor: the built language server (dist/server.js) over stdio, the demo model under the
 * built-in ChatML template, on real multi-turn conversations (samples/identity-15.sharegpt.json, and ten of
 * ../shared/data/fastchat-identity.sharegpt.json as messages JSON Lines). The setting is part of the scores key as
 * `nuggets score --turns` writes it: scores the CLI wrote with --turns all are current under "all" and stale under
 * "last", and the editor scores under "all" as the CLI does.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { readAnchors } from '../../server/records/anchors';
import { keyName } from '../../server/lsp/score-book';
import { readModelFolder } from '../../server/model/folder';
import * as protocol from '../../server/protocol';
import { demoModel, repoRoot, runCli, scratchDir, sharedData } from '../helpers';
import { TestClient } from './lsp-client';

const work = scratchDir('lsp-turns');
const storagePath = join(work, 'storage');
const sample = join(repoRoot, 'samples', 'identity-15.sharegpt.json');
const sampleUri = pathToFileURL(sample).toString();
const anchorsPath = join(work, 'chat-anchors.json');

/** Ten real conversations of two or more assistant turns, as messages records (none of them in the sample). */
const messagesPath = join(work, 'identity.messages.jsonl');
const messagesUri = pathToFileURL(messagesPath).toString();
const sampleTexts = new Set((JSON.parse(readFileSync(sample, 'utf8')) as { conversations: unknown[] }[]).map((c) => JSON.stringify(c.conversations)));
const fastchat = JSON.parse(readFileSync(sharedData('fastchat-identity.sharegpt.json'), 'utf8')) as { id: string; conversations: { from: string; value: string }[] }[];
const chosen = fastchat.filter((c, i, all) => c.conversations.filter((t) => t.from === 'gpt').length >= 2 && !sampleTexts.has(JSON.stringify(c.conversations))
  && all.findIndex((o) => JSON.stringify(o.conversations) === JSON.stringify(c.conversations)) === i).slice(0, 10);
const messagesText = chosen.map((c) => JSON.stringify({ id: c.id, messages: c.conversations.map((t) => ({ role: t.from === 'human' ? 'user' : 'assistant', content: t.value })) })).join('\n') + '\n';
writeFileSync(messagesPath, messagesText);

const settings: protocol.ServerSettings = {
  model: demoModel, anchors: anchorsPath, maxAnchorTokens: 200, batchSize: 16, threads: 1, scoringAllowed: true, template: 'chatml', turns: 'all',
};

let client: TestClient;
/** The scores file the editor keeps for the demo model, the anchors, ChatML and `turns` (score-book.ts keyName). */
let storedPath: (turns: 'last' | 'all') => string;

/** A score as compared here: the golden score, and ifd, which reads the assistant turns --turns names. */
interface Compared {
  golden: number;
  ifd: number;
}

/** The scores of a CLI scores file, by record id, and its header. */
function cliScores(path: string): { header: Record<string, unknown>; scores: Map<string, Compared> } {
  const [header, ...lines] = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { id: string; golden_score: number; ifd: number });
  return { header: header as unknown as Record<string, unknown>, scores: new Map(lines.map((l) => [l.id, { golden: l.golden_score, ifd: l.ifd }])) };
}

/** The current scores the editor shows for a document, by record id. */
function editorScores(uri: string): Map<string, Compared> {
  return new Map(client.scores(uri).flatMap((p) => p.records).filter((r) => r.score && !r.stale).map((r) => [r.id, { golden: r.score!.goldenScore, ifd: r.score!.signals!['ifd'] as number }]));
}

/** The same scores, the editor's and the CLI's (ifd as the scores file rounds it, to 7 significant digits). */
function assertSameScores(editor: Map<string, Compared>, cli: Map<string, Compared>, what: string): void {
  assert.deepEqual([...editor.keys()].sort(), [...cli.keys()].sort(), what);
  for (const [id, e] of editor) {
    const c = cli.get(id)!;
    assert.equal(e.golden, c.golden, `${what}: ${id}'s golden score`);
    assert.ok(Math.abs(e.ifd - c.ifd) <= 1e-6 * Math.abs(c.ifd), `${what}: ${id}'s ifd ${e.ifd} against the CLI's ${c.ifd}`);
  }
}

describe('nuggets.turns in the editor', () => {
  before(async () => {
    const anchors = await runCli(work, ['anchors', sample, '--random', '5', '--seed', '3', '--out', anchorsPath]);
    assert.equal(anchors.code, 0, anchors.stderr);
    const fingerprint = readModelFolder(demoModel).fingerprint;
    const set = readAnchors(anchorsPath);
    storedPath = (turns) => join(storagePath, 'scores', `${keyName({
      model: { name: 'demo', fingerprint }, anchors: { hash: set.hash, count: set.anchors.length }, template: 'chatml', maxAnchorTokens: 200, separator: '',
      ...(turns === 'all' ? { turns } : {}),
    })}.jsonl`);
    assert.notEqual(storedPath('all'), storedPath('last'), 'the two settings keep two files');
    client = await TestClient.start({ storagePath, settings });
  });

  after(async () => {
    await client?.stop().catch(() => undefined);
  });

  test('scores the CLI wrote with --turns all are current under nuggets.turns "all" (Score Dataset computes none again) and stale under "last"', async () => {
    const cli = await runCli(work, ['score', sample, '--anchors', anchorsPath, '--template', 'chatml', '--turns', 'all', '--threads', '1', '--out', storedPath('all')]);
    assert.equal(cli.code, 0, cli.stderr);
    const { header, scores: expected } = cliScores(storedPath('all'));
    assert.equal(header['turns'], 'all');
    assert.equal(expected.size, 15);
    await client.open(sampleUri, readFileSync(sample, 'utf8'));
    const shown = await client.waitForScores(sampleUri, (p) => p.full, 'the sample\'s scores under "all"');
    assert.equal(shown.scored, 15, 'every conversation has a current score from the CLI\'s file');
    for (const r of shown.records) {
      assert.equal(r.stale, false, `record ${r.index}`);
      assert.equal(r.score?.goldenScore, expected.get(r.id)?.golden, `record ${r.index}`);
    }
    const result = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: sampleUri } });
    assert.equal(result.scoredNow, 0);

    const from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, turns: 'last' });
    const under = await client.waitForScores(sampleUri, (p) => p.full, 'the sample under "last"', from);
    assert.equal(under.scored, 0, 'no --turns all score counts under "last"');
    assert.ok(under.records.every((r) => r.score && r.stale), 'the --turns all scores show stale');
    const back = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, settings);
    assert.equal((await client.waitForScores(sampleUri, (p) => p.full, 'the sample under "all" again', back)).scored, 15);
  });

  test('the editor scores under "all" as nuggets score --turns all does, into the file the CLI resumes, and under "last" as the CLI\'s default does', async () => {
    await client.open(messagesUri, messagesText, 'jsonl');
    const all = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: messagesUri } });
    assert.deepEqual([all.scoredNow, all.total], [10, 10]);
    const editorAll = editorScores(messagesUri);
    const cliAll = join(work, 'messages.all.jsonl');
    const cli = await runCli(work, ['score', messagesPath, '--anchors', anchorsPath, '--template', 'chatml', '--turns', 'all', '--threads', '1', '--out', cliAll]);
    assert.equal(cli.code, 0, cli.stderr);
    assertSameScores(editorAll, cliScores(cliAll).scores, 'under "all"');
    // The CLI with --turns all finds the editor's records in the file the editor wrote them to.
    const resumed = await runCli(work, ['score', messagesPath, '--anchors', anchorsPath, '--template', 'chatml', '--turns', 'all', '--threads', '1', '--out', storedPath('all')]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /scoring 0 records .*; 10 already in /);

    const from = client.received.length;
    await client.connection.sendNotification(protocol.didChangeSettings, { ...settings, turns: 'last' });
    await client.waitForScores(messagesUri, (p) => p.full, 'the messages under "last"', from);
    const last = await client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri: messagesUri } });
    assert.equal(last.scoredNow, 10);
    const editorLast = editorScores(messagesUri);
    const cliLast = join(work, 'messages.last.jsonl');
    const plain = await runCli(work, ['score', messagesPath, '--anchors', anchorsPath, '--template', 'chatml', '--threads', '1', '--out', cliLast]);
    assert.equal(plain.code, 0, plain.stderr);
    assertSameScores(editorLast, cliScores(cliLast).scores, 'under "last"');
    // The setting changed what was computed: ifd pooled over every assistant turn is not the final turn's.
    const moved = [...editorAll].filter(([id, s]) => Math.abs(s.ifd - editorLast.get(id)!.ifd) > 1e-3).length;
    assert.ok(moved >= 5, `${moved} of 10 conversations have another ifd under "all" than under "last"`);
    await client.connection.sendNotification(protocol.didChangeSettings, settings);
  });
});
