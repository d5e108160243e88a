/**
 * A stand-in for an SGLang server (python -m sglang.launch_server) on 127.0.0.1, for protocol tests. It runs a
 * real ONNX model with a plain onnxruntime-node session and the model's tokenizer.json through
 * @huggingface/tokenizers, and shares no code with server/ (so that a bug shared with the engine cannot hide):
 * every prompt is one whole sequence through the graph with an empty past, its logits log-softmaxed here.
 *
 * What it reproduces of SGLang (../shared/design/SERVING.md §1; python/sglang/srt/managers/io_struct.py,
 * scheduler.py, scheduler_output_processor_mixin.py, entrypoints/http_server.py):
 * - POST /generate with `input_ids` as one list (a single request: one object answers) or a list of lists (a
 *   batch: a JSON array answers, in order); `sampling_params`, `return_logprob` and `logprob_start_len` as one
 *   value for all or a list per item; `max_new_tokens` defaults to 128 and must be sent as 0 here (the stand-in
 *   generates nothing); an empty input is refused ("input_ids cannot be empty.");
 * - `logprob_start_len` s (-1, or no return_logprob: L - 1); s >= L is refused with a 400 and SGLang's message;
 *   `meta_info.input_token_logprobs` has L - s entries [logprob, token_id, null], entry k for ids[s + k] given
 *   ids[< s + k], entry 0's logprob null (its logit is at s - 1, not recomputed);
 * - a radix cache: a token trie of the sequences computed, least recently used leaves evicted beyond
 *   `cacheTokens`; a request may reuse at most min(L - 1, s) tokens of it (Req's max_prefix_len), and
 *   `meta_info.cached_tokens` is that match; each item is inserted once computed, items of a batch in order;
 * - an input as long as the context is refused (SGLang keeps room for one token); errors are 400
 *   {"error": {"message"}};
 * - POST /tokenize and /v1/tokenize {prompt: str | [str], add_special_tokens=true} -> {tokens, count,
 *   max_model_len}; GET /get_model_info, /health, /v1/models (the context length as max_model_len).
 * What it does not: sampling and generation, text prompts, top log-probabilities, the scheduler's batching
 * (items are computed one after another, so a later item of a batch may reuse an earlier one's tokens).
 *
 * For fault tests: `lie` damages the last item of every /generate answer after the first `lieAfter`;
 * `stallAfter` holds /generate requests after so many unanswered (`stalledClosed` counts those whose client
 * closed the connection); `failNext` answers the next /generate requests with an error status; `dieAfter` drops
 * the connection of the /generate request after so many and stops listening, as a worker process that dies, until
 * revive().
 */
import type { Tokenizer } from '@huggingface/tokenizers';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OnnxModel, readBody, readStandinFolder, send } from './onnx-standin';

export interface FakeSglangOptions {
  /** --served-model-name; default the model path. */
  servedModel?: string;
  /** Tokens the radix cache holds before it evicts (SGLang: what the KV pool has room for). */
  cacheTokens?: number;
}

/**
 * Ways the stand-in damages an answer: a wrong token id, the last entry missing, null / NaN / -Infinity as a
 * log-probability inside the span (NaN and -Infinity bare, as Python's json module writes them), or a 400 for
 * the start index.
 */
export type SglangLie = 'wrong-token-id' | 'truncated' | 'null-inside' | 'nan' | '-inf' | 'refuse-start';

/** What one computed item cost: its tokens, its start index, and what the cache supplied. */
export interface ServedItem {
  tokens: number;
  start: number;
  cached: number;
}

interface GenerateRequest {
  input_ids?: unknown;
  text?: unknown;
  sampling_params?: Record<string, unknown> | Record<string, unknown>[];
  return_logprob?: boolean | boolean[];
  logprob_start_len?: number | number[];
  top_logprobs_num?: number | number[];
  return_text_in_logprobs?: boolean;
}

class BadRequest extends Error {}

export class FakeSglang {
  /** /generate requests received. */
  generateRequests = 0;
  readonly bodies: GenerateRequest[] = [];
  /** /generate requests being answered now, and the most at once. */
  inFlight = 0;
  maxInFlight = 0;
  /** Every item computed, one list per /generate request, in order. */
  readonly served: ServedItem[][] = [];
  /** The X-SMG-Routing-Key header of each request in `served` (the gateway forwards it). */
  readonly servedKeys: (string | undefined)[] = [];
  readonly tokenizeBodies: { prompt: unknown; add_special_tokens?: boolean }[] = [];
  /** The Authorization header of every request, in order (undefined where none was sent), and each request's path. */
  readonly authorizations: (string | undefined)[] = [];
  readonly requestPaths: string[] = [];
  lie: SglangLie | undefined;
  /** Lies start after this many /generate requests. */
  lieAfter = 0;
  /** /generate requests after this many are held unanswered (until close). */
  stallAfter = Infinity;
  stalled = 0;
  stalledClosed = 0;
  /**
   * A worker that dies: the /generate request after this many finds its connection dropped, and the server stops
   * listening (later requests are refused) until revive().
   */
  dieAfter = Infinity;
  /** /generate requests whose connection the death dropped (the refused ones after it never arrive). */
  dropped = 0;
  readonly cache: TokenTrie;
  private failures: number[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly servedModel: string,
    readonly contextLength: number,
    private readonly modelPath: string,
    private readonly tokenizer: Tokenizer,
    private readonly model: OnnxModel,
    cacheTokens: number,
  ) {
    this.cache = new TokenTrie(cacheTokens);
  }

  static async start(modelFolder: string, options: FakeSglangOptions = {}): Promise<FakeSglang> {
    const { config, tokenizer, onnxPath } = readStandinFolder(modelFolder);
    const contextLength = Number(config['max_position_embeddings'] ?? config['n_positions']);
    const model = await OnnxModel.load(onnxPath);
    let fake: FakeSglang | undefined;
    const server = createServer((req, res) => {
      fake!.handle(req, res).catch((err: unknown) => {
        if (err instanceof BadRequest) return send(res, 400, { error: { message: err.message } });
        return send(res, 500, { error: { message: String(err) } });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    fake = new FakeSglang(server, url, options.servedModel ?? modelFolder, contextLength, modelFolder, tokenizer, model, options.cacheTokens ?? 1 << 20);
    return fake;
  }

  /** The next `count` /generate requests are answered with `status` (SGLang behind a proxy: 502, 503; a busy one: 429). */
  failNext(status: number, count = 1): void {
    for (let i = 0; i < count; i++) this.failures.push(status);
  }

  /** Token positions computed (sent minus cached) over the requests from `from` on. */
  computed(from = 0): { sent: number; computed: number } {
    const items = this.served.slice(from).flat();
    const sent = items.reduce((n, i) => n + i.tokens, 0);
    return { sent, computed: sent - items.reduce((n, i) => n + i.cached, 0) };
  }

  /** The server listening again on its port after dieAfter, its cache kept (a worker restarted with its state). */
  async revive(): Promise<void> {
    this.dieAfter = Infinity;
    if (this.server.listening) return;
    await new Promise<void>((resolve) => this.server.listen(Number(new URL(this.url).port), '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.model.release();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', this.url).pathname;
    this.authorizations.push(header(req, 'authorization'));
    this.requestPaths.push(path);
    if (req.method === 'GET' && path === '/health') {
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'GET' && path === '/get_model_info') {
      return send(res, 200, { model_path: this.modelPath, tokenizer_path: this.modelPath, is_generation: true, preferred_sampling_params: null, weight_version: 'default' });
    }
    if (req.method === 'GET' && path === '/v1/models') {
      return send(res, 200, { object: 'list', data: [{ id: this.servedModel, object: 'model', created: 0, owned_by: 'sglang', root: this.modelPath, parent: null, max_model_len: this.contextLength }] });
    }
    if (req.method === 'POST' && (path === '/tokenize' || path === '/v1/tokenize')) {
      const body = JSON.parse(await readBody(req)) as { prompt: unknown; add_special_tokens?: boolean };
      this.tokenizeBodies.push(body);
      const special = body.add_special_tokens ?? true;
      const encode = (text: string): number[] => this.tokenizer.encode(text, { add_special_tokens: special }).ids;
      if (typeof body.prompt === 'string') {
        const tokens = encode(body.prompt);
        return send(res, 200, { tokens, count: tokens.length, max_model_len: this.contextLength });
      }
      if (Array.isArray(body.prompt) && body.prompt.every((p) => typeof p === 'string')) {
        const tokens = (body.prompt as string[]).map(encode);
        return send(res, 200, { tokens, count: tokens.map((t) => t.length), max_model_len: this.contextLength });
      }
      throw new BadRequest('Either prompt or messages must be provided.');
    }
    if (req.method === 'POST' && path === '/generate' && this.generateRequests >= this.dieAfter) {
      this.dropped++;
      req.socket.destroy();
      if (this.server.listening) this.server.close();
      this.server.closeAllConnections();
      return;
    }
    if (req.method === 'POST' && path === '/generate') {
      const body = JSON.parse(await readBody(req)) as GenerateRequest;
      const key = header(req, 'x-smg-routing-key');
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      try {
        return await this.generate(body, res, key);
      } finally {
        this.inFlight--;
      }
    }
    send(res, 404, { detail: 'Not Found' });
  }

  private async generate(request: GenerateRequest, res: ServerResponse, key: string | undefined): Promise<void> {
    this.generateRequests++;
    this.bodies.push(request);
    if (this.generateRequests > this.stallAfter) {
      this.stalled++;
      res.once('close', () => {
        this.stalledClosed++;
        this.inFlight--; // a held request leaves once its client closes it
      });
      await new Promise<never>(() => undefined); // never answered: close() drops the connection
    }
    const failure = this.failures.shift();
    if (failure !== undefined) return send(res, failure, { error: { message: 'injected failure' } });
    const lying = this.lie !== undefined && this.generateRequests > this.lieAfter ? this.lie : undefined;
    const { input_ids: inputIds } = request;
    if (inputIds === undefined) throw new BadRequest(request.text !== undefined ? 'This stand-in takes input_ids, not text.' : 'Either text, input_ids or input_embeds should be provided.');
    if (!Array.isArray(inputIds) || inputIds.length === 0) throw new BadRequest('input_ids cannot be empty.');
    const single = typeof inputIds[0] === 'number';
    const items = (single ? [inputIds] : inputIds) as unknown[];
    const perItem = <T>(value: T | T[] | undefined, fallback: T, name: string): T[] => {
      if (!Array.isArray(value)) return items.map(() => value ?? fallback);
      if (value.length !== items.length) throw new BadRequest(`${name} has ${value.length} entries for a batch of ${items.length}.`);
      return value;
    };
    const sampling = perItem(request.sampling_params, {}, 'sampling_params');
    const returnLogprob = perItem(request.return_logprob, false, 'return_logprob');
    const starts = perItem(request.logprob_start_len, -1, 'logprob_start_len');
    const tops = perItem(request.top_logprobs_num, 0, 'top_logprobs_num');
    const plan = items.map((ids, k) => {
      if (!Array.isArray(ids) || ids.length === 0) throw new BadRequest('input_ids cannot be empty.');
      if (!ids.every((id) => Number.isInteger(id) && id >= 0 && id < this.model.vocabularySize)) throw new BadRequest(`Input ${k} has a token id outside the vocabulary (${this.model.vocabularySize}).`);
      const maxNewTokens = sampling[k]!['max_new_tokens'] ?? 128;
      if (maxNewTokens !== 0) throw new BadRequest(`This stand-in only scores: max_new_tokens must be 0 (got ${String(maxNewTokens)}; SGLang's default is 128).`);
      if ((tops[k] ?? 0) !== 0) throw new BadRequest('This stand-in returns no top log-probabilities: top_logprobs_num must be 0.');
      if (ids.length >= this.contextLength) throw new BadRequest(`The input (${ids.length} tokens) is longer than the model's context length (${this.contextLength} tokens).`);
      const s = starts[k] === -1 || !returnLogprob[k] ? ids.length - 1 : starts[k]!;
      if (!Number.isInteger(s) || s < 0 || s >= ids.length || (lying === 'refuse-start' && k === items.length - 1)) {
        throw new BadRequest(`req.logprob_start_len=${s} is higher than the number of input tokens len(req.origin_input_ids)=${lying === 'refuse-start' ? s : ids.length}. Please use a smaller logprob_start_len.`);
      }
      return { ids: ids as number[], start: s, logprob: returnLogprob[k]! };
    });
    const served: ServedItem[] = [];
    const answers = [];
    for (const { ids, start, logprob } of plan) {
      const began = Date.now();
      // Req._compute_max_prefix_len: at most L - 1 tokens, and none past logprob_start_len.
      const cached = Math.min(this.cache.match(ids), ids.length - 1, logprob ? start : Infinity);
      const logprobs = await this.model.logprobs(ids, start);
      this.cache.insert(ids);
      served.push({ tokens: ids.length, start, cached });
      const entries: (number | null)[][] = ids.slice(start).map((id, k) => [k === 0 ? null : logprobs[k - 1]!, id, null]);
      answers.push({
        text: '', output_ids: [],
        meta_info: {
          id: randomBytes(16).toString('hex'), finish_reason: { type: 'length', length: 0 }, prompt_tokens: ids.length, weight_version: 'default',
          total_retractions: 0, completion_tokens: 0, cached_tokens: cached,
          ...(logprob ? { input_token_logprobs: entries, output_token_logprobs: [] } : {}),
          e2e_latency: (Date.now() - began) / 1000,
        },
      });
    }
    this.served.push(served);
    this.servedKeys.push(key);
    let text = JSON.stringify(single ? answers[0] : answers);
    if (lying && lying !== 'refuse-start') text = damage(answers, lying, single);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The answers as JSON with the last item's entries damaged as `lie` says, in the middle of its span. */
function damage(answers: { meta_info: { input_token_logprobs?: (number | null)[][] } }[], lie: SglangLie, single: boolean): string {
  const entries = answers.at(-1)!.meta_info.input_token_logprobs!;
  const middle = Math.max(1, Math.floor(entries.length / 2));
  const marker = -123.456789;
  if (lie === 'wrong-token-id') entries[middle]![1] = entries[middle]![1]! + 1;
  else if (lie === 'truncated') entries.pop();
  else if (lie === 'null-inside') entries[middle]![0] = null;
  else entries[middle]![0] = marker;
  let text = JSON.stringify(single ? answers[0] : answers);
  if (lie === 'nan') text = text.split(String(marker)).join('NaN');
  if (lie === '-inf') text = text.split(String(marker)).join('-Infinity');
  return text;
}

/**
 * The radix cache's bookkeeping: a trie of token ids with a last-use time per node. Sequences are inserted whole;
 * beyond `capacity` tokens the least recently used leaves go first (what SGLang's RadixCache.evict does).
 */
export class TokenTrie {
  private readonly root = new TrieNode(undefined, -1);
  private clock = 0;
  size = 0;
  constructor(readonly capacity: number) {}

  /** How many leading tokens of `ids` are held (and touched). */
  match(ids: readonly number[]): number {
    const now = ++this.clock;
    let node = this.root;
    let n = 0;
    for (const id of ids) {
      const next = node.children.get(id);
      if (!next) break;
      next.lastUsed = now;
      node = next;
      n++;
    }
    return n;
  }

  insert(ids: readonly number[]): void {
    const now = ++this.clock;
    let node = this.root;
    for (const id of ids) {
      let next = node.children.get(id);
      if (!next) {
        next = new TrieNode(node, id);
        node.children.set(id, next);
        this.size++;
      }
      next.lastUsed = now;
      node = next;
    }
    this.evict();
  }

  private evict(): void {
    if (this.size <= this.capacity) return;
    const leaves: TrieNode[] = [];
    const walk = (node: TrieNode): void => {
      for (const child of node.children.values()) (child.children.size === 0 ? leaves.push(child) : walk(child));
    };
    walk(this.root);
    leaves.sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.size > this.capacity) {
      const leaf = leaves.shift()!;
      const parent = leaf.parent!;
      parent.children.delete(leaf.token);
      this.size--;
      // A parent left without children is a leaf now, in its place by last use.
      if (parent !== this.root && parent.children.size === 0) {
        const at = leaves.findIndex((l) => l.lastUsed > parent.lastUsed);
        leaves.splice(at < 0 ? leaves.length : at, 0, parent);
      }
    }
  }
}

class TrieNode {
  readonly children = new Map<number, TrieNode>();
  lastUsed = 0;
  constructor(readonly parent: TrieNode | undefined, readonly token: number) {}
}
