/**
 * `npm run bench`: golden-score throughput on fixed real workloads, every path measured in the same
 * run so that ratios are meaningful on a noisy machine.
 *
 *   W1  100 candidates x 50 anchors, the demo model
 *   W2  10 candidates x 20 anchors, a GPT-2-small-shaped model (random weights; tools/bench/make_bench_model.py)
 *   W3  4 candidates x 12 anchors, a SmolLM2-135M-shaped Llama (random weights; tools/standins/make_standins.py),
 *       in its three variants: fp32, dynamic int8 (onnx/model_quantized.onnx), 4-bit (onnx/model_q4.onnx)
 *   Q05 5 candidates x 10 anchors, a Qwen2.5-0.5B-shaped model, fp32 in the external-data layout: peak RSS
 *   W4  4 candidates x 12 anchors, the real SmolLM2-135M-Instruct weights from a GGUF file (Q4_1, tied embedding
 *       Q8_0), imported as stored (MatMulNBits), dequantized to float32, and stored with MatMulNBits' accuracy_level 4
 *       (int8 activations); the import's own cost (cold, a second open, and a Qwen2.5-0.5B-shaped Q4_K_M-typed file);
 *       and on real weights: the agreement of golden scores between stored, float32 and ONNX Runtime's dynamic int8
 *       of the float32 graph (100 candidates x 20 anchors, shortened), the in-context check of the demo model's
 *       held-out records, and `nuggets agree` demo vs the GGUF
 *
 *   F1  conversations: parsing 100,000 `messages` records (JSON Lines and Parquet) and rendering them under ChatML,
 *       against scoring them with the demo model; peak RSS while reading a 500 MB Parquet shard (tools/bench/formats.ts)
 *
 *   W5  20 candidates x 50 anchors, the demo model served: the local engine, the SGLang stand-in directly, the real
 *       SGLang gateway (sglang-router, when installed) in front of two SGLang stand-ins, and the vLLM stand-in
 *       (test/support), each through the engine's own backend with records in flight; the token positions each
 *       computes per record against the ideal L_c + m x L_a (the stand-ins count them: prompt tokens minus their
 *       prefix cache's hits)
 *
 * Paths: the engine's cached path (prefix key/values + in-graph log-probabilities), the naive
 * reference (a full sequence per pair), and the paper's PyTorch loop on the same weights (Debian's
 * PyTorch). The full cached run has a child process of its own, so its peak RSS is the cached path's;
 * the references run on the first 20 candidates of W1 and all of W2 (cached and naive interleaved in one
 * process, PyTorch in another), and every ratio compares pairs per second on the same candidates. W3
 * interleaves all three variants' cached and naive paths in one process, so that int8 and q4 are
 * compared with fp32 under the same load, and profiles each variant's operators with ONNX Runtime.
 * Also: ONNX Runtime's own MatMul GFLOP/s on this machine, and the share of passes the exact early stop
 * saves on W1; W6 (also alone: `--only W6`): at 0.85 on W1, the passes of the early stop with its anchors ordered
 * to stop sooner, against the fixed order and against no early stop. Two small sections close the run (also alone: `node out/bench.js --signals`): what
 * the per-record signals add to W1's scoring time with 100 anchors, and diversity-aware selection over
 * 50,000 records with 576-dimensional embeddings.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { spearman } from '../../server/selection/agree';
import { chooseKMeans, readAnchors, seededRandom, writeAnchors } from '../../server/records/anchors';
import { readDataset, type DatasetRecord, type Example } from '../../server/records/dataset';
import { readModelFolder } from '../../server/model/folder';
import { readGguf } from '../../server/model/gguf/file';
import { writeGraph, type WeightStorage } from '../../server/model/gguf/graph';
import { importGguf } from '../../server/model/gguf/import';
import { modelShape } from '../../server/model/gguf/shape';
import { TextTokenizer } from '../../server/model/tokenizer';
import { DEFAULT_OPTIONS, type PreparedAnchors, type ScoringOptions } from '../../server/scoring/backend';
import { AnchorOrder } from '../../server/scoring/anchor-order';
import { goldenFrom, scoreCandidate, scoreRecords, type CandidateScore } from '../../server/scoring/golden';
import { LocalBackend } from '../../server/scoring/local';
import { openBackend } from '../../server/scoring/open';
import { benchFormats, openShardTable, scoreShardTail } from './formats';
import { SglangGateway } from '../../test/support/sglang-gateway';
import { FakeSglang, type ServedItem } from '../../test/support/sglang-server';
import { FakeVllm } from '../../test/support/vllm-server';
import { fullText, queryText, TEMPLATE_ID } from '../../server/scoring/template';
import { embeddingSimilarity } from '../../server/selection/diverse';
import { ScoreBook } from '../../server/lsp/score-book';
import { select, type ScoredRecord } from '../../server/selection/select';
import { embeddingsPathFor, EmbeddingsWriter } from '../../server/signals/embedding-file';
import type { ScoringKey } from '../../server/records/store';

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
  W4: { candidates: 4, anchors: 12, referenceCandidates: 4 },
  W5: { candidates: 20, anchors: 50, referenceCandidates: 0 },
};
/** W3's variants, by the names `--variant` takes (onnx/model.onnx, onnx/model_quantized.onnx, onnx/model_q4.onnx). */
const W3_VARIANTS = ['fp32', 'quantized', 'q4'];
const variantLabel = (v: string): string => (v === 'quantized' ? 'int8' : v);
const options: ScoringOptions = { ...DEFAULT_OPTIONS, batchSize: 16 };

/** W4's real weights: SmolLM2-135M-Instruct as a GGUF file (Q4_1, its tied embedding Q8_0), fetched by tools/gguf/fetch-smollm2.sh. */
const SMOLLM2_GGUF = join(root, '.cache', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');
/** A Qwen2.5-0.5B-shaped file with a Q4_K_M file's tensor types, random weights (tools/gguf/make_gguf.py --shape-0.5b, run by setup.sh): its import's peak RSS. */
const QWEN05_GGUF = join(root, '.cache', 'bench', 'qwen2.5-0.5b-q4_k_m.gguf');
/** W4's cache root: the importer's gguf/ folder, the folders made from its imports, and the agreement table's records. */
const W4_CACHE = join(root, '.cache', 'bench', 'w4');
/** W4's speed variants: the GGUF's weights as stored, dequantized to float32, and stored with MatMulNBits' accuracy_level 4. */
const W4_VARIANTS = ['stored', 'fp32', 'acc4'];
/** W4's agreement table: golden scores of the same records from the weights as stored, float32 and dynamic int8. */
const W4_AGREEMENT_VARIANTS = ['stored', 'fp32', 'int8'];
const w4Label = (v: string): string => (v === 'acc4' ? 'stored, accuracy_level 4' : v);
/**
 * The agreement table's size: 100 of the workloads' candidates x 20 k-means anchors. The anchors are shortened, so
 * that 100 x 20 pairs in three variants, and again in `nuggets agree`, fit the bench's time on 2 cores (the pool's
 * k-means anchors average about 150 tokens; a pair's cost grows with its anchor's length): they come from the
 * pool's records whose query is at most `queryTokens` tokens, each response cut at a word so that the record is at
 * most `anchorTokens` tokens (SmolLM2's tokenizer). The anchors file holds the cut records, so that the engine's
 * default cut (200 tokens) changes nothing, here or in `nuggets agree`.
 */
const AGREEMENT = { candidates: 100, anchors: 20, anchorTokens: 64, queryTokens: 40 };

/** Real records: candidates interleaved from the three Alpaca files (from index 1000 on), and a pool for anchors (their records 2000-2399). */
function workloadRecords(candidateCount: number): { candidates: DatasetRecord[]; pool: DatasetRecord[] } {
  const files = ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json'].map((f) => readDataset(join(data, f)).records);
  const candidates = Array.from({ length: candidateCount }, (_, i) => files[i % 3]![1000 + Math.floor(i / 3)]!);
  const pool = files.flatMap((records) => records.slice(2000, 2400)).map((r, index) => ({ ...r, index }));
  return { candidates, pool };
}

/** A workload's records: its candidates, and its anchors (`anchorCount`, else the workload's) by k-means over the pool. */
function workload(name: string, anchorCount?: number): { candidates: DatasetRecord[]; anchors: DatasetRecord[] } {
  const { candidates, pool } = workloadRecords(sizes[name]!.candidates);
  return { candidates, anchors: chooseKMeans(pool, anchorCount ?? sizes[name]!.anchors, 0) };
}

/** The folder a workload's variant runs from, and the variant to open in it: W4's variants are folders of their own (w4Folder). */
function modelOf(name: string, variant: string): { folder: string; variant: string } {
  if (name === 'W4') return { folder: w4Folder(variant), variant: variant === 'int8' ? 'quantized' : 'fp32' };
  return { folder: models[name]!, variant };
}

/**
 * W4's model folders, each made when missing: the SmolLM2 GGUF imported (into W4_CACHE) as stored and as float32,
 * the stored graph written again with MatMulNBits' accuracy_level 4, and the float32 graph quantized to dynamic
 * int8 by ONNX Runtime's Python quantizer (tools/bench/quantize_int8.py) into onnx/model_quantized.onnx, as the
 * hub's exports are. The made folders are named after the import they come from, so a new importer makes them again.
 */
function w4Folder(variant: string): string {
  const imported = (weights: WeightStorage): string => importGguf(SMOLLM2_GGUF, { cacheDir: W4_CACHE, weights }).folder;
  if (variant === 'stored') return imported('stored');
  if (variant === 'fp32') return imported('float32');
  if (variant === 'acc4') {
    const stored = imported('stored');
    const folder = join(W4_CACHE, `${basename(stored)}-accuracy-level-4`);
    if (existsSync(folder)) return folder;
    const partial = `${folder}.partial`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    const file = readGguf(SMOLLM2_GGUF);
    writeGraph(file, modelShape(file), partial, 'stored', undefined, 4);
    // Not gguf-import.json: the folder is not the importer's, and its fingerprint hashes its own weights.
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'config.json']) copyFileSync(join(stored, name), join(partial, name));
    renameSync(partial, folder);
    return folder;
  }
  if (variant === 'int8') {
    const fp32 = imported('float32');
    const folder = join(W4_CACHE, `${basename(fp32)}-dynamic-int8`);
    if (!existsSync(folder)) execFileSync('python3', [join(root, 'tools', 'bench', 'quantize_int8.py'), fp32, folder], { stdio: ['ignore', 'ignore', 'inherit'] });
    return folder;
  }
  throw new Error(`W4 has no variant ${variant}`);
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
  /** The anchors' zero-shot scores, beside `scores` (their deltas: deltasOf). */
  zeroShot?: number[];
  /** RSS once the session is created, before any pass: the weights as the runtime holds them, without the passes' buffers. */
  sessionRssMB?: number;
  profile?: OperatorProfile;
}

type Interleaved = Record<string, { cached: PathResult; naive: PathResult }>;

/**
 * Child process: the cached and naive paths (or only `paths`) of each variant on the same candidates,
 * interleaved candidate by candidate (the order rotating from one candidate to the next), so that every
 * path sees the same machine load.
 */
async function runInterleaved(name: string, candidateCount: number, variants: string[], paths: Array<'cached' | 'naive'> = ['cached', 'naive']): Promise<Interleaved> {
  const { candidates, anchors } = workload(name);
  const shape = shapeOf(modelOf(name, variants[0]!).folder);
  const runs: Array<{ variant: string; path: 'cached' | 'naive'; backend: LocalBackend; prepared: PreparedAnchors; seconds: number; tokens: number; flops: number; scores: number[][] }> = [];
  for (const variant of variants) {
    let prepared: PreparedAnchors | undefined; // the same numbers for both paths: computed once
    const model = modelOf(name, variant);
    for (const path of paths) {
      const backend = await LocalBackend.open(model.folder, { path, variant: model.variant });
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
      gflop: run.flops / 1e9, maxRssMB: rss, logprobHead: run.backend.lm.hasLogprobHead,
      ...(run.path === 'cached' ? { scores: run.scores, zeroShot: Array.from(run.prepared.zeroShot) } : {}),
    };
  }
  return result;
}

/**
 * Child process: the cached path on a workload, with the exact early stop when a threshold is given,
 * and with ONNX Runtime's per-operator profile of the timed candidates when asked.
 */
async function runCached(name: string, variant: string, candidateCount: number, threshold?: number, profile = false, ordered = false): Promise<PathResult> {
  const { candidates, anchors } = workload(name);
  const profilePrefix = join(outDir, `profile-${name}-${variant}`);
  if (profile) mkdirSync(outDir, { recursive: true });
  const model = modelOf(name, variant);
  const backend = await LocalBackend.open(model.folder, { path: 'cached', variant: model.variant, ...(profile ? { profileFilePrefix: profilePrefix } : {}) });
  const sessionRssMB = process.memoryUsage().rss / 2 ** 20;
  const shape = shapeOf(model.folder);
  const prepared = await backend.prepareAnchors(anchors, options);
  const chosen = candidates.slice(0, candidateCount);
  await backend.oneShot(chosen[0]!, prepared, [0]); // warm-up: session allocations, thread pool
  const anchorTokens = anchors.map((a) => backend.anchorTokens(a, options.maxAnchorTokens).tokens.length);
  const longest = Math.max(...anchorTokens);
  let tokens = 0;
  let flops = 0;
  let passes = 0;
  // Ordered: the anchors records lost most often first, as score --min-score tries them (anchor-order.ts).
  const ordering = ordered ? new AnchorOrder(prepared.count) : undefined;
  const started = process.hrtime.bigint();
  for (const [position, c] of chosen.entries()) {
    const score: CandidateScore = await scoreCandidate(backend, prepared, c, threshold !== undefined ? { threshold, batchSize: options.batchSize, ordering } : undefined, undefined, position);
    ordering?.learn(score.deltas);
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
    maxRssMB: process.resourceUsage().maxRSS / 1024, sessionRssMB, logprobHead, passes, passesTotal: chosen.length * anchors.length,
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

/** The deltas (one-shot minus zero-shot score) of a cached run, per candidate and anchor. */
function deltasOf(r: PathResult): number[][] {
  return r.scores!.map((row) => row.map((s, k) => s - r.zeroShot![k]!));
}

/** Where W4's agreement table keeps its records, for its child processes and `nuggets agree` to read. */
const AGREEMENT_FILES = { records: join(W4_CACHE, 'agreement-records.json'), anchors: join(W4_CACHE, 'agreement-anchors.json') };

/**
 * The agreement table's records (AGREEMENT): the workloads' first candidates, and k-means anchors over the pool's
 * records whose query is short, each cut (cutToTokens) with SmolLM2's tokenizer.
 */
function writeAgreementRecords(): { meanAnchorTokens: number; fullLengthMeanAnchorTokens: number } {
  const { candidates, pool } = workloadRecords(AGREEMENT.candidates);
  const model = readModelFolder(w4Folder('stored'));
  const tokenizer = new TextTokenizer(model.tokenizerJson, model.tokenizerConfig, join(model.path, 'tokenizer.json'));
  const shortQueries = pool.filter((r) => tokenizer.encode(queryText(r), false).length <= AGREEMENT.queryTokens);
  const anchors = chooseKMeans(shortQueries, AGREEMENT.anchors, 0).map((r) => cutToTokens(r, AGREEMENT.anchorTokens, tokenizer));
  writeFileSync(AGREEMENT_FILES.records, JSON.stringify(candidates.map(({ instruction, input, output }) => ({ instruction, input, output })), null, 2) + '\n');
  writeAnchors(AGREEMENT_FILES.anchors, anchors);
  const meanTokens = (records: Example[], cut: number): number => records.reduce((sum, r) => sum + Math.min(cut, tokenizer.encode(fullText(r), false).length), 0) / records.length;
  return { meanAnchorTokens: meanTokens(anchors, Infinity), fullLengthMeanAnchorTokens: meanTokens(chooseKMeans(pool, AGREEMENT.anchors, 0), DEFAULT_OPTIONS.maxAnchorTokens) };
}

/** The record with its response cut at a word, so that its text is at most `tokens` tokens as the engine tokenizes an anchor. */
function cutToTokens(r: DatasetRecord, tokens: number, tokenizer: TextTokenizer): Example {
  const fits = (output: string): boolean => tokenizer.encode(fullText({ ...r, output }), false).length <= tokens;
  let output = r.output;
  if (!fits(output)) {
    output = '';
    for (const space of r.output.matchAll(/\s+/g)) {
      if (!fits(r.output.slice(0, space.index))) break;
      output = r.output.slice(0, space.index);
    }
  }
  return { instruction: r.instruction, input: r.input, output };
}

interface GoldenRun { seconds: number; maxRssMB: number; golden: number[]; deltas: number[][] }

/** Child process: the agreement table's golden scores and deltas from one of W4's variants, every candidate against every anchor. */
async function runGolden(variant: string): Promise<GoldenRun> {
  const records = readDataset(AGREEMENT_FILES.records).records;
  const { anchors } = readAnchors(AGREEMENT_FILES.anchors);
  const model = modelOf('W4', variant);
  const backend = await LocalBackend.open(model.folder, { variant: model.variant });
  const started = process.hrtime.bigint();
  const prepared = await backend.prepareAnchors(anchors, DEFAULT_OPTIONS);
  const golden: number[] = [];
  const deltas: number[][] = [];
  for (const record of records) {
    const score = goldenFrom(prepared, (await backend.oneShot(record, prepared)).oneShot);
    golden.push(score.goldenScore);
    deltas.push(score.deltas);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await backend.dispose();
  return { seconds, maxRssMB: process.resourceUsage().maxRSS / 1024, golden, deltas };
}

interface HeldoutCheck { positive: number; records: number; meanDelta: number; seconds: number }

/**
 * Child process: the demo model's in-context check (test/unit/demo-model.test.ts) with any model: each of the
 * 100 held-out records is given as its own one-shot candidate, and counts when its own response becomes more likely.
 */
async function runHeldout(folder: string): Promise<HeldoutCheck> {
  const records = readDataset(join(models.W1!, 'heldout-check.json')).records;
  const backend = await LocalBackend.open(folder);
  const started = process.hrtime.bigint();
  const prepared = await backend.prepareAnchors(records, DEFAULT_OPTIONS);
  let positive = 0;
  let total = 0;
  for (let i = 0; i < records.length; i++) {
    const delta = (await backend.oneShot(records[i]!, prepared, [i])).oneShot[0]! - prepared.zeroShot[i]!;
    if (delta > 0) positive++;
    total += delta;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await backend.dispose();
  return { positive, records: records.length, meanDelta: total / records.length, seconds };
}

interface ImportCost { seconds: number; maxRssMB: number; cached: boolean; folderMB: number }

/**
 * Child process: a GGUF file imported into `cacheDir`, so that the process's peak RSS is the import's; with
 * `reopen`, what a second open does before its ONNX Runtime session is created: the import's cache hit and
 * reading the model folder.
 */
function runImport(path: string, cacheDir: string, weights: WeightStorage, reopen: boolean): ImportCost {
  const started = process.hrtime.bigint();
  const { folder, cached } = importGguf(path, { cacheDir, weights });
  if (reopen) readModelFolder(folder);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const folderMB = readdirSync(folder).reduce((sum, f) => sum + statSync(join(folder, f)).size, 0) / 2 ** 20;
  return { seconds, maxRssMB: process.resourceUsage().maxRSS / 1024, cached, folderMB };
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
    const paths = argv[4] ? (argv[4].split(',') as Array<'cached' | 'naive'>) : undefined;
    process.stdout.write(JSON.stringify(await runInterleaved(argv[1]!, Number(argv[2]), argv[3]!.split(','), paths)) + '\n');
    return;
  }
  if (argv[0] === '--import') {
    process.stdout.write(JSON.stringify(runImport(argv[1]!, argv[2]!, argv[3] as WeightStorage, argv[4] === 'reopen')) + '\n');
    return;
  }
  if (argv[0] === '--golden') {
    process.stdout.write(JSON.stringify(await runGolden(argv[1]!)) + '\n');
    return;
  }
  if (argv[0] === '--heldout') {
    process.stdout.write(JSON.stringify(await runHeldout(argv[1]!)) + '\n');
    return;
  }
  if (argv[0] === '--open-shard-table') {
    process.stdout.write(JSON.stringify(await openShardTable(argv[1]!)) + '\n');
    return;
  }
  if (argv[0] === '--score-shard-tail') {
    process.stdout.write(JSON.stringify(await scoreShardTail(argv[1]!, argv[2]!)) + '\n');
    return;
  }
  if (argv[0] === '--child' || argv[0] === '--profiled') {
    const [, name, variant, count, threshold, order] = argv;
    const result = await runCached(name!, variant!, Number(count), threshold ? Number(threshold) : undefined, argv[0] === '--profiled', order === 'ordered');
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
  // W6: the same early stop with the anchors ordered to stop sooner (what score --min-score runs), against the fixed
  // order above (anchors in their own order, 16 at a time, as before the ordering) and against no early stop.
  if (only.includes('W1') || only.includes('W6')) {
    const t = 0.85;
    const fixed = early[String(t)] as { passes: number; passesTotal: number; seconds: number } | undefined
      ?? (({ passes, passesTotal, seconds }) => ({ passes: passes!, passesTotal: passesTotal!, seconds }))(child(['W1', 'fp32', String(sizes.W1!.candidates), String(t)]));
    const r = child(['W1', 'fp32', String(sizes.W1!.candidates), String(t), 'ordered']);
    early.ordered = {
      threshold: t, passes: r.passes, passesTotal: r.passesTotal, seconds: r.seconds, fixedOrderPasses: fixed.passes, fixedOrderSeconds: fixed.seconds,
      passesVsFixedOrder: r.passes! / fixed.passes, passesVsNoEarlyStop: r.passes! / r.passesTotal!, secondsVsFixedOrder: r.seconds / fixed.seconds,
    };
    console.log(`W6 early stop on W1 at t = ${t}, anchors ordered: ${r.passes} one-shot passes, ${fmt(r.passes! / fixed.passes, 2)}x the fixed order's ${fixed.passes}`
      + ` and ${fmt(r.passes! / r.passesTotal!, 2)}x no early stop's ${r.passesTotal}; ${fmt(r.seconds, 1)} s, ${fmt(r.seconds / fixed.seconds, 2)}x the fixed order's time`);
  }
  report.earlyStop = early;
  if (only.includes('W3')) (report.workloads as Record<string, unknown>).W3 = await benchW3();
  if (only.includes('Q05')) (report.workloads as Record<string, unknown>).Q05 = benchQ05();
  if (only.includes('W4')) (report.workloads as Record<string, unknown>).W4 = await benchW4();
  if (only.includes('W5')) (report.workloads as Record<string, unknown>).W5 = await benchW5();
  if (argv[0] !== '--only' || only.includes('F1')) report.formats = await benchFormats(__filename);
  if (argv[0] !== '--only' || only.includes('signals')) signalSections(report);
  if (argv[0] !== '--only' || only.includes('run-start')) runStartSection(report);
  writeFileSync(join(outDir, 'bench.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${join(outDir, 'bench.json')}`);
}

/**
 * W5: what a record costs where it is scored, in token positions computed: the local engine's cached path runs the
 * candidate once and each anchor after it (L_c + m x L_a by construction); SGLang reads its prefix cache up to each
 * item's logprob_start_len (the stand-in counts prompt tokens minus cached tokens, as meta_info says); vLLM reads no
 * cache for prompt log-probabilities (every prompt token). Each figure leaves out the signals' pass over the output
 * alone (L_o, the same everywhere) and the anchors scored alone once. Served runs keep 4 records in flight (the CLI's
 * default); the stand-ins run in this process, so wall times are reported, not judged.
 */
async function benchW5(): Promise<Record<string, unknown>> {
  const name = 'W5';
  const { candidates: count, anchors: m } = sizes[name]!;
  const { candidates, anchors } = workload(name);
  const demo = models.W1!;
  const local = await LocalBackend.open(demo, { path: 'cached' });
  const anchorIds = anchors.map((a) => local.anchorTokens(a, options.maxAnchorTokens));
  const scoredAnchors = anchorIds.filter((a) => a.tokens.length > a.responseFrom).map((a) => a.tokens.length);
  const longest = Math.max(...anchorIds.map((a) => a.tokens.length));
  const lc = candidates.map((c) => prefixLength(local, c, longest));
  const lo = candidates.map((c) => local.tokenizer.encode(c.output, true).length).map((n) => (n > 1 ? n : 0));
  const sumLa = scoredAnchors.reduce((a, n) => a + n, 0);
  const ideal = lc.reduce((a, n) => a + n + sumLa, 0) / count;
  const meanLc = lc.reduce((a, n) => a + n, 0) / count;
  const meanLa = sumLa / scoredAnchors.length;
  const outputAlone = lo.reduce((a, n) => a + n, 0);
  const mScored = scoredAnchors.length;

  const deltas: Record<string, number[][]> = {};
  const timed = async (label: string, model: string, settings: Parameters<typeof openBackend>[1] = {}): Promise<number> => {
    const backend = label === 'local' ? local : await openBackend(model, { ...settings, timeoutMs: 600_000 });
    const prepared = await backend.prepareAnchors(anchors, options);
    const scores: CandidateScore[] = [];
    const started = process.hrtime.bigint();
    await scoreRecords(backend, prepared, candidates, (score) => scores.push(score), undefined, undefined, label === 'local' ? 1 : 4);
    deltas[label] = scores.map((s) => s.deltas);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (backend !== local) await backend.dispose();
    return seconds;
  };
  /** Positions an SGLang worker computed for the records' passes: every request after `from`, less the output-alone items. */
  const sglangPositions = (served: ServedItem[][]): number => served.flat().reduce((a, i) => a + i.tokens - i.cached, 0) - outputAlone;
  const rows: Record<string, { positions: number; seconds: number; note: string }> = {};

  rows.local = { positions: ideal, seconds: await timed('local', demo), note: 'the cached path: prefix once, then each anchor (by construction)' };

  const sglang = await FakeSglang.start(demo, { servedModel: 'demo' });
  try {
    const seconds = await timed('sglang', `sglang+${sglang.url}`);
    rows.sglang = { positions: sglangPositions(sglang.served.slice(1)) / count, seconds, note: 'one server, native /generate' };
  } finally {
    await sglang.close();
  }

  const workers = await Promise.all([FakeSglang.start(demo, { servedModel: 'demo' }), FakeSglang.start(demo, { servedModel: 'demo' })]);
  try {
    const gateway = await SglangGateway.start(workers.map((w) => w.url));
    try {
      const seconds = await timed('gateway', `sglang+${gateway.url}`);
      // The anchors alone went to one worker under the key "anchors": left out like the direct server's first request.
      const served = workers.flatMap((w) => w.served.filter((_, k) => w.servedKeys[k] !== 'anchors'));
      rows.gateway = { positions: sglangPositions(served) / count, seconds, note: 'sglang-router (manual policy) in front of 2 workers, routed by the candidate\'s id' };
    } finally {
      await gateway.close();
    }
  } catch (err) {
    console.log(`\nW5: the SGLang gateway was not run: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }

  const vllm = await FakeVllm.start(demo, { servedModel: 'demo' });
  try {
    const seconds = await timed('vllm', vllm.url);
    // Every prompt token is computed: the requests after the anchors alone (the first ceil(m / batch size)), less the outputs alone.
    const first = Math.ceil(mScored / options.batchSize);
    const sent = vllm.bodies.slice(first).reduce((a, b) => a + (b.prompt as number[][]).reduce((n, p) => n + p.length, 0), 0);
    rows.vllm = { positions: (sent - outputAlone) / count, seconds, note: 'OpenAI /v1/completions with echo: no prefix cache for prompt log-probabilities' };
  } finally {
    await vllm.close();
  }

  const agreement = Object.fromEntries(Object.entries(deltas).filter(([k]) => k !== 'local').map(([k, d]) => [k, maxAbsDiff(d.map((r) => r.filter((x) => !Number.isNaN(x))), deltas.local!.map((r) => r.filter((x) => !Number.isNaN(x))))]));
  const vllmModel = meanLc + mScored * (meanLc + meanLa);
  console.log(`\nW5: ${count} candidates x ${m} anchors (${mScored} with a response token), the demo model; L_c ${fmt(meanLc, 1)}, L_a ${fmt(meanLa, 1)} tokens (means);`
    + ` ideal L_c + m x L_a = ${fmt(ideal, 0)} token positions per record; vLLM's model L_c + m x (L_c + L_a) = ${fmt(vllmModel, 0)}`);
  console.log('backend   positions/record  of ideal   seconds  records/s  |delta - local|');
  for (const [label, r] of Object.entries(rows)) {
    console.log(`${label.padEnd(9)} ${fmt(r.positions, 0).padStart(16)} ${fmt((100 * r.positions) / ideal, 1).padStart(8)}% ${fmt(r.seconds, 1).padStart(9)} ${fmt(count / r.seconds, 2).padStart(10)}  ${label === 'local' ? '-' : agreement[label]!.toExponential(1)}   ${r.note}`);
  }
  console.log('(positions: the prefix pass and the anchors\' passes per record, without the output-alone pass of the signals; the stand-ins count prompt tokens minus cached tokens;'
    + ' SGLang target: within 5% of ideal; served runs keep 4 records in flight, stand-ins in this process: wall times not judged)');
  await local.dispose();
  return { candidates: count, anchors: m, scoredAnchors: mScored, meanCandidateTokens: meanLc, meanAnchorTokens: meanLa, idealPositions: ideal, vllmModelPositions: vllmModel, backends: rows, maxAbsDeltaDifference: agreement };
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

/**
 * W4: the real SmolLM2-135M-Instruct weights from a GGUF file. The import's cost comes first (before this run's
 * own imports are reused), then the speed of the weights as stored against float32, then the agreement of golden
 * scores between the stored, float32 and dynamic int8 weights, with two checks of what the real model does.
 */
async function benchW4(): Promise<Record<string, unknown>> {
  const started = process.hrtime.bigint();
  console.log(`\nW4: SmolLM2-135M-Instruct, the real weights: ${basename(SMOLLM2_GGUF)} (${fmt(statSync(SMOLLM2_GGUF).size / 2 ** 20, 0)} MB; Q4_1, its tied embedding Q8_0)`);
  const imports = w4Imports();
  for (const v of [...W4_VARIANTS, ...W4_AGREEMENT_VARIANTS]) w4Folder(v); // made once, then reused: not part of any figure
  const speed = await w4Speed();
  const agreement = await w4Agreement();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`(W4 took ${fmt(seconds / 60, 1)} min)`);
  return { ...speed, import: imports, ...agreement, seconds };
}

const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');

/**
 * W4's import cost, each import in a process of its own (its peak RSS is the import's) into a fresh cache folder:
 * the SmolLM2 GGUF as stored and as float32, a second open of it (the import's cache hit and the model folder read,
 * all that happens before the ONNX Runtime session is created), and the Qwen2.5-0.5B-shaped file. The GGUF files
 * are in the page cache, so the times are the importer's, not the disk's.
 */
function w4Imports(): Record<string, unknown> {
  const fresh = join(root, '.cache', 'bench', 'w4-import');
  const cold = (path: string, weights: WeightStorage): ImportCost => {
    rmSync(fresh, { recursive: true, force: true });
    return child<ImportCost>([path, fresh, weights], '--import');
  };
  const stored = cold(SMOLLM2_GGUF, 'stored');
  const reopen = child<ImportCost>([SMOLLM2_GGUF, fresh, 'stored', 'reopen'], '--import');
  if (!reopen.cached) throw new Error('the second open of the SmolLM2 GGUF imported it again');
  const float32 = cold(SMOLLM2_GGUF, 'float32');
  const qwen = cold(QWEN05_GGUF, 'stored');
  rmSync(fresh, { recursive: true, force: true });
  const line = (what: string, r: ImportCost): string => `  ${what.padEnd(58)} ${fmt(r.seconds, 1).padStart(5)} s, peak RSS ${fmt(r.maxRssMB, 0).padStart(5)} MB, folder ${fmt(r.folderMB, 0).padStart(5)} MB`;
  console.log('import (a process and a fresh cache folder each; the file in the page cache):');
  console.log(`${line('SmolLM2-135M Q4_1, stored (MatMulNBits)', stored)}   target < 15 s: ${met(stored.seconds < 15)}`);
  console.log(line('SmolLM2-135M Q4_1, --variant fp32 (dequantized)', float32));
  console.log(`  ${'SmolLM2-135M, second open (importGguf + readModelFolder)'.padEnd(58)} ${fmt(1000 * reopen.seconds, 0).padStart(5)} ms   target < 1 s: ${met(reopen.seconds < 1)}`);
  console.log(`${line(`Qwen2.5-0.5B shape, Q4_K_M types (${fmt(statSync(QWEN05_GGUF).size / 2 ** 20, 0)} MB), stored`, qwen)}   target peak RSS < 4096 MB: ${met(qwen.maxRssMB < 4096)}`);
  return {
    smollm2Stored: stored, smollm2Float32: float32, smollm2SecondOpenSeconds: reopen.seconds, qwen05Stored: qwen,
    targets: { coldImportUnder15s: stored.seconds < 15, secondOpenUnder1s: reopen.seconds < 1, qwen05RssUnder4GB: qwen.maxRssMB < 4096 },
  };
}

/**
 * W4's speed: the weights as stored (MatMulNBits), dequantized to float32, and stored with accuracy_level 4. One
 * process interleaves the three variants' cached paths on the same candidates (pairs/s, the ratios, how far the
 * deltas move from stored's); stored and float32 also run in a process of their own each (peak RSS, operator profile).
 */
async function w4Speed(): Promise<Record<string, unknown>> {
  const name = 'W4';
  const { candidates, anchors } = sizes[name]!;
  const matmul = await matmulGflops(shapeOf(w4Folder('stored')).width);
  const interleaved = child<Interleaved>([name, String(candidates), W4_VARIANTS.join(','), 'cached'], '--interleaved');
  const own: Record<string, PathResult> = Object.fromEntries(['stored', 'fp32'].map((v) => [v, child([name, v, String(candidates)], '--profiled')]));
  const stored = interleaved.stored!.cached;
  const fp32 = interleaved.fp32!.cached;
  const rows: Record<string, unknown> = {};
  console.log(`speed, ${candidates} candidates x ${anchors} anchors, the cached path:`);
  console.log('variant                    pairs/s  tokens/s  GFLOP/s  matmul share  vs fp32    peak RSS  vs fp32    RSS open  vs fp32  max|Δdelta| from stored');
  console.log('                                                                                  (MB)                 (MB)');
  const ofFp32 = (x: number | undefined, fp32x: number): string => (x === undefined ? `${'-'.padStart(11)} ${'-'.padStart(8)}` : `${fmt(x, 0).padStart(11)} ${fmt(x / fp32x, 2).padStart(7)}x`);
  for (const v of W4_VARIANTS) {
    const r = interleaved[v]!.cached;
    const rss = own[v]?.maxRssMB;
    const openRss = own[v]?.sessionRssMB;
    const fromStored = v === 'stored' ? undefined : maxAbsDiff(deltasOf(r), deltasOf(stored));
    rows[v] = {
      pairsPerSecond: rate(r), tokensPerSecond: r.tokens / r.seconds, gflops: r.gflop / r.seconds, matmulShare: r.gflop / r.seconds / matmul,
      speedOverFp32: rate(r) / rate(fp32), peakRssMB: rss, rssOverFp32: rss !== undefined ? rss / own.fp32!.maxRssMB : undefined,
      sessionRssMB: openRss, maxAbsDeltaDiffFromStoredNats: fromStored, profile: own[v]?.profile,
    };
    console.log(`${w4Label(v).padEnd(25)} ${fmt(rate(r), 2).padStart(8)} ${fmt(r.tokens / r.seconds, 0).padStart(9)} ${fmt(r.gflop / r.seconds, 1).padStart(8)} ${fmt(100 * r.gflop / r.seconds / matmul, 0).padStart(12)}%`
      + ` ${fmt(rate(r) / rate(fp32), 2).padStart(7)}x ${ofFp32(rss, own.fp32!.maxRssMB)} ${ofFp32(openRss, own.fp32!.sessionRssMB!)}`
      + `  ${fromStored !== undefined ? fromStored.toExponential(1).padStart(9) : '        -'}`);
  }
  const speedRatio = rate(stored) / rate(fp32);
  const rssRatio = own.stored!.maxRssMB / own.fp32!.maxRssMB;
  const acc4 = interleaved.acc4!.cached;
  console.log(`targets: stored >= 1.00x fp32's pairs/s: ${fmt(speedRatio, 2)}x, ${met(speedRatio >= 1)}; stored peak RSS <= 0.50x fp32's: ${fmt(rssRatio, 2)}x, ${met(rssRatio <= 0.5)}`);
  console.log(`accuracy_level 4 (MatMulNBits with int8 activations): ${fmt(rate(acc4) / rate(stored), 2)}x stored's pairs/s, deltas up to ${maxAbsDiff(deltasOf(acc4), deltasOf(stored)).toExponential(1)} nats from stored's`);
  console.log(`(pairs/s to vs fp32, max|Δdelta|: the three variants' cached paths interleaved candidate by candidate in one process; peak RSS: a full run in a process`
    + ` of its own; RSS open: the same process once its session is created, before any pass (the weights as held, without the passes' buffers);`
    + ` matmul share: GFLOP/s (the dense model's FLOPs) / ONNX Runtime's MatMul [2048 x 576] x [576 x 2304] with constant weights, ${fmt(matmul, 1)} GFLOP/s here;`
    + ` max|Δdelta|: the largest change of a (candidate, anchor) delta, nats)`);
  for (const v of ['stored', 'fp32']) {
    const p = own[v]!.profile!;
    console.log(`profile ${v.padEnd(6)} ${fmt(p.msPerPair, 1).padStart(6)} ms of operator time per pair: ${p.top.map((t) => `${t.op} ${fmt(100 * t.share, 0)}%`).join(', ')}`);
  }
  return {
    candidates, anchors, matmulGflops: matmul, variants: rows,
    targets: { storedOverFp32Speed: speedRatio, storedSpeedMet: speedRatio >= 1, storedOverFp32Rss: rssRatio, storedRssMet: rssRatio <= 0.5 },
  };
}

/**
 * W4 on real weights: golden scores of the same records (AGREEMENT) from the weights as stored, float32 and
 * dynamic int8, compared pair by pair; the demo model's in-context check with the GGUF; and `nuggets agree`
 * (the command line, as a user runs it) demo vs the GGUF on the same records.
 */
async function w4Agreement(): Promise<Record<string, unknown>> {
  const lengths = writeAgreementRecords();
  const runs: Record<string, GoldenRun> = Object.fromEntries(W4_AGREEMENT_VARIANTS.map((v) => [v, child<GoldenRun>([v], '--golden')]));
  const { candidates, anchors, anchorTokens, queryTokens } = AGREEMENT;
  console.log(`\nreal-weight agreement: ${candidates} candidates x ${anchors} k-means anchors, SHORTENED to fit the bench's time: anchors from the pool's records whose query`
    + ` is at most ${queryTokens} tokens, each response cut at a word to fit ${anchorTokens} tokens: ${fmt(lengths.meanAnchorTokens, 0)} tokens on average`
    + ` (the pool's ${anchors} k-means anchors at full length, cut at ${DEFAULT_OPTIONS.maxAnchorTokens}: ${fmt(lengths.fullLengthMeanAnchorTokens, 0)})`);
  const meanGolden = (v: string): number => runs[v]!.golden.reduce((sum, g) => sum + g, 0) / runs[v]!.golden.length;
  console.log(W4_AGREEMENT_VARIANTS.map((v) => `${v}: mean golden score ${fmt(meanGolden(v), 3)}, scored in ${fmt(runs[v]!.seconds, 0)} s (peak RSS ${fmt(runs[v]!.maxRssMB, 0)} MB)`).join('; '));
  console.log('pair             equal golden  Spearman  max|Δdelta|  mean|Δdelta|');
  const pairs: Record<string, unknown> = {};
  for (const [a, b] of [['stored', 'fp32'], ['int8', 'fp32'], ['stored', 'int8']] as const) {
    const x = runs[a]!;
    const y = runs[b]!;
    const equal = x.golden.filter((g, i) => g === y.golden[i]).length / x.golden.length;
    const rho = spearman(x.golden, y.golden);
    const differences = x.deltas.flatMap((row, c) => row.map((d, k) => Math.abs(d - y.deltas[c]![k]!)));
    const most = Math.max(...differences);
    const mean = differences.reduce((sum, d) => sum + d, 0) / differences.length;
    pairs[`${a} vs ${b}`] = { equalGoldenShare: equal, goldenSpearman: rho, maxAbsDeltaDiffNats: most, meanAbsDeltaDiffNats: mean };
    console.log(`${`${a} vs ${b}`.padEnd(16)} ${fmt(100 * equal, 0).padStart(11)}% ${rho === null ? '        —' : fmt(rho, 3).padStart(9)} ${most.toExponential(1).padStart(12)} ${mean.toExponential(1).padStart(13)}`);
  }
  console.log('(equal golden: share of records with exactly the same golden score; Spearman: of the golden scores; |Δdelta|: over every (candidate, anchor) pair, nats)');

  const heldout = { smollm2: child<HeldoutCheck>([w4Folder('stored')], '--heldout'), demo: child<HeldoutCheck>([models.W1!], '--heldout') };
  console.log(`\nin-context check (${join('models', 'demo', 'heldout-check.json')}: each record its own one-shot candidate; does its own response become more likely?):`
    + ` SmolLM2 GGUF ${heldout.smollm2.positive}/${heldout.smollm2.records} (mean delta ${fmt(heldout.smollm2.meanDelta, 2)} nats, ${fmt(heldout.smollm2.seconds, 0)} s),`
    + ` demo model ${heldout.demo.positive}/${heldout.demo.records} (mean delta ${fmt(heldout.demo.meanDelta, 2)} nats)`);

  const started = process.hrtime.bigint();
  const agreeArgs = ['agree', AGREEMENT_FILES.records, '--anchors', AGREEMENT_FILES.anchors, '--model', 'demo', '--model', SMOLLM2_GGUF];
  // NUGGETS_CACHE: the GGUF's import is W4's, already made.
  const text = execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), ...agreeArgs], { encoding: 'utf8', env: { ...process.env, NUGGETS_CACHE: W4_CACHE }, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  const agreeSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const figure = (pattern: RegExp): number | null => {
    const found = pattern.exec(text)?.[1];
    return found === undefined || found === '—' ? null : Number(found);
  };
  console.log(`\nnuggets ${agreeArgs.map((a) => (a.startsWith('/') ? relative(root, a) : a)).join(' ')} (${fmt(agreeSeconds, 0)} s):`);
  console.log(text.split('\n').map((l) => `  ${l}`).join('\n'));
  const agree = {
    text, seconds: agreeSeconds, goldenSpearman: figure(/Spearman, golden score:\s+(\S+)/), top10OverlapPercent: figure(/top-10% overlap:\s+(\d+)%/),
    decisionAgreementPercent: figure(/decisions:\s+([\d.]+)% agree/),
  };
  return {
    agreement: {
      candidates, anchors, anchorTokens, queryTokens, ...lengths, pairs,
      variants: Object.fromEntries(W4_AGREEMENT_VARIANTS.map((v) => [v, { meanGolden: meanGolden(v), seconds: runs[v]!.seconds, peakRssMB: runs[v]!.maxRssMB }])),
    },
    heldoutCheck: heldout, agree,
  };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
