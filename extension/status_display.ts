/**
 * The status bar item for the active dataset (a text editor's, or the Parquet table editor's): scored/total, and
 * while a run is going, its ETA.
 * Click: score what is missing, or open the dashboard when everything is scored.
 */
import * as vscode from 'vscode';
import * as protocol from '../server/protocol';
import { problemText } from './commands';
import { activeTableUri, type Ctx } from './ctx';
import { statusLabel } from './status_words';


export class StatusDisplay implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('nuggets.status', vscode.StatusBarAlignment.Right, 100);
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly ctx: Ctx) {
    this.item.name = 'Nuggets';
    this.disposables.push(
      this.item,
      ctx.onDidChangeScores(() => this.update()),
      ctx.onDidChangeStatus(() => this.update()),
      ctx.onDidChangeActive(() => this.update()),
    );
    this.update();
  }

  private update(): void {
    const document = vscode.window.activeTextEditor?.document;
    const problem = document && this.ctx.problemOf(document.uri);
    if (document && problem) {
      // The file reads as a dataset but does not parse: say where, and go there on click.
      this.item.text = '$(error) Nuggets: not a valid dataset';
      const tooltip = new vscode.MarkdownString(undefined, true);
      const where = problemText(document.uri, problem);
      tooltip.appendText(`${where} Scores already shown wait for a valid file. Click to go to the error.`);
      this.item.tooltip = tooltip;
      this.item.accessibilityInformation = { label: statusLabel({ kind: 'invalid', problem: where }), role: 'button' };
      this.item.command = { title: 'Go to Error', command: 'nuggets.goToError', arguments: [document.uri.toString()] };
      this.item.show();
      return;
    }
    // The table editor's Parquet file counts as the active dataset: its scores once a command read it whole.
    const uri = document?.uri ?? activeTableUri();
    const scores = uri ? this.ctx.scoresOf(uri) : undefined;
    if (!uri || !scores) {
      this.item.hide();
      return;
    }
    const run = this.ctx.runOf(uri);
    const running = run && (run.phase === 'preparing' || run.phase === 'scoring');
    if (running) {
      // Before the first record, the step under way (opening the model, scoring the anchors alone).
      const eta = run.etaSeconds === null ? (run.phase === 'preparing' ? run.message ?? 'preparing…' : 'estimating…') : `ETA ${protocol.formatDuration(run.etaSeconds)}`;
      this.item.text = `$(sync~spin) Nuggets ${scores.scored}/${scores.total} · ${eta}`;
      this.item.tooltip = `Scoring: ${run.done} of ${run.todo} records in this run. Cancel from the progress notification.`;
      this.item.accessibilityInformation = {
        label: statusLabel({ kind: 'running', scored: scores.scored, total: scores.total, eta: run.etaSeconds === null ? eta.replace('…', '') : `about ${protocol.formatDuration(run.etaSeconds)} left`, done: run.done, todo: run.todo }),
      };
      this.item.command = undefined;
    } else {
      const complete = scores.total > 0 && scores.scored === scores.total;
      const demo = this.ctx.config.usesDemoModel();
      this.item.text = `${complete ? '◆' : '◇'} Nuggets ${scores.scored}/${scores.total}${demo ? ' · demo model' : ''}`;
      const source = scores.model ? ` with ${scores.model}${scores.anchorCount ? ` against ${scores.anchorCount} anchors` : ''}` : '';
      // The tooltip's text is the extension's own (model and file names escaped); its one link is a command of ours.
      const tooltip = new vscode.MarkdownString(undefined, true);
      tooltip.isTrusted = { enabledCommands: ['nuggets.chooseModel'] };
      tooltip.appendText(complete
        ? `Every record is scored${source}. Click for the dashboard.`
        : `${scores.scored} of ${scores.total} records have a current golden score${source}. Click to score the rest.`);
      if (demo) {
        tooltip.appendMarkdown('\n\n$(warning) ');
        tooltip.appendText('These scores come from the bundled demo model: they are for trying the tool, not for curation. ');
        tooltip.appendMarkdown('[Choose Model](command:nuggets.chooseModel)');
      }
      this.item.tooltip = tooltip;
      this.item.accessibilityInformation = { label: statusLabel({ kind: 'idle', scored: scores.scored, total: scores.total, demo, source }), role: 'button' };
      this.item.command = complete ? 'nuggets.showDashboard' : 'nuggets.scoreDataset';
    }
    this.item.show();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
