/**
 * The read-only editor of a `.parquet` file (package.json customEditors, view type `nuggets.parquetTable`): a
 * table of its rows, drawn by webview/parquet-table.ts (dist/parquet-table.js). A file's document tells the
 * server about it once (openTable) whatever number of editors show it, and closeTable when its last editor
 * closes. Each editor relays its page's requests (tablePage, recordEffects: rows read from the file, never
 * all of it) and runs the commands its buttons name on the file; it passes on the row index's progress and,
 * when the file's scores change, asks its page to refresh the rows in view, at most twice a second. The
 * messages are declared in webview/table-messages.ts. It shows stored scores in an untrusted workspace too;
 * Score Dataset refuses there, as for a JSON file.
 */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import * as protocol from '../server/protocol';
import type { TableHostMessage, TableWebviewMessage } from '../webview/table-messages';
import { PARQUET_VIEW_TYPE, type Ctx } from './ctx';
import { parquetTableHtml } from './parquet_table_html';

const REFRESH_MS = 500;

/** The commands the page's buttons run, by the name the page gives them. */
const COMMANDS = { scoreDataset: 'nuggets.scoreDataset', selectGoldenSubset: 'nuggets.selectGoldenSubset', showDashboard: 'nuggets.showDashboard' } as const;

/** One Parquet file, whatever number of table editors show it: what openTable answered, and the row index's last progress. */
class ParquetDocument implements vscode.CustomDocument {
  /** openTable's answer: the file's footer, or why the file is no readable Parquet. */
  readonly opened: Promise<{ info: protocol.TableInfo } | { refusal: string }>;
  index: protocol.TableIndexParams | undefined;
  private readonly indexChanged = new vscode.EventEmitter<protocol.TableIndexParams>();
  readonly onDidChangeIndex = this.indexChanged.event;

  constructor(readonly uri: vscode.Uri, private readonly ctx: Ctx, private readonly onDispose: () => void) {
    this.opened = ctx.request(protocol.openTable, { textDocument: { uri: uri.toString() } }).then(
      (info) => ({ info }),
      (err: unknown) => ({ refusal: (err as Error).message }),
    );
    void this.opened.then((opened) => {
      ctx.tableOpened(uri, opened);
      if ('refusal' in opened) ctx.log.warn(`[table] ${basename(uri.fsPath)}: ${opened.refusal}`);
    });
  }

  /** How far the server's row index of the file is. */
  indexProgress(params: protocol.TableIndexParams): void {
    this.index = params;
    this.indexChanged.fire(params);
  }

  /** The file's last editor closed: the server may let go of it. */
  dispose(): void {
    this.onDispose();
    this.indexChanged.dispose();
    void this.opened.then((opened) => {
      if (!('info' in opened)) return;
      this.ctx.tableClosed(this.uri);
      void this.ctx.client.sendNotification(protocol.closeTable, { textDocument: { uri: this.uri.toString() } });
    });
  }
}

export class ParquetEditorProvider implements vscode.CustomReadonlyEditorProvider<ParquetDocument> {
  /** The open files, by URI: the row index's notifications go to theirs (the client holds one handler per notification). */
  private readonly documents = new Map<string, ParquetDocument>();

  static register(ctx: Ctx): vscode.Disposable {
    const provider = new ParquetEditorProvider(ctx);
    return vscode.Disposable.from(
      ctx.client.onNotification(protocol.tableIndexNotification, (params) => provider.documents.get(params.uri)?.indexProgress(params)),
      // The page is cheap to draw again (it asks only for the rows in view): a hidden editor keeps no page.
      vscode.window.registerCustomEditorProvider(PARQUET_VIEW_TYPE, provider, { supportsMultipleEditorsPerDocument: true }),
    );
  }

  constructor(private readonly ctx: Ctx) {}

  openCustomDocument(uri: vscode.Uri): ParquetDocument {
    const key = uri.toString();
    const document: ParquetDocument = new ParquetDocument(uri, this.ctx, () => {
      if (this.documents.get(key) === document) this.documents.delete(key);
    });
    this.documents.set(key, document);
    return document;
  }

  resolveCustomEditor(document: ParquetDocument, panel: vscode.WebviewPanel): void {
    const extensionUri = this.ctx.extensionContext.extensionUri;
    const dist = vscode.Uri.joinPath(extensionUri, 'dist');
    const media = vscode.Uri.joinPath(extensionUri, 'media');
    const webview = panel.webview;
    webview.options = { enableScripts: true, localResourceRoots: [dist, media] };
    webview.html = parquetTableHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'parquet-table.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'dashboard.css')).toString(),
      tableStyleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'parquet-table.css')).toString(),
    });
    new TableEditor(this.ctx, document, panel);
  }
}

/** One table editor: its page's messages, relayed. */
class TableEditor {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly name: string;
  private ready = false;
  /** The record the page's record view shows: sent again when scores change. */
  private focused: number | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastRefresh = 0;

  constructor(private readonly ctx: Ctx, private readonly document: ParquetDocument, private readonly panel: vscode.WebviewPanel) {
    this.name = basename(document.uri.path);
    const uri = document.uri.toString();
    this.disposables.push(
      panel.webview.onDidReceiveMessage((message: TableWebviewMessage) => void this.receive(message)),
      document.onDidChangeIndex((index) => this.post({ type: 'index', index })),
      ctx.onDidChangeScores((change) => {
        if (change.uri === uri) this.scheduleRefresh();
      }),
      // A hidden page is discarded; it says `ready` again when shown.
      panel.onDidChangeViewState(() => {
        if (!panel.visible) this.ready = false;
      }),
    );
    panel.onDidDispose(() => {
      clearTimeout(this.refreshTimer);
      for (const d of this.disposables) d.dispose();
    });
  }

  private post(message: TableHostMessage): void {
    if (this.ready) void this.panel.webview.postMessage(message);
  }

  private async receive(message: TableWebviewMessage): Promise<void> {
    const textDocument = { uri: this.document.uri.toString() };
    try {
      switch (message.type) {
        case 'ready': {
          this.ready = true;
          const opened = await this.document.opened;
          if ('refusal' in opened) {
            this.post({ type: 'refused', name: this.name, message: opened.refusal });
            return;
          }
          this.post({ type: 'info', name: this.name, info: opened.info });
          if (this.document.index) this.post({ type: 'index', index: this.document.index });
          if (this.focused !== undefined) await this.showRecord(this.focused);
          break;
        }
        case 'page': {
          const page = await this.ctx.request(protocol.tablePage, { textDocument, ...message.query });
          this.post({ type: 'page', seq: message.seq, page });
          break;
        }
        case 'showRecord':
          this.focused = message.index;
          await this.showRecord(message.index);
          break;
        case 'closeRecord':
          this.focused = undefined;
          break;
        case 'command':
          // The commands act on the active editor's dataset: this one, whose button was clicked.
          if (message.command in COMMANDS) await vscode.commands.executeCommand(COMMANDS[message.command]);
          break;
      }
    } catch (err) {
      this.post({ type: 'error', message: `Nuggets: ${(err as Error).message}` });
    }
  }

  private async showRecord(index: number): Promise<void> {
    const record = await this.ctx.request(protocol.recordEffects, { textDocument: { uri: this.document.uri.toString() }, index });
    this.post({ type: 'record', record });
  }

  /** Scores stream in record by record while scoring: the rows in view are asked for again at most every REFRESH_MS. */
  private scheduleRefresh(): void {
    if (!this.ready || this.refreshTimer) return;
    const wait = Math.max(0, this.lastRefresh + REFRESH_MS - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.lastRefresh = Date.now();
      this.post({ type: 'scores' });
      if (this.focused !== undefined) void this.showRecord(this.focused).catch(() => undefined);
    }, wait);
  }
}
