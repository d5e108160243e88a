/**
 * The extension's live state: the language client, the latest scores the server sent for each open
 * dataset, scoring runs in progress, and events for the views that draw them (decorations, status
 * bar, dashboard). Created once in activate(); disposed with the extension.
 *
 * Opening a large file: VS Code hands its document to extensions seconds after the tab opens (after
 * loading and copying it), and the LSP didOpen then copies it again to the server. So when a tab
 * opens a saved .json/.jsonl file, the server is asked to read the file from disk at once
 * (protocol.fileOpening); the scores it sends back are kept until the document arrives and, if it is
 * the saved file, shown immediately. The document's own didOpen follows a little later and its scores
 * replace them.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import type { RequestType } from 'vscode-languageclient/node';
import * as protocol from '../server/protocol';
import { Config } from './config';

export interface DocumentScores {
  uri: string;
  version: number;
  /** By record index. */
  records: protocol.RecordScore[];
  total: number;
  scored: number;
  model: string | null;
  anchorCount: number | null;
}

/** How long a document drawn from read-ahead scores waits before its text goes to the server. */
const SYNC_DELAY_AFTER_READ_AHEAD_MS = 500;

export interface ScoresChange {
  uri: string;
  /** Every record's score was sent (the document was opened or edited, or the model or anchors changed), not just a few newly scored ones. */
  full: boolean;
}

export class Ctx implements vscode.Disposable {
  readonly config: Config;
  private readonly scores = new Map<string, DocumentScores>();
  /** Files the server was asked to read ahead (protocol.fileOpening) whose documents have not arrived. */
  private readonly aheadAsked = new Set<string>();
  /** Scores of saved files whose tab opened before their document arrived (protocol.fileOpening), by URI. */
  private readonly readAhead = new Map<string, protocol.ScoresParams>();
  /** Documents just given their saved file's scores, whose didOpen has not gone to the server yet. */
  private readonly scoredAhead = new Set<string>();
  /** When each open document reached the extension (performance.now()), until its first badges are drawn: for the log. */
  private readonly arrivals = new Map<string, number>();
  private readonly runs = new Map<string, protocol.ScoringStatus>();
  private readonly scoresChanged = new vscode.EventEmitter<ScoresChange>();
  private readonly statusChanged = new vscode.EventEmitter<string>();
  private lastDataset: vscode.Uri | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  /** Fires whenever a document's scores change (opened, edited, scored, cleared). */
  readonly onDidChangeScores = this.scoresChanged.event;
  /** Fires with a document URI whenever a scoring run's state changes. */
  readonly onDidChangeStatus = this.statusChanged.event;

  constructor(readonly extensionContext: vscode.ExtensionContext, readonly client: LanguageClient, config?: Config) {
    this.config = config ?? new Config(extensionContext.extensionPath);
    this.disposables.push(
      this.scoresChanged, this.statusChanged,
      client.onNotification(protocol.scoresNotification, (params) => this.receiveScores(params)),
      client.onNotification(protocol.scoresClearedNotification, ({ uri }) => {
        this.scores.delete(uri);
        this.readAhead.delete(uri);
        this.runs.delete(uri);
        this.scoresChanged.fire({ uri, full: true });
      }),
      client.onNotification(protocol.scoringStatusNotification, (status) => {
        this.runs.set(status.uri, status);
        this.statusChanged.fire(status.uri);
      }),
      // A large file's document reaches extensions seconds after its tab opens: the server reads the saved
      // file meanwhile, so that its scores are here when the document is.
      vscode.window.tabGroups.onDidChangeTabs(({ opened, changed, closed }) => {
        this.readAheadTabs([...opened, ...changed]);
        for (const tab of closed) {
          const uri = tabFile(tab)?.toString();
          if (uri && !vscode.workspace.textDocuments.some((d) => d.uri.toString() === uri)) {
            this.aheadAsked.delete(uri);
            this.readAhead.delete(uri);
          }
        }
      }),
      vscode.workspace.onDidOpenTextDocument((document) => {
        this.aheadAsked.delete(document.uri.toString());
        this.arrivals.set(document.uri.toString(), performance.now());
        const ahead = this.readAhead.get(document.uri.toString());
        this.readAhead.delete(document.uri.toString());
        if (ahead && matchesSavedFile(document, ahead.savedFile!) && !this.scores.has(ahead.uri)) {
          this.receiveScores(ahead);
          this.scoredAhead.add(ahead.uri);
        }
      }),
      vscode.workspace.onDidCloseTextDocument((document) => this.arrivals.delete(document.uri.toString())),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor && this.scores.has(editor.document.uri.toString())) this.lastDataset = editor.document.uri;
      }),
    );
  }

  /**
   * Called before a document's didOpen goes to the server. A document whose scores came from the read-ahead
   * is already drawn from them: its text (29 MB for 50,000 records) follows a moment later, so that copying it
   * does not hold up drawing the badges.
   */
  beforeSync(document: vscode.TextDocument): Promise<void> {
    if (!this.scoredAhead.delete(document.uri.toString())) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, SYNC_DELAY_AFTER_READ_AHEAD_MS));
  }

  /**
   * Asks the server to read ahead the saved JSON files these tabs show, for the tabs in view (active in
   * their group) whose documents are not open yet: those are being loaded. Once per file until it opens.
   */
  readAheadTabs(tabs: readonly vscode.Tab[]): void {
    for (const tab of tabs) {
      const file = tabFile(tab);
      if (!file || !tab.isActive || !/\.jsonl?$/i.test(file.path)) continue;
      const uri = file.toString();
      if (this.aheadAsked.has(uri) || vscode.workspace.textDocuments.some((d) => d.uri.toString() === uri)) continue;
      this.aheadAsked.add(uri);
      void this.client.sendNotification(protocol.fileOpening, { uri });
    }
  }

  private receiveScores(params: protocol.ScoresParams): void {
    if (params.savedFile) {
      // Scores of the saved file, read ahead: for a document that is not here yet, or that just arrived.
      if (this.scores.has(params.uri)) return; // the document's own scores came first
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === params.uri);
      if (!document) {
        this.readAhead.set(params.uri, params);
        return;
      }
      if (!matchesSavedFile(document, params.savedFile)) return;
    }
    this.readAhead.delete(params.uri);
    let held = this.scores.get(params.uri);
    if (params.full || !held) {
      held = { uri: params.uri, version: params.version, records: [], total: params.total, scored: 0, model: null, anchorCount: null };
      this.scores.set(params.uri, held);
    }
    for (const record of params.records) held.records[record.index] = record;
    Object.assign(held, { version: params.version, total: params.total, scored: params.scored, model: params.model, anchorCount: params.anchorCount });
    const editor = vscode.window.activeTextEditor;
    if (editor?.document.uri.toString() === params.uri) this.lastDataset = editor.document.uri;
    this.scoresChanged.fire({ uri: params.uri, full: params.full });
  }

  /** When the document reached the extension (performance.now()), asked once: for timing its first render. */
  takeArrival(uri: vscode.Uri | string): number | undefined {
    const at = this.arrivals.get(uri.toString());
    this.arrivals.delete(uri.toString());
    return at;
  }

  scoresOf(uri: vscode.Uri | string): DocumentScores | undefined {
    return this.scores.get(uri.toString());
  }

  runOf(uri: vscode.Uri | string): protocol.ScoringStatus | undefined {
    return this.runs.get(uri.toString());
  }

  isDataset(document: vscode.TextDocument): boolean {
    return this.scores.has(document.uri.toString());
  }

  /** The dataset in the active editor, or else the last one that was active (e.g. while a panel has focus). */
  activeDataset(): vscode.TextDocument | undefined {
    const active = vscode.window.activeTextEditor?.document;
    if (active && this.isDataset(active)) return active;
    if (!this.lastDataset) return undefined;
    const uri = this.lastDataset.toString();
    return this.scores.has(uri) ? vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri) : undefined;
  }

  /** A custom request of server/protocol.ts, for commands and the dashboard. */
  request<P, R>(type: RequestType<P, R, void>, params: P, token?: vscode.CancellationToken): Promise<R> {
    return this.client.sendRequest(type, params, token);
  }

  sendSettings(): void {
    void this.client.sendNotification(protocol.didChangeSettings, this.config.serverSettings());
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** The file a text editor tab shows, if it shows one from disk. */
function tabFile(tab: vscode.Tab): vscode.Uri | undefined {
  return tab.input instanceof vscode.TabInputText && tab.input.uri.scheme === 'file' ? tab.input.uri : undefined;
}

/** Whether the document is, as far as can be told without reading it whole, the saved file the server read. */
function matchesSavedFile(document: vscode.TextDocument, saved: NonNullable<protocol.ScoresParams['savedFile']>): boolean {
  if (document.isDirty || document.lineCount !== saved.lineCount) return false;
  return document.offsetAt(document.lineAt(document.lineCount - 1).range.end) === saved.length;
}
