/**
 * Inline scores: at the end of each scored record's first line, `◆ 0.87 · 87/100 anchors`, coloured
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

export class Decorations implements vscode.Disposable {
  private readonly buckets: vscode.TextEditorDecorationType[];
  private readonly stale: vscode.TextEditorDecorationType;
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly ctx: Ctx) {
    const after = (color: vscode.ThemeColor, fontStyle?: string): vscode.DecorationRenderOptions => ({
      after: { color, margin: '0 0 0 2em', ...(fontStyle ? { fontStyle } : {}) },
      rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
    });
    this.buckets = SCALE.map(([, color]) => vscode.window.createTextEditorDecorationType(after(new vscode.ThemeColor(color))));
    this.stale = vscode.window.createTextEditorDecorationType(after(new vscode.ThemeColor('descriptionForeground'), 'italic'));
    this.disposables.push(
      ...this.buckets, this.stale,
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
    const scores = this.ctx.scoresOf(editor.document.uri);
    const byBucket: vscode.DecorationOptions[][] = this.buckets.map(() => []);
    const stale: vscode.DecorationOptions[] = [];
    const lines = editor.document.lineCount;
    for (const record of scores?.records ?? []) {
      const text = record ? badgeText(record) : undefined;
      if (!record?.score || !text) continue;
      const line = Math.min(record.range.start.line, lines - 1);
      const end = editor.document.lineAt(line).range.end;
      const option: vscode.DecorationOptions = { range: new vscode.Range(end, end), renderOptions: { after: { contentText: text } } };
      if (record.stale) stale.push(option);
      else byBucket[bucketOf(record.score.goldenScore)]!.push(option);
    }
    this.buckets.forEach((type, i) => editor.setDecorations(type, byBucket[i]!));
    editor.setDecorations(this.stale, stale);
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
