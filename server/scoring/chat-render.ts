/**
 * The chat-template renderer (ALGORITHM.md, "Conversations and chat templates"): turns an anchor, and a
 * (candidate, anchor) pair, into token ids and the span to score. Rendered text is tokenized without the
 * tokenizer's special tokens (the template writes BOS where the model wants it), and spans are token
 * counts of separate tokenizations, as in the paper:
 *   zero-shot  P0 = render(ctx(a), true), F0 = P0 + resp(a), span [len(tok(P0)), len(tok(P0)) + n(a)),
 *              n(a) = min(len(tok(F0)), maxAnchorTokens) - len(tok(P0));
 *   one-shot   P1 = render(turns(c) ++ ctx(a), true), F1 = P1 + resp(a), span [len(tok(P1)), len(tok(P1)) + n(a)).
 * A backend sees ids and spans only. The candidate's own rendering, tok(render(turns(c), false)), is the
 * prefix whose key/values may be reused, where it is a token prefix of every pair's sequence.
 */
import { chatTurnsOfAlpaca, type Example, type Turn } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import type { ChatTemplate } from './chat-template';

/**
 * What the renderer tokenizes with: a local tokenizer (TextTokenizer), or a served model's (the server's /tokenize,
 * asynchronous). `specialTokens` is false for every rendered text.
 */
export interface RenderTokenizer {
  encode(text: string, specialTokens: boolean): number[] | Promise<number[]>;
}

/** Which assistant turns the signals read (--turns): the final one (the default), or every one. */
export type TurnsScored = 'last' | 'all';

/** The assistant turns' contents ppl_direct reads under `which`: resp alone, or every assistant turn's, in order. */
export function assistantContents(turns: readonly Turn[], which: TurnsScored): string[] {
  if (which === 'last') return [turns[turns.length - 1]!.content];
  return turns.filter((t) => t.role === 'assistant').map((t) => t.content);
}

/** A token sequence and the positions [targetFrom, targetTo) whose log-probabilities are summed. */
export interface ScoredSequence {
  tokens: number[];
  targetFrom: number;
  targetTo: number;
}

/** An anchor rendered alone: tok(F0) cut after its n(a) scored tokens. */
export interface ChatAnchor extends ScoredSequence {
  context: Turn[];
  response: string;
  /** n(a): the response tokens scored, 0 for an excluded anchor. */
  scored: number;
}

/** A candidate rendered against every anchor. */
export interface ChatCandidate {
  /** tok(render(turns(c), false)), cut from the left as the pairs are. */
  prefix: number[];
  /** tok(F1) per anchor, cut after the scored tokens (and from the left when the candidate was cut). */
  pairs: ScoredSequence[];
  /** The prefix is a token prefix of every pair's sequence, ending before its span: its key/values can be reused. */
  prefixPreserving: boolean;
  truncated: boolean;
  /** The turns the pairs were rendered with (whole turns dropped from the start when too long). */
  turns: Turn[];
  /** Tokens cut from the left of every sequence after whole turns were dropped. */
  cut: number;
}

/** A conversation's turns, or an Alpaca record's two (user: instruction [+ blank line + input], assistant: output). */
export function turnsOf(e: Example): Turn[] {
  return e.turns ?? chatTurnsOfAlpaca(e);
}

export class ChatRenderer {
  constructor(readonly template: ChatTemplate, private readonly tokenizer: RenderTokenizer) {}

  async tok(text: string): Promise<number[]> {
    return this.tokenizer.encode(text, false);
  }

  /** render(), with what the template raised named after `what` (a record, an anchor, a pair). */
  render(turns: readonly Turn[], generationPrompt: boolean, what: () => string): string {
    try {
      return this.template.render(turns, generationPrompt);
    } catch (err) {
      throw new NuggetsError(`The chat template (${this.template.source}) cannot render ${what()}: ${(err as Error).message}`,
        'Fix the record, leave it out, or score with another template (--template chatml or --template FILE.jinja).');
    }
  }

  async anchor(a: Example, maxAnchorTokens: number, what: () => string): Promise<ChatAnchor> {
    const turns = turnsOf(a);
    const context = turns.slice(0, -1);
    const response = turns[turns.length - 1]!.content;
    const p0 = this.render(context, true, what);
    const prompt = (await this.tok(p0)).length;
    const full = (await this.tok(p0 + response)).slice(0, maxAnchorTokens);
    const scored = Math.max(0, full.length - prompt);
    return { context, response, scored, tokens: full, targetFrom: Math.min(prompt, full.length), targetTo: full.length };
  }

  /**
   * The candidate against every anchor. When the longest pair does not fit `contextLength`, whole turns are
   * dropped from the candidate's start, then tokens from the start of every sequence (the same count for all,
   * so that the candidate's prefix stays shared); the candidate is then marked truncated.
   */
  async candidate(c: Example, anchors: readonly ChatAnchor[], contextLength: number, what: () => string): Promise<ChatCandidate> {
    let turns = turnsOf(c);
    let dropped = false;
    for (;;) {
      const rendered = await this.renderPairs(turns, anchors, what);
      const longest = Math.max(rendered.prefix.length, ...rendered.pairs.map((p) => p.tokens.length));
      if (longest <= contextLength || turns.length <= 1) {
        const cut = Math.max(0, longest - contextLength);
        const pairs = rendered.pairs.map((p) => ({ tokens: p.tokens.slice(cut), targetFrom: Math.max(1, p.targetFrom - cut), targetTo: p.targetTo - cut }));
        const prefix = rendered.prefix.slice(cut);
        const prefixPreserving = pairs.every((p, i) => anchors[i]!.scored === 0 || (p.targetFrom > prefix.length && startsWith(p.tokens, prefix)));
        return { prefix, pairs, prefixPreserving, truncated: dropped || cut > 0, turns, cut };
      }
      turns = turns.slice(1);
      dropped = true;
    }
  }

  /**
   * The final turn's span given the turns before it, for ppl_cond: P = render(ctx(c), true), F = P + resp(c),
   * span [len(tok(P)), len(tok(F))).
   */
  async conditional(turns: readonly Turn[], what: () => string): Promise<ScoredSequence> {
    const p = this.render(turns.slice(0, -1), true, what);
    const tokens = await this.tok(p + turns[turns.length - 1]!.content);
    return { tokens, targetFrom: Math.min((await this.tok(p)).length, tokens.length), targetTo: tokens.length };
  }

  /**
   * The spans the signals pool under `--turns` (ALGORITHM.md): `last`, the final turn given the turns before it
   * (conditional); `all`, every assistant turn k given the turns before it, one sequence each, in turn order.
   */
  async assistantTurns(turns: readonly Turn[], which: TurnsScored, what: () => string): Promise<ScoredSequence[]> {
    if (which === 'last') return [await this.conditional(turns, what)];
    const out: ScoredSequence[] = [];
    for (let k = 0; k < turns.length; k++) if (turns[k]!.role === 'assistant') out.push(await this.conditional(turns.slice(0, k + 1), what));
    return out;
  }

  private async renderPairs(turns: readonly Turn[], anchors: readonly ChatAnchor[], what: () => string): Promise<{ prefix: number[]; pairs: ScoredSequence[] }> {
    const prefix = await this.tok(this.render(turns, false, what));
    const pairs = await Promise.all(anchors.map(async (a, i) => {
      if (a.scored === 0) return { tokens: [], targetFrom: 0, targetTo: 0 };
      const p1 = this.render([...turns, ...a.context], true, () => `${what()} followed by anchor ${i + 1}`);
      const prompt = (await this.tok(p1)).length;
      const tokens = (await this.tok(p1 + a.response)).slice(0, prompt + a.scored);
      return { tokens, targetFrom: prompt, targetTo: tokens.length };
    }));
    return { prefix, pairs };
  }
}

function startsWith(tokens: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > tokens.length) return false;
  for (let i = 0; i < prefix.length; i++) if (tokens[i] !== prefix[i]) return false;
  return true;
}

/** Every anchor rendered alone, in order, each named by its place in the set when the template cannot render it. */
export async function renderAnchors(renderer: ChatRenderer, anchors: readonly Example[], maxAnchorTokens: number): Promise<ChatAnchor[]> {
  const out: ChatAnchor[] = [];
  for (const [i, a] of anchors.entries()) out.push(await renderer.anchor(a, maxAnchorTokens, () => `anchor ${i + 1} ("${a.instruction.slice(0, 40).replace(/\s+/g, ' ')}…")`));
  return out;
}

/** Spans' log-probabilities pooled into one list, in order (--turns all adds them before taking the mean). */
export function concatenated(parts: readonly Float64Array[]): Float64Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
