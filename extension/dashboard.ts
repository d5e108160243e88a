/**
 * The dashboard panel (command `nuggets.showDashboard`): one webview for the dataset that was active
 * when it opened, drawn by webview/main.ts (dist/webview.js). The extension relays the server's
 * answers (server/protocol.ts: distribution, tablePage, anchorEffects, goldenIfdScatter, recordEffects;
 * all from memory, no scoring), reveals records, writes the subset at the page's threshold and exports
 * the scores where the user chooses; the messages are declared in webview/messages.ts. When the
 * dataset's scores change, the page is refreshed at most twice a second.
 */
import { basename, extname } from 'node:path';
import * as vscode from 'vscode';
import * as protocol from '../server/protocol';
import type { HostMessage, Range, WebviewMessage } from '../webview/messages';
import { HISTOGRAM_BINS } from '../webview/messages';
import type { Ctx } from './ctx';
import { dashboardHtml } from './dashboard_html';
import { allScored, writeGoldenSubset } from './subset';

const REFRESH_MS = 500;

let current: Dashboard | undefined;

export interface DashboardOptions {
  /** Open the record view on this record (0-based index): its delta on every anchor. */
  focus?: number;
}

/** The last Compare Models of each dataset (by URI), shown in its dashboard until the next one. */
const comparisons = new Map<string, protocol.CompareModelsResult>();

/** Shows a Compare Models result in the dashboard of `uri`, opening the dashboard when it is not open. */
export function showComparison(ctx: Ctx, uri: vscode.Uri, comparison: protocol.CompareModelsResult): void {
  comparisons.set(uri.toString(), comparison);
  if (current) current.show(uri);
  else current = new Dashboard(ctx, uri, () => (current = undefined));
  current.postComparison();
}

/** Shows the dashboard of the active dataset, optionally opened on one record (the hover's Show all anchor effects). */
export async function showDashboard(ctx: Ctx, options: DashboardOptions = {}): Promise<void> {
  const document = ctx.activeDataset();
  if (!document) {
    void vscode.window.showInformationMessage('Open an Alpaca dataset (JSON or JSON Lines) to see its Nuggets dashboard.');
    return;
  }
  if (current) current.show(document.uri);
  else current = new Dashboard(ctx, document.uri, () => (current = undefined));
  if (options.focus !== undefined) current.focus(options.focus);
}

class Dashboard {
  private readonly panel: vscode.WebviewPanel;
  private readonly disposables: vscode.Disposable[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastRefresh = 0;
  private ready = false;
  /** The record the page shows (or is to show once ready) in its record view. */
  private focused: number | undefined;

  constructor(private readonly ctx: Ctx, private uri: vscode.Uri, onDispose: () => void) {
    const extensionUri = ctx.extensionContext.extensionUri;
    const dist = vscode.Uri.joinPath(extensionUri, 'dist');
    const media = vscode.Uri.joinPath(extensionUri, 'media');
    this.panel = vscode.window.createWebviewPanel('nuggets.dashboard', this.title(), { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false }, {
      enableScripts: true,
      localResourceRoots: [dist, media],
      retainContextWhenHidden: false,
    });
    const webview = this.panel.webview;
    webview.html = dashboardHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'dashboard.css')).toString(),
      chartStyleUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.css')).toString(),
    });
    this.disposables.push(
      webview.onDidReceiveMessage((message: WebviewMessage) => void this.receive(message)),
      ctx.onDidChangeScores(({ uri }) => {
        if (uri === this.uri.toString()) this.scheduleRefresh();
      }),
      // A hidden webview is discarded (retainContextWhenHidden: false); it says `ready` again when shown.
      this.panel.onDidChangeViewState(() => {
        if (!this.panel.visible) this.ready = false;
      }),
    );
    this.panel.onDidDispose(() => {
      clearTimeout(this.refreshTimer);
      for (const d of this.disposables) d.dispose();
      onDispose();
    });
  }

  show(uri: vscode.Uri): void {
    if (uri.toString() !== this.uri.toString()) {
      this.uri = uri;
      this.focused = undefined;
      this.panel.title = this.title();
      void this.refresh();
    }
    this.panel.reveal(undefined, false);
  }

  focus(index: number): void {
    this.focused = index;
    if (this.ready) void this.showRecord(index);
  }

  /** The dataset's last comparison, once the page is ready (a page not yet ready gets it after its first state). */
  postComparison(): void {
    const comparison = comparisons.get(this.uri.toString());
    if (this.ready && comparison) this.post({ type: 'comparison', comparison });
  }

  private title(): string {
    return `Nuggets: ${this.uri.path.split('/').pop() ?? 'dataset'}`;
  }

  private post(message: HostMessage): void {
    void this.panel.webview.postMessage(message);
  }

  private async receive(message: WebviewMessage): Promise<void> {
    const textDocument = { uri: this.uri.toString() };
    try {
      switch (message.type) {
        case 'ready':
          this.ready = true;
          await this.refresh(); // with the record view, when one is open
          break;
        case 'page': {
          const page = await this.ctx.request(protocol.tablePage, { textDocument, ...message.query });
          this.post({ type: 'page', seq: message.seq, query: message.query, page });
          break;
        }
        case 'reveal':
          await this.reveal(message.index, message.range);
          break;
        case 'neighbours':
          this.post({ type: 'neighbours', result: await this.ctx.request(protocol.nearestNeighbours, { textDocument, index: message.index }) });
          break;
        case 'showRecord':
          this.focused = message.index;
          await this.showRecord(message.index);
          break;
        case 'closeRecord':
          this.focused = undefined;
          break;
        case 'chooseModel':
          await vscode.commands.executeCommand('nuggets.chooseModel');
          break;
        case 'writeSubset':
          await this.writeSubset(message.threshold, message.withScores, message.bounds ?? []);
          break;
        case 'exportScores':
          await this.exportScores(message.format, message.withDeltas, message.bounds ?? []);
          break;
      }
    } catch (err) {
      this.post({ type: 'error', message: `Nuggets: ${(err as Error).message}` });
    }
  }

  /** Scores stream in record by record while scoring: refresh at most every REFRESH_MS. */
  private scheduleRefresh(): void {
    if (!this.ready || this.refreshTimer) return;
    const wait = Math.max(0, this.lastRefresh + REFRESH_MS - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refresh();
    }, wait);
  }

  private async refresh(): Promise<void> {
    if (!this.ready) return;
    this.lastRefresh = Date.now();
    const textDocument = { uri: this.uri.toString() };
    // A Parquet table has no scores here until the server reads it whole, which the requests below make it do.
    if (!this.ctx.scoresOf(this.uri) && !this.ctx.tableOf(this.uri)) {
      // A file opened broken has no last scores to show: the dashboard says what is wrong, and where.
      const problem = this.ctx.problemOf(this.uri);
      this.post({
        type: 'error',
        message: problem
          ? `This file does not parse (line ${problem.range.start.line + 1}, column ${problem.range.start.character + 1}): ${problem.message}. Fix it, and the dashboard shows its scores.`
          : 'This file is closed or is no longer an Alpaca dataset. Open it again and run Nuggets: Show Dashboard.',
      });
      return;
    }
    try {
      const [distribution, anchorEffects, scatter] = await Promise.all([
        this.ctx.request(protocol.distribution, { textDocument, bins: HISTOGRAM_BINS }),
        this.ctx.request(protocol.anchorEffects, { textDocument }),
        this.ctx.request(protocol.goldenIfdScatter, { textDocument }),
      ]);
      const scores = this.ctx.scoresOf(this.uri);
      const model = scores?.model ?? null;
      const demo = scores?.demoModel ?? this.ctx.config.usesDemoModel();
      const problem = this.ctx.problemOf(this.uri);
      this.post({
        type: 'state', dataset: this.uri.path.split('/').pop() ?? this.uri.toString(),
        model: { name: demo && model ? `the bundled demo model (${model})` : model, demo }, distribution, anchorEffects, scatter,
        fileProblem: problem ? { message: problem.message, line: problem.range.start.line + 1, column: problem.range.start.character + 1 } : null,
      });
      this.postComparison();
      if (this.focused !== undefined) await this.showRecord(this.focused);
    } catch (err) {
      this.post({ type: 'error', message: `Nuggets: ${(err as Error).message}` });
    }
  }

  private async showRecord(index: number): Promise<void> {
    const record = await this.ctx.request(protocol.recordEffects, { textDocument: { uri: this.uri.toString() }, index });
    this.post({ type: 'record', record });
  }

  /**
   * Writes the records at or above the threshold (within the brushed ranges, when there are any) beside the dataset,
   * with a selection card that records the rule and its ranges, as Select Golden Subset does.
   */
  private async writeSubset(threshold: number, withScores: boolean, bounds: protocol.SignalBound[]): Promise<void> {
    const textDocument = { uri: this.uri.toString() };
    const rule: protocol.SelectionRule = { kind: 'min-score', minScore: threshold, ...(bounds.length > 0 ? { bounds } : {}) };
    const preview = await this.ctx.request(protocol.selectionPreview, { textDocument, rules: [rule] });
    if (!(await allScored(preview))) return;
    const within = bounds.map(boundLabel).join(', ');
    if (preview.counts[0] === 0) {
      void vscode.window.showWarningMessage(`Nuggets: no record is at or above ${threshold.toFixed(2)}${within ? ` within ${within}` : ''}: nothing to write.`);
      return;
    }
    await writeGoldenSubset(this.ctx, textDocument, {
      rule, label: `golden score ≥ ${threshold.toFixed(2)}${within ? `, ${within}` : ''}`, kept: preview.counts[0]!, withScores, viewColumn: vscode.ViewColumn.One,
    });
  }

  /** Asks where to save, then has the server write every record's scores there. */
  private async exportScores(format: 'csv' | 'jsonl', withDeltas: boolean, bounds: protocol.SignalBound[]): Promise<void> {
    const source = this.uri.scheme === 'file' ? this.uri.fsPath : undefined;
    const stem = source ? basename(source, extname(source)) : 'scores';
    const target = await vscode.window.showSaveDialog({
      title: 'Nuggets: export scores',
      saveLabel: 'Export',
      ...(source ? { defaultUri: vscode.Uri.joinPath(vscode.Uri.file(source), '..', `${stem}.scores.${format}`) } : {}),
      filters: format === 'csv' ? { CSV: ['csv'] } : { 'JSON Lines': ['jsonl'] },
    });
    if (!target) return;
    const result = await this.ctx.request(protocol.exportScores, {
      textDocument: { uri: this.uri.toString() }, path: target.fsPath, format, withDeltas, ...(bounds.length > 0 ? { bounds } : {}),
    });
    const within = bounds.length > 0 ? ` within ${bounds.map(boundLabel).join(', ')}` : '';
    const choice = await vscode.window.showInformationMessage(
      `Nuggets: exported ${result.records} records${within} (${result.scored} with a current score${withDeltas ? ', with every anchor\'s delta' : ''}) to ${basename(result.path)}.`, 'Open');
    if (choice) await vscode.window.showTextDocument(target, { viewColumn: vscode.ViewColumn.One });
  }

  private async reveal(index: number, fallback: Range | undefined): Promise<void> {
    // A Parquet file has no text to show: its record is in the dashboard's record view (and the table editor's).
    if (this.ctx.tableOf(this.uri)) return;
    const range = this.ctx.scoresOf(this.uri)?.records[index]?.range ?? fallback;
    if (!range) return;
    const selection = new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
    const editor = await vscode.window.showTextDocument(this.uri, { selection, viewColumn: vscode.ViewColumn.One, preserveFocus: false });
    editor.revealRange(selection, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }
}

/** A range as people read it: "ifd in [0.8, 1.2)", "golden ≥ 0.4". */
export function boundLabel(bound: protocol.SignalBound): string {
  if (bound.min !== undefined && bound.max !== undefined) return `${bound.signal} in [${bound.min}, ${bound.max})`;
  return bound.min !== undefined ? `${bound.signal} ≥ ${bound.min}` : `${bound.signal} < ${bound.max}`;
}
