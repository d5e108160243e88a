/**
 * Placeholder for the dashboard panel (histogram, threshold, table, anchor effects); the webview
 * helper replaces this file, keeping the export `showDashboard(ctx)` (registered as the command
 * `nuggets.showDashboard` in commands.ts).
 *
 * Data API (all declared in server/protocol.ts; answered from memory, no scoring):
 *   const textDocument = { uri: ctx.activeDataset()!.uri.toString() };
 *   await ctx.request(protocol.distribution, { textDocument, bins: 20 })
 *       -> { total, scored, stale, counts[bins], goldenScores (current, descending), meanGoldenScore }
 *   await ctx.request(protocol.selectionPreview, { textDocument, rules: [{ kind: 'min-score', minScore: 0.85 }] })
 *       -> { counts: [n], scored, total }   (or count from goldenScores in the webview)
 *   await ctx.request(protocol.tablePage, { textDocument, offset: 0, limit: 50, sortBy: 'goldenScore', descending: true, minScore? })
 *       -> { total, offset, rows: [{ index, id, instruction, input, output (plain text, shortened), range, score?, stale }] }
 *   await ctx.request(protocol.anchorEffects, { textDocument })
 *       -> { candidates, anchors: [{ index, instruction, input, winRate, meanDelta }], anchorSet }
 *   await ctx.request(protocol.recordEffects, { textDocument, index })
 *       -> { index, score, stale, deltas: [{ anchor, instruction, delta }] }
 *   ctx.onDidChangeScores((uri) => ...)   fires when a document's scores change (ask again, throttled)
 *   ctx.scoresOf(uri)                     the latest scores the server sent (records with ranges)
 * Reveal a row: vscode.window.showTextDocument(uri, { selection: new vscode.Range(row.range.start.line,
 * row.range.start.character, row.range.end.line, row.range.end.character) }).
 */
import * as vscode from 'vscode';
import type { Ctx } from './ctx';

export async function showDashboard(ctx: Ctx): Promise<void> {
  const document = ctx.activeDataset();
  if (!document) {
    void vscode.window.showInformationMessage('Open an Alpaca dataset (JSON or JSON Lines) to see its Nuggets dashboard.');
    return;
  }
  void vscode.window.showInformationMessage('The Nuggets dashboard is not built yet.');
}
