/**
 * llama.cpp's own log-probabilities against the imported ONNX graph's, on the same tokens of real records.
 * A development tool: not part of the product, of the build or of `npm test`. Run it with
 *
 *     npx esbuild tools/gguf/llama-cpp-logits.ts --bundle --platform=node --target=node20 --format=cjs \
 *       --packages=external --log-level=warning --outfile=out/llama-cpp-logits.js && node out/llama-cpp-logits.js
 *
 * (about 10 minutes on 2 busy cores with the defaults; --texts 2 --no-f32 for a quick look). Options:
 *   --gguf FILE    the model (default .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf)
 *   --cache DIR    the importer's cache root (default .cache/bench/w4, the benchmark's, so its imports are
 *                  reused); the F32 copy of the GGUF is written there too (llama-cpp/*.F32.gguf)
 *   --texts N      how many records (default 10); --threads N (default 2)
 *   --no-f32       skip llama.cpp on the F32 copy of the file (same weight values, no activation quantization)
 *   --all-configs  also llama.cpp with an F32 key/value cache and flash attention on (it equals the default:
 *                  llama.cpp casts K and V to F16 for flash attention)
 *   --acc4         also our graph with MatMulNBits accuracy_level 4 (int8 activations), made as the benchmark makes it
 *   --sim          also tools/gguf/llama-cpp-sim.py: the float64 reference with ggml's Q8_1/Q8_0 activation
 *                  quantization simulated
 *   --json FILE    every per-token value, the table and llama.cpp's log
 *
 * llama.cpp runs through node-llama-cpp's prebuilt CPU binary (a devDependency: never downloaded or built
 * here) with the weights, gpu: false. Per position it gives the whole next-token distribution:
 * `controlledEvaluate` with `generateNext.probabilities` at temperature 0 leaves the sampler chain a bare
 * greedy pick, so the addon's softmax runs over all raw logits of the vocabulary (checked: every
 * distribution has the vocabulary's size). The addon sums the exponentials in float32, one after another,
 * and so loses the tail of the vocabulary (~1e-4 of the mass): the probabilities are renormalized here in
 * float64 (otherwise every llama.cpp log-probability reads ~1e-4 nats high).
 *
 * Every text is tokenized by the importer's rebuilt tokenizer and by llama.cpp (they must agree) and scored
 * from position 1 (SmolLM2 adds no BOS). Figures: |Δ log p| per token over all scored positions, per
 * summed response span (the record's output, as an anchor's span is), and per summed 50-token window of
 * a response.
 */
import type { Token } from 'node-llama-cpp';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { readDataset } from '../../server/records/dataset';
import { OnnxCausalLM } from '../../server/model/causal-lm';
import { readGguf } from '../../server/model/gguf/file';
import { writeGraph } from '../../server/model/gguf/graph';
import { importGguf } from '../../server/model/gguf/import';
import { modelShape } from '../../server/model/gguf/shape';
import { TextTokenizer } from '../../server/model/tokenizer';
import { fullText, queryText } from '../../server/scoring/template';

const root = resolve(__dirname, '..');
const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback;
};
const flag = (name: string): boolean => args.includes(`--${name}`);

const GGUF = resolve(option('gguf', join(root, '.cache', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf')));
const CACHE = resolve(option('cache', join(root, '.cache', 'bench', 'w4')));
const TEXTS = Number(option('texts', '10'));
const THREADS = Number(option('threads', '2'));
const WINDOW = 50;

interface Text { name: string; text: string; tokens: number[]; responseFrom: number }
/** Per text, log p(tokens[t] | tokens[<t]) for t = 1 .. n-1 (at index t - 1). */
type LogProbs = number[][];

/** Records of the real datasets whose full text is 100-300 tokens with at least 50 response tokens: a mix of sources, the same on every run. */
function pickTexts(tokenize: (text: string) => number[], count: number): Text[] {
  const files = ['gsm8k-train.alpaca.json', 'gpteacher-toolformer.alpaca.json', 'gpteacher-roleplay.alpaca.json', 'alpaca-seed-tasks.jsonl'];
  const perFile = Math.ceil(count / files.length);
  const texts: Text[] = [];
  for (const file of files) {
    const records = readDataset(join(root, '..', 'shared', 'data', file)).records;
    let taken = 0;
    // every 37th record from the 100th, spread over the file
    for (let i = 100; i < records.length + 100 && taken < perFile && texts.length < count; i += 37) {
      const r = records[i % records.length]!;
      const tokens = tokenize(fullText(r));
      const query = tokenize(queryText(r));
      if (tokens.length < 100 || tokens.length > 300 || tokens.length - query.length < WINDOW) continue;
      // the query's tokens must be a prefix of the full text's (the span starts at a token boundary)
      if (query.some((t, k) => tokens[k] !== t)) continue;
      texts.push({ name: `${file}#${r.index}`, text: fullText(r), tokens, responseFrom: query.length });
      taken++;
    }
  }
  return texts;
}

interface LlamaRun { label: string; model: 'file' | 'f32'; flashAttention: boolean | 'auto'; kv: 'F16' | 'F32' }
const RUNS: LlamaRun[] = [
  { label: 'llama.cpp default (F16 KV, FA auto)', model: 'file', flashAttention: 'auto', kv: 'F16' },
  { label: 'llama.cpp F16 KV, FA off', model: 'file', flashAttention: false, kv: 'F16' },
  { label: 'llama.cpp F32 KV, FA off', model: 'file', flashAttention: false, kv: 'F32' },
  ...(flag('all-configs') ? [{ label: 'llama.cpp F32 KV, FA on', model: 'file' as const, flashAttention: true, kv: 'F32' as const }] : []),
  ...(flag('no-f32') ? [] : [
    { label: 'llama.cpp F32 weights, F32 KV, FA off', model: 'f32' as const, flashAttention: false, kv: 'F32' as const },
    { label: 'llama.cpp F32 weights, default', model: 'f32' as const, flashAttention: 'auto' as const, kv: 'F16' as const },
  ]),
];

/** The GGUF file with every tensor dequantized to F32 (tools/gguf/llama-cpp-sim.py --write-f32), made when missing. */
function f32Copy(): string {
  const path = join(CACHE, 'llama-cpp', basename(GGUF).replace(/\.gguf$/i, '.F32.gguf'));
  if (existsSync(path)) return path;
  mkdirSync(join(CACHE, 'llama-cpp'), { recursive: true });
  const run = spawnSync('python3', [join(root, 'tools', 'gguf', 'llama-cpp-sim.py'), '--write-f32', GGUF, `${path}.partial`], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`tools/gguf/llama-cpp-sim.py --write-f32 failed:\n${run.stderr || run.error?.message}`);
  renameSync(`${path}.partial`, path);
  return path;
}

async function llamaCppLogProbs(texts: Text[], log: string[]): Promise<Map<string, LogProbs>> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({
    gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, maxThreads: THREADS,
    logLevel: LlamaLogLevel.info, logger: (level, message) => { log.push(`${level}: ${message.trimEnd()}`); },
  });
  const vocabulary = (readGguf(GGUF).metadata.get('tokenizer.ggml.tokens') as string[]).length;
  const results = new Map<string, LogProbs>();
  try {
    for (const which of ['file', 'f32'] as const) {
      const runs = RUNS.filter((r) => r.model === which);
      if (runs.length === 0) continue;
      const modelPath = which === 'file' ? GGUF : f32Copy();
      log.push(`=== model: ${modelPath}`);
      const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
      try {
        // llama.cpp's tokenizer must give the ids the rebuilt tokenizer gave
        for (const text of texts) {
          const theirs = Array.from(model.tokenize(text.text, true));
          if (theirs.length !== text.tokens.length || theirs.some((t, k) => t !== text.tokens[k])) throw new Error(`${text.name}: llama.cpp tokenizes it differently`);
        }
        for (const run of runs) {
          const started = performance.now();
          log.push(`=== context: ${run.label}`);
          const context = await model.createContext({
            contextSize: 512, batchSize: 512, sequences: 1, threads: THREADS, flashAttention: run.flashAttention,
            experimentalKvCacheKeyType: run.kv, experimentalKvCacheValueType: run.kv,
          });
          try {
            const sequence = context.getSequence();
            const all: LogProbs = [];
            let renormalized = 0;
            for (const text of texts) {
              await sequence.clearHistory();
              const n = text.tokens.length;
              const input: Parameters<typeof sequence.controlledEvaluate>[0] = text.tokens.map((t, i) => (i < n - 1 ? [t as Token, { generateNext: { probabilities: true } }] : t as Token));
              const out = await sequence.controlledEvaluate(input);
              const values: number[] = [];
              for (let i = 0; i < n - 1; i++) {
                const probabilities = out[i]?.next.probabilities;
                if (!probabilities) throw new Error(`${run.label}: no probabilities at position ${i} of ${text.name}`);
                if (probabilities.size !== vocabulary) throw new Error(`${run.label}: ${probabilities.size} probabilities, not the vocabulary's ${vocabulary} (a sampler cut it)`);
                // The addon normalizes by a float32 sum of 49,152 terms, which drops the tail (terms below half
                // an ulp of the running sum): its probabilities sum to 1 + ~1e-4. Renormalized here, in float64.
                let sum = 0;
                for (const p of probabilities.values()) sum += p;
                values.push(Math.log(probabilities.get(text.tokens[i + 1]! as Token) ?? 0) - Math.log(sum));
                renormalized = Math.max(renormalized, Math.abs(Math.log(sum)));
              }
              all.push(values);
            }
            results.set(run.label, all);
            console.log(`${run.label}: ${Math.round(performance.now() - started)} ms (renormalization up to ${renormalized.toExponential(1)} nats)`);
          } finally {
            await context.dispose();
          }
        }
      } finally {
        await model.dispose();
      }
    }
  } finally {
    await llama.dispose();
  }
  return results;
}

async function onnxLogProbs(folder: string, texts: Text[]): Promise<LogProbs> {
  const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
  const lm = await OnnxCausalLM.load(join(folder, 'model.onnx'), config, 2048, { threads: THREADS });
  try {
    const all: LogProbs = [];
    for (const text of texts) {
      const [got] = await lm.forward([{ tokens: text.tokens, targetFrom: 1, targetTo: text.tokens.length }]);
      all.push(Array.from(got!));
    }
    return all;
  } finally {
    await lm.dispose();
  }
}

function python(script: string, job: unknown, extra: string[] = []): LogProbs {
  const run = spawnSync('python3', [join(root, 'tools', 'gguf', script), ...extra], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(`tools/gguf/${script} failed:\n${run.stderr || run.error?.message}`);
  return (JSON.parse(run.stdout) as { logprobs: LogProbs }).logprobs;
}

/** The stored import written again with MatMulNBits' accuracy_level 4, as tools/bench/bench.ts makes it (the same folder). */
function acc4Folder(stored: string): string {
  const folder = join(CACHE, `${basename(stored)}-accuracy-level-4`);
  if (existsSync(folder)) return folder;
  const partial = `${folder}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const file = readGguf(GGUF);
  writeGraph(file, modelShape(file), partial, 'stored', undefined, 4);
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'config.json']) copyFileSync(join(stored, name), join(partial, name));
  renameSync(partial, folder);
  return folder;
}

interface Stats { tokens: number; maxTok: number; meanTok: number; meanSigned: number; spans: number; maxSpan: number; meanSpan: number; windows: number; maxWindow: number; meanWindow: number }

/** Differences b - a over every scored position, every response span and every 50-token window of a response. */
function compare(texts: Text[], a: LogProbs, b: LogProbs): Stats {
  let tokens = 0, maxTok = 0, sumTok = 0, sumSigned = 0, spans = 0, maxSpan = 0, sumSpan = 0, windows = 0, maxWindow = 0, sumWindow = 0;
  texts.forEach((text, r) => {
    const d = a[r]!.map((v, k) => b[r]![k]! - v);
    for (const x of d) { tokens++; sumTok += Math.abs(x); sumSigned += x; maxTok = Math.max(maxTok, Math.abs(x)); }
    const response = d.slice(text.responseFrom - 1); // position t's value is at index t - 1
    const span = Math.abs(response.reduce((s, x) => s + x, 0));
    spans++; sumSpan += span; maxSpan = Math.max(maxSpan, span);
    for (let s = 0; s + WINDOW <= response.length; s += WINDOW) {
      const w = Math.abs(response.slice(s, s + WINDOW).reduce((t, x) => t + x, 0));
      windows++; sumWindow += w; maxWindow = Math.max(maxWindow, w);
    }
  });
  return { tokens, maxTok, meanTok: sumTok / tokens, meanSigned: sumSigned / tokens, spans, maxSpan, meanSpan: sumSpan / spans, windows, maxWindow, meanWindow: sumWindow / windows };
}

async function main(): Promise<void> {
  const started = performance.now();
  const { folder: stored } = importGguf(GGUF, { cacheDir: CACHE });
  const tokenizer = new TextTokenizer(JSON.parse(readFileSync(join(stored, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(stored, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>, stored);
  const texts = pickTexts((t) => tokenizer.encode(t, false), TEXTS);
  console.log(`${texts.length} texts of ${texts.map((t) => t.tokens.length).join('/')} tokens (responses ${texts.map((t) => t.tokens.length - t.responseFrom).join('/')}): ${texts.map((t) => t.name).join(', ')}`);
  console.log(`our import: ${stored}`);

  const OURS = 'ours (MatMulNBits, float32)';
  const ACC4 = 'ours, accuracy_level 4';
  const REF = 'float64 reference';
  const SIM = 'float64 + Q8 activations (sim)';
  const sources = new Map<string, LogProbs>();
  const log: string[] = [];
  const llama = await llamaCppLogProbs(texts, log);
  let t0 = performance.now();
  sources.set(OURS, await onnxLogProbs(stored, texts));
  console.log(`ours: ${Math.round(performance.now() - t0)} ms`);
  if (flag('acc4')) sources.set(ACC4, await onnxLogProbs(acc4Folder(stored), texts));
  for (const [label, values] of llama) sources.set(label, values);
  const rows = texts.map((t) => ({ tokens: t.tokens, from: 1, to: t.tokens.length }));
  t0 = performance.now();
  sources.set(REF, python('reference.py', { gguf: GGUF, rows }));
  console.log(`reference.py: ${Math.round(performance.now() - t0)} ms`);
  if (flag('sim')) {
    t0 = performance.now();
    sources.set(SIM, python('llama-cpp-sim.py', { gguf: GGUF, rows }, ['--mode', 'q8act']));
    console.log(`llama-cpp-sim.py: ${Math.round(performance.now() - t0)} ms`);
  }

  const [lDefault, lF16Off, lF32Off] = [RUNS[0]!.label, RUNS[1]!.label, RUNS[2]!.label];
  const groups: [string, [string, string][]][] = [
    ['our graph against the float64 reference', [[REF, OURS]]],
    ['llama.cpp against our graph', [...llama.keys()].map((label): [string, string] => [OURS, label])],
    ['llama.cpp against itself: F16 key/value cache and flash attention', [
      [lF32Off, lDefault], [lF32Off, lF16Off],
      ...(flag('all-configs') ? [[lF32Off, 'llama.cpp F32 KV, FA on'] as [string, string], [lDefault, 'llama.cpp F32 KV, FA on'] as [string, string]] : []),
      ...(flag('no-f32') ? [] : [['llama.cpp F32 weights, F32 KV, FA off', 'llama.cpp F32 weights, default'] as [string, string]]),
    ]],
    ...(flag('no-f32') ? [] : [['llama.cpp against itself: quantized weights (activations to Q8_1/Q8_0) vs the same weights in F32', [
      ['llama.cpp F32 weights, F32 KV, FA off', lF32Off], ['llama.cpp F32 weights, default', lDefault],
    ]] as [string, [string, string][]]]),
    ...(flag('acc4') ? [['our graph with int8 activations (MatMulNBits accuracy_level 4)', [[OURS, ACC4], [ACC4, lF32Off], [ACC4, lDefault]]] as [string, [string, string][]]] : []),
    ...(flag('sim') ? [['simulated Q8 activations (float64)', [[REF, SIM], [SIM, lF32Off], [SIM, lDefault]]] as [string, [string, string][]]] : []),
  ];
  const fmt = (x: number): string => x.toExponential(2).padStart(9);
  const responses = texts.map((t) => t.tokens.length - t.responseFrom);
  const total = compare(texts, sources.get(OURS)!, sources.get(OURS)!);
  console.log(`\n|Δ log p| in nats (b - a): per token over ${total.tokens} positions; per summed response span (${total.spans} spans of ${Math.min(...responses)}-${Math.max(...responses)} tokens); per summed ${WINDOW}-token window of a response (${total.windows} windows)`);
  console.log(`${'a'.padEnd(40)} ${'b'.padEnd(40)} ${'tok max'.padStart(9)} ${'tok mean'.padStart(9)} ${'tok bias'.padStart(9)} ${'span max'.padStart(9)} ${'span mean'.padStart(9)} ${'win max'.padStart(9)} ${'win mean'.padStart(9)}`);
  const table: Record<string, Stats> = {};
  for (const [title, pairs] of groups) {
    console.log(`-- ${title}`);
    for (const [a, b] of pairs) {
      const s = compare(texts, sources.get(a)!, sources.get(b)!);
      table[`${a} -> ${b}`] = s;
      console.log(`${a.padEnd(40)} ${b.padEnd(40)} ${fmt(s.maxTok)} ${fmt(s.meanTok)} ${fmt(s.meanSigned)} ${fmt(s.maxSpan)} ${fmt(s.meanSpan)} ${fmt(s.maxWindow)} ${fmt(s.meanWindow)}`);
    }
  }

  console.log('\nllama.cpp, as it reported itself:');
  const wanted = /AMX|REPACK|model buffer|flash_attn|Flash Attention|llama_kv_cache: size|system_info|^===/;
  const seen = new Set<string>();
  for (const line of log) {
    if (!wanted.test(line.replace(/^\w+: /, ''))) continue;
    if (seen.has(line) && !/===|flash_attn|llama_kv_cache: size/.test(line)) continue;
    seen.add(line);
    console.log(`  ${line}`);
  }
  const jsonPath = option('json', '');
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify({ texts, sources: Object.fromEntries(sources), table, log }, null, 1));
  console.log(`\ndone in ${Math.round((performance.now() - started) / 1000)} s`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
