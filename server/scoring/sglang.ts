/**
 * Scoring through SGLang's native POST /generate, where the candidate's tokens are computed once per record
 * instead of once per anchor (see ../shared/design/SERVING.md, §1 and §7).
 *
 * vLLM recomputes a prompt whose log-probabilities are asked for from its first token: a record costs
 * m x (L_c + L_a) token positions. SGLang reads its radix (prefix) cache up to `logprob_start_len`, so a
 * request that starts its log-probabilities at the last token before the response reuses everything before:
 * the record's prefix pass (its signals, sent first) leaves ids(full(c)) in the cache, and its anchors,
 * one batched request, cost about L_a each: L_c + m x L_a in all.
 *
 * Everything but the request is the vLLM backend's (serving.ts): opening (/v1/models, the context length),
 * the token ids (the server's /tokenize, or --tokenizer checked against it on a probe; the candidate and the
 * anchor tokenized apart, as the paper does), the spans, truncation, and the HTTP layer (http.ts: timeouts,
 * retries, cancellation).
 *
 * The request, per span [from, to) of a prompt of L ids: `input_ids` the ids, `sampling_params.max_new_tokens` 0,
 * `return_logprob` true, `logprob_start_len` s = from - 1, one per item. The answer's `meta_info.input_token_logprobs` holds L - s
 * entries [logprob, token_id, null]: entry k is log p(ids[s+k] | ids[<s+k]), and entry 0 is null (its logit is
 * at s - 1, not recomputed). Every entry's token id is checked against the id sent, and every log-probability
 * after entry 0 is checked to be one; `meta_info.prompt_tokens - cached_tokens` is what the server computed.
 *
 * Through the SGLang Model Gateway (sglang-router, in front of one worker per GPU; found by its GET /workers, which a
 * server does not answer) two things change (SERVING.md §5.1): the gateway re-serializes /generate with a single
 * `logprob_start_len`, so a batch sends one, the smallest of its items' starts (for a record's anchors: after the
 * candidate and the first token of the shortest query; every item's entries then start there); and each request
 * carries `X-SMG-Routing-Key: <the candidate's content id>`, so that under the gateway's `manual` policy (newer
 * gateways: also `consistent_hashing`) every request of a record reaches the worker whose cache holds its candidate.
 * The gateway neither tokenizes (no tokenizer of its own without --model-path) nor says the context length: both
 * are asked of the first worker it lists, which must be reachable from here.
 */
import type { Example } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import { send, TransientHttpError, withRetries } from '../io/http';
import type { CandidatePasses, PreparedAnchors, ScoringOptions } from './backend';
import { MAX_LOGPROB, ServingBackend, type ServingSettings, type SpanRequest } from './serving';

/** Whether `model` names SGLang servers (sglang+http://host:30000[,...]). */
export function isSglangSpec(model: string): boolean {
  return /^sglang\+https?:\/\//i.test(model.trim());
}

/** The servers of an sglang+ specification as plain URLs: "sglang+http://a:30000,http://b:30000" -> both. */
export function sglangEndpoints(model: string): string[] {
  return model.split(',').map((e) => e.trim().replace(/^sglang\+/i, '')).filter((e) => e !== '');
}

/** One item of a batched /generate answer, as far as scoring reads it. */
interface GenerateAnswer {
  meta_info?: {
    prompt_tokens?: unknown;
    cached_tokens?: unknown;
    input_token_logprobs?: unknown;
  };
}

/** Token positions sent and computed (sent minus the server's cache hits). */
interface Positions {
  sent: number;
  computed: number;
  /** Answers that did not say their prompt_tokens or cached_tokens. */
  unreported: number;
}

export class SglangBackend extends ServingBackend {
  protected static override readonly engine = 'SGLang';
  private readonly positions: Positions = { sent: 0, computed: 0, unreported: 0 };
  private zeroShotPositions: Positions | undefined;
  private records = 0;
  /** The gateway's address, when requests go through one (open). */
  private gateway: string | undefined;

  /**
   * One address: a record's anchors must reach the server whose cache holds its candidate, and requests to several
   * go round-robin (serving.ts). Several GPUs: the SGLang gateway in front of one server per GPU (found here by its
   * /workers, then routed by the candidate's id), or one server per GPU and one nuggets process per server (--shard);
   * a server started with --dp-size N balances requests over its ranks without regard to their caches (SERVING.md §5.1).
   */
  static override async open(settings: ServingSettings): Promise<ServingBackend> {
    if (settings.endpoints.length > 1) {
      throw new NuggetsError(
        `${settings.endpoints.length} SGLang servers were given (${settings.endpoints.join(', ')}); scoring through SGLang talks to one, whose prefix cache holds each record's candidate while its anchors are scored.`,
        'Give one server (--model sglang+http://host:30000); for several GPUs put the SGLang gateway in front of them (python -m sglang_router.launch_router --policy manual --worker-urls …) and give its address, or run one nuggets per server on a shard (--shard i/n).',
      );
    }
    const root = settings.endpoints[0]?.trim().replace(/\/+$/, '').replace(/\/v1$/, '');
    const workers = root !== undefined ? await gatewayWorkers(root, settings) : undefined;
    if (!workers) return super.open(settings);
    const backend = await super.open({ ...settings, endpoints: [workers[0]!], servedAt: `${root} (gateway, ${workers.length} workers)` }) as SglangBackend;
    backend.gateway = root;
    return backend;
  }

  /** Zero-shot passes, measured apart from the records' passes for the run's summary. */
  override async prepareAnchors(anchors: readonly Example[], options: ScoringOptions, signal?: AbortSignal): Promise<PreparedAnchors> {
    const before = { ...this.positions };
    try {
      return await super.prepareAnchors(anchors, options, signal);
    } finally {
      this.zeroShotPositions = difference(this.positions, before);
      Object.assign(this.positions, before);
    }
  }

  /** Each record's passes start here (scoreCandidate): its prefix pass, which leaves ids(full(c)) in the server's cache. */
  override async candidatePasses(candidate: Example, prepared: PreparedAnchors, signal?: AbortSignal): Promise<CandidatePasses> {
    this.records++;
    return super.candidatePasses(candidate, prepared, signal);
  }

  /** SGLang refuses an input as long as the context (it keeps room for one token): a prefix is cut to leave it. */
  protected override generated(): number {
    return 1;
  }

  /** All spans in one batched /generate: the items of one record share its prefix, and go to one server together. */
  protected override async spans(requests: SpanRequest[], _batchSize: number, signal: AbortSignal): Promise<Float64Array[]> {
    if (requests.length === 0) return [];
    const gateway = this.gateway;
    // A gateway passes one start for the batch: the smallest, from which every item's entries then start.
    const starts = requests.map((r) => Math.min(r.from, r.ids.length) - 1);
    if (gateway) starts.fill(Math.min(...starts));
    const names = requests.map((r) => r.what);
    const what = names.length === 1 ? names[0]! : `${names[0]} … ${names.at(-1)}`;
    const body = {
      input_ids: requests.map((r) => r.ids),
      sampling_params: { max_new_tokens: 0, temperature: 0 },
      return_logprob: true,
      logprob_start_len: gateway ? starts[0] : starts,
      top_logprobs_num: 0,
      return_text_in_logprobs: false,
    };
    const routing: Record<string, string> = gateway ? { 'x-smg-routing-key': requests.find((r) => r.candidate)?.candidate ?? 'anchors' } : {};
    const answer = await this.post((endpoint) => `${gateway ?? endpoint.replace(/\/v1$/, '')}/generate`, body, what, signal, [], routing);
    const server = gateway ?? answer.endpoint.replace(/\/v1$/, '');
    if (!Array.isArray(answer.body) || answer.body.length !== requests.length) {
      throw new NuggetsError(
        `${server}/generate answered ${Array.isArray(answer.body) ? `${answer.body.length} items` : 'something that is not a list'} for a batch of ${requests.length} (${what}): not SGLang's /generate answer.`,
        'Check that the address is an SGLang server (python -m sglang.launch_server), not a gateway or another engine; for vLLM drop the sglang+ prefix.',
      );
    }
    return requests.map((r, k) => this.span(answer.body as unknown[], k, r, starts[k]!, server));
  }

  /** The run's cost in token positions, for its summary (a record's passes: prefix, output alone and anchors). */
  costNote(): string | undefined {
    const { sent, computed, unreported } = this.positions;
    if (this.records === 0 || unreported > 0) return undefined;
    const perRecord = (n: number): string => Math.round(n / this.records).toLocaleString('en-US');
    const zero = this.zeroShotPositions;
    return `SGLang computed ${perRecord(computed)} token positions per record (prompt tokens minus cached tokens, mean over ${this.records}) of ${perRecord(sent)} sent`
      + ` (${sent > 0 ? ((100 * (sent - computed)) / sent).toFixed(1) : '0.0'}% from its prefix cache)`
      + `${zero && zero.unreported === 0 && zero.sent > 0 ? `; the anchors alone ${zero.computed.toLocaleString('en-US')} once` : ''}.`
      + this.naiveNote();
  }

  /**
   * Records whose chat rendering is not prefix-preserving (the template renders the candidate's turns otherwise when an
   * anchor's follow): their pairs share no candidate prefix, so each anchor's sequence is computed whole (naively).
   */
  private naiveNote(): string {
    const { rendered, notPrefixPreserving } = this.chatRecords;
    if (notPrefixPreserving === 0) return '';
    return ` ${notPrefixPreserving} of ${rendered} records scored naively (each anchor's sequence whole): the chat template does not render their turns `
      + 'the same when more turns follow (not prefix-preserving), so the cache could not supply their candidate. The scores are the same either way.';
  }

  /** Tokens [from, to) of item k's answer, after checking every entry against the ids sent. */
  private span(answers: unknown[], k: number, request: SpanRequest, start: number, server: string): Float64Array {
    const { ids, from, to, what } = request;
    const meta = (answers[k] as GenerateAnswer | null)?.meta_info;
    const entries = meta?.input_token_logprobs;
    const malformed = 'SGLang\'s answer is malformed or from another version; scores from it would be wrong.';
    if (!Array.isArray(entries)) {
      throw new NuggetsError(`${server}/generate: the answer has no meta_info.input_token_logprobs (${what}).`, 'The server must be SGLang\'s native /generate with return_logprob.');
    }
    if (entries.length !== ids.length - start) {
      throw new NuggetsError(
        `${server}/generate answered ${entries.length} input log-probabilities from position ${start} of the ${ids.length} tokens sent (${what}); SGLang gives one per token from logprob_start_len on, ${ids.length - start} here.`,
        malformed,
      );
    }
    entries.forEach((entry, e) => {
      const sent = ids[start + e];
      const id = Array.isArray(entry) ? entry[1] : undefined;
      if (id !== sent) {
        throw new NuggetsError(
          `${server}/generate gave token id ${JSON.stringify(id ?? null)} at position ${start + e} where ${sent} was sent (${what}): its log-probabilities belong to other tokens.`,
          malformed,
        );
      }
    });
    const span = new Float64Array(Math.max(0, to - from));
    for (let t = from; t < to; t++) {
      const v = (entries[t - start] as unknown[])[0];
      if (typeof v !== 'number' || !Number.isFinite(v) || v > MAX_LOGPROB) {
        throw new NuggetsError(
          `${server}/generate gave ${typeof v === 'number' ? String(v) : JSON.stringify(v ?? null)} as the log-probability of token ${t} (${what}): not a log-probability.`,
          v === null
            ? 'SGLang writes NaN and infinities as null; scores from this server would be wrong. Check the served model (its dtype, its weights) and the server version.'
            : 'Scores from this server would be wrong; check the served model (its dtype, its weights) and the server version.',
        );
      }
      span[t - from] = v;
    }
    const prompt = meta?.prompt_tokens;
    const cached = meta?.cached_tokens;
    if (typeof prompt === 'number' && typeof cached === 'number') {
      this.positions.sent += prompt;
      this.positions.computed += prompt - cached;
    } else {
      this.positions.unreported++;
    }
    return span;
  }
}

/**
 * The healthy workers' URLs, when `root` is an SGLang Model Gateway (its GET /workers lists them); undefined for a
 * server (404) or an address that does not answer (opening then says so).
 */
async function gatewayWorkers(root: string, settings: ServingSettings): Promise<string[] | undefined> {
  const policy = { timeoutMs: Math.min(30_000, settings.timeoutMs ?? 30_000), retries: Math.min(2, settings.retries ?? 2), retryDelayMs: settings.retryDelayMs ?? 500, ...(settings.signal ? { signal: settings.signal } : {}) };
  let listed: unknown;
  try {
    listed = await withRetries(policy, async () => {
      const answer = await send(`${root}/workers`, {}, policy);
      const text = await answer.text(16 << 20);
      if (answer.status !== 200) return undefined;
      try {
        return (JSON.parse(text) as { workers?: unknown }).workers;
      } catch {
        return undefined;
      }
    });
  } catch (err) {
    if (err instanceof TransientHttpError) return undefined;
    throw err;
  }
  if (!Array.isArray(listed)) return undefined;
  const workers = (listed as { url?: unknown; is_healthy?: unknown }[]).filter((w) => typeof w?.url === 'string' && w.is_healthy !== false).map((w) => w.url as string);
  if (workers.length === 0) {
    throw new NuggetsError(`The SGLang gateway at ${root} lists no healthy worker (GET ${root}/workers).`, 'Start the workers (python -m sglang.launch_server, one per GPU) and give them to the gateway with --worker-urls.');
  }
  return workers;
}

function difference(after: Positions, before: Positions): Positions {
  return { sent: after.sent - before.sent, computed: after.computed - before.computed, unreported: after.unreported - before.unreported };
}
