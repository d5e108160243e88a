/**
 * What a first-time user is shown: the `nuggets.activeIsDataset` context key behind the editor-title
 * buttons (Score Dataset, Show Dashboard) on Alpaca files, and, once per installation, a notification on
 * the first Alpaca dataset that offers to score it, to choose a model first, or to open the walkthrough.
 */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { activeTableUri, type Ctx } from './ctx';

const WELCOMED = 'nuggets.welcomedOnFirstDataset';
export const WALKTHROUGH = 'nuggets-dev.nuggets#gettingStarted';

export class FirstRun implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private welcoming = false;
  /** The context key's value as last set: scores change many times a second while scoring. */
  private activeIsDataset: boolean | undefined;

  constructor(private readonly ctx: Ctx) {
    this.disposables.push(
      ctx.onDidChangeScores(() => this.update()),
      ctx.onDidChangeActive(() => this.update()),
    );
    this.update();
  }

  private update(): void {
    const document = vscode.window.activeTextEditor?.document;
    const isDataset = !!document && this.ctx.isDataset(document);
    // The table editor's Parquet file has the same editor-title buttons.
    const table = document ? undefined : activeTableUri();
    const showButtons = isDataset || (table !== undefined && this.ctx.tableOf(table) !== undefined);
    if (showButtons !== this.activeIsDataset) void vscode.commands.executeCommand('setContext', 'nuggets.activeIsDataset', showButtons);
    this.activeIsDataset = showButtons;
    if (isDataset) void this.welcome(document);
  }

  private async welcome(document: vscode.TextDocument): Promise<void> {
    const state = this.ctx.extensionContext.globalState;
    if (this.welcoming || state.get<boolean>(WELCOMED)) return;
    this.welcoming = true;
    await state.update(WELCOMED, true);
    const scores = this.ctx.scoresOf(document.uri);
    if (scores && scores.scored > 0) return; // scored before (another installation's storage): nothing to explain
    const records = scores ? `${scores.total} records` : 'an Alpaca dataset';
    const choice = await vscode.window.showInformationMessage(
      `Nuggets found ${records} in ${basename(document.uri.path)}. `
        + (this.ctx.config.usesDemoModel()
          ? 'Score them with the bundled demo model (for trying the tool, not for curation), or choose a real model first?'
          : 'Score them with the chosen model, or choose another model first?'),
      'Score Dataset', 'Choose Model', 'Walkthrough');
    if (choice === 'Score Dataset') await vscode.commands.executeCommand('nuggets.scoreDataset');
    else if (choice === 'Choose Model') await vscode.commands.executeCommand('nuggets.chooseModel');
    else if (choice === 'Walkthrough') await vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH, false);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
