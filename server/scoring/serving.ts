/**
 * Scoring through a serving engine: an OpenAI-compatible /v1/completions endpoint that returns the
 * log-probabilities of the prompt's own tokens (vLLM: `echo: true, logprobs: 0, max_tokens: 1`, the
 * prompt's tokens then come back in choices[].logprobs; or vLLM's `prompt_logprobs: 0`, in
 * choices[].prompt_logprobs).
 *
 * Prompts go as token ids, tokenized as ALGORITHM.md says: the candidate full(c) with the tokenizer's
 * special tokens (a BOS where the model has one), the anchor full(a) apart and without them, the two
 * id lists joined. Sending the joined text instead lets the server tokenize across the boundary: a
 * SentencePiece tokenizer then drops the "▁" it puts before the anchor's first word, and every score
 * moves. The ids come from the served model's own tokenizer: vLLM's /tokenize endpoint, or the
 * model's tokenizer.json when the user names one (checked against the server's encoding of a probe
 * text when the server can tokenize).
 *
 * How the definitions map onto requests:
 * - s0(a): the prompt ids(full(a)) cut to maxAnchorTokens; the response span runs from
 *   len(ids(query(a))) to the end of the cut.
 * - s1(c, a): the prompt ids(full(c), special) + ids(separator) + the anchor's ids; the span is the
 *   anchor's, shifted by the prefix length. A prefix too long for the context is cut from the left,
 *   as the local path cuts it.
 * Every answer is checked: as many tokens as were sent, and finite log-probabilities of at most 0.
 *
 * Under a chat template (conversations, or Alpaca records with --template chat|chatml|FILE.jinja) the renderer
 * (chat-render.ts) turns each anchor, and each (candidate, anchor) pair, into token ids and the span to score, as for
 * a local model (ALGORITHM.md, "Conversations and chat templates"), tokenizing through the same encoder without
 * special tokens; the server sees those ids and spans only. A server does not say its chat template: the model's own
 * is read from the --tokenizer folder (tokenizerFiles; template-choice.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { withOwnSignal } from '../io/abort';
import { recordId, type Example } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import { RequestCancelled, send, throwIfBusy, TransientHttpError, withRetries, type RetryPolicy } from '../io/http';
import { TextTokenizer } from '../model/tokenizer';
import { anchorIndexById, cutPrefix, responseSpan, type CandidatePasses, type CandidatePrefix, type ModelIdentity, type OneShotResult, type PreparedAnchors, type ScoringBackend, type ScoringOptions } from './backend';
import { assistantContents, ChatRenderer, concatenated, renderAnchors, type ChatAnchor, type ChatCandidate } from './chat-render';
import type { ChatTemplate } from './chat-template';
import { fullText, paperExample, queryText } from './template';

export type LogprobsRequest = 'echo' | 'prompt_logprobs';

export interface ServingSettings {
  /** Base URLs (http://host:8000 or http://host:8000/v1); requests go to them in turn. */
  endpoints: string[];
  /** The served model's id; default: the first model the first endpoint lists. */
  servedModel?: string;
  /** The served model's tokenizer.json (or a folder holding it); default: the server's /tokenize endpoint. */
  tokenizer?: string;
  /** The API key (vLLM --api-key); default $NUGGETS_API_KEY, then $OPENAI_API_KEY. */
  apiKey?: string;
  /**
   * The origins (scheme://host:port) the API key may be sent to; 'anywhere' sends it to every endpoint.
   * Default: $NUGGETS_API_KEY_ORIGINS, comma-separated. An endpoint elsewhere gets no key, and a warning says so.
   */
  apiKeyOrigins?: readonly string[] | 'anywhere';
  /** Requests in flight across all endpoints (default 16 per endpoint: a serving engine batches them). */
  concurrency?: number;
  /** Milliseconds a request may wait for its answer, and then for each chunk of it (default 300000). */
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
  /** Told what the user should know but that does not stop scoring (an API key withheld). */
  onWarning?: (message: string) => void;
  /** Cancels opening: the model list and the tokenizer check. Scoring calls take their own signal (ScoringBackend). */
  signal?: AbortSignal;
  /** Where the model's name says it is served, when not at the endpoints (an SGLang gateway in front of them). */
  servedAt?: string;
}

/** Token ids of a text, with or without the tokenizer's special tokens; a request to the server ends when `signal` aborts. */
type Encoder = (text: string, specialTokens: boolean, signal: AbortSignal | undefined) => Promise<number[]>;

/** The prompt's log-probabilities as one endpoint answered them (the first token has none). */
interface PromptLogprobs {
  endpoint: string;
  logprobs: (number | null)[];
}

/**
 * Tokens [from, to) of a prompt whose log-probabilities are wanted (from >= 1); `what` names it in messages. `candidate`
 * is the content id (dataset.ts recordId) of the record whose prefix the prompt starts with; absent for an anchor alone.
 */
export interface SpanRequest {
  ids: number[];
  from: number;
  to: number;
  what: string;
  candidate?: string;
}

interface ServedAnchor {
  /** Token ids of full(a), cut to maxAnchorTokens. */
  ids: number[];
  /** Response span within `ids`: [responseFrom, ids.length). */
  responseFrom: number;
}

class ServedAnchors implements PreparedAnchors {
  readonly count: number;
  readonly responseTokens: Int32Array;
  readonly maxTokens: number;
  constructor(
    readonly anchors: ServedAnchor[], readonly zeroShot: Float64Array, readonly options: ScoringOptions, readonly separator: number[],
    readonly anchorById: ReadonlyMap<string, number>,
    /** Under a chat template: the template, and each anchor rendered alone (chat-render.ts). */
    readonly chat?: { template: ChatTemplate; anchors: ChatAnchor[] },
  ) {
    this.count = anchors.length;
    this.responseTokens = Int32Array.from(anchors, (a) => a.ids.length - a.responseFrom);
    this.maxTokens = Math.max(...anchors.map((a) => a.ids.length));
  }
}

/** The files a named tokenizer came with: its folder and tokenizer_config.json, where a served model's chat template is read from. */
export interface TokenizerFiles {
  folder: string;
  config: Record<string, unknown>;
}

/** A probe for comparing two encodings: leading spaces, accents, digits, newlines, CJK and an emoji. */
const PROBE_TEXT = 'Instruction:\n Say "héllo"  to 12 friends.\nResponse:\n Ça va? 東京 🙂';

/** Candidates' prefixes kept for their one-shot passes: above any number of records in flight a user would give. */
const PREFIXES_KEPT = 256;

/** Log-probabilities above this are not log-probabilities (float rounding gives a little above 0 at most). */
export const MAX_LOGPROB = 1e-3;

/**
 * The OpenAI-compatible (vLLM) backend. Another engine's backend (sglang.ts) extends it: opening, tokenizing, the
 * prompts and their spans, and the HTTP layer are shared; it overrides only how a span's log-probabilities are asked for (spans).
 */
export class ServingBackend implements ScoringBackend {
  /** The engine, where it is not vLLM: named in the model's name and part of its key (vLLM's keys predate it). */
  protected static readonly engine: string | undefined = undefined;

  private next = 0;
  private readonly limit: Limiter;
  private readonly policy: RetryPolicy;
  /** The prefixes of the last candidates (candidatePrefix), oldest first: one per record in flight. */
  private readonly prefixes = new Map<Example, { prepared: ServedAnchors; prefix: CandidatePrefix }>();
  /** The last candidates rendered against the anchors under a chat template (chatCandidate), oldest first. */
  private readonly renderings = new Map<Example, { prepared: ServedAnchors; rendered: ChatCandidate }>();
  /** Records rendered under a chat template, and those among them whose rendering is not prefix-preserving. */
  protected readonly chatRecords = { rendered: 0, notPrefixPreserving: 0 };
  /** The named tokenizer's folder and tokenizer_config.json (--tokenizer): where the served model's chat template is read from. */
  tokenizerFiles: TokenizerFiles | undefined;
  /** Whether a timed-out request has been warned about since the last answer (once per hang, not per request in flight). */
  private warnedTimeout = false;

  protected constructor(
    readonly identity: ModelIdentity,
    private readonly endpoints: string[],
    private readonly model: string,
    private readonly settings: ServingSettings,
    private readonly keys: Map<string, string | undefined>,
  ) {
    this.limit = new Limiter(settings.concurrency ?? 16 * endpoints.length);
    this.policy = { timeoutMs: settings.timeoutMs ?? 300_000, retries: settings.retries ?? 6, retryDelayMs: settings.retryDelayMs ?? 500, timeoutRetries: TIMEOUT_RETRIES };
  }

  /** Tokenizes as the served model does: a named tokenizer.json, or the server's /tokenize. */
  private encoder!: Encoder;

  static async open(settings: ServingSettings): Promise<ServingBackend> {
    const endpoints = settings.endpoints.map(normalizeEndpoint);
    if (endpoints.length === 0) throw new NuggetsError('No serving endpoint given.', 'Pass --model http://host:8000/v1 (several separated by commas).');
    const keys = apiKeysFor(endpoints, settings);
    const listing: RetryPolicy = {
      timeoutMs: Math.min(30_000, settings.timeoutMs ?? 30_000), retries: Math.min(2, settings.retries ?? 2), retryDelayMs: settings.retryDelayMs ?? 500, timeoutRetries: TIMEOUT_RETRIES,
      ...(settings.signal ? { signal: settings.signal } : {}),
    };
    let chosen: ServedModel | undefined;
    for (const endpoint of endpoints) {
      const models = await listModels(endpoint, keys.get(endpoint), listing, settings.onWarning);
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
      .update(JSON.stringify({ serving: 2, prompts: 'token-ids', id: chosen!.id, root: chosen!.root, contextLength, ...(this.engine ? { engine: this.engine } : {}) }))
      .digest('hex')
      .slice(0, 16);
    const where = settings.servedAt ?? (endpoints.length === 1 ? endpoints[0]! : `${endpoints.length} endpoints`);
    const identity = { name: `${chosen!.id} (${this.engine ? `${this.engine}, ` : ''}served at ${where})`, fingerprint, contextLength };
    const backend = new this(identity, endpoints, chosen!.id, settings, keys);
    backend.encoder = settings.tokenizer ? await backend.checkedLocalTokenizer(settings.tokenizer) : await backend.serverTokenizer();
    return backend;
  }

  async prepareAnchors(anchors: readonly Example[], options: ScoringOptions, signal?: AbortSignal): Promise<PreparedAnchors> {
    if (anchors.length === 0) throw new NuggetsError('The anchor set is empty.');
    if (options.maxAnchorTokens + this.generated() >= this.identity.contextLength) {
      throw new NuggetsError(`maxAnchorTokens (${options.maxAnchorTokens}) must be below the model's context length (${this.identity.contextLength}).`);
    }
    if (options.chatTemplate) return this.prepareChatAnchors(anchors, options, options.chatTemplate, signal);
    anchors.forEach((a) => paperExample(a));
    return withOwnSignal(signal, async (call) => {
      const served = await Promise.all(anchors.map(async (a): Promise<ServedAnchor> => {
        const [full, query] = await Promise.all([this.encoder(fullText(a), false, call), this.encoder(queryText(a), false, call)]);
        const ids = full.slice(0, options.maxAnchorTokens);
        return { ids, responseFrom: Math.min(query.length, ids.length) };
      }));
      const zeroShot = new Float64Array(anchors.length);
      const wanted = served.map((a, i) => ({ a, i })).filter(({ a }) => a.ids.length > a.responseFrom);
      const spans = await this.spans(wanted.map(({ a, i }) => ({ ids: a.ids, from: a.responseFrom, to: a.ids.length, what: `anchor ${i} alone` })), options.batchSize, call);
      wanted.forEach(({ i }, k) => (zeroShot[i] = sum(spans[k]!)));
      const separator = options.separator ? await this.encoder(options.separator, false, call) : [];
      return new ServedAnchors(served, zeroShot, options, separator, anchorIndexById(anchors));
    });
  }

  async oneShot(candidate: Example, prepared: PreparedAnchors, anchorIndices?: readonly number[], signal?: AbortSignal): Promise<OneShotResult> {
    if (!(prepared instanceof ServedAnchors)) throw new Error('anchors were prepared by another backend');
    const indices = anchorIndices ?? prepared.anchors.map((_, i) => i);
    if (prepared.chat) return this.chatOneShot(candidate, prepared, indices, signal);
    return withOwnSignal(signal, async (call) => {
      const { prefix, truncated } = await this.candidatePrefix(candidate, prepared, call);
      const record = recordLabel(candidate);
      const id = recordId(candidate);
      const oneShot = new Float64Array(indices.length);
      const wanted = indices.map((anchor, k) => ({ anchor, ids: prepared.anchors[anchor]!, k })).filter((w) => w.ids.ids.length > w.ids.responseFrom);
      const spans = await this.spans(wanted.map(({ anchor, ids }) => ({
        ids: [...prefix, ...ids.ids], from: prefix.length + ids.responseFrom, to: prefix.length + ids.ids.length, what: `anchor ${anchor} after ${record}`, candidate: id,
      })), prepared.options.batchSize, call);
      wanted.forEach(({ k }, j) => (oneShot[k] = sum(spans[j]!)));
      return { oneShot, truncated };
    });
  }

  /**
   * The signals' spans from prompt log-probabilities: full(c) and query(c) with special tokens (the
   * span between their counts), and output(c) alone. Embeddings are not served: always undefined.
   * A candidate too long for the context gets no perplexities (the uncut count is not available).
   */
  async candidatePasses(candidate: Example, prepared: PreparedAnchors, signal?: AbortSignal): Promise<CandidatePasses> {
    if (!(prepared instanceof ServedAnchors)) throw new Error('anchors were prepared by another backend');
    if (prepared.chat) return this.chatCandidatePasses(candidate, prepared, signal);
    return withOwnSignal(signal, async (call) => {
      // The same prefix and cut as the one-shot passes, so that a truncated candidate's span is what remains of it.
      const [prefixed, query, output] = await Promise.all([
        this.candidatePrefix(candidate, prepared, call), this.encoder(queryText(candidate), true, call), this.encoder(candidate.output, true, call),
      ]);
      const { prefix } = prefixed;
      const { from: spanFrom, to: candidateEnd } = responseSpan(prefixed, query.length, prepared.separator.length);
      const alone = output.slice(Math.max(0, output.length - (this.identity.contextLength - this.generated())));
      const record = recordLabel(candidate);
      const what = [`${record}'s response after its instruction`, `${record}'s response alone`];
      const id = recordId(candidate);
      const requests: SpanRequest[] = [{ ids: prefix, from: spanFrom, to: candidateEnd, what: what[0]!, candidate: id }];
      if (alone.length > 1) requests.push({ ids: alone, from: 1, to: alone.length, what: what[1]!, candidate: id });
      const [conditional, direct] = await this.spans(requests, requests.length, call);
      return { conditional: conditional!, direct: direct ?? new Float64Array(0), embedding: undefined };
    });
  }

  /**
   * Under a chat template (ALGORITHM.md, "Conversations and chat templates"; chat-render.ts): each anchor rendered
   * alone and tokenized as the served model tokenizes, without special tokens; s0 over its first n(a) response tokens.
   */
  private async prepareChatAnchors(anchors: readonly Example[], options: ScoringOptions, template: ChatTemplate, signal: AbortSignal | undefined): Promise<PreparedAnchors> {
    if (options.separator) throw new NuggetsError('--separator applies to the paper template only: under a chat template the candidate\'s turns come before the anchor\'s as one conversation.');
    return withOwnSignal(signal, async (call) => {
      const rendered = await renderAnchors(this.renderer(template, call), anchors, options.maxAnchorTokens);
      const served = rendered.map((a): ServedAnchor => ({ ids: a.tokens, responseFrom: a.targetFrom }));
      const zeroShot = new Float64Array(anchors.length);
      const wanted = served.map((a, i) => ({ a, i })).filter(({ a }) => a.ids.length > a.responseFrom);
      const spans = await this.spans(wanted.map(({ a, i }) => ({ ids: a.ids, from: a.responseFrom, to: a.ids.length, what: `anchor ${i} alone` })), options.batchSize, call);
      wanted.forEach(({ i }, k) => (zeroShot[i] = sum(spans[k]!)));
      return new ServedAnchors(served, zeroShot, options, [], anchorIndexById(anchors), { template, anchors: rendered });
    });
  }

  /** Under a chat template: s1 over each pair's sequence tok(F1), its span the anchor's n(a) response tokens. */
  private async chatOneShot(candidate: Example, prepared: ServedAnchors, indices: readonly number[], signal: AbortSignal | undefined): Promise<OneShotResult> {
    return withOwnSignal(signal, async (call) => {
      const rendered = await this.chatCandidate(candidate, prepared, call);
      const record = recordLabel(candidate);
      const id = recordId(candidate);
      const oneShot = new Float64Array(indices.length);
      const wanted = indices.map((anchor, k) => ({ anchor, pair: rendered.pairs[anchor]!, k })).filter((w) => prepared.chat!.anchors[w.anchor]!.scored > 0);
      const spans = await this.spans(wanted.map(({ anchor, pair }) => ({
        ids: pair.tokens, from: pair.targetFrom, to: pair.targetTo, what: `anchor ${anchor} after ${record}`, candidate: id,
      })), prepared.options.batchSize, call);
      wanted.forEach(({ k }, j) => (oneShot[k] = sum(spans[j]!)));
      return { oneShot, truncated: rendered.truncated };
    });
  }

  /**
   * Under a chat template, the signals' spans as the local engine reads them: ppl_cond over the final turn given the
   * turns before it (asked over the candidate's whole rendering where that sequence is its token prefix, so that the
   * server's prefix cache then holds the candidate for its anchors), ppl_direct over resp(c) alone with special tokens.
   * Under --turns all, every assistant turn, each given the turns before it, and each alone, in turn order.
   */
  private async chatCandidatePasses(candidate: Example, prepared: ServedAnchors, signal: AbortSignal | undefined): Promise<CandidatePasses> {
    const turns = prepared.options.turns ?? 'last';
    return withOwnSignal(signal, async (call) => {
      const rendered = await this.chatCandidate(candidate, prepared, call);
      const renderer = this.renderer(prepared.chat!.template, call);
      const record = recordLabel(candidate);
      const id = recordId(candidate);
      const room = this.identity.contextLength - this.generated();
      const finals = await renderer.assistantTurns(rendered.turns, turns, () => record);
      const { prefix } = rendered;
      const final = finals[0]!;
      const shared = turns === 'last' && rendered.cut === 0 && final.targetFrom >= 1 && final.tokens.length <= prefix.length && final.tokens.every((t, i) => t === prefix[i]);
      const conditional: SpanRequest[] = shared
        ? [{ ids: prefix, from: final.targetFrom, to: final.targetTo, what: `${record}'s final turn after the turns before it`, candidate: id }]
        : finals.flatMap((sequence, k) => {
          const cut = Math.max(0, sequence.tokens.length - room);
          const from = Math.max(1, sequence.targetFrom - cut);
          const to = sequence.targetTo - cut;
          return to > from ? [{ ids: sequence.tokens.slice(cut), from, to, what: `${record}'s assistant turn ${turns === 'last' ? 'last' : k + 1} after the turns before it`, candidate: id }] : [];
        });
      const contents = turns === 'last' ? [candidate.output] : assistantContents(rendered.turns, turns);
      const direct: SpanRequest[] = [];
      for (const [k, content] of contents.entries()) {
        const output = await this.encoder(content, true, call);
        const alone = output.slice(Math.max(0, output.length - room));
        if (alone.length > 1) direct.push({ ids: alone, from: 1, to: alone.length, what: `${record}'s assistant turn ${turns === 'last' ? 'last' : k + 1} alone`, candidate: id });
      }
      const spans = await this.spans([...conditional, ...direct], conditional.length + direct.length, call);
      return { conditional: concatenated(spans.slice(0, conditional.length)), direct: concatenated(spans.slice(conditional.length)), embedding: undefined };
    });
  }

  /** The candidate rendered against every anchor (whole turns, then tokens, cut to fit); the last ones are kept, as their prefixes are. */
  private async chatCandidate(candidate: Example, prepared: ServedAnchors, signal: AbortSignal): Promise<ChatCandidate> {
    const kept = this.renderings.get(candidate);
    if (kept?.prepared === prepared) return kept.rendered;
    const rendered = await this.renderer(prepared.chat!.template, signal)
      .candidate(candidate, prepared.chat!.anchors, this.identity.contextLength - this.generated(), () => recordLabel(candidate));
    this.renderings.delete(candidate);
    this.renderings.set(candidate, { prepared, rendered });
    if (this.renderings.size > PREFIXES_KEPT) this.renderings.delete(this.renderings.keys().next().value!);
    this.chatRecords.rendered++;
    if (!rendered.prefixPreserving) this.chatRecords.notPrefixPreserving++;
    return rendered;
  }

  /** A renderer that tokenizes as the served model does (a named tokenizer.json, or the server's /tokenize), until `signal` aborts. */
  private renderer(template: ChatTemplate, signal: AbortSignal): ChatRenderer {
    return new ChatRenderer(template, { encode: (text, specialTokens) => this.encoder(text, specialTokens, signal) });
  }

  async dispose(): Promise<void> {
    // Nothing is held between requests.
  }

  /**
   * ids(full(c), special) + ids(separator), cut so that the longest anchor still fits. The last candidates' are kept
   * (PREFIXES_KEPT: more than records are ever in flight): a record's one-shot passes (in parts, with an early stop)
   * follow its signal passes, and need no new /tokenize.
   */
  private async candidatePrefix(candidate: Example, prepared: ServedAnchors, signal: AbortSignal): Promise<CandidatePrefix> {
    const kept = this.prefixes.get(candidate);
    if (kept?.prepared === prepared) return kept.prefix;
    const room = this.identity.contextLength - this.generated() - prepared.maxTokens;
    const prefix = cutPrefix(await this.encoder(fullText(paperExample(candidate)), true, signal), prepared.separator, room);
    this.prefixes.delete(candidate);
    this.prefixes.set(candidate, { prepared, prefix });
    if (this.prefixes.size > PREFIXES_KEPT) this.prefixes.delete(this.prefixes.keys().next().value!);
    return prefix;
  }

  /** Tokens the server generates per prompt (room kept in the context for them). */
  protected generated(): number {
    return this.settings.logprobs === 'prompt_logprobs' ? 1 : (this.settings.maxTokens ?? 1);
  }

  /** The named tokenizer.json, compared with the server's own encoding of a probe text. */
  private async checkedLocalTokenizer(path: string): Promise<Encoder> {
    const { tokenizer, files } = readTokenizer(path);
    this.tokenizerFiles = files;
    const mine = tokenizer.encode(PROBE_TEXT, true);
    const server = await this.tokenizeOnServer(PROBE_TEXT, true, this.settings.signal);
    // Without /tokenize the server's echo of the probe still tells its token count.
    const theirs = server ?? (await this.complete([PROBE_TEXT], ['the tokenizer probe'], this.settings.signal))[0]!.logprobs;
    const differs = server ? firstDifference(mine, server) : (theirs.length === mine.length ? -1 : Math.min(theirs.length, mine.length));
    if (differs >= 0) {
      throw new NuggetsError(
        `The tokenizer ${path} is not the one ${this.endpoints[0]} serves: it encodes a probe text as ${mine.length} tokens, the server as ${theirs.length}`
          + (server ? ` (first difference at token ${differs}: ${mine[differs] ?? 'none'} vs ${server[differs] ?? 'none'}).` : '.'),
        'Name the served model\'s own tokenizer.json with --tokenizer, or leave --tokenizer out to use the server\'s /tokenize.',
      );
    }
    return async (text, specialTokens) => tokenizer.encode(text, specialTokens);
  }

  /** The server's /tokenize (vLLM), checked once here so that a server without it is refused before scoring. */
  private async serverTokenizer(): Promise<Encoder> {
    if ((await this.tokenizeOnServer(PROBE_TEXT, true, this.settings.signal)) === undefined) {
      throw new NuggetsError(
        `${rootOf(this.endpoints[0]!)}/tokenize answered 404: this server cannot tell how it tokenizes, and Nuggets sends token ids (the candidate and the anchor tokenized apart, as the paper does).`,
        'Name the served model\'s tokenizer.json (a file or the model\'s folder) with --tokenizer, or serve the model with vLLM, which has /tokenize.',
      );
    }
    return async (text, specialTokens, signal) => (await this.tokenizeOnServer(text, specialTokens, signal))!;
  }

  /** vLLM's POST /tokenize: {model, prompt, add_special_tokens} -> {tokens}; undefined when the server has no such endpoint. */
  private async tokenizeOnServer(text: string, specialTokens: boolean, signal: AbortSignal | undefined): Promise<number[] | undefined> {
    const answer = await this.post((endpoint) => `${rootOf(endpoint)}/tokenize`, { model: this.model, prompt: text, add_special_tokens: specialTokens }, 'tokenizing', signal, [404, 405]);
    if (answer.status !== 200) return undefined;
    const tokens = (answer.body as { tokens?: unknown }).tokens;
    if (!Array.isArray(tokens) || !tokens.every((t) => Number.isInteger(t))) {
      throw new NuggetsError(`${answer.endpoint}: the /tokenize answer has no list of token ids ("tokens").`, 'Name the served model\'s tokenizer.json with --tokenizer instead.');
    }
    return tokens as number[];
  }

  /** The log-probabilities of each request's span, each checked to be one: `batchSize` prompts per completions request, requests in parallel. */
  protected async spans(requests: SpanRequest[], batchSize: number, signal: AbortSignal): Promise<Float64Array[]> {
    const answers = await this.promptLogprobs(requests.map((r) => r.ids), batchSize, (k) => requests[k]!.what, signal);
    return requests.map((r, k) => spanLogprobs(answers[k]!, r.ids.length, r.from, r.to, r.what));
  }

  /** Log-probabilities of each prompt's tokens, `batchSize` prompts per request, requests in parallel. */
  private async promptLogprobs(prompts: (string | number[])[], batchSize: number, what: (index: number) => string, signal: AbortSignal): Promise<PromptLogprobs[]> {
    const out: PromptLogprobs[] = new Array(prompts.length);
    const size = Math.max(1, batchSize);
    const batches: number[][] = [];
    for (let i = 0; i < prompts.length; i += size) batches.push(prompts.slice(i, i + size).map((_, k) => i + k));
    await Promise.all(batches.map(async (batch) => {
      const answers = await this.complete(batch.map((i) => prompts[i]!), batch.map(what), signal);
      batch.forEach((i, k) => (out[i] = answers[k]!));
    }));
    return out;
  }

  /** One completions request; `names` says what each prompt is, for messages. */
  private async complete(prompts: (string | number[])[], names: string[], signal: AbortSignal | undefined): Promise<PromptLogprobs[]> {
    const what = names.length === 1 ? names[0]! : `${names[0]} … ${names.at(-1)}`;
    const mode = this.settings.logprobs ?? 'echo';
    const body = {
      model: this.model, prompt: prompts, temperature: 0,
      ...(mode === 'echo' ? { echo: true, logprobs: 0, max_tokens: this.generated() } : { prompt_logprobs: 0, max_tokens: 1 }),
    };
    const answer = await this.post((endpoint) => `${endpoint}/completions`, body, what, signal);
    const choices = (answer.body as { choices?: unknown }).choices;
    if (!Array.isArray(choices) || choices.length !== prompts.length) {
      throw new NuggetsError(`${answer.endpoint} answered ${Array.isArray(choices) ? choices.length : 'no'} choices for ${prompts.length} prompts (${what}): not an OpenAI-compatible completions answer.`);
    }
    return [...choices]
      .sort((a, b) => (a as { index: number }).index - (b as { index: number }).index)
      .map((choice, k) => ({ endpoint: answer.endpoint, logprobs: parseChoice(choice as CompletionChoice, mode, this.generated(), `${answer.endpoint} (${names[k]})`) }));
  }

  /**
   * POSTs to the next endpoint in turn, through the HTTP layer's timeouts and retries (429, 5xx,
   * timeouts, dropped connections), until `signal` aborts it (while queued for a place, in flight, or
   * between retries). `accept` lists further statuses handed back instead of refused; `headers` are sent besides.
   * The API key goes only where `url` stays at the endpoint's origin (apiKeysFor decided it for that origin).
   */
  protected async post(
    url: (endpoint: string) => string, body: unknown, what: string, signal: AbortSignal | undefined, accept: number[] = [], headers: Record<string, string> = {},
  ): Promise<{ endpoint: string; status: number; body: unknown }> {
    const policy: RetryPolicy = { ...this.policy, ...(signal ? { signal } : {}) };
    try {
      const answered = await withRetries(policy, async () => {
        const endpoint = this.endpoints[this.next++ % this.endpoints.length]!;
        await this.limit.acquire(signal);
        try {
          const target = url(endpoint);
          const key = new URL(target).origin === new URL(endpoint).origin ? this.keys.get(endpoint) : undefined;
          const answer = await send(target, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...headers, ...(key ? { authorization: `Bearer ${key}` } : {}) },
            body: JSON.stringify(body),
          }, policy);
          const text = await answer.text();
          if (answer.status === 200) return { endpoint, status: 200, body: parseJson(text, answer.url, what) };
          if (accept.includes(answer.status)) return { endpoint, status: answer.status, body: undefined };
          const message = errorMessage(text);
          // A request sent elsewhere than its endpoint (SGLang's gateway) is named by where it went: the gateway answered.
          throwIfBusy(answer, new URL(target).origin === new URL(endpoint).origin ? endpoint : target, message ? `: ${message}` : '');
          throw new NuggetsError(
            `${answer.url} answered ${answer.status} (${what}): ${message || text.slice(0, 200)}`,
            answer.status === 401 ? apiKeyHint(endpoint, key)
              : answer.status === 400 ? 'The server refused the request; if it says the prompt is too long, lower maxAnchorTokens or serve the model with a larger --max-model-len.'
                : undefined,
          );
        } finally {
          this.limit.release();
        }
      }, (problem, error) => {
        if (!error.timedOut || this.warnedTimeout) return;
        this.warnedTimeout = true;
        this.settings.onWarning?.(`${problem} (${what}); trying once more: a second timeout ends the run.`);
      });
      this.warnedTimeout = false; // answered: the next hang is warned about again
      return answered;
    } catch (err) {
      if (err instanceof RequestCancelled) throw new RequestCancelled('Scoring');
      if (err instanceof TransientHttpError) {
        throw new NuggetsError(`No answer from the serving endpoints after ${err.attempts} attempt${err.attempts === 1 ? '' : 's'} (${what}): ${err.message}.`, 'Check that the servers are up (curl <endpoint>/models), or allow more time with --timeout SECONDS.');
      }
      throw err;
    }
  }
}

/**
 * A request that times out is tried once more, at once; a second timeout ends it. So a hung server ends
 * the run within 2 x --timeout (retries with backoff would multiply it), while 429 / 5xx and dropped
 * connections keep their retries.
 */
const TIMEOUT_RETRIES = 1;

interface ServedModel {
  id: string;
  root: string;
  maxModelLen: number | undefined;
}

interface CompletionChoice {
  index: number;
  logprobs?: { tokens?: string[]; token_logprobs?: (number | null)[] } | null;
  prompt_logprobs?: (Record<string, { logprob: number; decoded_token?: string | null }> | null)[] | null;
}

/** The prompt's log-probabilities in a choice: vLLM's echo (prompt tokens, then the generated ones) or prompt_logprobs. */
function parseChoice(choice: CompletionChoice, mode: LogprobsRequest, generated: number, where: string): (number | null)[] {
  const prompt = Array.isArray(choice.prompt_logprobs) ? choice.prompt_logprobs : undefined;
  if (mode === 'echo') {
    const tokens = choice.logprobs?.tokens;
    const logprobs = choice.logprobs?.token_logprobs;
    if (!Array.isArray(tokens) || !Array.isArray(logprobs)) {
      throw new NuggetsError(`${where}: the answer has no logprobs.tokens / token_logprobs for the echoed prompt.`, 'The endpoint must support echo with logprobs (vLLM does), or use the prompt_logprobs request.');
    }
    if (tokens.length !== logprobs.length) {
      throw new NuggetsError(`${where}: token and log-probability counts differ in the answer (${tokens.length} tokens, ${logprobs.length} log-probabilities).`, 'The server\'s answer is malformed; scores from it would be wrong.');
    }
    const promptTokens = tokens.length - generated;
    if (prompt && prompt.length !== promptTokens) {
      throw new NuggetsError(`${where}: the answer echoes ${promptTokens} prompt tokens but gives ${prompt.length} prompt log-probabilities.`, 'The server\'s answer is malformed; scores from it would be wrong.');
    }
    return logprobs.slice(0, promptTokens);
  }
  if (!prompt) throw new NuggetsError(`${where}: the answer has no prompt_logprobs: it is not vLLM, or too old; use the echo request.`);
  // With prompt_logprobs: 0 each entry holds the prompt's own token only; vLLM puts it first in any case.
  return prompt.map((entry) => (entry ? Object.values(entry)[0]?.logprob ?? null : null));
}

function sum(values: Float64Array): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/** The log-probabilities of tokens [from, to) of a prompt of `sent` tokens, each checked to be one. */
function spanLogprobs(answer: PromptLogprobs, sent: number, from: number, to: number, what: string): Float64Array {
  if (answer.logprobs.length !== sent) {
    throw new NuggetsError(
      `${answer.endpoint} answered ${answer.logprobs.length} prompt tokens for the ${sent} sent (${what}); its log-probabilities cannot be matched to the tokens.`,
      'The server must return the log-probability of every prompt token (vLLM: echo with logprobs, or prompt_logprobs).',
    );
  }
  const span = new Float64Array(Math.max(0, to - from));
  for (let t = from; t < to; t++) {
    const v = answer.logprobs[t];
    if (typeof v !== 'number' || !Number.isFinite(v) || v > MAX_LOGPROB) {
      throw new NuggetsError(
        `${answer.endpoint} gave ${typeof v === 'number' ? String(v) : JSON.stringify(v ?? null)} as the log-probability of token ${t} (${what}): not a log-probability.`,
        'Scores from this server would be wrong; check the served model (its dtype, its weights) and the server version.',
      );
    }
    span[t - from] = v;
  }
  return span;
}

/** JSON, also as Python's json module writes it: bare NaN and Infinity become strings, refused where a number is due. */
export function parseJson(text: string, url: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    try {
      return JSON.parse(text.replace(/([:[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '$1"$2"'));
    } catch {
      throw new NuggetsError(`${url} answered with something that is not JSON (${what}): ${JSON.stringify(text.slice(0, 120))}`, 'Check that the address is an OpenAI-compatible server (vLLM: http://host:8000/v1).');
    }
  }
}

async function listModels(endpoint: string, key: string | undefined, policy: RetryPolicy, onWarning?: (message: string) => void): Promise<ServedModel[]> {
  let status: number;
  let text: string;
  try {
    ({ status, text } = await withRetries(policy, async () => {
      const answer = await send(`${endpoint}/models`, { headers: key ? { authorization: `Bearer ${key}` } : {} }, policy);
      const body = await answer.text(16 << 20);
      throwIfBusy(answer, `${endpoint}/models`);
      return { status: answer.status, text: body };
    }, (problem, error) => {
      if (error.timedOut) onWarning?.(`${problem} (the model list); trying once more: a second timeout ends the run.`);
    }));
  } catch (err) {
    if (err instanceof TransientHttpError) {
      throw new NuggetsError(`Cannot reach the serving endpoint ${endpoint}: ${err.message}.`, 'Start the server first (see "Scoring 50,000 records" in the README), or check the address.');
    }
    throw err;
  }
  if (status === 401) throw new NuggetsError(`${endpoint} refused the API key (401).`, apiKeyHint(endpoint, key));
  if (status !== 200) throw new NuggetsError(`${endpoint}/models answered ${status}: ${errorMessage(text) || text.slice(0, 200)}`, 'Check the address: it should be the server\'s OpenAI-compatible base URL (vLLM: http://host:8000/v1).');
  let data: unknown;
  try {
    data = (JSON.parse(text) as { data?: unknown }).data;
  } catch {
    data = undefined;
  }
  if (!Array.isArray(data) || !data.every((m) => typeof (m as { id?: unknown })?.id === 'string')) {
    throw new NuggetsError(
      `${endpoint}/models answered something that is not an OpenAI model list (JSON with "data": [{"id": …}]): ${JSON.stringify(text.slice(0, 120))}`,
      'Check the address: it should be the server\'s OpenAI-compatible base URL (vLLM: http://host:8000/v1).',
    );
  }
  return (data as { id: string; root?: string; max_model_len?: number }[]).map((m) => ({ id: m.id, root: m.root ?? m.id, maxModelLen: m.max_model_len }));
}

/**
 * The API key for each endpoint: the key goes only to the origins it is meant for, so that an address
 * from a setting or a typo never receives it. Endpoints left without it are named in a warning.
 */
/** "record 12", in messages about a candidate's log-probabilities. */
export function recordLabel(candidate: Example): string {
  return 'index' in candidate && typeof candidate.index === 'number' ? `record ${candidate.index}` : 'the candidate';
}

function apiKeysFor(endpoints: string[], settings: ServingSettings): Map<string, string | undefined> {
  const fromEnvironment = settings.apiKey === undefined;
  const key = settings.apiKey ?? (process.env['NUGGETS_API_KEY'] || process.env['OPENAI_API_KEY'] || undefined);
  const allowed = settings.apiKeyOrigins ?? originList(process.env['NUGGETS_API_KEY_ORIGINS'] ?? '');
  const keys = new Map<string, string | undefined>();
  const withheld: string[] = [];
  for (const endpoint of endpoints) {
    const permitted = allowed === 'anywhere' || allowed.includes(new URL(endpoint).origin);
    keys.set(endpoint, key && permitted ? key : undefined);
    if (key && !permitted) withheld.push(new URL(endpoint).origin);
  }
  if (withheld.length > 0) {
    settings.onWarning?.(fromEnvironment
      ? `the API key (NUGGETS_API_KEY / OPENAI_API_KEY) is not sent to ${withheld.join(', ')}: not listed in NUGGETS_API_KEY_ORIGINS. List the origin there (comma-separated), or pass --send-api-key-anywhere.`
      : `the serving API key is not sent to ${withheld.join(', ')}: it was stored for another endpoint.`);
  }
  return keys;
}

/** "http://a:8000, https://b/v1" -> their origins; entries that are not URLs are left out. */
export function originList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '').flatMap((s) => {
    try {
      return [new URL(s).origin];
    } catch {
      return [];
    }
  });
}

function apiKeyHint(endpoint: string, key: string | undefined): string {
  const origin = new URL(endpoint).origin;
  return key
    ? 'Set the API key (NUGGETS_API_KEY or OPENAI_API_KEY) to the one the server was started with (vLLM --api-key).'
    : `No API key was sent to ${origin}. Set NUGGETS_API_KEY and list ${origin} in NUGGETS_API_KEY_ORIGINS (or pass --send-api-key-anywhere); in VS Code, "Nuggets: Set Serving API Key" for this endpoint.`;
}

/** The named tokenizer: a tokenizer.json, or a folder holding one (with tokenizer_config.json beside it when there is one). */
function readTokenizer(path: string): { tokenizer: TextTokenizer; files: TokenizerFiles } {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'tokenizer.json') : path;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new NuggetsError(`Cannot read the tokenizer ${file}: ${(err as Error).message}`, 'Give --tokenizer the served model\'s tokenizer.json, or the folder that holds it.');
  }
  const configFile = join(dirname(file), 'tokenizer_config.json');
  let config: Record<string, unknown> = {};
  if (existsSync(configFile)) {
    try {
      config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new NuggetsError(`Cannot read ${configFile}: ${(err as Error).message}`);
    }
  }
  return { tokenizer: new TextTokenizer(json, config, file), files: { folder: dirname(file), config } };
}

function firstDifference(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

function normalizeEndpoint(url: string): string {
  const trimmed = url.trim().replace(/\/+$/, '');
  try {
    new URL(trimmed);
  } catch {
    throw new NuggetsError(`"${url}" is not a URL.`, 'Give the server as http://host:8000/v1.');
  }
  return /\/v1$/.test(trimmed) ? trimmed : `${trimmed}/v1`;
}

/** http://host:8000/v1 -> http://host:8000: where vLLM serves /tokenize. */
function rootOf(endpoint: string): string {
  return endpoint.replace(/\/v1$/, '');
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

/** At most `size` holders at once; the others wait in order, each until its signal aborts. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new RequestCancelled('Scoring');
    if (this.active < this.size) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const admit = (): void => {
        signal?.removeEventListener('abort', leave);
        resolve();
      };
      const leave = (): void => {
        this.waiting.splice(this.waiting.indexOf(admit), 1);
        reject(new RequestCancelled('Scoring'));
      };
      this.waiting.push(admit);
      signal?.addEventListener('abort', leave, { once: true });
    });
  }

  /** Hands the place straight to the next waiter, so that no newcomer can slip in between. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}
