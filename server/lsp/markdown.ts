/**
 * Hover text. Everything that comes from a dataset is escaped so that it renders as the characters
 * it is: every ASCII punctuation character gets a backslash (no links, autolinks, images, code, HTML
 * or command URIs can form), and whitespace runs collapse to one space (no block structure).
 */
import { formatGolden, type CandidateScore } from '../scoring/golden';
import { PASS_SIGNALS } from '../signals';
import type { Example, Turn } from '../records/dataset';

export function escapeMarkdown(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/[!-/:-@[-`{-~]/g, (c) => `\\${c}`);
}

/**
 * Text from the dataset or a model's name between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE: right-to-left
 * text (or a stray direction mark) in it cannot reorder the words around it. Hovers take no HTML, so no <bdi>.
 */
export function isolate(text: string): string {
  return `\u2068${text.replace(/[\u2066-\u2069]/g, '')}\u2069`;
}

/** At most `max` characters (whole code points), with an ellipsis when cut. */
export function shorten(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const chars = [...flat];
  return chars.length <= max ? flat : `${chars.slice(0, max - 1).join('').trimEnd()}…`;
}

export function formatDelta(delta: number): string {
  return `${delta >= 0 ? '+' : '-'}${Math.abs(delta).toFixed(3)}`;
}

export interface HoverInput {
  score: CandidateScore;
  stale: boolean;
  /** The anchors the score was computed against, when known. */
  anchors: Example[] | undefined;
  /** How many helps and hurts to list. */
  top?: number;
  /** What the score was computed with: named at the foot of the hover. */
  source?: ScoreSource;
  /** Why the record is a problem record, which no selection takes ("empty output", "repeats index 3"). */
  problem?: string;
  /** The record's index, 0-based, as the dashboard, the scores file, exports and the command line number it. */
  index?: number;
  /** A conversation's turns, shown briefly with their roles. */
  turns?: readonly Turn[];
}

/** Turns a hover shows: the first (a system turn, or the opening user turn) and the last ones. */
const TURNS_SHOWN = 5;
/** Characters of each turn shown. */
const TURN_PREVIEW = 90;

/**
 * A conversation in brief: one line per turn, its role in bold and its text shortened, escaped and isolated (a
 * turn's text renders as the characters it is, and right-to-left text stays inside its turn); the final assistant
 * turn, the one scored, is marked (`scored`: false for a conversation that cannot be scored). Long conversations
 * show their first turn and their last ones.
 */
export function turnsMarkdown(turns: readonly Turn[], scored = true): string {
  const shown = turns.length <= TURNS_SHOWN ? turns.map((turn, k) => ({ turn, k }))
    : [{ turn: turns[0]!, k: 0 }, ...turns.slice(turns.length - (TURNS_SHOWN - 1)).map((turn, i) => ({ turn, k: turns.length - (TURNS_SHOWN - 1) + i }))];
  const lines = [`**Conversation** · ${turns.length} turns`, ''];
  for (const [n, { turn, k }] of shown.entries()) {
    if (n === 1 && k > 1) lines.push(`*… ${k - 1} earlier ${k - 1 === 1 ? 'turn' : 'turns'}*  `);
    const mark = scored && k === turns.length - 1 ? ' *(scored)*' : '';
    lines.push(`**${turn.role}**${mark}: ${isolate(escapeMarkdown(shorten(turn.content, TURN_PREVIEW)))}${n < shown.length - 1 ? '  ' : ''}`);
  }
  return lines.join('\n');
}

export interface ScoreSource {
  model: string;
  /** How the anchor set was chosen: "k-means 100 of this file", "anchors.json". */
  anchors: string;
  /** The bundled demo model. */
  demo: boolean;
}

/**
 * The hover's foot: the model and the anchor set; for the demo model, that its scores are not for curation.
 * Plain text only: hovers are untrusted, so the editor adds its own Choose Model link.
 */
export function sourceFooter({ model, anchors, demo }: ScoreSource): string {
  const lines = ['---', '', `Model ${isolate(escapeMarkdown(model))} · anchors: ${isolate(escapeMarkdown(anchors))}`];
  if (demo) lines.push('', '*This is the bundled demo model: its scores are for trying the tool, not for curation.*');
  return lines.join('\n');
}

/** A score's key as far as the hover names it. */
interface KeyNames {
  model: { name: string; fingerprint: string };
  anchors: { hash: string; count: number };
}

/**
 * What a shown score was computed with: the current model and anchors, or, for a stale score computed under
 * another key, that key's model and anchor set.
 */
export function scoreSource(scoreKey: KeyNames | undefined, current: { key: KeyNames; source: ScoreSource } | undefined): ScoreSource | undefined {
  if (!scoreKey) return current?.source;
  const sameModel = current !== undefined && scoreKey.model.fingerprint === current.key.model.fingerprint;
  const sameAnchors = current !== undefined && scoreKey.anchors.hash === current.key.anchors.hash;
  if (sameModel && sameAnchors) return current!.source;
  return {
    model: scoreKey.model.name,
    anchors: sameAnchors ? current!.source.anchors : `another set of ${scoreKey.anchors.count} anchors (${scoreKey.anchors.hash})`,
    demo: sameModel && current!.source.demo,
  };
}

/** The hover's line for a problem record (server/records/problems.ts). */
export function problemLine(reason: string): string {
  return `*⚠ Never selected: ${escapeMarkdown(reason)}. A subset leaves out records with an empty instruction or output, exact duplicates of an earlier record, and records that cannot be scored.*`;
}

export function hoverMarkdown({ score, stale, anchors, top = 3, source, problem, index, turns }: HoverInput): string {
  const lines: string[] = [];
  lines.push(`**◆ Golden score ${formatGolden(score)}** · ${score.wins}/${score.anchors} anchors helped · mean Δ ${formatDelta(score.meanDelta)} nats${index !== undefined ? ` · index ${index}` : ''}`);
  if (problem) lines.push('', problemLine(problem));
  if (turns) lines.push('', turnsMarkdown(turns));
  const signals = PASS_SIGNALS.filter((signal) => score.signals?.[signal.name] !== undefined)
    .map((signal) => `${signal.label} ${signal.format(signal.valueOf(score))}`);
  if (signals.length > 0) lines.push('', signals.join(' · '));
  if (stale) lines.push('', '*Stale: computed with another model, anchor set or record text. Run Nuggets: Score Dataset to update.*');
  if (score.truncated) lines.push('', '*✂ The record was cut from the left to fit the model\'s context.*');
  if (score.selfAnchor !== undefined) {
    lines.push('', `*This record is anchor ${score.selfAnchor + 1} itself: that pair is left out, so its golden score counts the other ${score.anchors} anchors.*`);
  }
  const foot = source ? ['', sourceFooter(source)] : [];
  let deltas: number[];
  try {
    deltas = score.deltas; // read from the store on first use
  } catch (err) {
    lines.push('', `*Its per-anchor deltas cannot be read: ${escapeMarkdown(err instanceof Error ? err.message : String(err))}*`, ...foot);
    return lines.join('\n');
  }
  const order = deltas.map((delta, anchor) => ({ delta, anchor }));
  const helps = order.filter((d) => d.delta > 0).sort((a, b) => b.delta - a.delta).slice(0, top);
  const hurts = order.filter((d) => d.delta < 0).sort((a, b) => a.delta - b.delta).slice(0, top);
  const table = (title: string, rows: typeof order): void => {
    if (rows.length === 0) return;
    lines.push('', `**${title}**`, '', '| Δ nats | anchor |', '| ---: | :--- |');
    for (const { delta, anchor } of rows) {
      const a = anchors?.[anchor];
      const label = a ? isolate(escapeMarkdown(shorten(a.turns ? a.instruction || a.output : a.instruction, 70))) : `anchor ${anchor + 1}`;
      lines.push(`| ${formatDelta(delta)} | ${anchor + 1}\\. ${label} |`);
    }
  };
  table('Helps most', helps);
  table('Hurts most', hurts);
  lines.push(...foot);
  return lines.join('\n');
}
