/**
 * Writing a golden subset from the editor: Select Golden Subset (commands.ts) and the dashboard's Write Subset
 * at This Threshold (dashboard.ts) both check that every record is scored, then write through the server.
 */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import * as protocol from '../server/protocol';
import { PARQUET_VIEW_TYPE, type Ctx } from './ctx';

/**
 * True when every record of the dataset has a current golden score (a selection's preview says); otherwise says
 * how many have none, offers Score Dataset, and is false: a subset would leave them out unseen.
 */
export async function allScored(preview: protocol.SelectionPreviewResult): Promise<boolean> {
  if (preview.scored === preview.total) return true;
  const choice = await vscode.window.showWarningMessage(
    `Nuggets: ${preview.total - preview.scored} of ${preview.total} records have no current golden score. Score the dataset before selecting.`, 'Score Dataset');
  if (choice) await vscode.commands.executeCommand('nuggets.scoreDataset');
  return false;
}

/**
 * Writes the subset `rule` keeps beside the dataset, with its selection card, opens it, and says what was written
 * (and that the demo model chose it, when it did). Nothing is written when the rule keeps no record (`kept`, as
 * previewed). Select Golden Subset and the dashboard's Write Subset at This Threshold both end here.
 */
export async function writeGoldenSubset(
  ctx: Ctx, textDocument: { uri: string },
  { rule, label, kept, withScores, viewColumn }: { rule: protocol.SelectionRule; label: string; kept: number; withScores?: boolean; viewColumn?: vscode.ViewColumn },
): Promise<protocol.SelectSubsetResult | undefined> {
  if (kept === 0) {
    void vscode.window.showWarningMessage(`Nuggets: ${label} keeps no records; nothing was written. Choose a lower threshold.`);
    return undefined;
  }
  const result = await ctx.request(protocol.selectSubset, { textDocument, rule, ...(withScores !== undefined ? { withScores } : {}) });
  const written = vscode.Uri.parse(result.uri);
  // A Parquet dataset's subset is Parquet too (the server writes the input's format): it opens in the table editor.
  if (/\.parquet$/i.test(written.path)) await vscode.commands.executeCommand('vscode.openWith', written, PARQUET_VIEW_TYPE, { preview: false, ...(viewColumn !== undefined ? { viewColumn } : {}) });
  else await vscode.window.showTextDocument(written, { preview: false, ...(viewColumn !== undefined ? { viewColumn } : {}) });
  const diverse = rule.diverse !== undefined ? ` ${result.skippedAsDuplicates} near-duplicates skipped${result.similarityNotice ? ` (${result.similarityNotice})` : ''}.` : '';
  const problems = result.problemsLeftOut ? ` Left out ${result.problemsLeftOut}: they are never selected.` : '';
  const wrote = `Nuggets: wrote ${result.kept} of ${result.total} records (${label}${withScores ? ', with golden_score' : ''}) to ${basename(result.path)}, with its selection card ${basename(result.cardPath)}.${diverse}${problems}`;
  if (ctx.config.usesDemoModel()) {
    void vscode.window.showWarningMessage(`${wrote} They were chosen by the bundled demo model, whose scores are for trying the tool, not for curation.`, 'Choose Model')
      .then((choice) => choice && vscode.commands.executeCommand('nuggets.chooseModel'));
  } else {
    void vscode.window.showInformationMessage(wrote);
  }
  return result;
}
