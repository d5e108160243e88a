/**
 * Scores of a large file before VS Code hands over its document. VS Code gives extensions a file's
 * document only after loading and copying it, seconds after its tab opens for a 29 MB file, and the
 * LSP didOpen then copies it again to the server. So when a tab in view opens a saved .json/.jsonl
 * file, the server is asked to read the file from disk at once (protocol.fileOpening). The scores it
 * sends back (ScoresParams.savedFile) are held here until the document arrives and, when the document
 * is that saved file, shown at once; the document's own didOpen goes to the server a little later (requests
 * about the document wait for it), and the scores the server answers it with replace them.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import * as protocol from '../server/protocol';

/** How long a document drawn from read-ahead scores waits before its text goes to the server. */
const SYNC_DELAY_MS = 500;

export class ReadAhead implements vscode.Disposable {
  /** Files the server was asked to read ahead whose documents have not arrived. */
  private readonly asked = new Set<string>();
  /** The server's answers, by URI, for documents that have not arrived. */
  private readonly held = new Map<string, protocol.ScoresParams>();
  /** Documents just shown with their saved file's scores, whose didOpen has not gone to the server. */
  private readonly shown = new Set<string>();
  /** The didOpens sync holds back, by document, until they are sent. */
  private readonly syncing = new Map<string, Promise<void>>();
  private readonly disposables: vscode.Disposable[] = [];

  /**
   * `show` applies scores to an open document; `hasScores` says whether a document already has scores
   * of its own (which read-ahead scores never replace).
   */
  constructor(
    private readonly client: LanguageClient,
    private readonly show: (params: protocol.ScoresParams) => void,
    private readonly hasScores: (uri: string) => boolean,
  ) {
    this.disposables.push(
      vscode.window.tabGroups.onDidChangeTabs(({ opened, changed, closed }) => {
        this.askFor([...opened, ...changed]);
        for (const tab of closed) {
          const uri = tabFile(tab)?.toString();
          if (uri && !openDocument(uri)) this.forget(uri);
        }
      }),
      vscode.workspace.onDidOpenTextDocument((document) => {
        const uri = document.uri.toString();
        const held = this.held.get(uri);
        this.asked.delete(uri);
        this.held.delete(uri);
        // Shown before the language client sends this document's didOpen, which sync then holds back.
        if (held && this.showIfSaved(document, held)) this.shown.add(uri);
      }),
    );
  }

  /**
   * Asks the server to read ahead the saved JSON files these tabs show, for the tabs in view (active in
   * their group) whose documents are not open yet: those are being loaded. Once per file until it opens.
   */
  askFor(tabs: readonly vscode.Tab[]): void {
    for (const tab of tabs) {
      const file = tabFile(tab);
      if (!file || !tab.isActive || !/\.jsonl?$/i.test(file.path)) continue;
      const uri = file.toString();
      if (this.asked.has(uri) || openDocument(uri)) continue;
      this.asked.add(uri);
      void this.client.sendNotification(protocol.fileOpening, { uri });
    }
  }

  /** The server's answer to fileOpening: held for a document still to come, or shown on one just arrived. */
  receive(params: protocol.ScoresParams): void {
    const document = openDocument(params.uri);
    if (document) this.showIfSaved(document, params);
    else this.held.set(params.uri, params);
  }

  /**
   * Sends a document's didOpen (`send`). A document already drawn from read-ahead scores sends its text
   * (29 MB for 50,000 records) a moment later, so that copying it does not hold up drawing the badges;
   * until it is sent, `synced` holds back requests about it.
   */
  sync(document: vscode.TextDocument, send: () => Promise<void>): Promise<void> {
    const uri = document.uri.toString();
    if (!this.shown.delete(uri)) return send();
    const sent = new Promise((resolve) => setTimeout(resolve, SYNC_DELAY_MS)).then(send).finally(() => {
      if (this.syncing.get(uri) === sent) this.syncing.delete(uri);
    });
    this.syncing.set(uri, sent);
    return sent;
  }

  /**
   * Resolves once the document's didOpen, if sync holds it back, has gone to the server. The badges drawn
   * from read-ahead scores invite a click (Score Dataset from the status bar) before then; a request sent
   * at that moment would reach the server before the document it is about.
   */
  async synced(uri: string): Promise<void> {
    await this.syncing.get(uri)?.catch(() => undefined);
  }

  forget(uri: string): void {
    this.asked.delete(uri);
    this.held.delete(uri);
  }

  /** Shows the saved file's scores on the document if it is that file and has no scores of its own yet. */
  private showIfSaved(document: vscode.TextDocument, params: protocol.ScoresParams): boolean {
    if (this.hasScores(params.uri) || !matchesSavedFile(document, params.savedFile!)) return false;
    this.show(params);
    return true;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** The file a text editor tab shows, if it shows one from disk. */
function tabFile(tab: vscode.Tab): vscode.Uri | undefined {
  return tab.input instanceof vscode.TabInputText && tab.input.uri.scheme === 'file' ? tab.input.uri : undefined;
}

function openDocument(uri: string): vscode.TextDocument | undefined {
  return vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
}

/** Whether the document is, as far as can be told without reading it whole, the saved file the server read. */
function matchesSavedFile(document: vscode.TextDocument, saved: NonNullable<protocol.ScoresParams['savedFile']>): boolean {
  if (document.isDirty || document.lineCount !== saved.lineCount) return false;
  return document.offsetAt(document.lineAt(document.lineCount - 1).range.end) === saved.length;
}
