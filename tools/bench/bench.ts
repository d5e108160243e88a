/**
 * `npm run bench`: golden-score throughput on fixed real workloads, every path measured in the same
 * run so that ratios are meaningful on a noisy machine.
 *
 *   W1  100 candidates x 50 anchors, the demo model
 *   W2  10 candidates x 20 anchors, a GPT-2-small-shaped model (random weights; tools/bench/make_bench_model.py)
 *
 * Paths: the engine's cached path (prefix key/values + in-graph log-probabilities), the naive
 * reference (a full sequence per pair), and the paper's PyTorch loop on the same weights (Debian's
 * PyTorch). The full cached run has a child process of its own, so its peak RSS is the cached path's;
 * the references run on the first 20 candidates of W1 and all of W2 (cached and naive interleaved in one
 * process, PyTorch in another), and every ratio compares pairs per second on the same candidates. Also: ONNX Runtime's own MatMul GFLOP/s on this machine, and the share of passes the
 * exact early stop saves on W1. Two small sections close the run (also alone: `node out/bench.js --signals`): what
 * the per-record signals add to W1's scoring time with 100 anchors, and diversity-aware selection over
 * 50,000 records with 576-dimensional embeddings.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { chooseKMeans, seededRandom } from '../../server/anchors';
import { readDataset, type DatasetRecord } from '../../server/dataset';
import { DEFAULT_OPTIONS, type ScoringOptions } from '../../server/scoring/backend';
import { scoreCandidate, type CandidateScore } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { fullText } from '../../server/scoring/template';
import { embeddingSimilarity } from '../../server/diverse';
import { select, type ScoredRecord } from '../../server/select';

const root = resolve(__dirname, '..');
const data = resolve(root, '..', 'shared', 'data');
const outDir = join(root, 'bench-results');
const models: Record<string, string> = { W1: join(root, 'models', 'demo'), W2: join(root, '.cache', 'bench', 'gpt2-small') };
const sizes: Record<string, { candidates: number; anchors: number; referenceCandidates: number }> = {
  W1: { candidates: 100, anchors: 50, referenceCandidates: 20 },
  W2: { candidates: 10, anchors: 20, referenceCandidates: 10 }, // all of W2: its ratios on 3 candidates moved 79-89% between runs
};
const options: ScoringOptions = { ...DEFAULT_OPTIONS, batchSize: 16 };

/** Real records: candidates interleaved from the three Alpaca files, anchors by k-means over a pool. */
function workload(name: string): { candidates: DatasetRecord[]; anchors: DatasetRecord[] } {
  const files = ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json'].map((f) => readDataset(join(data, f)).records);
  const { candidates: nc, anchors: na } = sizes[name]!;
  const candidates = Array.from({ length: nc }, (_, i) => files[i % 3]![1000 + Math.floor(i / 3)]!);
  const pool = files.flatMap((records) => records.slice(2000, 2400)).map((r, index) => ({ ...r, index }));
  return { candidates, anchors: chooseKMeans(pool, na, 0) };
}

interface ModelShape { layers: number; width: number; vocabulary: number }

function shapeOf(folder: string): ModelShape {
  const c = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
  return { layers: c.n_layer, width: c.n_embd, vocabulary: c.vocab_size };
}

/** Forward FLOPs for n new tokens after `past` (multiply-add = 2): projections, attention, LM head. */
function forwardFlops(s: ModelShape, n: number, past: number): number {
  const perLayer = 2 * n * 12 * s.width * s.width + 4 * s.width * (n * past + (n * (n + 1)) / 2);
  return s.layers * perLayer + 2 * n * s.width * s.vocabulary;
}

/** Tokens computed and their FLOPs for one candidate: the prefix once then each anchor (cached), or prefix + anchor per pair (naive). */
function cost(shape: ModelShape, path: 'cached' | 'naive', prefix: number, anchorLengths: number[]): { tokens: number; flops: number } {
  if (path === 'cached') {
    return {
      tokens: prefix + anchorLengths.reduce((a, n) => a + n, 0),
      flops: forwardFlops(shape, prefix, 0) + anchorLengths.reduce((f, n) => f + forwardFlops(shape, n, prefix), 0),
    };
  }
  return { tokens: anchorLengths.reduce((a, n) => a + prefix + n, 0), flops: anchorLengths.reduce((f, n) => f + forwardFlops(shape, prefix + n, 0), 0) };
}

/** The candidate's prefix as the engine runs it: cut so that the longest anchor still fits the context. */
function prefixLength(backend: LocalBackend, candidate: DatasetRecord, longestAnchor: number): number {
  return Math.min(backend.tokenizer.encode(fullText(candidate), true).length, backend.identity.contextLength - longestAnchor);
}

interface PathResult {
  path: string;
  candidates: number;
  pairs: number;
  seconds: number;
  tokens: number;
  gflop: number;
  maxRssMB: number;
  passes?: number;
  passesTotal?: number;
  scores?: number[][];
}

/**
 * Child process: the cached and naive paths on the same candidates, interleaved candidate by
 * candidate (alternating which goes first), so that both see the same machine load.
 */
async function runInterleaved(name: string, candidateCount: number): Promise<{ cached: PathResult; naive: PathResult }> {
  const { candidates, anchors } = workload(name);
  const shape = shapeOf(models[name]!);
  const backends = { cached: await LocalBackend.open(models[name]!, { path: 'cached' }), naive: await LocalBackend.open(models[name]!, { path: 'naive' }) };
  const prepared = { cached: await backends.cached.prepareAnchors(anchors, options), naive: await backends.naive.prepareAnchors(anchors, options) };
  const chosen = candidates.slice(0, candidateCount);
  const anchorTokens = anchors.map((a) => backends.cached.anchorTokens(a, options.maxAnchorTokens).tokens.length);
  const longest = Math.max(...anchorTokens);
  const totals = { cached: { seconds: 0, tokens: 0, flops: 0 }, naive: { seconds: 0, tokens: 0, flops: 0 } };
  const scores: number[][] = [];
  for (const path of ['cached', 'naive'] as const) await backends[path].oneShot(chosen[0]!, prepared[path], [0]); // warm-up
  for (const [k, c] of chosen.entries()) {
    const prefix = prefixLength(backends.cached, c, longest);
    for (const path of (k % 2 === 0 ? ['cached', 'naive'] : ['naive', 'cached']) as Array<'cached' | 'naive'>) {
      const started = process.hrtime.bigint();
      const { oneShot } = await backends[path].oneShot(c, prepared[path]);
      totals[path].seconds += Number(process.hrtime.bigint() - started) / 1e9;
      if (path === 'cached') scores.push(Array.from(oneShot));
      const { tokens, flops } = cost(shape, path, prefix, anchorTokens);
      totals[path].tokens += tokens;
      totals[path].flops += flops;
    }
  }
  const rss = process.resourceUsage().maxRSS / 1024;
  const result = (path: 'cached' | 'naive'): PathResult => ({
    path, candidates: chosen.length, pairs: chosen.length * anchors.length, seconds: totals[path].seconds, tokens: totals[path].tokens,
    gflop: totals[path].flops / 1e9, maxRssMB: rss, ...(path === 'cached' ? { scores } : {}),
  });
  return { cached: result('cached'), naive: result('naive') };
}

/** Child process: the cached path on a workload, with the exact early stop when a threshold is given. */
async function runCached(name: string, candidateCount: number, threshold?: number): Promise<PathResult> {
  const { candidates, anchors } = workload(name);
  const backend = await LocalBackend.open(models[name]!, { path: 'cached' });
  const shape = shapeOf(models[name]!);
  const prepared = await backend.prepareAnchors(anchors, options);
  const chosen = candidates.slice(0, candidateCount);
  await backend.oneShot(chosen[0]!, prepared, [0]); // warm-up: session allocations, thread pool
  const anchorTokens = anchors.map((a) => backend.anchorTokens(a, options.maxAnchorTokens).tokens.length);
  const longest = Math.max(...anchorTokens);
  let tokens = 0;
  let flops = 0;
  let passes = 0;
  const started = process.hrtime.bigint();
  for (const c of chosen) {
    const score: CandidateScore = await scoreCandidate(backend, prepared, c, threshold !== undefined ? { threshold, batchSize: options.batchSize } : undefined);
    const evaluated = anchorTokens.filter((_, i) => !Number.isNaN(score.deltas[i]!));
    passes += evaluated.length;
    const spent = cost(shape, 'cached', prefixLength(backend, c, longest), evaluated);
    tokens += spent.tokens;
    flops += spent.flops;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await backend.dispose();
  return {
    path: 'cached', candidates: chosen.length, pairs: chosen.length * anchors.length, seconds, tokens, gflop: flops / 1e9,
    maxRssMB: process.resourceUsage().maxRSS / 1024, passes, passesTotal: chosen.length * anchors.length,
  };
}

/**
 * ONNX Runtime's MatMul throughput on this machine, the ceiling the model's matmuls can reach: a
 * [2048 x width] x [width x 4 width] product with the right-hand side constant, as weights are (the
 * MLP's shape). Best of three rounds, measured next to each workload so that both see the same load.
 */
async function matmulGflops(width: number): Promise<number> {
  const file = join(root, '.cache', 'bench', `matmul-${width}.onnx`);
  execFileSync('/usr/bin/python3', [join(root, 'tools', 'bench', 'make_matmul.py'), file, String(width), String(4 * width)]);
  const session = await ort.InferenceSession.create(file);
  const m = 2048;
  const a = new ort.Tensor('float32', Float32Array.from({ length: m * width }, () => Math.random() - 0.5), [m, width]);
  await session.run({ A: a });
  let best = 0;
  for (let round = 0; round < 3; round++) {
    const runs = 5;
    const started = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) await session.run({ A: a });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    best = Math.max(best, (runs * 2 * m * width * 4 * width) / seconds / 1e9);
  }
  await session.release();
  return best;
}

function child<T = PathResult>(args: string[], mode = '--child'): T {
  const r = spawnSync(process.execPath, [__filename, mode, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`bench child ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

async function writeTorchWorkload(name: string, candidateCount: number): Promise<string> {
  const { candidates, anchors } = workload(name);
  const backend = await LocalBackend.open(models[name]!);
  const anchorTokens = anchors.map((a) => backend.anchorTokens(a, options.maxAnchorTokens));
  const longest = Math.max(...anchorTokens.map((a) => a.tokens.length));
  const prefixes = candidates.slice(0, candidateCount).map((c) => {
    const p = backend.tokenizer.encode(fullText(c), true);
    return p.slice(Math.max(0, p.length - (backend.identity.contextLength - longest)));
  });
  await backend.dispose();
  const file = join(root, '.cache', 'bench', `${name}-torch-workload.json`);
  writeFileSync(file, JSON.stringify({ candidates: prefixes, anchors: anchorTokens, batchSize: options.batchSize }));
  return file;
}

function runTorch(name: string, workloadFile: string, candidateCount: number, engineScores: number[][]): PathResult & { maxAbsDiff: number } {
  const threads = String(cpus().length);
  const out = execFileSync('/usr/bin/python3', [join(root, 'tools', 'bench', 'torch_loop.py'), '--model', models[name]!, '--workload', workloadFile, '--threads', threads],
    { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, MALLOC_ARENA_MAX: '2' } });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; oneShot: number[][]; maxRssMB: number };
  let maxAbsDiff = 0;
  r.oneShot.forEach((row, c) => row.forEach((s, a) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(s - engineScores[c]![a]!)))));
  const anchors = r.oneShot[0]!.length;
  return { path: 'pytorch', candidates: candidateCount, pairs: candidateCount * anchors, seconds: r.seconds, tokens: 0, gflop: 0, maxRssMB: r.maxRssMB, maxAbsDiff };
}

const rate = (r: PathResult): number => r.pairs / r.seconds;
const fmt = (x: number, digits = 2): string => x.toFixed(digits);

/**
 * Child process: W1's candidates against 100 anchors, scored without signals (the one-shot passes alone)
 * and with them (the prefix pass returning span log-probabilities and hidden states, plus the short
 * output pass), alternating candidate by candidate on two backends so that both see the same load.
 */
async function runSignalsOverhead(candidateCount: number): Promise<{ plainSeconds: number; signalsSeconds: number; candidates: number; anchors: number }> {
  const { candidates } = workload('W1');
  const files = ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json'].map((f) => readDataset(join(data, f)).records);
  const anchors = chooseKMeans(files.flatMap((records) => records.slice(2000, 2400)).map((r, index) => ({ ...r, index })), 100, 0);
  const plain = await LocalBackend.open(models['W1']!, { path: 'cached' });
  const withSignals = await LocalBackend.open(models['W1']!, { path: 'cached' });
  const prepared = { plain: await plain.prepareAnchors(anchors, options), signals: await withSignals.prepareAnchors(anchors, options) };
  const chosen = candidates.slice(0, candidateCount);
  await plain.oneShot(chosen[0]!, prepared.plain);
  await scoreCandidate(withSignals, prepared.signals, chosen[0]!);
  let plainSeconds = 0;
  let signalsSeconds = 0;
  for (const [k, c] of chosen.entries()) {
    for (const which of k % 2 === 0 ? ['plain', 'signals'] : ['signals', 'plain']) {
      const started = process.hrtime.bigint();
      if (which === 'plain') await plain.oneShot(c, prepared.plain);
      else await scoreCandidate(withSignals, prepared.signals, c);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (which === 'plain') plainSeconds += seconds;
      else signalsSeconds += seconds;
    }
  }
  await plain.dispose();
  await withSignals.dispose();
  return { plainSeconds, signalsSeconds, candidates: chosen.length, anchors: anchors.length };
}

/**
 * Diversity-aware selection of the top 10% of 50,000 records by golden score, with unit 576-dimensional
 * embeddings (SmolLM2-135M's width): random directions, a fifth of them near-duplicates of another record.
 */
function diversitySelection(): { records: number; dimension: number; kept: number; skipped: number; seconds: number; cpuSeconds: number } {
  const n = 50_000;
  const dimension = 576;
  const random = seededRandom(1);
  const gaussian = (): number => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const unit = (v: Float32Array): Float32Array => {
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  const vectors = new Map<string, Float32Array>();
  const scored: ScoredRecord[] = [];
  for (let i = 0; i < n; i++) {
    const id = i.toString(16).padStart(16, '0');
    const original = i >= 5 && random() < 0.2 ? vectors.get(Math.floor(random() * i).toString(16).padStart(16, '0')) : undefined;
    vectors.set(id, unit(Float32Array.from({ length: dimension }, (_, d) => (original ? original[d]! + 0.01 * gaussian() : gaussian()))));
    const wins = Math.floor(random() * 101);
    scored.push({
      record: { instruction: '', input: '', output: '', index: i, id, start: 0, end: 0, original: {} },
      score: { index: i, id, goldenScore: wins / 100, wins, anchors: 100, meanDelta: gaussian(), deltas: [], truncated: false },
    } as ScoredRecord);
  }
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const selection = select(scored, { kind: 'top-percent', percent: 10, diverse: 0.9 }, embeddingSimilarity(vectors));
  const cpuSeconds = process.cpuUsage(cpu).user / 1e6;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { records: n, dimension, kept: selection.chosen.length, skipped: selection.skippedAsDuplicates, seconds, cpuSeconds };
}

/** The two sections on signals: their cost in scoring, and diversity-aware selection at scale. */
function signalSections(report: Record<string, unknown>, withOverhead = true): void {
  if (withOverhead) {
    const overhead = child<{ plainSeconds: number; signalsSeconds: number; candidates: number; anchors: number }>(['30'], '--signals-overhead');
    const added = overhead.signalsSeconds / overhead.plainSeconds - 1;
    console.log(`\nsignals on W1 (${overhead.candidates} candidates x ${overhead.anchors} anchors): ${fmt(overhead.plainSeconds, 2)} s without, ${fmt(overhead.signalsSeconds, 2)} s with ppl_cond, ppl_direct, ifd and the embedding: ${fmt(100 * added, 1)}% added`);
    report.signalsOverhead = { ...overhead, addedShare: added };
  }
  const diversity = diversitySelection();
  console.log(`diverse selection (--top-percent 10 --diverse 0.9) of ${diversity.records} records x ${diversity.dimension}-dim embeddings: ${fmt(diversity.seconds, 2)} s (${fmt(diversity.cpuSeconds, 2)} s of CPU), kept ${diversity.kept}, skipped ${diversity.skipped} near-duplicates`);
  report.diversity = diversity;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--signals-overhead') {
    process.stdout.write(JSON.stringify(await runSignalsOverhead(Number(argv[1]))) + '\n');
    return;
  }
  if (argv[0] === '--signals') {
    signalSections({}, argv[1] !== '--diversity-only');
    return;
  }
  if (argv[0] === '--interleaved') {
    process.stdout.write(JSON.stringify(await runInterleaved(argv[1]!, Number(argv[2]))) + '\n');
    return;
  }
  if (argv[0] === '--child') {
    const [, name, count, threshold] = argv;
    const result = await runCached(name!, Number(count), threshold ? Number(threshold) : undefined);
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  mkdirSync(outDir, { recursive: true });
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`;
  console.log(`Nuggets benchmark on ${machine}, onnxruntime-node ${ort.env.versions.common}\n`);
  const report: Record<string, unknown> = { machine, workloads: {} };
  console.log('wl  size     pairs/s  tokens/s  GFLOP/s  matmul  share  peakRSS   vs naive  ideal share   vs torch  |s1-torch|');
  console.log('                                     GFLOP/s            (MB)');
  for (const name of ['W1', 'W2']) {
    const { candidates, anchors, referenceCandidates } = sizes[name]!;
    const matmul = await matmulGflops(shapeOf(models[name]!).width);
    const full = child([name, String(candidates)]);
    const { cached: cachedRef, naive } = child<{ cached: PathResult; naive: PathResult }>([name, String(referenceCandidates)], '--interleaved');
    const torchFile = await writeTorchWorkload(name, referenceCandidates);
    const torch = runTorch(name, torchFile, referenceCandidates, cachedRef.scores!);
    const idealSpeedup = naive.tokens / cachedRef.tokens;
    const speedup = rate(cachedRef) / rate(naive);
    const entry = {
      candidates, anchors, pairsPerSecond: rate(full), tokensPerSecond: full.tokens / full.seconds, gflops: full.gflop / full.seconds,
      matmulGflops: matmul, matmulShare: full.gflop / full.seconds / matmul, peakRssMB: full.maxRssMB, seconds: full.seconds,
      reference: { candidates: referenceCandidates, cachedPairsPerSecond: rate(cachedRef), naivePairsPerSecond: rate(naive), pytorchPairsPerSecond: rate(torch),
        speedupOverNaive: speedup, idealTokenSpeedup: idealSpeedup, shareOfIdeal: speedup / idealSpeedup, speedupOverPytorch: rate(cachedRef) / rate(torch),
        pytorchPeakRssMB: torch.maxRssMB, pytorchMaxAbsDiffNats: torch.maxAbsDiff },
    };
    (report.workloads as Record<string, unknown>)[name] = entry;
    console.log(`${name.padEnd(3)} ${`${candidates}x${anchors}`.padEnd(7)} ${fmt(rate(full), 1).padStart(9)} ${fmt(full.tokens / full.seconds, 0).padStart(9)} ${fmt(entry.gflops, 1).padStart(8)} ${fmt(matmul, 1).padStart(7)} ${fmt(100 * entry.matmulShare, 0).padStart(5)}% ${fmt(full.maxRssMB, 0).padStart(8)}`
      + `  ${fmt(speedup, 1).padStart(6)}x ${fmt(idealSpeedup, 1).padStart(6)}x ${fmt(100 * entry.reference.shareOfIdeal, 0).padStart(5)}%  ${fmt(entry.reference.speedupOverPytorch, 2).padStart(7)}x  ${torch.maxAbsDiff.toExponential(1)}`);
  }
  console.log(`\n(vs naive / vs torch: pairs per second on the first ${sizes.W1!.referenceCandidates} (W1) and ${sizes.W2!.referenceCandidates} (W2) candidates, all paths in this run,`
    + ' cached and naive interleaved candidate by candidate in one process;'
    + ' ideal = naive tokens / cached tokens; matmul = ONNX Runtime MatMul [2048 x width] x [width x 4 width] with constant weights,'
    + ' measured next to each workload; share = achieved / matmul; |s1-torch| = largest one-shot score difference from the PyTorch loop, nats)');

  const early: Record<string, unknown> = {};
  for (const t of [0.5, 0.85]) {
    const r = child(['W1', String(sizes.W1!.candidates), String(t)]);
    early[String(t)] = { passes: r.passes, passesTotal: r.passesTotal, saved: 1 - r.passes! / r.passesTotal!, seconds: r.seconds };
    console.log(`early stop on W1 at t = ${t}: ${r.passes} of ${r.passesTotal} one-shot passes (${fmt(100 * (1 - r.passes! / r.passesTotal!), 1)}% saved), ${fmt(r.seconds, 1)} s`);
  }
  report.earlyStop = early;
  signalSections(report);
  writeFileSync(join(outDir, 'bench.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${join(outDir, 'bench.json')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
