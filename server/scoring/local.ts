/**
 * Scoring with a local ONNX model, token by token as ALGORITHM.md states it:
 * - anchors are tokenized without special tokens and cut to maxAnchorTokens; the response span runs
 *   from len(tokenize(query)) to len(tokenize(full)), clipped to the cut;
 * - the candidate prefix is tokenized with the tokenizer's special tokens, followed by the separator;
 * - the cached path runs the prefix once and scores batches of anchors against its key/values;
 *   the naive path (kept as the reference) runs one full sequence per (candidate, anchor) pair.
 * A prefix that would push an anchor past the model's context is cut from the left and the result
 * marked `truncated`; positions the model was not built for are never used.
 */
import { dirname, join } from 'node:path';
import type { Example } from '../records/dataset';
import type { ScoringPath } from '../records/score';
import { NuggetsError } from '../io/errors';
import { RequestCancelled } from '../io/http';
import { OnnxCausalLM, type ForwardRow, type PrefixCache, type SessionSettings } from '../model/causal-lm';
import { contextLengthOf, readModelFolder, type OnnxVariant } from '../model/folder';
import { defaultCacheDir } from '../io/files';
import { externalDataFiles, graphOperators, graphWithLogprobHead } from '../model/logprob-head';
import { TextTokenizer } from '../model/tokenizer';
import { meanPooledUnit } from '../signals/embedding';
import { anchorIndexById, cutPrefix, responseSpan, type CandidatePasses, type CandidatePrefix, type ModelIdentity, type OneShotResult, type PreparedAnchors, type ScoringBackend, type ScoringOptions } from './backend';
import { assistantContents, ChatRenderer, concatenated, renderAnchors, type ChatAnchor, type ChatCandidate, type TurnsScored } from './chat-render';
import { fullText, paperExample, queryText } from './template';

export type { ScoringPath };

export interface LocalModelSettings extends SessionSettings {
  variant?: OnnxVariant;
  path?: ScoringPath;
  /** Compute target log-probabilities inside the graph (default); false reads the full logits instead. */
  logprobHead?: boolean;
  /** The cache root; the graph with its log-probability head is kept in its graphs/ folder. */
  cacheDir?: string;
  /** Memory one batched pass may use; batches are made smaller to fit (default 512 MB). */
  batchMemoryMB?: number;
  /** The name scores are shown under (a hub id instead of its cache folder); default the folder's name. */
  displayName?: string;
}

/** An anchor as tokens: full(a) cut to maxAnchorTokens, and its response span [responseFrom, tokens.length). */
interface AnchorTokens {
  tokens: number[];
  responseFrom: number;
}

class LocalAnchors implements PreparedAnchors {
  readonly count: number;
  readonly responseTokens: Int32Array;
  /** The longest anchor: the prefix is cut so that it fits after any candidate. */
  readonly maxLength: number;
  constructor(
    readonly anchors: AnchorTokens[], readonly zeroShot: Float64Array, readonly options: ScoringOptions,
    /** ids(separator), put between every candidate and the anchors. */
    readonly separator: number[],
    readonly anchorById: ReadonlyMap<string, number>,
    /** Under a chat template: its renderer, and each anchor rendered alone (ALGORITHM.md, "Conversations and chat templates"). */
    readonly chat?: { renderer: ChatRenderer; anchors: ChatAnchor[] },
  ) {
    this.count = anchors.length;
    this.responseTokens = Int32Array.from(anchors, (a) => a.tokens.length - a.responseFrom);
    this.maxLength = Math.max(...anchors.map((a) => a.tokens.length));
  }
}

export class LocalBackend implements ScoringBackend {
  /** The last candidate's prefix cache: calls that score a candidate's anchors in parts run the prefix once. */
  private lastPrefix: { prepared: LocalAnchors; prefix: number[]; cache: PrefixCache } | undefined;
  /** The last candidate rendered against the anchors under a chat template: its passes and one-shot calls share it. */
  private lastChat: { prepared: LocalAnchors; candidate: Example; rendered: ChatCandidate } | undefined;
  /** Records scored naively because the chat template does not render their turns the same whatever follows. */
  private readonly naiveRecords = new Set<string>();
  private chatRecords = 0;

  private constructor(
    /** The model folder and its tokenizer_config.json, where the model's own chat template is read from. */
    readonly folder: string,
    readonly tokenizerConfig: Record<string, unknown>,
    readonly identity: ModelIdentity,
    readonly tokenizer: TextTokenizer,
    readonly lm: OnnxCausalLM,
    readonly path: ScoringPath,
    private readonly memoryBudgetBytes: number,
    /** 1 for graphs whose numbers depend on the batch (dynamic int8 quantization). */
    readonly rowsPerPass: number,
  ) {}

  static async open(folder: string, settings: LocalModelSettings = {}): Promise<LocalBackend> {
    const model = readModelFolder(folder, settings.variant);
    const contextLength = contextLengthOf(model.config);
    if (!contextLength) {
      throw new NuggetsError(
        `${join(model.path, 'config.json')} declares no context length (max_position_embeddings, or n_positions for GPT-2).`,
        'Use the config.json published with the model; the engine needs it to cut candidates that would not fit.',
      );
    }
    const tokenizer = new TextTokenizer(model.tokenizerJson, model.tokenizerConfig, join(model.path, 'tokenizer.json'));
    const headed = (settings.logprobHead ?? true) ? headedGraph(model.onnxPath, settings.cacheDir ?? defaultCacheDir(), model.fingerprint) : undefined;
    const external = externalDataFiles(model.onnxPath).length > 0;
    const lm = await OnnxCausalLM.load({
      path: headed ?? model.onnxPath, origin: model.onnxPath, ...(headed && external ? { weightsFolder: dirname(model.onnxPath) } : {}),
    }, model.config, contextLength, settings);
    const modelVocabulary = lm.shape.vocabularySize;
    if (modelVocabulary !== undefined && tokenizer.vocabularySize > modelVocabulary) {
      await lm.dispose();
      throw new NuggetsError(
        `${model.path}: the tokenizer has ${tokenizer.vocabularySize} tokens but the model's vocabulary has ${modelVocabulary}: they do not belong together.`,
        'Use the tokenizer.json that was exported with this model.',
      );
    }
    const identity = { name: settings.displayName ?? model.name, fingerprint: model.fingerprint, contextLength };
    // Dynamic quantization scales activations by the largest value in the whole input tensor, so a row's
    // numbers would depend on the rows batched with it: such graphs run one row per pass, and a record's
    // scores depend only on the record and the anchors.
    const rowsPerPass = graphOperators(model.onnxPath).has('DynamicQuantizeLinear') ? 1 : Infinity;
    return new LocalBackend(model.path, model.tokenizerConfig, identity, tokenizer, lm, settings.path ?? 'cached', (settings.batchMemoryMB ?? 512) * 2 ** 20, rowsPerPass);
  }

  async prepareAnchors(anchors: readonly Example[], options: ScoringOptions, signal?: AbortSignal): Promise<PreparedAnchors> {
    if (anchors.length === 0) throw new NuggetsError('The anchor set is empty.');
    if (options.maxAnchorTokens >= this.identity.contextLength) {
      throw new NuggetsError(`maxAnchorTokens (${options.maxAnchorTokens}) must be below the model's context length (${this.identity.contextLength}).`);
    }
    const renderer = options.chatTemplate ? new ChatRenderer(options.chatTemplate, this.tokenizer) : undefined;
    const chatAnchors = renderer ? await renderAnchors(renderer, anchors, options.maxAnchorTokens) : undefined;
    const tokenized = chatAnchors
      ? chatAnchors.map((a) => ({ tokens: a.tokens, responseFrom: a.targetFrom }))
      : anchors.map((a) => this.anchorTokens(a, options.maxAnchorTokens));
    const zeroShot = new Float64Array(tokenized.length);
    const order = tokenized.map((_, i) => i).filter((i) => spanOf(tokenized[i]!) > 0)
      .sort((a, b) => tokenized[a]!.tokens.length - tokenized[b]!.tokens.length);
    for (const batch of chunks(order, this.batchSizeFor(options.batchSize, 0, Math.max(...tokenized.map((a) => a.tokens.length))))) {
      stopIfCancelled(signal);
      const sums = await this.lm.forward(batch.map((i) => rowOf(tokenized[i]!)));
      batch.forEach((i, k) => (zeroShot[i] = sum(sums[k]!)));
    }
    const separator = options.separator ? this.tokenizer.encode(options.separator, false) : [];
    if (renderer && separator.length > 0) throw new NuggetsError('--separator applies to the paper template only: under a chat template the candidate\'s turns come before the anchor\'s as one conversation.');
    return new LocalAnchors(tokenized, zeroShot, options, separator, anchorIndexById(anchors), renderer && chatAnchors ? { renderer, anchors: chatAnchors } : undefined);
  }

  async oneShot(candidate: Example, prepared: PreparedAnchors, anchorIndices?: readonly number[], signal?: AbortSignal): Promise<OneShotResult> {
    if (!(prepared instanceof LocalAnchors)) throw new Error('anchors were prepared by another backend');
    const indices = anchorIndices ?? prepared.anchors.map((_, i) => i);
    if (prepared.chat) return this.chatOneShot(candidate, prepared, indices, signal);
    const { prefix, truncated } = this.candidatePrefix(candidate, prepared);
    const oneShot = new Float64Array(indices.length);
    // Anchors of similar length share a batch, so that little of each pass is padding.
    const wanted = indices.map((anchor, k) => ({ anchor: prepared.anchors[anchor]!, k })).filter((w) => spanOf(w.anchor) > 0)
      .sort((a, b) => a.anchor.tokens.length - b.anchor.tokens.length);
    if (this.path === 'cached' && this.lm.shape.acceptsPast) {
      const cache = await this.prefixCache(prepared, prefix);
      for (const batch of chunks(wanted, this.batchSizeFor(prepared.options.batchSize, prefix.length, prepared.maxLength))) {
        stopIfCancelled(signal);
        const sums = await this.lm.forward(batch.map((w) => rowOf(w.anchor)), cache);
        batch.forEach((w, j) => (oneShot[w.k] = sum(sums[j]!)));
      }
    } else {
      // Reference: prefix + anchor as one sequence per pair. Without a past-accepting graph, this is also the only way.
      const batchSize = this.path === 'naive' ? 1 : this.batchSizeFor(prepared.options.batchSize, 0, prefix.length + prepared.maxLength);
      for (const batch of chunks(wanted, batchSize)) {
        stopIfCancelled(signal);
        const sums = await this.lm.forward(batch.map((w) => rowOf(w.anchor, prefix)));
        batch.forEach((w, j) => (oneShot[w.k] = sum(sums[j]!)));
      }
    }
    return { oneShot, truncated };
  }

  /**
   * The signals' passes: the prefix pass (its key/values kept for the one-shot passes that follow)
   * gives the response span's log-probabilities and the hidden states; one short pass over
   * tokenize(output) with special tokens gives the response alone. A left cut shifts the spans.
   */
  async candidatePasses(candidate: Example, prepared: PreparedAnchors): Promise<CandidatePasses> {
    if (!(prepared instanceof LocalAnchors)) throw new Error('anchors were prepared by another backend');
    if (prepared.chat) return this.chatCandidatePasses(candidate, prepared, prepared.options.turns ?? 'last');
    const prefixed = this.candidatePrefix(candidate, prepared);
    const { prefix } = prefixed;
    const { from, to: candidateEnd } = responseSpan(prefixed, this.tokenizer.encode(queryText(candidate), true).length, prepared.separator.length);
    const pass = await this.lm.prefixPass(prefix, from, candidateEnd);
    if (pass.cache && this.path === 'cached') this.lastPrefix = { prepared, prefix, cache: pass.cache };
    const output = this.tokenizer.encode(candidate.output, true);
    const alone = output.slice(Math.max(0, output.length - this.identity.contextLength));
    const direct = alone.length > 1 ? (await this.lm.forward([{ tokens: alone, targetFrom: 1, targetTo: alone.length }]))[0]! : new Float64Array(0);
    const embedding = pass.hidden ? meanPooledUnit(pass.hidden.data, pass.hidden.size, 0, candidateEnd) : undefined;
    return { conditional: pass.logprobs, direct, embedding };
  }

  /**
   * Under a chat template: one-shot sums over each pair's sequence tok(F1). Where the candidate's rendering is a
   * token prefix of every pair's (a prefix-preserving template), its key/values are computed once and reused;
   * otherwise every pair runs whole, which gives the same numbers.
   */
  private async chatOneShot(candidate: Example, prepared: LocalAnchors, indices: readonly number[], signal?: AbortSignal): Promise<OneShotResult> {
    const rendered = await this.chatCandidate(candidate, prepared);
    const oneShot = new Float64Array(indices.length);
    const wanted = indices.map((anchor, k) => ({ pair: rendered.pairs[anchor]!, k })).filter((w) => spanOf(prepared.anchors[indices[w.k]!]!) > 0)
      .sort((a, b) => a.pair.tokens.length - b.pair.tokens.length);
    const longest = Math.max(0, ...wanted.map((w) => w.pair.tokens.length));
    if (this.path === 'cached' && this.lm.shape.acceptsPast && rendered.prefixPreserving) {
      const { prefix } = rendered;
      const cache = await this.prefixCache(prepared, prefix);
      for (const batch of chunks(wanted, this.batchSizeFor(prepared.options.batchSize, prefix.length, longest - prefix.length))) {
        stopIfCancelled(signal);
        const sums = await this.lm.forward(batch.map(({ pair }) => ({ tokens: pair.tokens.slice(prefix.length), targetFrom: pair.targetFrom - prefix.length, targetTo: pair.targetTo - prefix.length })), cache);
        batch.forEach((w, j) => (oneShot[w.k] = sum(sums[j]!)));
      }
    } else {
      const batchSize = this.path === 'naive' ? 1 : this.batchSizeFor(prepared.options.batchSize, 0, longest);
      for (const batch of chunks(wanted, batchSize)) {
        stopIfCancelled(signal);
        const sums = await this.lm.forward(batch.map(({ pair }) => pair));
        batch.forEach((w, j) => (oneShot[w.k] = sum(sums[j]!)));
      }
    }
    return { oneShot, truncated: rendered.truncated };
  }

  /**
   * Under a chat template: the prefix pass over tok(render(turns(c), false)) (key/values and hidden states), ppl_cond
   * over the final turn (P = render(ctx(c), true), F = P + resp(c)) read from it where tok(F) is its token prefix,
   * from a pass of its own otherwise; ppl_direct over tok(resp(c)) with special tokens, as for Alpaca records.
   * Under `--turns all` both pool every assistant turn instead: each given the turns before it (one pass each), and
   * each alone, their log-probabilities in turn order.
   */
  private async chatCandidatePasses(candidate: Example, prepared: LocalAnchors, turns: TurnsScored): Promise<CandidatePasses> {
    const rendered = await this.chatCandidate(candidate, prepared);
    const { prefix } = rendered;
    const renderer = prepared.chat!.renderer;
    const finals = await renderer.assistantTurns(rendered.turns, turns, () => describeCandidate(candidate));
    const final = finals[0]!;
    const shared = turns === 'last' && rendered.cut === 0 && final.targetFrom >= 1 && final.tokens.length <= prefix.length && final.tokens.every((t, i) => t === prefix[i]);
    const pass = await this.lm.prefixPass(prefix, shared ? final.targetFrom : 0, shared ? final.targetTo : 0);
    if (pass.cache && this.path === 'cached' && rendered.prefixPreserving) this.lastPrefix = { prepared, prefix, cache: pass.cache };
    const conditional = shared ? [pass.logprobs] : [];
    if (!shared) {
      for (const sequence of finals) {
        const cut = Math.max(0, sequence.tokens.length - this.identity.contextLength);
        const from = Math.max(1, sequence.targetFrom - cut);
        const to = sequence.targetTo - cut;
        if (to > from) conditional.push((await this.lm.forward([{ tokens: sequence.tokens.slice(cut), targetFrom: from, targetTo: to }]))[0]!);
      }
    }
    const direct: Float64Array[] = [];
    for (const content of turns === 'last' ? [candidate.output] : assistantContents(rendered.turns, turns)) {
      const output = this.tokenizer.encode(content, true);
      const alone = output.slice(Math.max(0, output.length - this.identity.contextLength));
      if (alone.length > 1) direct.push((await this.lm.forward([{ tokens: alone, targetFrom: 1, targetTo: alone.length }]))[0]!);
    }
    const embedding = pass.hidden ? meanPooledUnit(pass.hidden.data, pass.hidden.size, 0, prefix.length) : undefined;
    return { conditional: concatenated(conditional), direct: concatenated(direct), embedding };
  }

  private async chatCandidate(candidate: Example, prepared: LocalAnchors): Promise<ChatCandidate> {
    const last = this.lastChat;
    if (last && last.prepared === prepared && last.candidate === candidate) return last.rendered;
    const rendered = await prepared.chat!.renderer.candidate(candidate, prepared.chat!.anchors, this.identity.contextLength, () => describeCandidate(candidate));
    this.lastChat = { prepared, candidate, rendered };
    this.chatRecords++;
    if (!rendered.prefixPreserving && this.path === 'cached') this.naiveRecords.add(JSON.stringify(rendered.turns));
    return rendered;
  }

  /** The run's summary: records the chat template made the engine score naively. */
  costNote(): string | undefined {
    if (this.naiveRecords.size === 0) return undefined;
    return `${this.naiveRecords.size} of ${this.chatRecords} records scored naively (one full pass per anchor): the chat template does not render `
      + 'their turns the same when more turns follow (not prefix-preserving), so their key/values could not be reused. The scores are the same either way.';
  }

  async dispose(): Promise<void> {
    this.lastPrefix = undefined;
    this.lastChat = undefined;
    await this.lm.dispose();
  }

  /**
   * The requested batch size, lowered so that one pass stays within the memory budget: per row, the
   * prefix key/values copied for it and the per-position vocabulary-wide buffers ONNX Runtime holds
   * (logits and their log-softmax). Large models get smaller batches instead of running out of memory.
   */
  batchSizeFor(requested: number, prefixLength: number, rowLength: number): number {
    const { layers, kvHeads, headDim, vocabularySize } = this.lm.shape;
    const bytesPerRow = 4 * (2 * layers * kvHeads * headDim * (prefixLength + rowLength) + 2 * rowLength * (vocabularySize ?? 0));
    return Math.max(1, Math.min(requested, this.rowsPerPass, Math.floor(this.memoryBudgetBytes / bytesPerRow)));
  }

  private async prefixCache(prepared: LocalAnchors, prefix: number[]): Promise<PrefixCache> {
    const last = this.lastPrefix;
    if (last && last.prepared === prepared && last.prefix.length === prefix.length && last.prefix.every((t, i) => t === prefix[i])) return last.cache;
    const cache = await this.lm.prefill(prefix);
    this.lastPrefix = { prepared, prefix, cache };
    return cache;
  }

  anchorTokens(example: Example, maxAnchorTokens: number): AnchorTokens {
    const anchor = paperExample(example);
    const query = this.tokenizer.encode(queryText(anchor), false);
    const tokens = this.tokenizer.encode(fullText(anchor), false).slice(0, maxAnchorTokens);
    return { tokens, responseFrom: Math.min(query.length, tokens.length) };
  }

  candidatePrefix(candidate: Example, prepared: LocalAnchors): CandidatePrefix {
    return cutPrefix(this.tokenizer.encode(fullText(paperExample(candidate)), true), prepared.separator, this.identity.contextLength - prepared.maxLength);
  }
}

/** The graph with a log-probability head, or undefined when it cannot have one (no float32 logits, not an LM). */
function headedGraph(onnxPath: string, cacheDir: string, fingerprint: string): string | undefined {
  try {
    return graphWithLogprobHead(onnxPath, cacheDir, fingerprint);
  } catch {
    return undefined; // the plain graph is loaded instead, and its own checks say what is wrong with it
  }
}

/** "record 3 (file.json:12)" where the record knows its place, for messages about what a template cannot render. */
function describeCandidate(candidate: Example): string {
  const index = (candidate as { index?: unknown }).index;
  return typeof index === 'number' ? `record ${index} ("${candidate.instruction.slice(0, 40).replace(/\s+/g, ' ')}…")` : 'the candidate';
}

function spanOf(a: AnchorTokens): number {
  return a.tokens.length - a.responseFrom;
}

/** A row whose targets are the anchor's response span, the anchor following `prefix` in the row when given. */
function rowOf(a: AnchorTokens, prefix: number[] = []): ForwardRow {
  const tokens = prefix.length > 0 ? [...prefix, ...a.tokens] : a.tokens;
  return { tokens, targetFrom: prefix.length + a.responseFrom, targetTo: prefix.length + a.tokens.length };
}

function sum(values: Float64Array): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Between passes: an ONNX pass cannot stop midway, so a cancelled call ends before its next one. */
function stopIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new RequestCancelled('Scoring');
}
