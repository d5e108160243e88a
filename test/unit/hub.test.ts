/**
 * Hub models against a local stand-in for the Hugging Face hub (test/support/hub-server.ts) that
 * serves the demo model's files in the hub's URL layout, redirects, ETags and Range requests.
 * No other network is used.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeAnchors } from '../../server/records/anchors';
import { main } from '../../server/cli/main';
import { readDataset } from '../../server/records/dataset';
import { NuggetsError } from '../../server/io/errors';
import { readModelFolder } from '../../server/model/folder';
import { fetchHubModel, hubModelFolder, parseHubSpec, type DownloadProgress } from '../../server/model/hub';
import { readScores } from '../../server/records/store';
import { demoModel, sharedData } from '../helpers';
import { FakeHub, FIXTURE_COMMIT, DEMO_ONNX, demoRepository } from '../support/hub-server';

const demo = readModelFolder(demoModel);
const ONNX = DEMO_ONNX;
const SPEC = parseHubSpec('hf:nuggets/demo')!;

let hub: FakeHub;
let scratch: string;
const savedEnv = { endpoint: process.env['HF_ENDPOINT'], token: process.env['HF_TOKEN'], offline: process.env['HF_HUB_OFFLINE'] };

before(async () => {
  hub = await FakeHub.start({
    'nuggets/demo': demoRepository(demoModel),
    // The other layout on the hub: the graph at the root, no tokenizer_config.json.
    'nuggets/demo-root': {
      'tokenizer.json': join(demoModel, 'tokenizer.json'),
      'config.json': join(demoModel, 'config.json'),
      'model.onnx': demo.onnxPath,
    },
  });
  scratch = mkdtempSync(join(tmpdir(), 'nuggets-hub-'));
  delete process.env['HF_TOKEN'];
  delete process.env['HF_HUB_OFFLINE'];
});

after(async () => {
  await hub.close();
  rmSync(scratch, { recursive: true, force: true });
  for (const [key, value] of [['HF_ENDPOINT', savedEnv.endpoint], ['HF_TOKEN', savedEnv.token], ['HF_HUB_OFFLINE', savedEnv.offline]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

function freshCache(name: string): string {
  return join(scratch, name);
}

function lfsGets(): string[] {
  return hub.requests.filter((r) => r.method === 'GET' && r.url.startsWith('/lfs/')).map((r) => r.range ?? 'whole');
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

test('nuggets score --model hf:… downloads, verifies, caches and scores like the same model from its folder', async () => {
  process.env['HF_ENDPOINT'] = hub.endpoint;
  const cache = freshCache('cli');
  const records = readDataset(sharedData('gsm8k-train.alpaca.json')).records;
  const dataset = join(scratch, 'records.json');
  writeFileSync(dataset, JSON.stringify(records.slice(10, 13).map((r) => r.original)));
  const anchorsFile = join(scratch, 'anchors.json');
  writeAnchors(anchorsFile, records.slice(0, 4));
  const fromHub = join(scratch, 'hub-scores.jsonl');
  const fromFolder = join(scratch, 'folder-scores.jsonl');
  const common = ['--anchors', anchorsFile, '--threads', '1'];

  hub.requests.length = 0;
  assert.equal(await main(['score', dataset, ...common, '--model', 'hf:nuggets/demo', '--cache-dir', cache, '--out', fromHub]), 0);
  assert.deepEqual(lfsGets(), ['whole'], 'the graph was fetched once, from the LFS store it redirects to');
  const folder = hubModelFolder(SPEC, join(cache, 'hub'));
  assert.equal(sha256(join(folder, ONNX)), sha256(demo.onnxPath));
  assert.deepEqual(readdirSync(join(folder, 'onnx')), ['model.onnx'], 'no partial file is left');
  const manifest = JSON.parse(readFileSync(join(folder, 'nuggets-download.json'), 'utf8')) as { commit: string };
  assert.equal(manifest.commit, FIXTURE_COMMIT);

  assert.equal(await main(['score', dataset, ...common, '--model', demoModel, '--out', fromFolder]), 0);
  const a = readScores(fromHub);
  const b = readScores(fromFolder);
  assert.equal(a.header.model.name, 'hf:nuggets/demo@main');
  assert.equal(a.header.model.fingerprint, b.header.model.fingerprint, 'the same bytes: the same model key');
  assert.equal(a.scores.size, 3);
  for (const [id, score] of b.scores) assert.deepEqual(a.scores.get(id), score);

  // Scoring again finds every file in the cache: only HEAD requests reach the hub.
  hub.requests.length = 0;
  rmSync(fromHub);
  assert.equal(await main(['score', dataset, ...common, '--model', 'hf:nuggets/demo', '--cache-dir', cache, '--out', fromHub]), 0);
  assert.ok(hub.requests.length > 0 && hub.requests.every((r) => r.method === 'HEAD'));
});

test('a corrupted download is detected by its sha256, deleted and fetched again; never used', async () => {
  const progress: DownloadProgress[] = [];
  const cache = freshCache('corrupt');
  hub.requests.length = 0;
  hub.arm(ONNX, 'corrupt');
  const model = await fetchHubModel(SPEC, { cacheDir: cache, endpoint: hub.endpoint, retryDelayMs: 1, onProgress: (p) => progress.push(p) });
  assert.equal(hub.pendingFaults(), 0);
  assert.deepEqual(lfsGets(), ['whole', 'whole'], 'the damaged bytes were not resumed from');
  assert.ok(progress.some((p) => p.phase === 'retrying' && /failed verification \(sha256/.test(p.message ?? '')));
  assert.equal(sha256(join(model.folder, ONNX)), hub.sha256Of('nuggets/demo', ONNX));

  // With no second chance, the damaged file is refused and nothing is left in place.
  const strict = freshCache('corrupt-once');
  hub.arm(ONNX, 'corrupt');
  await assert.rejects(
    fetchHubModel(SPEC, { cacheDir: strict, endpoint: hub.endpoint, attempts: 1 }),
    (err: unknown) => err instanceof NuggetsError && /Could not download onnx\/model\.onnx .* failed verification/.test(err.message),
  );
  const folder = hubModelFolder(SPEC, strict);
  assert.equal(existsSync(join(folder, ONNX)), false);
  assert.equal(existsSync(join(folder, `${ONNX}.part`)), false);
  assert.equal(existsSync(join(folder, 'nuggets-download.json')), false);
});

test('a corrupted small file is caught by its git blob id (the hub\'s ETag for files kept in git)', async () => {
  const progress: DownloadProgress[] = [];
  hub.arm('tokenizer.json', 'corrupt');
  const model = await fetchHubModel(SPEC, { cacheDir: freshCache('git-file'), endpoint: hub.endpoint, retryDelayMs: 1, onProgress: (p) => progress.push(p) });
  assert.equal(hub.pendingFaults(), 0);
  assert.ok(progress.some((p) => p.file === 'tokenizer.json' && p.phase === 'retrying' && /git blob id/.test(p.message ?? '')));
  assert.deepEqual(readFileSync(join(model.folder, 'tokenizer.json')), readFileSync(join(demoModel, 'tokenizer.json')));
});

test('a truncated download resumes with a Range request and verifies', async () => {
  const cache = freshCache('truncated');
  hub.requests.length = 0;
  hub.arm(ONNX, 'truncate');
  const model = await fetchHubModel(SPEC, { cacheDir: cache, endpoint: hub.endpoint, retryDelayMs: 1 });
  const gets = lfsGets();
  assert.equal(gets.length, 2);
  assert.equal(gets[0], 'whole');
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!)?.[1]);
  assert.ok(resumedAt > 0, `the second request resumed (${gets[1]})`);
  assert.equal(sha256(join(model.folder, ONNX)), hub.sha256Of('nuggets/demo', ONNX));
});

test('a cancelled download stops at once and resumes from its partial file next time', async () => {
  const cache = freshCache('cancelled');
  const controller = new AbortController();
  hub.requests.length = 0;
  await assert.rejects(
    fetchHubModel(SPEC, {
      cacheDir: cache, endpoint: hub.endpoint, signal: controller.signal,
      onProgress: (p) => { if (p.file === ONNX && p.phase === 'downloading' && p.received > 0) controller.abort(); },
    }),
    (err: unknown) => err instanceof NuggetsError && /cancelled/.test(err.message),
  );
  const part = join(hubModelFolder(SPEC, cache), `${ONNX}.part`);
  assert.ok(existsSync(part), 'the partial download is kept');
  assert.equal(existsSync(join(hubModelFolder(SPEC, cache), ONNX)), false);
  const model = await fetchHubModel(SPEC, { cacheDir: cache, endpoint: hub.endpoint });
  assert.match(lfsGets().at(-1)!, /^bytes=[1-9]\d*-$/);
  assert.equal(sha256(join(model.folder, ONNX)), hub.sha256Of('nuggets/demo', ONNX));
});

test('a 500 from the hub is retried; a truncated then corrupted file still ends verified', async () => {
  const cache = freshCache('flaky');
  hub.requests.length = 0;
  hub.arm(ONNX, 'error500');
  hub.arm(ONNX, 'truncate');
  hub.arm(ONNX, 'corrupt');
  const model = await fetchHubModel(SPEC, { cacheDir: cache, endpoint: hub.endpoint, retryDelayMs: 1, attempts: 5 });
  assert.equal(hub.pendingFaults(), 0);
  assert.equal(sha256(join(model.folder, ONNX)), hub.sha256Of('nuggets/demo', ONNX));
});

test('without the hub, a completed download is used from the cache; a missing one is a clear error', async () => {
  const cache = freshCache('offline');
  await fetchHubModel(SPEC, { cacheDir: cache, endpoint: hub.endpoint });
  const closedPort = await unusedEndpoint();
  const progress: DownloadProgress[] = [];
  const model = await fetchHubModel(SPEC, { cacheDir: cache, endpoint: closedPort, onProgress: (p) => progress.push(p) });
  assert.equal(model.offline, true);
  assert.equal(model.commit, FIXTURE_COMMIT);
  assert.ok(progress.some((p) => p.phase === 'offline' && /hub unreachable .*ECONNREFUSED/.test(p.message ?? '')));
  // Explicit offline mode never touches the network.
  hub.requests.length = 0;
  assert.equal((await fetchHubModel(SPEC, { cacheDir: cache, endpoint: hub.endpoint, offline: true })).offline, true);
  assert.equal(hub.requests.length, 0);
  // The quantized variant was never downloaded: offline, it is not there.
  await assert.rejects(fetchHubModel(SPEC, { cacheDir: cache, offline: true, variant: 'quantized' }), /not in the cache .* offline mode is on/);
  await assert.rejects(fetchHubModel(SPEC, { cacheDir: freshCache('empty'), endpoint: closedPort }), /Cannot reach the hub .* not in the cache/);
});

test('HF_TOKEN goes to the hub as a bearer token, never to the storage it redirects to', async () => {
  process.env['HF_TOKEN'] = 'hf_test_token';
  try {
    hub.requests.length = 0;
    await fetchHubModel(SPEC, { cacheDir: freshCache('token'), endpoint: hub.endpoint });
    const resolves = hub.requests.filter((r) => r.url.includes('/resolve/'));
    assert.ok(resolves.length > 0 && resolves.every((r) => r.authorization === 'Bearer hf_test_token'));
    const storage = hub.requests.filter((r) => r.url.startsWith('/lfs/'));
    assert.ok(storage.length > 0 && storage.every((r) => r.authorization === undefined));
  } finally {
    delete process.env['HF_TOKEN'];
  }
});

test('a graph at the repository root is found; a missing variant or repository says what was looked for', async () => {
  const root = await fetchHubModel(parseHubSpec('hf:nuggets/demo-root')!, { cacheDir: freshCache('root'), endpoint: hub.endpoint });
  assert.equal(sha256(join(root.folder, 'model.onnx')), sha256(demo.onnxPath));
  assert.equal(existsSync(join(root.folder, 'tokenizer_config.json')), false);
  await assert.rejects(
    fetchHubModel(SPEC, { cacheDir: freshCache('variant'), endpoint: hub.endpoint, variant: 'q4' }),
    /no ONNX graph for variant "q4" \(looked for onnx\/model_q4\.onnx, model_q4\.onnx\)/,
  );
  await assert.rejects(fetchHubModel(parseHubSpec('hf:nuggets/absent@v2')!, { cacheDir: freshCache('absent'), endpoint: hub.endpoint }), /has no tokenizer\.json/);
});

test('hub specifications are read as owner, name and revision', () => {
  assert.deepEqual(parseHubSpec('hf:HuggingFaceTB/SmolLM2-135M-Instruct'), { owner: 'HuggingFaceTB', name: 'SmolLM2-135M-Instruct', revision: 'main' });
  assert.deepEqual(parseHubSpec('hf:onnx-community/Qwen2.5-0.5B-Instruct@refs/pr/3'), { owner: 'onnx-community', name: 'Qwen2.5-0.5B-Instruct', revision: 'refs/pr/3' });
  assert.equal(parseHubSpec('models/demo'), undefined);
  assert.throws(() => parseHubSpec('hf:no-name'), /"hf:no-name" is not a hub model/);
});

test('a spec, revision or variant that is not a plain name is refused: nothing is written outside the cache', async () => {
  for (const spec of ['hf:owner/..', 'hf:../name', 'hf:owner/..@main', 'hf:owner/name@..', 'hf:owner/name@../../../tmp/x', 'hf:owner/name@/etc',
    'hf:owner/name@refs/../../x', 'hf:owner/.hidden', 'hf:owner/na..me', 'hf:owner/name@a\\b', 'hf:owner/name@']) {
    assert.throws(() => parseHubSpec(spec), (err: unknown) => err instanceof NuggetsError && /is not a hub model: .*plain names/.test(err.message), spec);
  }
  const cache = freshCache('traversal');
  for (const variant of ['../../../escape', 'q4/../../x', '/abs', '..']) {
    await assert.rejects(fetchHubModel(SPEC, { cacheDir: cache, endpoint: hub.endpoint, variant }), /is not a plain name/, variant);
  }
  assert.equal(existsSync(cache), false, 'nothing was created');
  // A spec built by hand (not parsed) is refused where it becomes a folder.
  assert.throws(() => hubModelFolder({ owner: 'o', name: '..', revision: 'main' }, cache), /outside the cache/);
  // The command line says so and exits 1.
  const records = join(scratch, 'traversal.json');
  writeFileSync(records, JSON.stringify([{ instruction: 'a', input: '', output: 'b' }]));
  assert.equal(await main(['score', records, '--anchors', records, '--model', 'hf:nuggets/..@x', '--cache-dir', cache, '--out', join(scratch, 'traversal.jsonl')]), 1);
});

test('a hub that gives no sha256 or git blob id: the files are used with a warning, never called verified, offline too', async () => {
  const cache = freshCache('opaque');
  const progress: DownloadProgress[] = [];
  hub.opaqueEtags = true;
  try {
    await fetchHubModel(SPEC, { cacheDir: cache, endpoint: hub.endpoint, onProgress: (p) => progress.push(p) });
  } finally {
    hub.opaqueEtags = false;
  }
  const done = progress.filter((p) => p.phase === 'done');
  assert.equal(done.length, 4);
  assert.ok(done.every((p) => p.unverified === true && /UNVERIFIED: .* gave no sha256 or git blob id .*only its size/.test(p.message ?? '')), JSON.stringify(done));
  const offline: DownloadProgress[] = [];
  await fetchHubModel(SPEC, { cacheDir: cache, offline: true, onProgress: (p) => offline.push(p) });
  assert.ok(offline.some((p) => p.phase === 'offline' && p.unverified === true && /UNVERIFIED: .*onnx\/model\.onnx.* checked by size only/.test(p.message ?? '')));
  // With checksums, the same download is verified, and offline use says nothing of the kind.
  const checked: DownloadProgress[] = [];
  const good = freshCache('checked');
  await fetchHubModel(SPEC, { cacheDir: good, endpoint: hub.endpoint, onProgress: (p) => checked.push(p) });
  assert.ok(checked.filter((p) => p.phase === 'done').every((p) => !p.unverified && /checked by its (sha256|git blob id)/.test(p.message ?? '')));
  const offlineGood: DownloadProgress[] = [];
  await fetchHubModel(SPEC, { cacheDir: good, offline: true, onProgress: (p) => offlineGood.push(p) });
  assert.ok(offlineGood.every((p) => !p.unverified));
});

test('a file that fails its checksum twice is deleted and the download fails clearly', async () => {
  const cache = freshCache('corrupt-twice');
  hub.requests.length = 0;
  hub.arm(ONNX, 'corrupt');
  hub.arm(ONNX, 'corrupt');
  await assert.rejects(
    fetchHubModel(SPEC, { cacheDir: cache, endpoint: hub.endpoint, retryDelayMs: 1, attempts: 6 }),
    (err: unknown) => err instanceof NuggetsError && /onnx\/model\.onnx of hf:nuggets\/demo@main failed verification twice \(sha256 .*\): .* serves bytes that are not the file it announces/.test(err.message),
  );
  assert.deepEqual(lfsGets(), ['whole', 'whole'], 'fetched once more, then no further');
  const folder = hubModelFolder(SPEC, cache);
  assert.equal(existsSync(join(folder, ONNX)), false);
  assert.equal(existsSync(join(folder, `${ONNX}.part`)), false);
});

test('a hub that never answers HEAD times out and is retried; one that stalls mid-download resumes', { timeout: 20_000 }, async () => {
  const progress: DownloadProgress[] = [];
  hub.stallHeads = 1;
  await fetchHubModel(SPEC, { cacheDir: freshCache('stall-head'), endpoint: hub.endpoint, timeoutMs: 300, retryDelayMs: 1, onProgress: (p) => progress.push(p) });
  assert.ok(progress.some((p) => p.phase === 'retrying' && /gave no answer within 300 ms/.test(p.message ?? '')));

  hub.requests.length = 0;
  hub.arm(ONNX, 'stall');
  const stalled: DownloadProgress[] = [];
  const model = await fetchHubModel(SPEC, { cacheDir: freshCache('stall-body'), endpoint: hub.endpoint, timeoutMs: 300, retryDelayMs: 1, onProgress: (p) => stalled.push(p) });
  assert.ok(stalled.some((p) => p.phase === 'retrying' && /gave no data within 300 ms/.test(p.message ?? '')));
  assert.match(lfsGets().at(-1)!, /^bytes=[1-9]\d*-$/, 'the second request resumed');
  assert.equal(sha256(join(model.folder, ONNX)), hub.sha256Of('nuggets/demo', ONNX));

  // A hub that never answers at all: a clear failure after the attempts, in bounded time.
  hub.stallHeads = 100;
  const started = Date.now();
  try {
    await assert.rejects(
      fetchHubModel(SPEC, { cacheDir: freshCache('stall-all'), endpoint: hub.endpoint, timeoutMs: 200, retryDelayMs: 1, attempts: 2 }),
      /Cannot reach the hub at .* \(.*gave no answer within 200 ms\), and it is not in the cache/,
    );
  } finally {
    hub.stallHeads = 0;
  }
  assert.ok(Date.now() - started < 5000);
});

/** An address on which nothing listens: a port just released. */
async function unusedEndpoint(): Promise<string> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
