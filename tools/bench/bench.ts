/**
 * `npm run bench`: golden-score throughput on fixed real workloads, every path measured in the same
 * run so that ratios are meaningful on a noisy machine.
 *
 *   W1  100 candidates x 50 anchors, the demo model
 *   W2  10 candidates x 20 anchors, a GPT-2-small-shaped model (random weights; tools/bench/make_bench_model.py)
 *   W3  4 candidates x 12 anchors, a SmolLM2-135M-shaped Llama (random weights; tools/standins/make_standins.py),
 *       in its three variants: fp32, dynamic int8 (onnx/model_quantized.onnx), 4-bit (onnx/model_q4.onnx)
 *   Q05 5 candidates x 10 anchors, a Qwen2.5-0.5B-shaped model, fp32 in the external-data layout: peak RSS
 *
 * Paths: the engine's cached path (prefix key/values + in-graph log-probabilities), the naive
 * reference (a full sequence per pair), and the paper's PyTorch loop on the same weights (Debian's
 * PyTorch). The full cached run has a child process of its own, so its peak RSS is the cached path's;
 * the references run on the first 20 candidates of W1 and all of W2 (cached and naive interleaved in one
 * process, PyTorch in another), and every ratio compares pairs per second on the same candidates. W3
 * interleaves all three variants' cached and naive paths in one process, so that int8 and q4 are
 * compared with fp32 under the same load, and profiles each variant's operators with ONNX Runtime.
 * Also: ONNX Runtime's own MatMul GFLOP/s on this machine, and the share of passes the exact early stop
 * saves on W1. Two small sections close the run (also alone: `node out/bench.js --signals`): what
 * the per-record signals add to W1's scoring time with 100 anchors, and diversity-aware selection over
 * 50,000 records with 576-dimensional embeddings.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { chooseKMeans, seededRandom } from '../../server/anchors';
import { readDataset, type DatasetRecord } from '../../server/dataset';
import { DEFAULT_OPTIONS, type PreparedAnchors, type ScoringOptions } from '../../server/scoring/backend';
import { scoreCandidate, type CandidateScore } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { fullText, TEMPLATE_ID } from '../../server/scoring/template';
import { embeddingSimilarity } from '../../server/diverse';
import { ScoreBook } from '../../server/lsp/score-book';
import { select, type ScoredRecord } from '../../server/select';
import { embeddingsPathFor, EmbeddingsWriter } from '../../server/signals/embedding-file';
import type { ScoringKey } from '../../server/store';

const root = resolve(__dirname, '..');
const data = resolve(root, '..', 'shared', 'data');
const outDir = join(root, 'bench-results');
const models: Record<string, string> = {
  W1: join(root, 'models', 'demo'),
  W2: join(root, '.cache', 'bench', 'gpt2-small'),
  W3: join(root, '.cache', 'bench', 'smollm2-135m'),
  Q05: join(root, '.cache', 'bench', 'qwen2.5-0.5b'),
};
const sizes: Record<string, { candidates: number; anchors: number; referenceCandidates: number }> = {
  W1: { candidates: 100, anchors: 50, referenceCandidates: 20 },
  W2: { candidates: 10, anchors: 20, referenceCandidates: 10 }, // all of W2: its ratios on 3 candidates moved 79-89% between runs
  W3: { candidates: 4, anchors: 12, referenceCandidates: 3 },
  Q05: { candidates: 5, anchors: 10, referenceCandidates: 0 },
};
/** W3's variants, by the names `--variant` takes (onnx/model.onnx, onnx/model_quantized.onnx, onnx/model_q4.onnx). */
const W3_VARIANTS = ['fp32', 'quantized', 'q4'];
const variantLabel = (v: string): string => (v === 'quantized' ? 'int8' : v);
const options: ScoringOptions = { ...DEFAULT_OPTIONS, batchSize: 16 };

/** Real records: candidates interleaved from the three Alpaca files, anchors (`anchorCount`, else the workload's) by k-means over a pool. */
function workload(name: string, anchorCount?: number): { candidates: DatasetRecord[]; anchors: DatasetRecord[] } {
  const files = ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json'].map((f) => readDataset(join(data, f)).records);
  const { candidates: nc } = sizes[name]!;
  const na = anchorCount ?? sizes[name]!.anchors;
  const candidates = Array.from({ length: nc }, (_, i) => files[i % 3]![1000 + Math.floor(i / 3)]!);
  const pool = files.flatMap((records) => records.slice(2000, 2400)).map((r, index) => ({ ...r, index }));
  return { candidates, anchors: chooseKMeans(pool, na, 0) };
}

/** What the FLOP count needs: per layer, the weights one token multiplies (attention projections and MLP), and the vocabulary. */
interface ModelShape { layers: number; width: number; weightsPerLayer: number; vocabulary: number }

function shapeOf(folder: string): ModelShape {
  const c = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
  if (c.n_layer !== undefined) return { layers: c.n_layer, width: c.n_embd, weightsPerLayer: 12 * c.n_embd * c.n_embd, vocabulary: c.vocab_size }; // GPT-2: qkv 3w², out w², MLP 8w²
  // Llama / Qwen2: q and o w² each, k and v w x (key/value heads x head size), gate, up and down w x intermediate.
  const width: number = c.hidden_size;
  const kvWidth = (width / c.num_attention_heads) * c.num_key_value_heads;
  return { layers: c.num_hidden_layers, width, weightsPerLayer: 2 * width * width + 2 * width * kvWidth + 3 * width * c.intermediate_size, vocabulary: c.vocab_size };
}

/** Forward FLOPs for n new tokens after `past` (multiply-add = 2): projections, attention, LM head. */
function forwardFlops(s: ModelShape, n: number, past: number): number {
  const perLayer = 2 * n * s.weightsPerLayer + 4 * s.width * (n * past + (n * (n + 1)) / 2);
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
  /** Whether the graph computed the target log-probabilities itself (the log-probability head), or its logits reached JavaScript. */
  logprobHead?: boolean;
  passes?: number;
  passesTotal?: number;
  scores?: number[][];
  profile?: OperatorProfile;
}

type Interleaved = Record<string, { cached: PathResult; naive: PathResult }>;

/**
 * Child process: the cached and naive paths of each variant on the same candidates, interleaved
 * candidate by candidate (the order rotating from one candidate to the next), so that every path sees
 * the same machine load.
 */
async function runInterleaved(name: string, candidateCount: number, variants: string[]): Promise<Interleaved> {
  const { candidates, anchors } = workload(name);
  const shape = shapeOf(models[name]!);
  const runs: Array<{ variant: string; path: 'cached' | 'naive'; backend: LocalBackend; prepared: PreparedAnchors; seconds: number; tokens: number; flops: number; scores: number[][] }> = [];
  for (const variant of variants) {
    let prepared: PreparedAnchors | undefined; // the same numbers for both paths: computed once
    for (const path of ['cached', 'naive'] as const) {
      const backend = await LocalBackend.open(models[name]!, { path, variant });
      prepared ??= await backend.prepareAnchors(anchors, options);
      runs.push({ variant, path, backend, prepared, seconds: 0, tokens: 0, flops: 0, scores: [] });
    }
  }
  const chosen = candidates.slice(0, candidateCount);
  const anchorTokens = anchors.map((a) => runs[0]!.backend.anchorTokens(a, options.maxAnchorTokens).tokens.length);
  const longest = Math.max(...anchorTokens);
  for (const run of runs) await run.backend.oneShot(chosen[0]!, run.prepared, [0]); // warm-up
  for (const [k, c] of chosen.entries()) {
    const prefix = prefixLength(runs[0]!.backend, c, longest);
    for (const run of [...runs.slice(k % runs.length), ...runs.slice(0, k % runs.length)]) {
      const started = process.hrtime.bigint();
      const { oneShot } = await run.backend.oneShot(c, run.prepared);
      run.seconds += Number(process.hrtime.bigint() - started) / 1e9;
      run.scores.push(Array.from(oneShot));
      const { tokens, flops } = cost(shape, run.path, prefix, anchorTokens);
      run.tokens += tokens;
      run.flops += flops;
    }
  }
  const rss = process.resourceUsage().maxRSS / 1024;
  const result: Interleaved = {};
  for (const run of runs) {
    (result[run.variant] ??= {} as Interleaved[string])[run.path] = {
      path: run.path, candidates: chosen.length, pairs: chosen.length * anchors.length, seconds: run.seconds, tokens: run.tokens,
      gflop: run.flops / 1e9, maxRssMB: rss, logprobHead: run.backend.lm.hasLogprobHead, ...(run.path === 'cached' ? { scores: run.scores } : {}),
    };
  }
  return result;
}

/**
 * Child process: the cached path on a workload, with the exact early stop when a threshold is given,
 * and with ONNX Runtime's per-operator profile of the timed candidates when asked.
 */
async function runCached(name: string, variant: string, candidateCount: number, threshold?: number, profile = false): Promise<PathResult> {
  const { candidates, anchors } = workload(name);
  const profilePrefix = join(outDir, `profile-${name}-${variant}`);
  if (profile) mkdirSync(outDir, { recursive: true });
  const backend = await LocalBackend.open(models[name]!, { path: 'cached', variant, ...(profile ? { profileFilePrefix: profilePrefix } : {}) });
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
  const logprobHead = backend.lm.hasLogprobHead;
  await backend.dispose();
  return {
    path: 'cached', candidates: chosen.length, pairs: chosen.length * anchors.length, seconds, tokens, gflop: flops / 1e9,
    maxRssMB: process.resourceUsage().maxRSS / 1024, logprobHead, passes, passesTotal: chosen.length * anchors.length,
    ...(profile ? { profile: operatorProfile(profilePrefix, seconds, chosen.length * anchors.length) } : {}),
  };
}

interface OperatorProfile {
  /** Operator time per scored pair, ms, all operators together. */
  msPerPair: number;
  /** The operator types taking the most time, with their share of all operator time. */
  top: Array<{ op: string; share: number }>;
}

/**
 * ONNX Runtime's per-operator timings of the last `seconds` of the session's runs (the timed
 * candidates, not the anchors' preparation or the warm-up), summed by operator type; the file is removed.
 */
function operatorProfile(prefix: string, seconds: number, pairs: number): OperatorProfile {
  const file = readdirSync(dirname(prefix)).filter((f) => f.startsWith(`${basename(prefix)}_`)).sort().pop();
  if (!file) throw new Error(`ONNX Runtime wrote no profile under ${prefix}`);
  const events = JSON.parse(readFileSync(join(dirname(prefix), file), 'utf8')) as Array<{ cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } }>;
  rmSync(join(dirname(prefix), file));
  const lastRunEnd = Math.max(...events.filter((e) => e.cat === 'Session').map((e) => e.ts + e.dur));
  const byOp = new Map<string, number>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.args?.op_name || !e.name.endsWith('_kernel_time') || e.ts < lastRunEnd - seconds * 1e6) continue;
    byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur);
    total += e.dur;
  }
  const top = [...byOp.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([op, us]) => ({ op, share: us / total }));
  return { msPerPair: total / 1000 / pairs, top };
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

/** The largest difference between two score tables, in nats. */
function maxAbsDiff(a: number[][], b: number[][]): number {
  let most = 0;
  a.forEach((row, c) => row.forEach((s, k) => (most = Math.max(most, Math.abs(s - b[c]![k]!)))));
  return most;
}

function runTorch(name: string, workloadFile: string, candidateCount: number, engineScores: number[][]): PathResult & { maxAbsDiff: number } {
  const threads = String(cpus().length);
  const out = execFileSync('/usr/bin/python3', [join(root, 'tools', 'bench', 'torch_loop.py'), '--model', models[name]!, '--workload', workloadFile, '--threads', threads],
    { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, MALLOC_ARENA_MAX: '2' } });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; oneShot: number[][]; maxRssMB: number };
  const anchors = r.oneShot[0]!.length;
  return { path: 'pytorch', candidates: candidateCount, pairs: candidateCount * anchors, seconds: r.seconds, tokens: 0, gflop: 0, maxRssMB: r.maxRssMB, maxAbsDiff: maxAbsDiff(r.oneShot, engineScores) };
}

const rate = (r: PathResult): number => r.pairs / r.seconds;
const head = (r: PathResult): string => (r.logprobHead ? 'yes' : 'no');
const fmt = (x: number, digits = 2): string => x.toFixed(digits);

/**
 * Child process: W1's candidates against 100 anchors, scored without signals (the one-shot passes alone)
 * and with them (the prefix pass returning span log-probabilities and hidden states, plus the short
 * output pass), alternating candidate by candidate on two backends so that both see the same load.
 */
async function runSignalsOverhead(candidateCount: number): Promise<{ plainSeconds: number; signalsSeconds: number; candidates: number; anchors: number }> {
  const { candidates, anchors } = workload('W1', 100);
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

/**
 * The editor's one-record rescore after an edit starts a scoring run on the document's stored scores: on
 * 50,000 stored records (100 deltas each), what that start costs against reading the scores whole.
 */
function runStartSection(report: Record<string, unknown>): void {
  const storage = join(root, '.cache', 'bench', 'run-start');
  rmSync(storage, { recursive: true, force: true });
  const key: ScoringKey = { model: { name: 'bench', fingerprint: '0123456789abcdef' }, anchors: { hash: 'fedcba9876543210', count: 100 }, template: TEMPLATE_ID, maxAnchorTokens: 200, separator: '' };
  const records = 50_000;
  const random = seededRandom(0);
  const lines = [JSON.stringify({ nuggets_scores: 1, ...key, dataset: 'vscode', shard: null, created: new Date().toISOString() })];
  for (let i = 0; i < records; i++) {
    const deltas = Array.from({ length: 100 }, () => Math.round((random() - 0.5) * 4000) / 1000);
    lines.push(JSON.stringify({ index: i, id: i.toString(16).padStart(16, '0'), golden_score: 0.5, wins: 50, anchors: 100, mean_delta: -0.1, deltas, truncated: false, ppl_cond: 12.3, ppl_direct: 20.1, ifd: 0.61 }));
  }
  const book = new ScoreBook(storage);
  mkdirSync(dirname(book.scoresPathOf(key)), { recursive: true });
  writeFileSync(book.scoresPathOf(key), lines.join('\n') + '\n');
  let started = performance.now();
  book.scoresOf(key);
  const readWhole = performance.now() - started;
  const starts: number[] = [];
  for (let k = 0; k < 5; k++) {
    started = performance.now();
    book.startRun(key);
    starts.push(performance.now() - started);
    book.endRun(key);
  }
  // Its first embedding opens the sidecar beside the scores: 50,000 x 576 float16, about 58 MB.
  const sidecar = embeddingsPathFor(book.scoresPathOf(key));
  const sink = EmbeddingsWriter.open(sidecar, key.model.fingerprint, 576, () => records);
  for (let i = 0; i < records; i++) sink.append(i.toString(16).padStart(16, '0'), Float32Array.from({ length: 576 }, () => random() - 0.5));
  sink.close();
  const opens: number[] = [];
  for (let k = 0; k < 5; k++) {
    started = performance.now();
    EmbeddingsWriter.open(sidecar, key.model.fingerprint, 576, () => records).close();
    opens.push(performance.now() - started);
  }
  book.close();
  rmSync(storage, { recursive: true, force: true });
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[2]!;
  console.log(`a run's start after an edit, ${records} stored scores: ${fmt(median(starts), 1)} ms (median of 5); reading them whole: ${fmt(readWhole, 0)} ms, ${fmt(readWhole / median(starts), 0)}x`);
  console.log(`its embeddings sidecar (${records} x 576) opened for appending: ${fmt(median(opens), 1)} ms (median of 5)`);
  report.runStart = { records, medianMs: median(starts), readWholeMs: readWhole, sidecarOpenMs: median(opens) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--run-start') {
    runStartSection({});
    return;
  }
  if (argv[0] === '--signals-overhead') {
    process.stdout.write(JSON.stringify(await runSignalsOverhead(Number(argv[1]))) + '\n');
    return;
  }
  if (argv[0] === '--signals') {
    signalSections({}, argv[1] !== '--diversity-only');
    return;
  }
  if (argv[0] === '--interleaved') {
    process.stdout.write(JSON.stringify(await runInterleaved(argv[1]!, Number(argv[2]), argv[3]!.split(','))) + '\n');
    return;
  }
  if (argv[0] === '--child' || argv[0] === '--profiled') {
    const [, name, variant, count, threshold] = argv;
    const result = await runCached(name!, variant!, Number(count), threshold ? Number(threshold) : undefined, argv[0] === '--profiled');
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  // `--only W3,Q05` runs some workloads (default: all; the early stop belongs to W1).
  const only = argv[0] === '--only' ? argv[1]!.split(',') : Object.keys(sizes);
  mkdirSync(outDir, { recursive: true });
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`;
  console.log(`Nuggets benchmark on ${machine}, onnxruntime-node ${ort.env.versions.common}\n`);
  const report: Record<string, unknown> = { machine, workloads: {} };
  const gpt2Workloads = ['W1', 'W2'].filter((name) => only.includes(name));
  if (gpt2Workloads.length > 0) {
    console.log('wl  size     pairs/s  tokens/s  GFLOP/s  matmul  share  peakRSS   vs naive  ideal share   vs torch  |s1-torch|');
    console.log('                                     GFLOP/s            (MB)');
  }
  for (const name of gpt2Workloads) {
    const { candidates, anchors, referenceCandidates } = sizes[name]!;
    const matmul = await matmulGflops(shapeOf(models[name]!).width);
    const full = child([name, 'fp32', String(candidates)]);
    const { cached: cachedRef, naive } = child<Interleaved>([name, String(referenceCandidates), 'fp32'], '--interleaved').fp32!;
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
  if (gpt2Workloads.length > 0) {
    console.log(`\n(vs naive / vs torch: pairs per second on the first ${sizes.W1!.referenceCandidates} (W1) and ${sizes.W2!.referenceCandidates} (W2) candidates, all paths in this run,`
      + ' cached and naive interleaved candidate by candidate in one process;'
      + ' ideal = naive tokens / cached tokens; matmul = ONNX Runtime MatMul [2048 x width] x [width x 4 width] with constant weights,'
      + ' measured next to each workload; share = achieved / matmul; |s1-torch| = largest one-shot score difference from the PyTorch loop, nats)');
  }

  const early: Record<string, unknown> = {};
  for (const t of only.includes('W1') ? [0.5, 0.85] : []) {
    const r = child(['W1', 'fp32', String(sizes.W1!.candidates), String(t)]);
    early[String(t)] = { passes: r.passes, passesTotal: r.passesTotal, saved: 1 - r.passes! / r.passesTotal!, seconds: r.seconds };
    console.log(`early stop on W1 at t = ${t}: ${r.passes} of ${r.passesTotal} one-shot passes (${fmt(100 * (1 - r.passes! / r.passesTotal!), 1)}% saved), ${fmt(r.seconds, 1)} s`);
  }
  report.earlyStop = early;
  if (only.includes('W3')) (report.workloads as Record<string, unknown>).W3 = await benchW3();
  if (only.includes('Q05')) (report.workloads as Record<string, unknown>).Q05 = benchQ05();
  if (argv[0] !== '--only' || only.includes('signals')) signalSections(report);
  if (argv[0] !== '--only' || only.includes('run-start')) runStartSection(report);
  writeFileSync(join(outDir, 'bench.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${join(outDir, 'bench.json')}`);
}

/**
 * W3: the SmolLM2-135M shape in fp32, int8 and q4. Each variant's full cached run has a process of its
 * own (its pairs/s and peak RSS); one process interleaves every variant's cached and naive paths (the
 * speedups over naive and against fp32), PyTorch runs fp32's weights, and each variant is profiled.
 */
async function benchW3(): Promise<Record<string, unknown>> {
  const name = 'W3';
  const { candidates, anchors, referenceCandidates } = sizes[name]!;
  const full: Record<string, PathResult> = Object.fromEntries(W3_VARIANTS.map((v) => [v, child([name, v, String(candidates)], '--profiled')]));
  const interleaved = child<Interleaved>([name, String(referenceCandidates), W3_VARIANTS.join(',')], '--interleaved');
  const fp32 = interleaved.fp32!.cached;
  const torch = runTorch(name, await writeTorchWorkload(name, referenceCandidates), referenceCandidates, fp32.scores!);
  const c = JSON.parse(readFileSync(join(models[name]!, 'config.json'), 'utf8'));
  console.log(`\nW3: SmolLM2-135M shape (${c.num_hidden_layers} layers, width ${c.hidden_size}, ${c.num_attention_heads} / ${c.num_key_value_heads} heads,`
    + ` intermediate ${c.intermediate_size}, vocabulary ${c.vocab_size}, random weights), ${candidates} candidates x ${anchors} anchors`);
  console.log('variant  head  pairs/s  tokens/s  GFLOP/s  peakRSS   vs naive  ideal share   vs fp32  vs torch  |s1-fp32|  |s1-torch|');
  console.log('                                             (MB)');
  const rows: Record<string, unknown> = {};
  for (const v of W3_VARIANTS) {
    const f = full[v]!;
    const { cached, naive } = interleaved[v]!;
    const idealSpeedup = naive.tokens / cached.tokens;
    const speedup = rate(cached) / rate(naive);
    const vsFp32 = rate(cached) / rate(fp32);
    const fromFp32 = maxAbsDiff(cached.scores!, fp32.scores!);
    rows[v] = {
      logprobHead: f.logprobHead, pairsPerSecond: rate(f), tokensPerSecond: f.tokens / f.seconds, gflops: f.gflop / f.seconds, peakRssMB: f.maxRssMB, seconds: f.seconds,
      reference: { candidates: referenceCandidates, cachedPairsPerSecond: rate(cached), naivePairsPerSecond: rate(naive), speedupOverNaive: speedup,
        idealTokenSpeedup: idealSpeedup, shareOfIdeal: speedup / idealSpeedup, speedupOverFp32: vsFp32, maxAbsDiffFromFp32Nats: fromFp32,
        ...(v === 'fp32' ? { pytorchPairsPerSecond: rate(torch), speedupOverPytorch: rate(cached) / rate(torch), pytorchPeakRssMB: torch.maxRssMB, pytorchMaxAbsDiffNats: torch.maxAbsDiff } : {}) },
      profile: f.profile,
    };
    console.log(`${variantLabel(v).padEnd(8)} ${head(f).padEnd(4)} ${fmt(rate(f), 2).padStart(8)} ${fmt(f.tokens / f.seconds, 0).padStart(9)} ${fmt(f.gflop / f.seconds, 1).padStart(8)} ${fmt(f.maxRssMB, 0).padStart(8)}`
      + `  ${fmt(speedup, 1).padStart(6)}x ${fmt(idealSpeedup, 1).padStart(6)}x ${fmt(100 * speedup / idealSpeedup, 0).padStart(5)}%  ${fmt(vsFp32, 2).padStart(6)}x`
      + `  ${v === 'fp32' ? `${fmt(rate(cached) / rate(torch), 2).padStart(7)}x` : '       -'}  ${v === 'fp32' ? '        -' : fromFp32.toExponential(1).padStart(9)}  ${v === 'fp32' ? torch.maxAbsDiff.toExponential(1).padStart(10) : '         -'}`);
  }
  console.log(`(pairs/s, tokens/s, GFLOP/s, peak RSS: each variant's full cached run in a process of its own; vs naive, vs fp32, vs torch:`
    + ` pairs per second on the same ${referenceCandidates} candidates, the three variants' cached and naive paths interleaved candidate by candidate in one process,`
    + ` the PyTorch loop on fp32's weights; head: the log-probability head is in the graph, no logits reach JavaScript;`
    + ` |s1-fp32|: the largest one-shot score difference from fp32, nats)`);
  for (const v of W3_VARIANTS) {
    const p = full[v]!.profile!;
    console.log(`profile ${variantLabel(v).padEnd(5)} ${fmt(p.msPerPair, 1).padStart(6)} ms of operator time per pair: ${p.top.map((t) => `${t.op} ${fmt(100 * t.share, 0)}%`).join(', ')}`);
  }
  return rows;
}

/** The Qwen2.5-0.5B shape, fp32 in the external-data layout: 5 candidates x 10 anchors, in a process of its own for its peak RSS. */
function benchQ05(): Record<string, unknown> {
  const name = 'Q05';
  const { candidates, anchors } = sizes[name]!;
  const r = child([name, 'fp32', String(candidates)]);
  const c = JSON.parse(readFileSync(join(models[name]!, 'config.json'), 'utf8'));
  console.log(`\nQwen2.5-0.5B shape (${c.num_hidden_layers} layers, width ${c.hidden_size}, ${c.num_attention_heads} / ${c.num_key_value_heads} heads, intermediate ${c.intermediate_size},`
    + ` vocabulary ${c.vocab_size}), fp32, onnx/model.onnx + onnx/model.onnx_data: ${candidates} candidates x ${anchors} anchors in ${fmt(r.seconds, 1)} s`
    + ` (${fmt(rate(r), 2)} pairs/s), peak RSS ${fmt(r.maxRssMB, 0)} MB, log-probability head: ${head(r)}`);
  return { candidates, anchors, pairsPerSecond: rate(r), seconds: r.seconds, peakRssMB: r.maxRssMB, logprobHead: r.logprobHead };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
