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
import { chatTurnsOfAlpaca, type Example, type Turn } from '../dataset';
import { NuggetsError } from '../errors';
import type { TextTokenizer } from '../model/tokenizer';
import type { ChatTemplate } from './chat-template';

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
  constructor(readonly template: ChatTemplate, private readonly tokenizer: TextTokenizer) {}

  tok(text: string): number[] {
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

  anchor(a: Example, maxAnchorTokens: number, what: () => string): ChatAnchor {
    const turns = turnsOf(a);
    const context = turns.slice(0, -1);
    const response = turns[turns.length - 1]!.content;
    const p0 = this.render(context, true, what);
    const prompt = this.tok(p0).length;
    const full = this.tok(p0 + response).slice(0, maxAnchorTokens);
    const scored = Math.max(0, full.length - prompt);
    return { context, response, scored, tokens: full, targetFrom: Math.min(prompt, full.length), targetTo: full.length };
  }

  /**
   * The candidate against every anchor. When the longest pair does not fit `contextLength`, whole turns are
   * dropped from the candidate's start, then tokens from the start of every sequence (the same count for all,
   * so that the candidate's prefix stays shared); the candidate is then marked truncated.
   */
  candidate(c: Example, anchors: readonly ChatAnchor[], contextLength: number, what: () => string): ChatCandidate {
    let turns = turnsOf(c);
    let dropped = false;
    for (;;) {
      const rendered = this.renderPairs(turns, anchors, what);
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
  conditional(turns: readonly Turn[], what: () => string): ScoredSequence {
    const p = this.render(turns.slice(0, -1), true, what);
    const tokens = this.tok(p + turns[turns.length - 1]!.content);
    return { tokens, targetFrom: Math.min(this.tok(p).length, tokens.length), targetTo: tokens.length };
  }

  private renderPairs(turns: readonly Turn[], anchors: readonly ChatAnchor[], what: () => string): { prefix: number[]; pairs: ScoredSequence[] } {
    const prefix = this.tok(this.render(turns, false, what));
    const pairs = anchors.map((a, i) => {
      if (a.scored === 0) return { tokens: [], targetFrom: 0, targetTo: 0 };
      const p1 = this.render([...turns, ...a.context], true, () => `${what()} followed by anchor ${i + 1}`);
      const prompt = this.tok(p1).length;
      const tokens = this.tok(p1 + a.response).slice(0, prompt + a.scored);
      return { tokens, targetFrom: prompt, targetTo: tokens.length };
    });
    return { prefix, pairs };
  }
}

function startsWith(tokens: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > tokens.length) return false;
  for (let i = 0; i < prefix.length; i++) if (tokens[i] !== prefix[i]) return false;
  return true;
}
