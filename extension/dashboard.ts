/**
 * Placeholder for the dashboard panel (histogram, threshold, table, anchor effects): the webview
 * helper replaces this file. Its data comes from the server through ctx.request(...) with the
 * requests declared in server/protocol.ts (distribution, tablePage, anchorEffects, recordEffects,
 * selectionPreview), and ctx.onDidChangeScores says when to ask again.
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
