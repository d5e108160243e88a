/**
 * Inline scores: at each scored record's first line (after it; before it for one-line JSON Lines records,
 * whose line end is out of view), `◆ 0.87 · 87/100 anchors`, coloured
 * by score with the theme's chart colours (made for both light and dark themes); stale scores in the
 * muted description colour and marked; unscored records show nothing.
 */
import * as vscode from 'vscode';
import type { RecordScore } from '../server/protocol';
import type { Ctx } from './ctx';

/** Score buckets, lowest first: [lower bound, theme colour]. */
const SCALE: [number, string][] = [
  [0, 'charts.red'],
  [0.2, 'charts.orange'],
  [0.4, 'charts.yellow'],
  [0.6, 'charts.blue'],
  [0.8, 'charts.green'],
];

export function badgeText(record: RecordScore): string | undefined {
  const s = record.score;
  if (!s) return undefined;
  const text = `◆ ${s.goldenScore.toFixed(2)} · ${s.wins}/${s.anchors} anchors`;
  return record.stale ? `◇ ${s.goldenScore.toFixed(2)} · ${s.wins}/${s.anchors} anchors · stale` : text;
}

type Placement = 'after' | 'before';

/** Renders with at least this many badges are timed in the Nuggets output channel. */
const LOGGED_BADGES = 10_000;

export class Decorations implements vscode.Disposable {
  /** Multi-line records get the badge after their first line; one-line records (JSON Lines) before it, where it stays in view. */
  private readonly types: Record<Placement, { buckets: vscode.TextEditorDecorationType[]; stale: vscode.TextEditorDecorationType }>;
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly ctx: Ctx) {
    const typesFor = (placement: Placement): { buckets: vscode.TextEditorDecorationType[]; stale: vscode.TextEditorDecorationType } => {
      const margin = placement === 'after' ? '0 0 0 2em' : '0 1.5em 0 0';
      const create = (color: string, fontStyle?: string): vscode.TextEditorDecorationType => vscode.window.createTextEditorDecorationType({
        [placement]: { color: new vscode.ThemeColor(color), margin, ...(fontStyle ? { fontStyle } : {}) },
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      });
      return { buckets: SCALE.map(([, color]) => create(color)), stale: create('descriptionForeground', 'italic') };
    };
    this.types = { after: typesFor('after'), before: typesFor('before') };
    this.disposables.push(
      ...Object.values(this.types).flatMap((t) => [...t.buckets, t.stale]),
      ctx.onDidChangeScores((uri) => this.schedule(uri)),
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

  private render(editor: vscode.TextEditor): void {
    const started = performance.now();
    const scores = this.ctx.scoresOf(editor.document.uri);
    const options = { after: { buckets: SCALE.map((): vscode.DecorationOptions[] => []), stale: [] as vscode.DecorationOptions[] },
      before: { buckets: SCALE.map((): vscode.DecorationOptions[] => []), stale: [] as vscode.DecorationOptions[] } };
    const lines = editor.document.lineCount;
    const badged = new Set<number>();
    for (const record of scores?.records ?? []) {
      const text = record ? badgeText(record) : undefined;
      if (!record?.score || !text) continue;
      const line = Math.min(record.range.start.line, lines - 1);
      if (badged.has(line)) continue; // several records on one line (seed tasks' instances): the first speaks for the line
      badged.add(line);
      const placement: Placement = record.range.end.line > record.range.start.line ? 'after' : 'before';
      const at = placement === 'after' ? editor.document.lineAt(line).range.end : editor.document.lineAt(line).range.start;
      const option: vscode.DecorationOptions = { range: new vscode.Range(at, at), renderOptions: { [placement]: { contentText: text } } };
      if (record.stale) options[placement].stale.push(option);
      else options[placement].buckets[bucketOf(record.score.goldenScore)]!.push(option);
    }
    for (const placement of ['after', 'before'] as const) {
      this.types[placement].buckets.forEach((type, i) => editor.setDecorations(type, options[placement].buckets[i]!));
      editor.setDecorations(this.types[placement].stale, options[placement].stale);
    }
    // Large files: say how long drawing took (tools/editor-latency.mjs reads this from the output channel).
    if (badged.size >= LOGGED_BADGES) {
      this.ctx.client.outputChannel.appendLine(
        `[decorations] ${badged.size} badges for ${editor.document.uri.toString()} built and set in ${(performance.now() - started).toFixed(1)} ms`);
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}

function bucketOf(score: number): number {
  let bucket = 0;
  SCALE.forEach(([from], i) => {
    if (score >= from) bucket = i;
  });
  return bucket;
}
