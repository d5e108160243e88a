/**
 * Scoring through a serving engine: an OpenAI-compatible /v1/completions endpoint that returns the
 * log-probabilities of the prompt's own tokens (vLLM: `echo: true, logprobs: 0, max_tokens: 1`, the
 * prompt's tokens then come back in choices[].logprobs; or vLLM's `prompt_logprobs: 0`, in
 * choices[].prompt_logprobs). No local tokenizer is involved: every count is of the server's tokens.
 *
 * How ALGORITHM.md's definitions map onto requests:
 * - s0(a): the prompt full(a) without special tokens (`add_special_tokens: false`). The response span
 *   runs from len(tokenize(query(a))) to len(tokenize(full(a))), both counted by the server (a second
 *   prompt, query(a) alone, gives the first count), clipped to maxAnchorTokens server tokens.
 * - s1(c, a): the prompt full(c) + separator + anchor text, with the server's special tokens (a BOS
 *   where the model has one), as the local path prefixes the candidate. The response span is found
 *   from the end of the prompt (the anchor's last tokens), so a different token boundary where the
 *   candidate meets the anchor cannot shift it; its token texts are checked against the anchor's own.
 * vLLM's text_offset values are not used to find spans: vLLM builds them by adding up the lengths of
 * tokens decoded one at a time, which drift from the prompt's characters (SentencePiece tokens lose
 * their leading space, a character split over byte tokens decodes to several U+FFFD, a BOS adds its
 * own name), so counting tokens is the exact way.
 *
 * What can differ from the local path: the server tokenizes candidate and anchor as one text where the
 * paper tokenizes them apart; a byte-level BPE may merge across that boundary. Only the context of the
 * anchor's response changes then, never its tokens (see the protocol test, test/unit/serving.test.ts).
 */
import { createHash } from 'node:crypto';
import type { Example } from '../dataset';
import { sleep } from '../abort';
import { NuggetsError } from '../errors';
import type { CandidatePasses, ModelIdentity, OneShotResult, PreparedAnchors, ScoringBackend, ScoringOptions } from './backend';
import { fullText, queryText } from './template';

export type LogprobsRequest = 'echo' | 'prompt_logprobs';

export interface ServingSettings {
  /** Base URLs (http://host:8000 or http://host:8000/v1); requests go to them in turn. */
  endpoints: string[];
  /** The served model's id; default: the first model the first endpoint lists. */
  servedModel?: string;
  /** Default $NUGGETS_API_KEY, then $OPENAI_API_KEY (vLLM --api-key). */
  apiKey?: string;
  /** Requests in flight across all endpoints (default 16 per endpoint: a serving engine batches them). */
  concurrency?: number;
  /** Milliseconds one request may take before it is abandoned and retried (default 300000). */
  timeoutMs?: number;
  /** Retries of a request after 429, 5xx, a timeout or a dropped connection (default 6). */
  retries?: number;
  /** First retry delay in milliseconds, doubled after each, unless the server sends Retry-After (default 500). */
  retryDelayMs?: number;
  /** The model's context length; default the server's max_model_len. */
  contextLength?: number;
  /** How prompt log-probabilities are asked for (default 'echo'). */
  logprobs?: LogprobsRequest;
  /** Tokens generated per request: 1 works everywhere; vLLM also accepts 0 with echo. */
  maxTokens?: 0 | 1;
  signal?: AbortSignal;
}

/** The prompt's tokens as the server wrote them, with the log-probability of each given those before it. */
interface PromptLogprobs {
  tokens: string[];
  logprobs: (number | null)[];
}

interface ServedAnchor {
  /** The text sent after a candidate: full(a), cut some tokens past maxAnchorTokens when it is longer. */
  text: string;
  /** Server tokens of `text` alone. */
  tokens: number;
  /** Response span within those tokens: [responseFrom, responseTo). */
  responseFrom: number;
  responseTo: number;
  /** The response span's token texts, joined: checked in every one-shot answer. */
  responseText: string;
}

/** Tokens kept past maxAnchorTokens when an anchor's text is cut, so that the cut cannot change the tokens scored. */
const CUT_MARGIN_TOKENS = 16;

class ServedAnchors implements PreparedAnchors {
  readonly count: number;
  readonly responseTokens: Int32Array;
  readonly maxTokens: number;
  constructor(readonly anchors: ServedAnchor[], readonly zeroShot: Float64Array, readonly options: ScoringOptions) {
    this.count = anchors.length;
    this.responseTokens = Int32Array.from(anchors, (a) => a.responseTo - a.responseFrom);
    this.maxTokens = Math.max(...anchors.map((a) => a.tokens));
  }
}

export class ServingBackend implements ScoringBackend {
  private next = 0;
  private readonly limit: Limiter;

  private constructor(
    readonly identity: ModelIdentity,
    private readonly endpoints: string[],
    private readonly model: string,
    private readonly settings: ServingSettings,
    private readonly apiKey: string | undefined,
  ) {
    this.limit = new Limiter(settings.concurrency ?? 16 * endpoints.length);
  }

  static async open(settings: ServingSettings): Promise<ServingBackend> {
    const endpoints = settings.endpoints.map(normalizeEndpoint);
    if (endpoints.length === 0) throw new NuggetsError('No serving endpoint given.', 'Pass --model http://host:8000/v1 (several separated by commas).');
    const apiKey = settings.apiKey ?? (process.env['NUGGETS_API_KEY'] || process.env['OPENAI_API_KEY'] || undefined);
    let chosen: { id: string; root: string; maxModelLen: number | undefined } | undefined;
    for (const endpoint of endpoints) {
      const models = await listModels(endpoint, apiKey, settings.signal);
      const wanted = settings.servedModel ?? chosen?.id ?? models[0]?.id;
      const entry = models.find((m) => m.id === wanted);
      if (!entry) {
        throw new NuggetsError(
          `${endpoint} does not serve the model "${wanted}" (it serves: ${models.map((m) => m.id).join(', ') || 'nothing'}).`,
          'Every endpoint must serve the same model; choose it with --served-model.',
        );
      }
      if (chosen && (entry.root !== chosen.root || entry.maxModelLen !== chosen.maxModelLen)) {
        throw new NuggetsError(`${endpoint} serves "${entry.id}" from ${entry.root} (context ${entry.maxModelLen}), unlike ${endpoints[0]} (${chosen.root}, context ${chosen.maxModelLen}); scores would be mixed.`);
      }
      chosen = entry;
    }
    const contextLength = settings.contextLength ?? chosen!.maxModelLen;
    if (!contextLength) {
      throw new NuggetsError(`${endpoints[0]} does not say the model's context length (max_model_len).`, 'Give it with the context length setting (--context-length).');
    }
    // What the server says about its model is all there is to tell one set of weights from another.
    const fingerprint = createHash('sha256')
      .update(JSON.stringify({ serving: 1, id: chosen!.id, root: chosen!.root, contextLength }))
      .digest('hex')
      .slice(0, 16);
    const where = endpoints.length === 1 ? endpoints[0]! : `${endpoints.length} endpoints`;
    const identity = { name: `${chosen!.id} (served at ${where})`, fingerprint, contextLength };
    return new ServingBackend(identity, endpoints, chosen!.id, settings, apiKey);
  }

  async prepareAnchors(anchors: readonly Example[], options: ScoringOptions): Promise<PreparedAnchors> {
    if (anchors.length === 0) throw new NuggetsError('The anchor set is empty.');
    if (options.maxAnchorTokens >= this.identity.contextLength) {
      throw new NuggetsError(`maxAnchorTokens (${options.maxAnchorTokens}) must be below the model's context length (${this.identity.contextLength}).`);
    }
    // An anchor longer than the context in bytes goes as its head: only its first maxAnchorTokens count.
    const countable = this.identity.contextLength - this.generated() - 4;
    const head = (text: string): string => (Buffer.byteLength(text, 'utf8') <= countable ? text : firstBytes(text, countable));
    const prompts = anchors.flatMap((a) => [head(fullText(a)), head(queryText(a))]);
    const scored = await this.promptLogprobs(prompts, false, options.batchSize);
    const zeroShot = new Float64Array(anchors.length);
    const served: ServedAnchor[] = anchors.map((a, i) => {
      const full = scored[2 * i]!;
      const query = scored[2 * i + 1]!;
      const cut = Math.min(full.tokens.length, options.maxAnchorTokens);
      const from = Math.min(query.tokens.length, cut);
      const headOnly = prompts[2 * i] !== fullText(a) && full.tokens.length < options.maxAnchorTokens + CUT_MARGIN_TOKENS;
      if (headOnly || (prompts[2 * i + 1] !== queryText(a) && query.tokens.length < cut)) {
        throw new NuggetsError(`Anchor ${i} is longer than the model's context (${this.identity.contextLength} tokens) and its first ${options.maxAnchorTokens} tokens cannot be told apart from the rest.`, 'Lower maxAnchorTokens, or serve the model with a larger --max-model-len.');
      }
      zeroShot[i] = sumSpan(full, from, cut, `anchor ${i}`);
      let text = prompts[2 * i]!;
      let tokens = full.tokens.length;
      if (tokens > cut + CUT_MARGIN_TOKENS) {
        text = firstCodePoints(text, full.tokens.slice(0, cut + CUT_MARGIN_TOKENS).reduce((n, t) => n + codePoints(t), 0));
        tokens = -1; // counted below
      }
      return { text, tokens, responseFrom: from, responseTo: cut, responseText: full.tokens.slice(from, cut).join('') };
    });
    // A cut text is used only if the server tokenizes it into the same first tokens; else the whole anchor goes.
    const cutOnes = served.map((a, i) => ({ a, i })).filter(({ a }) => a.tokens < 0);
    if (cutOnes.length > 0) {
      const recount = await this.promptLogprobs(cutOnes.map(({ a }) => a.text), false, options.batchSize);
      cutOnes.forEach(({ a, i }, k) => {
        const full = scored[2 * i]!;
        const again = recount[k]!.tokens;
        const same = again.length >= a.responseTo && again.slice(0, a.responseTo).join('') === full.tokens.slice(0, a.responseTo).join('');
        if (same) a.tokens = again.length;
        else {
          a.text = prompts[2 * i]!;
          a.tokens = full.tokens.length;
        }
      });
    }
    const prepared = new ServedAnchors(served, zeroShot, options);
    if (prepared.maxTokens + this.generated() >= this.identity.contextLength) {
      throw new NuggetsError(`An anchor needs ${prepared.maxTokens} tokens: no room for a candidate in the model's context of ${this.identity.contextLength}.`, 'Lower maxAnchorTokens.');
    }
    return prepared;
  }

  async oneShot(candidate: Example, prepared: PreparedAnchors, anchorIndices?: readonly number[]): Promise<OneShotResult> {
    if (!(prepared instanceof ServedAnchors)) throw new Error('anchors were prepared by another backend');
    const indices = anchorIndices ?? prepared.anchors.map((_, i) => i);
    const { prefix, truncated } = await this.candidatePrefix(candidate, prepared);
    const oneShot = new Float64Array(indices.length);
    const wanted = indices.map((anchor, k) => ({ anchor: prepared.anchors[anchor]!, k })).filter((w) => w.anchor.responseTo > w.anchor.responseFrom);
    const scored = await this.promptLogprobs(wanted.map((w) => prefix + w.anchor.text), true, prepared.options.batchSize);
    wanted.forEach(({ anchor, k }, j) => {
      const answer = scored[j]!;
      const start = answer.tokens.length - anchor.tokens;
      const from = start + anchor.responseFrom;
      const to = start + anchor.responseTo;
      const seen = answer.tokens.slice(from, to).join('');
      if (start < 1 || seen !== anchor.responseText) {
        throw new NuggetsError(
          `The server tokenized anchor ${indices[k]}'s response differently after a candidate than alone (${JSON.stringify(seen.slice(0, 60))} instead of ${JSON.stringify(anchor.responseText.slice(0, 60))}).`,
          'The response span cannot be located in server tokens; report this with the model name.',
        );
      }
      oneShot[k] = sumSpan(answer, from, to, `anchor ${indices[k]} after a candidate`);
    });
    return { oneShot, truncated };
  }

  /**
   * The signals' spans from prompt log-probabilities: full(c) and query(c) with special tokens (the
   * span between their counts), and output(c) alone. Embeddings are not served: always undefined.
   * A candidate too long for the context gets no perplexities (the uncut count is not available).
   */
  async candidatePasses(candidate: Example, prepared: PreparedAnchors): Promise<CandidatePasses> {
    if (!(prepared instanceof ServedAnchors)) throw new Error('anchors were prepared by another backend');
    const { truncated } = await this.candidatePrefix(candidate, prepared);
    const countable = this.identity.contextLength - this.generated() - 4;
    const output = Buffer.byteLength(candidate.output, 'utf8') <= countable ? candidate.output : lastBytes(candidate.output, countable);
    const prompts = truncated ? [output] : [output, fullText(candidate), queryText(candidate)];
    const [alone, full, query] = await this.promptLogprobs(prompts, true, prompts.length);
    const span = (p: PromptLogprobs, from: number): Float64Array => Float64Array.from(p.logprobs.slice(from), (v, t) => {
      if (typeof v !== 'number') throw new NuggetsError(`The server gave no log-probability for token ${from + t} of a candidate's signal prompt.`);
      return v;
    });
    const conditional = full && query ? span(full, Math.max(1, Math.min(query.tokens.length, full.tokens.length))) : new Float64Array(0);
    return { conditional, direct: span(alone!, 1), embedding: undefined };
  }

  async dispose(): Promise<void> {
    // Nothing is held between requests.
  }

  /** full(c) + separator, cut from the left (in server tokens) so that the longest anchor still fits. */
  private async candidatePrefix(candidate: Example, prepared: ServedAnchors): Promise<{ prefix: string; truncated: boolean }> {
    const prefix = fullText(candidate) + prepared.options.separator;
    const room = this.identity.contextLength - this.generated() - prepared.maxTokens;
    const bytes = Buffer.byteLength(prefix, 'utf8');
    // A token covers at least one byte; special tokens add a few: below this bound no count is needed.
    if (bytes + 4 <= room) return { prefix, truncated: false };
    // Counting needs a prompt the server accepts: a tail of at most a context's worth of bytes surely is.
    const countable = this.identity.contextLength - this.generated() - 4;
    let text = bytes <= countable ? prefix : lastBytes(prefix, countable);
    let tokens = (await this.promptLogprobs([text], true, 1))[0]!.tokens;
    if (text === prefix && tokens.length <= room) return { prefix, truncated: false };
    if (text !== prefix && tokens.length < room - CUT_MARGIN_TOKENS) {
      // Tokens usually hold several bytes: try the longer tail they suggest, keeping the first if refused.
      const estimate = Math.floor((Buffer.byteLength(text, 'utf8') * (room - CUT_MARGIN_TOKENS) * 0.9) / tokens.length);
      const longer = estimate >= bytes ? prefix : lastBytes(prefix, estimate);
      if (longer.length > text.length) {
        const counted = await this.promptLogprobs([longer], true, 1).then((r) => r[0]!.tokens, () => undefined);
        if (counted && counted.length <= room) return { prefix: longer, truncated: longer !== prefix };
        if (counted) {
          text = longer;
          tokens = counted;
        }
      }
    }
    const keep = tokens.slice(tokens.length - Math.max(1, room - CUT_MARGIN_TOKENS)).reduce((n, t) => n + codePoints(t), 0);
    return { prefix: lastCodePoints(text, keep), truncated: true };
  }

  private generated(): number {
    return this.settings.logprobs === 'prompt_logprobs' ? 1 : (this.settings.maxTokens ?? 1);
  }

  /** Log-probabilities of each prompt's tokens, `batchSize` prompts per request, requests in parallel. */
  private async promptLogprobs(prompts: string[], specialTokens: boolean, batchSize: number): Promise<PromptLogprobs[]> {
    const out: PromptLogprobs[] = new Array(prompts.length);
    const batches: number[][] = [];
    for (let i = 0; i < prompts.length; i += Math.max(1, batchSize)) batches.push(prompts.slice(i, i + Math.max(1, batchSize)).map((_, k) => i + k));
    await Promise.all(batches.map(async (batch) => {
      const answers = await this.complete(batch.map((i) => prompts[i]!), specialTokens);
      batch.forEach((i, k) => (out[i] = answers[k]!));
    }));
    return out;
  }

  private async complete(prompts: string[], specialTokens: boolean): Promise<PromptLogprobs[]> {
    const mode = this.settings.logprobs ?? 'echo';
    const body = {
      model: this.model, prompt: prompts, temperature: 0, add_special_tokens: specialTokens,
      ...(mode === 'echo' ? { echo: true, logprobs: 0, max_tokens: this.generated() } : { prompt_logprobs: 0, max_tokens: 1 }),
    };
    const answer = await this.post('/completions', body);
    const choices = (answer as { choices?: unknown }).choices;
    if (!Array.isArray(choices) || choices.length !== prompts.length) {
      throw new NuggetsError(`The server answered ${Array.isArray(choices) ? choices.length : 'no'} choices for ${prompts.length} prompts: not an OpenAI-compatible completions answer.`);
    }
    return [...choices]
      .sort((a, b) => (a as { index: number }).index - (b as { index: number }).index)
      .map((choice) => parseChoice(choice as CompletionChoice, mode, this.generated()));
  }

  /** POSTs to the next endpoint in turn, retrying on 429, 5xx, timeouts and dropped connections. */
  private async post(path: string, body: unknown): Promise<unknown> {
    const retries = this.settings.retries ?? 6;
    const baseDelay = this.settings.retryDelayMs ?? 500;
    const timeoutMs = this.settings.timeoutMs ?? 300_000;
    let problem = '';
    for (let attempt = 0; attempt <= retries; attempt++) {
      const endpoint = this.endpoints[this.next++ % this.endpoints.length]!;
      let delay = Math.min(30_000, baseDelay * 2 ** attempt);
      await this.limit.acquire(this.settings.signal);
      let status = 0;
      let text = '';
      let retryAfter: string | null = null;
      try {
        const signals = [AbortSignal.timeout(timeoutMs), ...(this.settings.signal ? [this.settings.signal] : [])];
        const res = await fetch(endpoint + path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}) },
          body: JSON.stringify(body),
          signal: AbortSignal.any(signals),
        });
        status = res.status;
        retryAfter = res.headers.get('retry-after');
        text = await res.text();
      } catch (err) {
        if (this.settings.signal?.aborted) throw new NuggetsError('Scoring cancelled.');
        problem = (err as Error).name === 'TimeoutError' ? `${endpoint} gave no answer within ${timeoutMs} ms` : `${endpoint}: ${describe(err)}`;
        continue;
      } finally {
        this.limit.release();
      }
      if (status === 200) {
        try {
          return JSON.parse(text);
        } catch {
          throw new NuggetsError(`${endpoint}${path} answered with something that is not JSON: ${text.slice(0, 200)}`);
        }
      }
      const message = errorMessage(text);
      if (status === 429 || status >= 500) {
        problem = `${endpoint} answered ${status}${message ? `: ${message}` : ''}`;
        const seconds = Number(retryAfter);
        if (retryAfter !== null && Number.isFinite(seconds)) delay = Math.min(60_000, seconds * 1000);
        if (attempt < retries) await sleep(delay * (0.75 + Math.random() / 2), this.settings.signal, cancelled);
        continue;
      }
      throw new NuggetsError(
        `${endpoint}${path} answered ${status}: ${message || text.slice(0, 200)}`,
        status === 401 ? 'Set the API key (NUGGETS_API_KEY or OPENAI_API_KEY) to the one the server was started with (vLLM --api-key).'
          : status === 400 ? 'The server refused the request; if it says the prompt is too long, lower maxAnchorTokens or serve the model with a larger --max-model-len.'
            : undefined,
      );
    }
    throw new NuggetsError(`No answer from the serving endpoints after ${retries + 1} attempts: ${problem}.`, 'Check that the servers are up (curl <endpoint>/models).');
  }
}

interface CompletionChoice {
  index: number;
  logprobs?: { tokens?: string[]; token_logprobs?: (number | null)[] } | null;
  prompt_logprobs?: (Record<string, { logprob: number; decoded_token?: string | null }> | null)[] | null;
}

/** The prompt's part of a choice: vLLM's echo (prompt tokens, then the generated ones) or prompt_logprobs. */
function parseChoice(choice: CompletionChoice, mode: LogprobsRequest, generated: number): PromptLogprobs {
  const prompt = Array.isArray(choice.prompt_logprobs) ? choice.prompt_logprobs : undefined;
  if (mode === 'echo') {
    const tokens = choice.logprobs?.tokens;
    const logprobs = choice.logprobs?.token_logprobs;
    if (!Array.isArray(tokens) || !Array.isArray(logprobs) || tokens.length !== logprobs.length) {
      throw new NuggetsError('The server\'s answer has no logprobs.tokens / token_logprobs for the echoed prompt.', 'The endpoint must support echo with logprobs (vLLM does), or use the prompt_logprobs request.');
    }
    const count = prompt ? prompt.length : tokens.length - generated;
    return { tokens: tokens.slice(0, count), logprobs: logprobs.slice(0, count) };
  }
  if (!prompt) throw new NuggetsError('The server\'s answer has no prompt_logprobs: it is not vLLM, or too old; use the echo request.');
  const tokens: string[] = [];
  const logprobs: (number | null)[] = [];
  prompt.forEach((entry, i) => {
    // With prompt_logprobs: 0 each entry holds the prompt's own token only; vLLM puts it first in any case.
    const own = entry ? Object.values(entry)[0] : undefined;
    tokens.push(own?.decoded_token ?? (i === 0 ? '' : '\uFFFD'));
    logprobs.push(own ? own.logprob : null);
  });
  return { tokens, logprobs };
}

function sumSpan(p: PromptLogprobs, from: number, to: number, what: string): number {
  let s = 0;
  for (let t = from; t < to; t++) {
    const v = p.logprobs[t];
    if (typeof v !== 'number') throw new NuggetsError(`The server gave no log-probability for token ${t} of ${what}.`);
    s += v;
  }
  return s;
}

async function listModels(endpoint: string, apiKey: string | undefined, signal?: AbortSignal): Promise<{ id: string; root: string; maxModelLen: number | undefined }[]> {
  let res: Response;
  try {
    res = await fetch(`${endpoint}/models`, {
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
      signal: AbortSignal.any([AbortSignal.timeout(30_000), ...(signal ? [signal] : [])]),
    });
  } catch (err) {
    throw new NuggetsError(`Cannot reach the serving endpoint ${endpoint}: ${describe(err)}.`, 'Start the server first (see "Scoring 50,000 records" in the README), or check the address.');
  }
  const text = await res.text();
  if (res.status === 401) throw new NuggetsError(`${endpoint} refused the API key (401).`, 'Set NUGGETS_API_KEY (or OPENAI_API_KEY) to the key the server was started with.');
  if (!res.ok) throw new NuggetsError(`${endpoint}/models answered ${res.status}: ${errorMessage(text) || text.slice(0, 200)}`);
  const data = (JSON.parse(text) as { data?: { id: string; root?: string; max_model_len?: number }[] }).data ?? [];
  return data.map((m) => ({ id: m.id, root: m.root ?? m.id, maxModelLen: m.max_model_len }));
}

function normalizeEndpoint(url: string): string {
  const trimmed = url.trim().replace(/\/+$/, '');
  return /\/v1$/.test(trimmed) ? trimmed : `${trimmed}/v1`;
}

/** vLLM answers errors as {"object": "error", "message": ...}; OpenAI as {"error": {"message": ...}}. */
function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: string; error?: string | { message?: string } };
    return body.message ?? (typeof body.error === 'string' ? body.error : body.error?.message) ?? '';
  } catch {
    return '';
  }
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message;
  return why ? `${(err as Error).message} (${why})` : err instanceof Error ? err.message : String(err);
}

/** Python counts characters as code points; servers' lengths and offsets are in those. */
function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The longest head of `s` within `n` UTF-8 bytes, on a character boundary. */
function firstBytes(s: string, n: number): string {
  let size = 0;
  let out = '';
  for (const ch of s) {
    size += Buffer.byteLength(ch, 'utf8');
    if (size > n) break;
    out += ch;
  }
  return out;
}

function firstCodePoints(s: string, n: number): string {
  return Array.from(s).slice(0, n).join('');
}

/** The longest tail of `s` within `n` UTF-8 bytes, on a character boundary. */
function lastBytes(s: string, n: number): string {
  const all = Array.from(s);
  let size = 0;
  let from = all.length;
  while (from > 0) {
    const next = Buffer.byteLength(all[from - 1]!, 'utf8');
    if (size + next > n) break;
    size += next;
    from--;
  }
  return all.slice(from).join('');
}

function lastCodePoints(s: string, n: number): string {
  const all = Array.from(s);
  return all.slice(Math.max(0, all.length - n)).join('');
}

/** At most `size` holders at once; the others wait in order. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new NuggetsError('Scoring cancelled.');
    if (this.active < this.size) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the place straight to the next waiter, so that no newcomer can slip in between. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

function cancelled(): NuggetsError {
  return new NuggetsError('Scoring cancelled.');
}
