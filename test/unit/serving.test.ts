/**
 * The serving backend against a stand-in for vLLM (test/support/vllm-server.ts). This is a PROTOCOL
 * test: the stand-in speaks vLLM's /v1/completions format and computes log-probabilities on the demo model
 * independently of the engine (a plain ONNX Runtime session and @huggingface/tokenizers, one whole sequence
 * per prompt, nothing from server/), so equal numbers show that requests, tokenization, response parsing
 * and span finding are right, not that vLLM's numerics equal ONNX Runtime's.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readDataset, type DatasetRecord } from '../../server/records/dataset';
import { NuggetsError } from '../../server/io/errors';
import { readModelFolder } from '../../server/model/folder';
import { TextTokenizer } from '../../server/model/tokenizer';
import type { ScoringOptions } from '../../server/scoring/backend';
import { scoreCandidate } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { openBackend } from '../../server/scoring/open';
import { ServingBackend } from '../../server/scoring/serving';
import { fullText } from '../../server/scoring/template';
import { demoModel, repoRoot, scratchDir, sharedData } from '../helpers';
import { chatmlTemplate } from '../../server/scoring/chat-template';
import { StallingServer } from '../support/stalling-server';
import { FakeVllm, type Lie } from '../support/vllm-server';

const OPTIONS: ScoringOptions = { maxAnchorTokens: 200, separator: '', batchSize: 8 };
/** Sums of float32 log-probabilities from differently shaped passes agree to about 1e-5 here. */
const TOLERANCE = 2e-3;

const seed = readDataset(sharedData('alpaca-seed-tasks.jsonl')).records;
const anchors = seed.slice(0, 8);
const candidates: DatasetRecord[] = [
  // Outputs that end in a letter: a byte-level BPE could merge their last word with "Instruction".
  ...seed.slice(20).filter((r) => /\p{L}$/u.test(r.output)).slice(0, 3),
  ...readDataset(sharedData('gsm8k-train.alpaca.json')).records.slice(0, 2),
  ...readDataset(sharedData('gpteacher-roleplay.alpaca.json')).records.slice(5, 7),
];

let vllm: FakeVllm;
let local: LocalBackend;

before(async () => {
  vllm = await FakeVllm.start(demoModel, { servedModel: 'nuggets-demo' });
  local = await LocalBackend.open(demoModel, { threads: 1 });
});

after(async () => {
  await local.dispose();
  await vllm.close();
});

test('protocol test: golden scores through the vLLM-format stand-in equal the local ONNX path on real records', async () => {
  // The comparison means something only where both paths score the same token sequence: the paper
  // tokenizes candidate and anchor apart, a server tokenizes their concatenated text. Check that the
  // demo tokenizer gives the same tokens either way for these pairs (it does for every record of the
  // shared datasets: its merges never cross into "Instruction"), so any difference would be the backend's.
  const folder = readModelFolder(demoModel);
  const tokenizer = new TextTokenizer(folder.tokenizerJson, folder.tokenizerConfig, folder.path);
  for (const c of candidates) {
    for (const a of anchors) {
      const joint = tokenizer.encode(fullText(c) + fullText(a), true);
      const apart = [...tokenizer.encode(fullText(c), true), ...tokenizer.encode(fullText(a), false)];
      assert.deepEqual(joint, apart, `candidate ${c.index} + anchor ${a.index} tokenize differently jointly`);
    }
  }

  const serving = await openBackend(vllm.url, { servedModel: 'nuggets-demo' });
  const preparedLocal = await local.prepareAnchors(anchors, OPTIONS);
  const preparedServed = await serving.prepareAnchors(anchors, OPTIONS);
  // Response spans counted in the server's tokens are the local tokenizer's spans.
  assert.deepEqual([...preparedServed.responseTokens], [...preparedLocal.responseTokens]);
  assert.ok(preparedLocal.responseTokens.every((n) => n > 0));
  preparedLocal.zeroShot.forEach((s0, i) => assert.ok(Math.abs(s0 - preparedServed.zeroShot[i]!) < TOLERANCE, `s0 of anchor ${i}: ${s0} vs ${preparedServed.zeroShot[i]}`));

  const golden: number[] = [];
  let smallestMargin = Infinity;
  for (const c of candidates) {
    const expected = await scoreCandidate(local, preparedLocal, c);
    const actual = await scoreCandidate(serving, preparedServed, c);
    expected.deltas.forEach((d, i) => {
      assert.ok(Math.abs(d - actual.deltas[i]!) < TOLERANCE, `delta of candidate ${c.index}, anchor ${i}: ${d} vs ${actual.deltas[i]}`);
      smallestMargin = Math.min(smallestMargin, Math.abs(d));
    });
    assert.equal(actual.goldenScore, expected.goldenScore, `golden score of candidate ${c.index}`);
    assert.equal(actual.truncated, false);
    golden.push(actual.goldenScore);
  }
  // Wins are decided far from the tolerance, so equal golden scores are not luck of rounding.
  assert.ok(smallestMargin > TOLERANCE, `a delta of ${smallestMargin} is within the tolerance`);
  assert.ok(new Set(golden).size > 1, `golden scores should differ between records: ${golden.join(', ')}`);
  // Anchors were tokenized without special tokens, candidates with them (the local path's choice), and
  // every prompt went as token ids.
  assert.ok(vllm.tokenizeBodies.some((b) => b.add_special_tokens === false) && vllm.tokenizeBodies.some((b) => b.add_special_tokens === true));
  assert.ok(vllm.bodies.every((b) => b.echo === true && b.logprobs === 0 && b.max_tokens === 1));
  assert.ok(vllm.bodies.every((b) => Array.isArray(b.prompt) && (b.prompt as unknown[]).every((p) => Array.isArray(p))));
});

test('protocol test: anchors cut to maxAnchorTokens server tokens score as the local path cuts them', async () => {
  // A cut a few tokens into the longest response: that anchor is cut inside its response, longer
  // ones lose text beyond the cut, and the queries of some may fill the cut entirely.
  const lengths = anchors.map((a) => ({ query: local.anchorTokens(a, 1e9).responseFrom, full: local.anchorTokens(a, 1e9).tokens.length }));
  const longest = lengths.reduce((x, y) => (y.full - y.query > x.full - x.query ? y : x));
  const options = { ...OPTIONS, maxAnchorTokens: longest.query + 5 };
  assert.ok(longest.full > options.maxAnchorTokens, 'its tokens are cut before they are sent');
  const serving = await openBackend(vllm.url, { servedModel: 'nuggets-demo' });
  const preparedLocal = await local.prepareAnchors(anchors, options);
  const preparedServed = await serving.prepareAnchors(anchors, options);
  assert.deepEqual([...preparedServed.responseTokens], [...preparedLocal.responseTokens]);
  assert.ok(preparedLocal.responseTokens.some((n) => n === 5));
  const sentBefore = vllm.bodies.length;
  preparedLocal.zeroShot.forEach((s0, i) => assert.ok(Math.abs(s0 - preparedServed.zeroShot[i]!) < TOLERANCE));
  for (const c of candidates.slice(0, 2)) {
    const expected = await local.oneShot(c, preparedLocal);
    const actual = await serving.oneShot(c, preparedServed);
    expected.oneShot.forEach((s1, i) => assert.ok(Math.abs(s1 - actual.oneShot[i]!) < TOLERANCE, `s1 of anchor ${i}: ${s1} vs ${actual.oneShot[i]}`));
  }
  // The long anchor went after candidates as its first maxAnchorTokens tokens, not whole.
  const cut = local.anchorTokens(anchors[lengths.indexOf(longest)]!, options.maxAnchorTokens).tokens;
  const sent = vllm.bodies.slice(sentBefore).flatMap((b) => b.prompt as number[][]);
  assert.ok(sent.some((p) => p.slice(p.length - cut.length).join() === cut.join()));
  assert.ok(sent.every((p) => p.length <= 1024));
});

test('protocol test: vLLM prompt_logprobs answers give the same scores as echo answers', async () => {
  const echo = await openBackend(vllm.url, { servedModel: 'nuggets-demo' });
  const promptLogprobs = await openBackend(vllm.url, { servedModel: 'nuggets-demo', logprobs: 'prompt_logprobs' });
  const a = await echo.prepareAnchors(anchors.slice(0, 4), OPTIONS);
  const b = await promptLogprobs.prepareAnchors(anchors.slice(0, 4), OPTIONS);
  assert.deepEqual([...b.zeroShot], [...a.zeroShot]);
  const c = candidates[3]!;
  assert.deepEqual([...(await promptLogprobs.oneShot(c, b)).oneShot], [...(await echo.oneShot(c, a)).oneShot]);
  assert.ok(vllm.bodies.some((body) => body.prompt_logprobs === 0 && body.echo === undefined));
});

test('the stand-in answers in vLLM\'s format: BOS named in tokens, null first log-probability, code-point offsets', async () => {
  const res = await fetch(`${vllm.url}/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'nuggets-demo', prompt: 'Instruction:\nSay hé.', echo: true, logprobs: 0, max_tokens: 1 }),
  });
  const body = await res.json() as { choices: { text: string; logprobs: { tokens: string[]; token_logprobs: (number | null)[]; text_offset: number[] }; prompt_logprobs: unknown[] }[]; usage: { prompt_tokens: number } };
  const choice = body.choices[0]!;
  assert.equal(choice.text, 'Instruction:\nSay hé.');
  assert.equal(choice.logprobs.tokens[0], '<|endoftext|>');
  assert.equal(choice.logprobs.token_logprobs[0], null);
  assert.equal(choice.logprobs.text_offset[1], '<|endoftext|>'.length);
  assert.equal(choice.prompt_logprobs.length, body.usage.prompt_tokens);
  assert.equal(choice.logprobs.tokens.length, body.usage.prompt_tokens + 1);
});

test('429 and 503 answers are retried with backoff, honouring Retry-After, and the results are unchanged', async () => {
  const serving = await ServingBackend.open({ endpoints: [vllm.url], servedModel: 'nuggets-demo', retryDelayMs: 10 });
  const clean = vllm.requests;
  const prepared = await serving.prepareAnchors(anchors.slice(0, 2), OPTIONS);
  const needed = vllm.requests - clean;
  const before = vllm.requests;
  vllm.failNext(429, 1, 0);
  vllm.failNext(503, 2);
  const again = await serving.prepareAnchors(anchors.slice(0, 2), OPTIONS);
  assert.deepEqual([...again.zeroShot], [...prepared.zeroShot]);
  assert.equal(vllm.requests - before, needed + 3, 'three failed requests, each retried');
});

test('a server that keeps failing ends in an error that names the endpoint and the last answer', async () => {
  const serving = await ServingBackend.open({ endpoints: [vllm.url], servedModel: 'nuggets-demo', retryDelayMs: 1, retries: 2 });
  vllm.failNext(503, 3);
  await assert.rejects(serving.prepareAnchors(anchors.slice(0, 1), { ...OPTIONS, batchSize: 2 }), (err: unknown) => err instanceof NuggetsError && /after 3 attempts \(anchor 0 alone\): .*answered 503/.test(err.message));
});

test('requests stay within the concurrency limit', async () => {
  const serving = await ServingBackend.open({ endpoints: [vllm.url], servedModel: 'nuggets-demo', concurrency: 2 });
  vllm.maxInFlight = 0;
  vllm.delayMs = 40;
  try {
    await serving.prepareAnchors(anchors, { ...OPTIONS, batchSize: 2 }); // 8 requests of 2 prompts
  } finally {
    vllm.delayMs = 0;
  }
  assert.equal(vllm.maxInFlight, 2);
});

test('a request that outlives the timeout is abandoned and retried; cancelling stops scoring', async () => {
  const slow = await ServingBackend.open({ endpoints: [vllm.url], servedModel: 'nuggets-demo', timeoutMs: 50, retries: 1, retryDelayMs: 1 });
  vllm.delayMs = 300;
  try {
    await assert.rejects(slow.prepareAnchors(anchors.slice(0, 1), OPTIONS), /gave no answer within 50 ms/);
    const controller = new AbortController();
    const cancellable = await ServingBackend.open({ endpoints: [vllm.url], servedModel: 'nuggets-demo' });
    const pending = cancellable.prepareAnchors(anchors.slice(0, 1), OPTIONS, controller.signal);
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(pending, /cancelled/);
  } finally {
    vllm.delayMs = 0;
  }
});

test('several endpoints share the requests and give the same scores', async () => {
  const second = await FakeVllm.start(demoModel, { servedModel: 'nuggets-demo' });
  try {
    const one = await openBackend(vllm.url, { servedModel: 'nuggets-demo' });
    const two = await openBackend(`${vllm.url},${second.url}`, { servedModel: 'nuggets-demo' });
    const alone = vllm.requests;
    const a = await one.prepareAnchors(anchors.slice(0, 4), { ...OPTIONS, batchSize: 2 });
    const needed = vllm.requests - alone;
    const firstBefore = vllm.requests;
    const b = await two.prepareAnchors(anchors.slice(0, 4), { ...OPTIONS, batchSize: 2 });
    assert.deepEqual([...b.zeroShot], [...a.zeroShot]);
    const first = vllm.requests - firstBefore;
    assert.equal(first + second.requests, needed);
    assert.ok(Math.abs(first - second.requests) <= 1, `round-robin: ${first} and ${second.requests} requests`);
  } finally {
    await second.close();
  }
});

test('an API key is sent from NUGGETS_API_KEY; a missing one is reported as such', async () => {
  const guarded = await FakeVllm.start(demoModel, { servedModel: 'nuggets-demo', apiKey: 'sk-test' });
  const saved = { n: process.env['NUGGETS_API_KEY'], o: process.env['OPENAI_API_KEY'] };
  try {
    delete process.env['NUGGETS_API_KEY'];
    delete process.env['OPENAI_API_KEY'];
    await assert.rejects(openBackend(guarded.url), /refused the API key \(401\)/);
    process.env['NUGGETS_API_KEY'] = 'sk-test';
    process.env['NUGGETS_API_KEY_ORIGINS'] = `http://elsewhere:8000, ${new URL(guarded.url).origin}`;
    const serving = await openBackend(guarded.url);
    assert.match(serving.identity.name, /^nuggets-demo \(served at http:\/\/127\.0\.0\.1:\d+\/v1\)$/);
    const prepared = await serving.prepareAnchors(anchors.slice(0, 1), OPTIONS);
    assert.ok(prepared.zeroShot[0]! < 0);
  } finally {
    delete process.env['NUGGETS_API_KEY_ORIGINS'];
    for (const [k, v] of [['NUGGETS_API_KEY', saved.n], ['OPENAI_API_KEY', saved.o]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await guarded.close();
  }
});

test('an unknown served model is named with what the server offers', async () => {
  await assert.rejects(openBackend(vllm.url, { servedModel: 'llama' }), /does not serve the model "llama" \(it serves: nuggets-demo\)/);
});

test('a candidate too long for the served context is cut from the left to fit, and marked truncated', async () => {
  const small = await FakeVllm.start(demoModel, { servedModel: 'nuggets-demo', maxModelLen: 256 });
  try {
    const serving = await openBackend(small.url, { servedModel: 'nuggets-demo' });
    const options = { ...OPTIONS, maxAnchorTokens: 40 };
    const prepared = await serving.prepareAnchors(anchors.slice(0, 3), options);
    // Anchors longer than the cut went as their first 40 tokens, scored as locally.
    assert.ok(anchors.slice(0, 3).some((a) => local.anchorTokens(a, 1e9).tokens.length > 40));
    const preparedLocal = await local.prepareAnchors(anchors.slice(0, 3), options);
    preparedLocal.zeroShot.forEach((s0, i) => assert.ok(Math.abs(s0 - prepared.zeroShot[i]!) < TOLERANCE, `s0 of anchor ${i}`));
    const long = candidates.find((c) => Buffer.byteLength(fullText(c)) > 400)!;
    const result = await serving.oneShot(long, prepared);
    assert.equal(result.truncated, true);
    assert.ok(result.oneShot.every((s1, i) => prepared.responseTokens[i] === 0 ? s1 === 0 : s1 < 0));
    const short = await serving.oneShot({ instruction: 'Say hi.', input: '', output: 'Hi.' }, prepared);
    assert.equal(short.truncated, false);
  } finally {
    await small.close();
  }
});

test('a lying server ends the run with an error naming the endpoint, the record and the anchor', async () => {
  const serving = await ServingBackend.open({ endpoints: [vllm.url], servedModel: 'nuggets-demo', retries: 0 });
  const prepared = await serving.prepareAnchors(anchors.slice(0, 2), OPTIONS);
  const record = candidates[0]!;
  const cases: [Lie, RegExp][] = [
    ['negative-infinity', /gave -Infinity as the log-probability of token \d+ \(anchor \d after record \d+\): not a log-probability/],
    ['huge', /gave 1e\+300 as the log-probability of token \d+ \(anchor \d after record \d+\)/],
    ['nan', /gave "NaN" as the log-probability of token \d+ \(anchor \d after record \d+\)/],
    ['fewer-tokens', /answered \d+ prompt tokens for the \d+ sent \(anchor \d after record \d+\)/],
    ['fewer-logprobs', /\(anchor \d after record \d+\): token and log-probability counts differ in the answer \(\d+ tokens, \d+ log-probabilities\)/],
  ];
  try {
    for (const [lie, message] of cases) {
      vllm.lie = lie;
      await assert.rejects(serving.oneShot(record, prepared), (err: unknown) => {
        assert.ok(err instanceof NuggetsError, String(err));
        assert.match(err.message, message, lie);
        assert.ok(err.message.includes(vllm.url), `${lie}: names the endpoint`);
        assert.ok(err.message.includes(`record ${record.index}`), `${lie}: names the record`);
        return true;
      });
    }
    // Anchors alone are checked the same way.
    vllm.lie = 'negative-infinity';
    await assert.rejects(serving.prepareAnchors(anchors.slice(0, 1), OPTIONS), /-Infinity as the log-probability of token \d+ \(anchor 0 alone\)/);
  } finally {
    vllm.lie = undefined;
  }
});

test('a /v1/models answer that is not JSON, or not a model list, is named as such', async () => {
  for (const text of ['<html><body>Welcome to nginx!</body></html>', '{"models": []}']) {
    vllm.modelsText = text;
    try {
      await assert.rejects(openBackend(vllm.url), (err: unknown) => err instanceof NuggetsError
        && /\/v1\/models answered something that is not an OpenAI model list/.test(err.message) && /vLLM: http:\/\/host:8000\/v1/.test(err.hint ?? ''));
    } finally {
      vllm.modelsText = undefined;
    }
  }
});

test('a server without /tokenize is refused unless the model\'s tokenizer.json is named; a wrong tokenizer is caught', async () => {
  vllm.tokenizeEndpoint = false;
  try {
    await assert.rejects(openBackend(vllm.url, { servedModel: 'nuggets-demo' }), (err: unknown) => err instanceof NuggetsError
      && /\/tokenize answered 404: this server cannot tell how it tokenizes/.test(err.message) && /--tokenizer/.test(err.hint ?? ''));
    // Named, the tokenizer is checked against the server's echo of a probe (its token count), then used.
    const named = await openBackend(vllm.url, { servedModel: 'nuggets-demo', tokenizer: demoModel });
    const prepared = await named.prepareAnchors(anchors.slice(0, 2), OPTIONS);
    const preparedLocal = await local.prepareAnchors(anchors.slice(0, 2), OPTIONS);
    preparedLocal.zeroShot.forEach((s0, i) => assert.ok(Math.abs(s0 - prepared.zeroShot[i]!) < TOLERANCE));
    await assert.rejects(openBackend(vllm.url, { servedModel: 'nuggets-demo', tokenizer: weakerTokenizer() }), /is not the one .* serves: it encodes a probe text as \d+ tokens, the server as \d+\./);
  } finally {
    vllm.tokenizeEndpoint = true;
  }
  // With /tokenize the comparison is token by token.
  await assert.rejects(openBackend(vllm.url, { servedModel: 'nuggets-demo', tokenizer: weakerTokenizer() }), /first difference at token \d+/);
  await assert.rejects(openBackend(vllm.url, { servedModel: 'nuggets-demo', tokenizer: join(demoModel, 'absent.json') }), /Cannot read the tokenizer .*absent\.json/);
});

test('the API key goes only to the origins listed for it, or anywhere when asked; others get none and a warning', async () => {
  const guarded = await FakeVllm.start(demoModel, { servedModel: 'nuggets-demo', apiKey: 'sk-test' });
  const saved = { n: process.env['NUGGETS_API_KEY'], o: process.env['NUGGETS_API_KEY_ORIGINS'] };
  const warnings: string[] = [];
  try {
    process.env['NUGGETS_API_KEY'] = 'sk-test';
    process.env['NUGGETS_API_KEY_ORIGINS'] = 'http://gpu-a:8000';
    await assert.rejects(openBackend(guarded.url, { onWarning: (w) => warnings.push(w) }), (err: unknown) => err instanceof NuggetsError
      && /refused the API key \(401\)/.test(err.message) && /No API key was sent to http:\/\/127\.0\.0\.1:\d+\. .*NUGGETS_API_KEY_ORIGINS/.test(err.hint ?? ''));
    assert.match(warnings.join('\n'), /not sent to http:\/\/127\.0\.0\.1:\d+: not listed in NUGGETS_API_KEY_ORIGINS.*--send-api-key-anywhere/);
    const anywhere = await openBackend(guarded.url, { apiKeyOrigins: 'anywhere' });
    assert.ok((await anywhere.prepareAnchors(anchors.slice(0, 1), OPTIONS)).zeroShot[0]! < 0);
    // A key stored for another endpoint (the editor's binding) is not sent either.
    await assert.rejects(openBackend(guarded.url, { apiKey: 'sk-test', apiKeyOrigins: ['http://elsewhere:8000'] }), /401/);
  } finally {
    for (const [k, v] of [['NUGGETS_API_KEY', saved.n], ['NUGGETS_API_KEY_ORIGINS', saved.o]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await guarded.close();
  }
});

test('a serving endpoint that stalls at connect, on headers or mid-body is given up on after the timeout, in bounded time', { timeout: 30_000 }, async () => {
  for (const behaviour of ['silent', 'no-headers', 'mid-body'] as const) {
    const server = await StallingServer.start([behaviour], JSON.stringify({ object: 'list', data: [{ id: 'm', max_model_len: 1024, filler: 'x'.repeat(3000) }] }));
    const started = Date.now();
    try {
      await assert.rejects(ServingBackend.open({ endpoints: [server.url], timeoutMs: 200, retries: 1, retryDelayMs: 1 }),
        new RegExp(`Cannot reach the serving endpoint ${server.url}/v1: .*gave no ${behaviour === 'mid-body' ? 'data' : 'answer'} within 200 ms`));
    } finally {
      await server.close();
    }
    assert.ok(Date.now() - started < 3000, `${behaviour}: ${Date.now() - started} ms`);
  }
});

// Last: the stand-in never answers the requests it stalled, and counts them in flight until it closes.
test('a scoring call\'s signal abandons its hung requests at once, queued ones too; the same backend then scores the next call', { timeout: 30_000 }, async () => {
  // One place: one request hangs in flight and the others wait for the place.
  const serving = await ServingBackend.open({ endpoints: [vllm.url], servedModel: 'nuggets-demo', concurrency: 1 });
  const prepared = await serving.prepareAnchors(anchors, { ...OPTIONS, batchSize: 2 });
  const candidate = candidates[0]!;
  const expected = await serving.oneShot(candidate, prepared);
  vllm.stall = true;
  const stalledBefore = vllm.stalled;
  const requestsBefore = vllm.requests;
  const controller = new AbortController();
  try {
    const pending = serving.oneShot(candidate, prepared, undefined, controller.signal); // 4 requests of 2 anchors
    while (vllm.stalled === stalledBefore) await new Promise((r) => setTimeout(r, 10));
    const abortedAt = Date.now();
    controller.abort();
    await assert.rejects(pending, (err: unknown) => err instanceof NuggetsError && err.message === 'Scoring cancelled.');
    assert.ok(Date.now() - abortedAt < 1000, `rejected ${Date.now() - abortedAt} ms after the abort`);
    assert.equal(vllm.requests, requestsBefore + 1, 'the queued requests were never sent');
  } finally {
    vllm.stall = false;
  }
  const again = await serving.oneShot(candidate, prepared);
  assert.deepEqual([...again.oneShot], [...expected.oneShot]);
});

/** The demo tokenizer with half its merges gone: a plausible file that encodes differently. */
function weakerTokenizer(): string {
  const json = JSON.parse(readFileSync(join(demoModel, 'tokenizer.json'), 'utf8')) as { model: { merges: unknown[] } };
  json.model.merges = json.model.merges.slice(0, Math.floor(json.model.merges.length / 2));
  const folder = scratchDir('weaker-tokenizer');
  writeFileSync(join(folder, 'tokenizer.json'), JSON.stringify(json));
  return folder;
}

test('a serving backend scores conversations only under a chat template: under the paper\'s, conversation anchors and candidates are refused with the way out', async () => {
  const serving = await openBackend(vllm.url, { servedModel: 'nuggets-demo' });
  try {
    const conversation = readDataset(join(repoRoot, 'samples', 'identity-15.sharegpt.json')).records.slice(0, 2);
    const refused = /A conversation record cannot be scored with the paper's Alpaca template/;
    await assert.rejects(serving.prepareAnchors(conversation, OPTIONS), refused);
    const prepared = await serving.prepareAnchors(anchors, OPTIONS);
    await assert.rejects(serving.oneShot(conversation[0]!, prepared), refused);
    const chat = await serving.prepareAnchors(conversation, { ...OPTIONS, chatTemplate: chatmlTemplate() });
    const { oneShot } = await serving.oneShot(conversation[1]!, chat);
    assert.equal(oneShot.length, 2);
    assert.ok([...oneShot].every((s) => Number.isFinite(s) && s < 0), 'the conversation anchors are scored');
  } finally {
    await serving.dispose();
  }
});
