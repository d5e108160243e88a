/**
 * A causal language model behind ONNX Runtime. Inputs and outputs are discovered from the session
 * (Optimum names: input_ids, attention_mask, position_ids, past_key_values.{i}.key/value in; logits,
 * present.{i}.key/value out), so graphs exported by others work without assumptions about layer
 * count or head shapes. One `forward` serves every scoring path: it takes rows of tokens, an optional
 * key/value cache of a shared prefix, and the spans whose tokens' log-probabilities are wanted.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { NuggetsError } from '../io/errors';
import { FP16_NOT_SCORED } from './folder';
import { FINAL_HIDDEN_STATE } from './hidden-state';
import { TARGET_IDS, TARGET_LOGPROBS } from './logprob-head';

export interface CausalLMShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  vocabularySize: number | undefined;
  /** Whether the graph takes past_key_values (otherwise every pass is a full sequence). */
  acceptsPast: boolean;
}

/** Key/value tensors of a prefix, batch 1, as the graph returned them. */
export interface PrefixCache {
  length: number;
  tensors: ort.Tensor[];
}

export interface ForwardRow {
  tokens: number[];
  /** Positions in `tokens` whose log-probability (given everything before) is wanted: [from, to). from >= 1. */
  targetFrom: number;
  targetTo: number;
}

/** What one pass over a candidate prefix alone yields for the record's signals (prefixPass). */
export interface PrefixPass {
  /** log p(tokens[t] | tokens[..t]) for t in the requested span. */
  logprobs: Float64Array;
  /** Final hidden state per position, [tokens, size], when the graph returns it (hidden-state.ts). */
  hidden: { data: Float32Array; size: number } | undefined;
  /** The prefix's key/values, when the graph takes a past. */
  cache: PrefixCache | undefined;
}

export interface SessionSettings {
  /** ONNX Runtime intra-op threads; 0 or absent: ONNX Runtime's default (one per core). */
  threads?: number;
  /** Record ONNX Runtime's per-operator timings into a JSON file whose path starts with this prefix, written on dispose (the benchmark's profiles). */
  profileFilePrefix?: string;
}

/** What ONNX Runtime loads, and the user's file it stands for. */
export interface GraphSource {
  /** The graph file to load (the model's own, or a copy with the log-probability head in the cache). */
  path: string;
  /** The model's own graph file: named in every message. */
  origin: string;
  /** For a graph whose weights are in external data files: the folder that holds them. */
  weightsFolder?: string;
}

/** Encoder inputs of sequence-to-sequence exports (T5, BART, Whisper decoders). */
const ENCODER_DECODER_INPUTS = ['decoder_input_ids', 'encoder_hidden_states', 'encoder_outputs', 'encoder_attention_mask'];

export class OnnxCausalLM {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly shape: CausalLMShape,
    readonly contextLength: number,
    private readonly pastNames: string[],
    private readonly presentNames: string[],
    private readonly feedsPositions: boolean,
    private readonly feedsMask: boolean,
    private readonly feedsCacheBranch: boolean,
    private readonly profiling: boolean,
    /** The graph computes target log-probabilities itself (logprob-head.ts); no logits reach JavaScript. */
    readonly hasLogprobHead: boolean,
  ) {}

  static async load(graph: string | GraphSource, config: Record<string, unknown>, contextLength: number, settings: SessionSettings = {}): Promise<OnnxCausalLM> {
    const source: GraphSource = typeof graph === 'string' ? { path: graph, origin: graph } : graph;
    const onnxPath = source.origin;
    let session: ort.InferenceSession;
    try {
      const options: ort.InferenceSession.SessionOptions = {
        graphOptimizationLevel: 'all',
        ...(settings.threads ? { intraOpNumThreads: settings.threads } : {}),
        ...(settings.profileFilePrefix ? { enableProfiling: true, profileFilePrefix: settings.profileFilePrefix } : {}),
      };
      session = source.weightsFolder
        // A copy of a graph with external weights: loaded from its bytes, its weights found where the model keeps them.
        ? await ort.InferenceSession.create(readFileSync(source.path), { ...options, extra: { 'session.model_external_initializers_file_folder_path': source.weightsFolder } })
        : await ort.InferenceSession.create(source.path, options);
    } catch (err) {
      throw loadError(onnxPath, (err as Error).message);
    }
    const inputs = new Set(session.inputNames);
    const outputs = new Set(session.outputNames);
    const has = `it has inputs ${session.inputNames.join(', ')}; outputs ${session.outputNames.join(', ')}`;
    const exportHint = 'Nuggets scores with decoder-only language models: choose one exported for text generation (Optimum: --task text-generation-with-past), as the hub\'s onnx-community repositories are.';
    const refuse = (why: string): NuggetsError => new NuggetsError(`${onnxPath} is not a causal language model graph: ${why} (${has}).`, exportHint);
    if (ENCODER_DECODER_INPUTS.some((n) => inputs.has(n))) throw refuse('it is an encoder-decoder (sequence-to-sequence) graph');
    if (!outputs.has('logits') && !outputs.has(TARGET_LOGPROBS)) {
      throw refuse(inputs.has('token_type_ids') ? 'it is an encoder-only graph (BERT-like), with no "logits" output' : 'it has no "logits" output');
    }
    if (!inputs.has('input_ids')) throw refuse('it has no "input_ids" input');
    const logitsMeta = metadataOf(session, 'logits');
    if (logitsMeta && logitsMeta.type !== 'float32') {
      throw new NuggetsError(`${onnxPath}: logits are ${logitsMeta.type}; this engine reads float32 logits.`, FP16_NOT_SCORED);
    }
    const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
    const layers = pastNames.length / 2;
    const presentNames: string[] = [];
    for (let i = 0; i < layers; i++) {
      for (const kv of ['key', 'value']) {
        if (!inputs.has(`past_key_values.${i}.${kv}`) || !outputs.has(`present.${i}.${kv}`)) {
          throw new NuggetsError(`${onnxPath}: past key/value inputs and present outputs do not pair up at layer ${i} (${kv}).`);
        }
        presentNames.push(`present.${i}.${kv}`);
      }
    }
    const hasLogprobHead = inputs.has(TARGET_IDS) && outputs.has(TARGET_LOGPROBS);
    const understood = new Set(['input_ids', 'attention_mask', 'position_ids', 'use_cache_branch', TARGET_IDS, ...pastNames]);
    const unknown = session.inputNames.filter((n) => !understood.has(n));
    if (unknown.length > 0) {
      throw new NuggetsError(`${onnxPath}: inputs ${unknown.join(', ')} are not understood by this engine (expected Optimum decoder inputs).`);
    }
    const pastMeta = metadataOf(session, 'past_key_values.0.key');
    if (pastMeta && pastMeta.type !== 'float32') {
      throw new NuggetsError(`${onnxPath}: past key/values are ${pastMeta.type}; this engine runs float32 key/values.`, FP16_NOT_SCORED);
    }
    const dims = pastMeta?.shape ?? [];
    const numeric = (d: unknown): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);
    const heads = numeric(dims[1]) ?? numberFrom(config, ['num_key_value_heads', 'n_head', 'num_attention_heads']);
    const hidden = numberFrom(config, ['n_embd', 'hidden_size', 'd_model']);
    const attentionHeads = numberFrom(config, ['n_head', 'num_attention_heads']);
    const headDim = numeric(dims[3]) ?? numberFrom(config, ['head_dim']) ?? (hidden && attentionHeads ? hidden / attentionHeads : undefined);
    if (layers > 0 && (!heads || !headDim)) {
      throw new NuggetsError(
        `${onnxPath}: cannot tell the key/value head count and size from the graph or the model's config.json (num_key_value_heads, num_attention_heads, hidden_size or head_dim).`,
        'Use the config.json published with the model.',
      );
    }
    const logitsShape = metadataOf(session, 'logits')?.shape ?? [];
    const configVocabulary = numberFrom(config, ['vocab_size']);
    const shape: CausalLMShape = {
      layers,
      kvHeads: heads ?? 0,
      headDim: headDim ?? 0,
      vocabularySize: numeric(logitsShape[2]) ?? configVocabulary,
      acceptsPast: layers > 0,
    };
    return new OnnxCausalLM(session, shape, contextLength, pastNames, presentNames,
      inputs.has('position_ids'), inputs.has('attention_mask'), inputs.has('use_cache_branch'), settings.profileFilePrefix !== undefined, hasLogprobHead);
  }

  /** Runs `tokens` once and keeps their key/values, to be shared by every row of later `forward` calls. */
  async prefill(tokens: number[]): Promise<PrefixCache> {
    if (!this.shape.acceptsPast) throw new Error('prefill needs a graph with past key/value inputs');
    const tensors = await this.fetch(this.feeds([tokens], undefined, tokens.length), this.presentNames);
    return { length: tokens.length, tensors };
  }

  /**
   * One pass over a candidate prefix alone, for its signals as well as its key/values: the
   * log-probabilities of tokens [targetFrom, targetTo), and the final hidden states when the graph
   * returns them. The outputs are read from the pass the prefix needs anyway.
   */
  async prefixPass(tokens: number[], targetFrom: number, targetTo: number): Promise<PrefixPass> {
    if (targetFrom < 1 && targetTo > targetFrom) throw new Error('a target needs at least one token before it');
    const hasHidden = this.session.outputNames.includes(FINAL_HIDDEN_STATE);
    const head = this.hasLogprobHead ? TARGET_LOGPROBS : 'logits';
    // onnxruntime-node returns the fetched values in the graph's output order, whatever order they were asked in.
    const names = this.session.outputNames.filter((n) => n === head || n === FINAL_HIDDEN_STATE || this.presentNames.includes(n));
    const values = await this.fetch(this.feeds([tokens], undefined, tokens.length), names);
    const byName = new Map(names.map((n, i) => [n, values[i]!]));
    const scores = byName.get(head);
    const hidden = hasHidden ? byName.get(FINAL_HIDDEN_STATE) : undefined;
    const presents = this.presentNames.map((n) => byName.get(n)!);
    const data = scores!.data as Float32Array;
    const vocab = scores!.dims[2]!;
    const logprobs = Float64Array.from({ length: Math.max(0, targetTo - targetFrom) }, (_, k) => {
      const t = targetFrom + k;
      return this.hasLogprobHead ? data[t - 1]! : logSoftmaxAt(data, (t - 1) * vocab, vocab, tokens[t]!);
    });
    return {
      logprobs,
      hidden: hidden ? { data: hidden.data as Float32Array, size: hidden.dims[2]! } : undefined,
      cache: this.presentNames.length > 0 ? { length: tokens.length, tensors: presents } : undefined,
    };
  }

  /**
   * Log-probabilities of each row's target tokens, every row continuing `prefix` when one is given.
   * Rows are right-padded to one length; padding is masked out of attention and never read.
   */
  async forward(rows: ForwardRow[], prefix?: PrefixCache): Promise<Float64Array[]> {
    const width = Math.max(...rows.map((r) => r.tokens.length));
    const feeds = this.feeds(rows.map((r) => r.tokens), prefix, width);
    for (const row of rows) if (row.targetFrom < 1) throw new Error('a target needs at least one token before it in its row');
    if (this.hasLogprobHead) {
      // Position j of target_logprobs holds log p(tokens[j + 1] | tokens[..j]).
      const [logprobs] = await this.fetch(feeds, [TARGET_LOGPROBS]);
      const data = logprobs!.data as Float32Array;
      return rows.map((row, b) => Float64Array.from({ length: row.targetTo - row.targetFrom }, (_, k) => data[b * width + row.targetFrom + k - 1]!));
    }
    const [logits] = await this.fetch(feeds, ['logits']);
    const vocab = logits!.dims[2]!;
    const data = logits!.data as Float32Array;
    return rows.map((row, b) => Float64Array.from({ length: row.targetTo - row.targetFrom }, (_, k) => {
      const t = row.targetFrom + k;
      return logSoftmaxAt(data, (b * width + t - 1) * vocab, vocab, row.tokens[t]!);
    }));
  }

  /**
   * Runs the graph for just the named outputs. Read by position, not by key: onnxruntime-node 1.23
   * labels the fetched values with the names of the graph's first outputs, and returns them in the
   * graph's output order (so several names must be asked in that order; see prefixPass).
   */
  private async fetch(feeds: Record<string, ort.Tensor>, names: string[]): Promise<ort.Tensor[]> {
    const values = Object.values(await this.session.run(feeds, names));
    if (values.length !== names.length) throw new Error(`asked ONNX Runtime for ${names.length} outputs, got ${values.length}`);
    return values;
  }

  async dispose(): Promise<void> {
    if (this.profiling) this.session.endProfiling();
    await this.session.release();
  }

  private feeds(rows: number[][], prefix: PrefixCache | undefined, width: number): Record<string, ort.Tensor> {
    const batch = rows.length;
    const past = prefix?.length ?? 0;
    if (past + width > this.contextLength) {
      throw new Error(`internal: ${past + width} positions exceed the model context ${this.contextLength}`);
    }
    const ids = new BigInt64Array(batch * width);
    const positions = new BigInt64Array(batch * width);
    const mask = new BigInt64Array(batch * (past + width));
    rows.forEach((tokens, b) => {
      for (let j = 0; j < width; j++) {
        const real = j < tokens.length;
        ids[b * width + j] = BigInt(real ? tokens[j]! : 0);
        positions[b * width + j] = BigInt(past + Math.min(j, tokens.length - 1));
      }
      mask.fill(1n, b * (past + width), b * (past + width) + past + tokens.length);
    });
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, [batch, width]) };
    if (this.feedsMask) feeds['attention_mask'] = new ort.Tensor('int64', mask, [batch, past + width]);
    if (this.feedsPositions) feeds['position_ids'] = new ort.Tensor('int64', positions, [batch, width]);
    if (this.feedsCacheBranch) feeds['use_cache_branch'] = new ort.Tensor('bool', [past > 0], [1]);
    if (this.hasLogprobHead) {
      const targets = new BigInt64Array(batch * width);
      rows.forEach((tokens, b) => {
        for (let j = 0; j + 1 < tokens.length; j++) targets[b * width + j] = BigInt(tokens[j + 1]!);
      });
      feeds[TARGET_IDS] = new ort.Tensor('int64', targets, [batch, width, 1]);
    }
    this.pastNames.forEach((name, i) => {
      feeds[name] = prefix ? repeatBatch(prefix.tensors[i]!, batch) : new ort.Tensor('float32', new Float32Array(0), [batch, this.shape.kvHeads, 0, this.shape.headDim]);
    });
    return feeds;
  }
}

/** ONNX Runtime's load failure as a message a user can act on. */
function loadError(onnxPath: string, message: string): NuggetsError {
  const first = message.split('\n')[0]!.replace(/\u001b\[[0-9;]*m/g, '');
  // "com.microsoft:MatMulNBits(-1) is not a registered function/op", or "Could not find an implementation for MatMulNBits(1) node ..."
  const unknown = /(?:([\w.]+):)?(\w+)\(-?\d+\) is not a registered function\/op/.exec(first) ?? /Could not find an implementation for (?:([\w.]+):)?(\w+)\(\d+\)/.exec(first);
  if (unknown) {
    const op = unknown[1] ? `${unknown[1]} ${unknown[2]}` : unknown[2]!;
    return new NuggetsError(
      `${onnxPath} uses the operator ${op}, which this ONNX Runtime (onnxruntime-node ${ort.env.versions.common}) does not have.`,
      /^MatMul\w*Bit|Bnb4/.test(unknown[2]!)
        ? 'This is a 4-bit (q4) export: choose the quantized (int8) or fp32 variant of the model, or update Nuggets to a version whose ONNX Runtime runs it.'
        : 'Choose another variant of the model (fp32 uses only standard operators), or update Nuggets to a version whose ONNX Runtime runs it.',
    );
  }
  return new NuggetsError(`ONNX Runtime could not load ${onnxPath}: ${first}`, 'The file may be truncated or not an ONNX model; download or export it again.');
}

/** The prefix's cache repeated along the batch axis (the graph concatenates past and new keys per row). */
function repeatBatch(tensor: ort.Tensor, batch: number): ort.Tensor {
  if (batch === 1) return tensor;
  const one = tensor.data as Float32Array;
  const data = new Float32Array(one.length * batch);
  for (let b = 0; b < batch; b++) data.set(one, b * one.length);
  return new ort.Tensor('float32', data, [batch, ...tensor.dims.slice(1)]);
}

function logSoftmaxAt(data: Float32Array, offset: number, vocab: number, token: number): number {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) if (data[offset + v]! > max) max = data[offset + v]!;
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(data[offset + v]! - max);
  return data[offset + token]! - max - Math.log(sum);
}

function metadataOf(session: ort.InferenceSession, name: string): { type: string; shape: ReadonlyArray<number | string> } | undefined {
  const all = [...(session.inputMetadata ?? []), ...(session.outputMetadata ?? [])] as ReadonlyArray<{ name: string; isTensor: boolean; type?: string; shape?: ReadonlyArray<number | string> }>;
  const m = all.find((x) => x.name === name);
  return m && m.isTensor ? { type: m.type ?? 'float32', shape: m.shape ?? [] } : undefined;
}

function numberFrom(config: Record<string, unknown>, keys: string[]): number | undefined {
  for (const k of keys) {
    const v = config[k];
    if (typeof v === 'number' && v > 0) return v;
  }
  return undefined;
}
