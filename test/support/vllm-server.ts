/**
 * A stand-in for a vLLM OpenAI-compatible server on 127.0.0.1, for protocol tests: it answers
 * GET /v1/models and POST /v1/completions in vLLM's response format. It runs a real ONNX model with a plain
 * onnxruntime-node session and the model's tokenizer.json through @huggingface/tokenizers (onnx-standin.ts, shared
 * with the SGLang stand-in), and imports nothing from server/, so that a tokenization or batching bug shared with
 * the engine cannot hide: every prompt (with its generated token) is one whole sequence through the graph with an
 * empty past, its logits log-softmaxed here. test/unit/serving-standins.test.ts checks that nothing from server/ comes in.
 *
 * What it reproduces of vLLM (vllm/entrypoints/openai/serving_completion.py and protocol.py):
 * - the prompt is tokenized with `add_special_tokens` (default true: the tokenizer's BOS is added);
 *   a prompt may also be token ids, or a list of prompts (one choice per prompt, in order);
 * - `echo` with `logprobs` asks for prompt log-probabilities too (prompt_logprobs = logprobs); the
 *   echoed choice lists prompt then generated tokens in logprobs.{tokens, token_logprobs,
 *   top_logprobs, text_offset}; the first prompt token has a null log-probability;
 * - tokens are decoded one at a time (the first, which has no log-probability, with the tokenizer's
 *   decode, so a BOS shows as its name), and text_offset adds up their lengths in code points;
 * - choices[].prompt_logprobs: [null, {"<id>": {logprob, rank, decoded_token}}, ...];
 * - `max_tokens: 0` is accepted with echo (the prompt alone); a prompt that with max_tokens exceeds
 *   max_model_len is refused with a 400; errors are {"object": "error", "message", "type", "code"}.
 * What it does not: generation is not sampled (the one generated token is always EOS, with its real
 * log-probability), `rank` is null (no token's rank among the vocabulary is computed), and
 * only the prompt token's own log-probability is given (logprobs / prompt_logprobs 0).
 *
 * POST /tokenize (vLLM's, at the server root): {model, prompt, add_special_tokens} -> {count,
 * max_model_len, tokens}; `tokenizeEndpoint = false` answers it 404, as servers without it do.
 *
 * For resilience tests: `failNext` answers the next requests with an error status, `delayMs` holds
 * every answer, `stall` holds them unanswered (`stallAfter`: those after so many), `maxInFlight` records the most requests
 * handled at once, `lie` damages every completions answer in one way, and `modelsText` replaces the /v1/models answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Tokenizer } from '@huggingface/tokenizers';
import { resolve } from 'node:path';
import { OnnxModel, readBody, readStandinFolder, send } from './onnx-standin';

export interface FakeVllmOptions {
  /** The id under which the model is served (vLLM --served-model-name). */
  servedModel?: string;
  /** Required bearer token (vLLM --api-key). */
  apiKey?: string;
  /** vLLM --max-model-len; default the model's context length. */
  maxModelLen?: number;
}

/** Ways a lying server damages its completions answers. */
export type Lie = 'negative-infinity' | 'huge' | 'nan' | 'fewer-tokens' | 'fewer-logprobs';

interface CompletionRequest {
  model?: string;
  prompt?: string | string[] | number[] | number[][];
  echo?: boolean;
  logprobs?: number | null;
  prompt_logprobs?: number | null;
  max_tokens?: number | null;
  add_special_tokens?: boolean;
  n?: number;
}

export class FakeVllm {
  requests = 0;
  inFlight = 0;
  maxInFlight = 0;
  delayMs = 0;
  /** While true, completion requests are held unanswered (until close). */
  stall = false;
  /** Completion requests after this many (counted in `requests`) are held unanswered, as with `stall`. */
  stallAfter = Infinity;
  stalled = 0;
  /** Held requests whose connection the client closed (or close() dropped): a client that aborts shows here. */
  stalledClosed = 0;
  /** While true, GET /v1/models is held unanswered too (until close): an endpoint that hangs on every request. */
  stallModels = false;
  tokenizeEndpoint = true;
  lie: Lie | undefined;
  modelsText: string | undefined;
  readonly tokenizeBodies: { prompt: string; add_special_tokens?: boolean }[] = [];
  readonly bodies: CompletionRequest[] = [];
  /** Every request's Authorization header, in order (undefined: none was sent). */
  readonly authorizations: (string | undefined)[] = [];
  private failures: { status: number; retryAfter?: number }[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly servedModel: string,
    readonly maxModelLen: number,
    private readonly tokenizer: Tokenizer,
    private readonly model: OnnxModel,
    private readonly eosId: number,
    private readonly options: FakeVllmOptions,
  ) {}

  static async start(modelFolder: string, options: FakeVllmOptions = {}): Promise<FakeVllm> {
    const { config, tokenizer, contextLength: context, onnxPath } = readStandinFolder(modelFolder);
    const model = await OnnxModel.load(onnxPath);
    const eos = typeof config['eos_token_id'] === 'number' ? config['eos_token_id'] : 0;
    let fake: FakeVllm | undefined;
    const server = createServer((req, res) => {
      fake!.handle(req, res).catch((err: unknown) => send(res, 500, vllmError(String(err), 'InternalServerError', 500)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    fake = new FakeVllm(server, url, options.servedModel ?? resolve(modelFolder), options.maxModelLen ?? context, tokenizer, model, eos, options);
    return fake;
  }

  /** The next `count` completion requests are answered with `status` (and Retry-After, when given). */
  failNext(status: number, count = 1, retryAfter?: number): void {
    for (let i = 0; i < count; i++) this.failures.push({ status, ...(retryAfter !== undefined ? { retryAfter } : {}) });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.model.release();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.authorizations.push(req.headers.authorization);
    if (this.options.apiKey && req.headers.authorization !== `Bearer ${this.options.apiKey}`) {
      return send(res, 401, { error: 'Unauthorized' });
    }
    const path = new URL(req.url ?? '/', this.url).pathname;
    if (req.method === 'GET' && path === '/v1/models') {
      if (this.stallModels) {
        this.stalled++;
        res.once('close', () => this.stalledClosed++);
        await new Promise<never>(() => undefined);
      }
      if (this.modelsText !== undefined) {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(this.modelsText);
        return;
      }
      return send(res, 200, {
        object: 'list',
        data: [{
          id: this.servedModel, object: 'model', created: 0, owned_by: 'vllm', root: 'models/demo', parent: null,
          max_model_len: this.maxModelLen, permission: [],
        }],
      });
    }
    if (req.method === 'POST' && path === '/tokenize' && this.tokenizeEndpoint) {
      const request = JSON.parse(await readBody(req)) as { model?: string; prompt: string; add_special_tokens?: boolean };
      this.tokenizeBodies.push(request);
      if (request.model !== undefined && request.model !== this.servedModel) return send(res, 404, vllmError(`The model \`${request.model}\` does not exist.`, 'NotFoundError', 404));
      const tokens = this.encode(request.prompt, request.add_special_tokens ?? true);
      return send(res, 200, { count: tokens.length, max_model_len: this.maxModelLen, tokens, token_strs: null });
    }
    if (req.method !== 'POST' || path !== '/v1/completions') return send(res, 404, { detail: 'Not Found' });
    const body = JSON.parse(await readBody(req)) as CompletionRequest;
    this.requests++;
    this.bodies.push(body);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.stall || this.requests > this.stallAfter) {
        this.stalled++;
        res.once('close', () => this.stalledClosed++);
        await new Promise<never>(() => undefined); // never answered: close() drops the connection
      }
      const failure = this.failures.shift();
      if (failure) {
        if (failure.retryAfter !== undefined) res.setHeader('retry-after', String(failure.retryAfter));
        return send(res, failure.status, vllmError('injected failure', failure.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable', failure.status));
      }
      const answer = await this.complete(body);
      if (this.lie && answer.status === 200) return sendLie(res, answer.body as { choices: LieChoice[] }, this.lie);
      return send(res, answer.status, answer.body);
    } finally {
      this.inFlight--;
    }
  }

  private async complete(request: CompletionRequest): Promise<{ status: number; body: unknown }> {
    if (request.model !== this.servedModel) {
      return { status: 404, body: vllmError(`The model \`${request.model}\` does not exist.`, 'NotFoundError', 404) };
    }
    const echo = request.echo === true;
    const maxTokens = request.max_tokens ?? 16;
    const logprobs = request.logprobs ?? null;
    const promptLogprobs = request.prompt_logprobs ?? (echo ? logprobs : null);
    if ((logprobs ?? 0) > 0 || (promptLogprobs ?? 0) > 0) {
      return { status: 400, body: vllmError('This test server returns only the prompt token\'s own log-probability: use logprobs / prompt_logprobs 0.', 'BadRequestError', 400) };
    }
    if (maxTokens === 0 && !echo) return { status: 400, body: vllmError('max_tokens 0 is only supported with echo.', 'BadRequestError', 400) };
    const prompts = promptList(request.prompt);
    if (!prompts) return { status: 400, body: vllmError('prompt must be a string, a list of strings, or token ids.', 'BadRequestError', 400) };
    const addSpecial = request.add_special_tokens ?? true;
    const encoded = prompts.map((p) => (typeof p === 'string' ? { text: p, ids: this.encode(p, addSpecial) } : { text: this.decode(p), ids: p }));
    const generated = Math.min(maxTokens, 1);
    for (const e of encoded) {
      if (e.ids.length === 0) return { status: 400, body: vllmError('The prompt cannot be empty.', 'BadRequestError', 400) };
      if (e.ids.length + maxTokens > this.maxModelLen) {
        return {
          status: 400,
          body: vllmError(`This model's maximum context length is ${this.maxModelLen} tokens. However, you requested ${e.ids.length + maxTokens} tokens (${e.ids.length} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`, 'BadRequestError', 400),
        };
      }
    }
    // Each prompt, its (always EOS) generated token appended, is one whole sequence through the graph.
    const results: Float64Array[] = [];
    for (const e of encoded) {
      const tokens = generated > 0 ? [...e.ids, this.eosId] : e.ids;
      results.push(tokens.length > 1 ? await this.model.logprobs(tokens, 0) : new Float64Array(0));
    }
    const choices = encoded.map((e, index) => {
      const lp = results[index]!;
      // lp[t - 1] is the log-probability of tokens[t] given the tokens before it.
      const promptLp: (number | null)[] = e.ids.map((_, t) => (t === 0 ? null : lp[t - 1]!));
      const outputIds = generated > 0 ? [this.eosId] : [];
      const outputLp = generated > 0 ? [lp[e.ids.length - 1]!] : [];
      const promptLogprobsField = promptLogprobs === null ? null
        : e.ids.map((id, t) => (t === 0 ? null : { [String(id)]: { logprob: promptLp[t]!, rank: null, decoded_token: this.decodeOne(id) } }));
      let tokenIds: number[];
      let tokenLp: (number | null)[];
      let text: string;
      if (echo) {
        tokenIds = maxTokens === 0 ? e.ids : [...e.ids, ...outputIds];
        tokenLp = maxTokens === 0 ? promptLp : [...promptLp, ...outputLp];
        text = e.text; // the generated EOS is a special token: it adds no text
      } else {
        tokenIds = outputIds;
        tokenLp = outputLp;
        text = '';
      }
      return {
        index,
        text,
        logprobs: logprobs === null ? null : this.completionLogprobs(tokenIds, tokenLp),
        finish_reason: generated > 0 ? 'stop' : 'length',
        stop_reason: null,
        prompt_logprobs: promptLogprobsField,
        prompt_token_ids: null,
        token_ids: null,
      };
    });
    const promptTokens = encoded.reduce((n, e) => n + e.ids.length, 0);
    const completionTokens = generated * encoded.length;
    return {
      status: 200,
      body: {
        id: `cmpl-${this.requests.toString(16).padStart(8, '0')}`,
        object: 'text_completion',
        created: Math.floor(Date.now() / 1000),
        model: this.servedModel,
        choices,
        service_tier: null,
        system_fingerprint: null,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens + completionTokens, completion_tokens: completionTokens, prompt_tokens_details: null },
        kv_transfer_params: null,
      },
    };
  }

  /** vLLM's CompletionLogProbs: offsets add up the code-point lengths of the tokens as decoded. */
  private completionLogprobs(ids: number[], logprobs: (number | null)[]) {
    const tokens: string[] = [];
    const textOffset: number[] = [];
    const topLogprobs: (Record<string, number> | null)[] = [];
    let offset = 0;
    ids.forEach((id, i) => {
      const token = this.decodeOne(id);
      textOffset.push(offset);
      offset += [...token].length;
      tokens.push(token);
      const lp = logprobs[i];
      topLogprobs.push(lp === null || lp === undefined ? null : { [token]: Math.max(lp, -9999) });
    });
    return { text_offset: textOffset, token_logprobs: logprobs.map((v) => (v === null ? null : Math.max(v, -9999))), tokens, top_logprobs: topLogprobs };
  }

  private decodeOne(id: number): string {
    return this.decode([id]);
  }

  private encode(text: string, specialTokens: boolean): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: specialTokens }).ids;
  }

  /** Special tokens are kept (vLLM's detokenizer shows a BOS by its name). */
  private decode(ids: number[]): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: false });
  }
}

function promptList(prompt: CompletionRequest['prompt']): (string | number[])[] | undefined {
  if (typeof prompt === 'string') return [prompt];
  if (!Array.isArray(prompt) || prompt.length === 0) return undefined;
  if (prompt.every((p) => typeof p === 'number')) return [prompt as number[]];
  if (prompt.every((p) => typeof p === 'string' || (Array.isArray(p) && p.every((x) => typeof x === 'number')))) return prompt as (string | number[])[];
  return undefined;
}

interface LieChoice {
  logprobs: { tokens: string[]; token_logprobs: (number | null)[] } | null;
  prompt_logprobs: unknown[] | null;
}

/** The answer damaged as `lie` says: -infinity as -1e999 (JSON that reads as -Infinity), NaN as Python's json module writes it. */
function sendLie(res: ServerResponse, body: { choices: LieChoice[] }, lie: Lie): void {
  const marker = -123.456789;
  for (const choice of body.choices) {
    const lp = choice.logprobs;
    if (!lp) continue;
    if (lie === 'fewer-tokens') {
      lp.tokens.splice(1, 1);
      lp.token_logprobs.splice(1, 1);
      choice.prompt_logprobs?.splice(1, 1);
    } else if (lie === 'fewer-logprobs') {
      lp.token_logprobs.pop();
    } else {
      lp.token_logprobs = lp.token_logprobs.map((v, t) => (t === lp.token_logprobs.length - 2 ? (lie === 'huge' ? 1e300 : marker) : v));
    }
  }
  let text = JSON.stringify(body);
  if (lie === 'negative-infinity') text = text.split(String(marker)).join('-1e999');
  if (lie === 'nan') text = text.split(String(marker)).join('NaN');
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function vllmError(message: string, type: string, code: number) {
  return { object: 'error', message, type, param: null, code };
}
