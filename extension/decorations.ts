/**
 * Inline scores: at each scored record's first line (after it; before it for one-line JSON Lines records,
 * whose line end is out of view), `◆ 0.87 · 87/100 anchors`, coloured
 * by score with the theme's chart colours (made for both light and dark themes); stale scores in the
 * muted description colour and marked; unscored records show nothing.
 *
 * Each distinct badge is its own decoration type, with the text in the type, so that an editor's
 * badges are set as plain ranges: VS Code sends those as flat number arrays (its fast path), which
 * keeps a 50,000-record file's render to tens of milliseconds. A dataset has few distinct badges
 * (at most anchors + 1 per anchor count), so the types stay few.
 */
import * as vscode from 'vscode';
import type { RecordScore } from '../server/protocol';
import type { Ctx } from './ctx';

/**
 * Score buckets, lowest first: [lower bound, colour id]. The colours are the extension's own
 * (`contributes.colors` in package.json), chosen to reach 4.5:1 against the default light and dark editor
 * backgrounds (the theme's chart colours do not: amber was 3.1:1 on white); themes may override them.
 */
export const SCALE: [number, string][] = [
  [0, 'nuggets.badge.low'],
  [0.2, 'nuggets.badge.fair'],
  [0.4, 'nuggets.badge.mid'],
  [0.6, 'nuggets.badge.good'],
  [0.8, 'nuggets.badge.top'],
];
export const STALE_COLOR = 'nuggets.badge.stale';

/**
 * `◆ 0.87 · 87/100 anchors`; `⚠ empty: never selected` (or `duplicate`) on a problem record, even unscored; `✂` when the record was cut to fit the model's context; `◇ … · stale`; and while the
 * file does not parse, `waiting` says what the badge waits for ("waiting for valid JSON").
 */
export function badgeText(record: RecordScore, waiting?: string): string | undefined {
  const s = record.score;
  // A problem record (empty, or a duplicate) is never selected: its badge says so, scored or not.
  const problem = record.problem ? `⚠ ${record.problem.mark}: never selected` : undefined;
  if (!s) return problem;
  const parts = [`${record.stale ? '◇' : '◆'} ${s.goldenScore.toFixed(2)}`, `${s.wins}/${s.anchors} anchors`];
  if (problem) parts.push(problem);
  if (s.truncated) parts.push('✂ cut to fit');
  if (record.stale) parts.push('stale');
  if (waiting) parts.push(waiting);
  return parts.join(' · ');
}

/** What the badges of a document that does not parse now wait for. */
export function waitingFor(problem: { message: string } | undefined): string | undefined {
  if (!problem) return undefined;
  return problem.message.startsWith('malformed JSON') ? 'waiting for valid JSON' : 'waiting for a valid dataset';
}

type Placement = 'after' | 'before';

/** Renders with at least this many badges are timed in the Nuggets output channel. */
const LOGGED_BADGES = 10_000;

export class Decorations implements vscode.Disposable {
  /** Decoration types by placement and badge text, created on first use. */
  private readonly types = new Map<string, vscode.TextEditorDecorationType>();
  /** The types each editor was last given badges of: cleared when a render has none of them. */
  private readonly shown = new WeakMap<vscode.TextEditor, Set<vscode.TextEditorDecorationType>>();
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly ctx: Ctx) {
    this.disposables.push(
      // All of a document's scores at once (opened, edited): drawn now. Scores streaming in: batched.
      ctx.onDidChangeScores(({ uri, full }) => (full ? this.renderNow(uri) : this.schedule(uri))),
      vscode.window.onDidChangeVisibleTextEditors((editors) => editors.forEach((e) => this.render(e))),
    );
    vscode.window.visibleTextEditors.forEach((e) => this.render(e));
  }

  /** Scores stream in one record at a time: redraw at most four times a second. */
  private schedule(uri: string): void {
    this.pending.add(uri);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      const uris = new Set(this.pending);
      this.pending.clear();
      for (const editor of vscode.window.visibleTextEditors) if (uris.has(editor.document.uri.toString())) this.render(editor);
    }, 250);
  }

  private renderNow(uri: string): void {
    this.pending.delete(uri);
    for (const editor of vscode.window.visibleTextEditors) if (editor.document.uri.toString() === uri) this.render(editor);
  }

  /** `muted`: stale, or waiting for the file to parse again. */
  private typeFor(placement: Placement, text: string, record: RecordScore, muted: boolean): vscode.TextEditorDecorationType {
    const name = `${placement}\n${text}`;
    let type = this.types.get(name);
    if (!type) {
      const color = muted || !record.score ? STALE_COLOR : SCALE[bucketOf(record.score.goldenScore)]![1];
      type = vscode.window.createTextEditorDecorationType({
        [placement]: {
          contentText: text, color: new vscode.ThemeColor(color), margin: placement === 'after' ? '0 0 0 2em' : '0 1.5em 0 0',
          ...(muted ? { fontStyle: 'italic' } : {}),
        },
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      });
      this.types.set(name, type);
    }
    return type;
  }

  private render(editor: vscode.TextEditor): void {
    const started = performance.now();
    const scores = this.ctx.scoresOf(editor.document.uri);
    const ranges = new Map<vscode.TextEditorDecorationType, vscode.Range[]>();
    const lines = editor.document.lineCount;
    const badged = new Set<number>();
    const waiting = waitingFor(this.ctx.problemOf(editor.document.uri));
    for (const record of scores?.records ?? []) {
      const text = record ? badgeText(record, waiting) : undefined;
      if (!record || !text) continue;
      const line = Math.min(record.range.start.line, lines - 1);
      if (badged.has(line)) continue; // several records on one line (seed tasks' instances): the first speaks for the line
      badged.add(line);
      const placement: Placement = record.range.end.line > record.range.start.line ? 'after' : 'before';
      const at = placement === 'after' ? editor.document.lineAt(line).range.end : new vscode.Position(line, 0);
      const type = this.typeFor(placement, text, record, record.stale || waiting !== undefined || !record.score);
      const list = ranges.get(type);
      const range = new vscode.Range(at, at);
      if (list) list.push(range);
      else ranges.set(type, [range]);
    }
    for (const type of this.shown.get(editor) ?? []) if (!ranges.has(type)) editor.setDecorations(type, []);
    for (const [type, list] of ranges) editor.setDecorations(type, list);
    this.shown.set(editor, new Set(ranges.keys()));
    // Large files: say how long drawing took, and for the first render, how long after the document
    // arrived (tools/editor-open-vscode.mjs reads these lines from the output channel).
    const arrived = badged.size > 0 ? this.ctx.takeArrival(editor.document.uri) : undefined;
    if (badged.size >= LOGGED_BADGES) {
      const now = performance.now();
      const since = arrived === undefined ? '' : `, ${(now - arrived).toFixed(0)} ms after the document reached the extension`
        + ` (scores ${scores?.version === 0 ? 'read ahead from the saved file' : 'from the server\'s parse of the document'})`;
      this.ctx.log.info(
        `[decorations] ${badged.size} badges for ${editor.document.uri.toString()} built and set in ${(now - started).toFixed(1)} ms${since}`);
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
    for (const type of this.types.values()) type.dispose();
  }
}

function bucketOf(score: number): number {
  let bucket = 0;
  SCALE.forEach(([from], i) => {
    if (score >= from) bucket = i;
  });
  return bucket;
}
