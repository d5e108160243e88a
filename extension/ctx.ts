/**
 * The extension's live state: the language client, the latest scores the server sent for each open
 * dataset, scoring runs in progress, and events for the views that draw them (decorations, status
 * bar, dashboard). Created once in activate(); disposed with the extension.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import type { RequestType } from 'vscode-languageclient/node';
import * as protocol from '../server/protocol';
import { Config } from './config';
import { ReadAhead } from './read_ahead';

export interface DocumentScores {
  uri: string;
  version: number;
  /** By record index. */
  records: protocol.RecordScore[];
  total: number;
  scored: number;
  model: string | null;
  anchorCount: number | null;
  demoModel: boolean;
}

/** The dataset a command acts on: a text document's, or a Parquet file open in the table editor. */
export interface DatasetRef {
  uri: vscode.Uri;
  /** The file's name, for messages. */
  name: string;
}

/** The Parquet table editor's view type (package.json customEditors, extension/parquet_editor.ts). */
export const PARQUET_VIEW_TYPE = 'nuggets.parquetTable';

/** The file of the active tab when it is the Parquet table editor. */
export function activeTableUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom && input.viewType === PARQUET_VIEW_TYPE ? input.uri : undefined;
}

const nameOf = (uri: vscode.Uri): string => uri.path.split('/').pop() ?? uri.toString();

export interface ScoresChange {
  uri: string;
  /** Every record's score was sent (the document was opened or edited, or the model or anchors changed), not just a few newly scored ones. */
  full: boolean;
}

export class Ctx implements vscode.Disposable {
  readonly config: Config;
  private readonly scores = new Map<string, DocumentScores>();
  /** Scores of large files sent before their documents arrive. */
  readonly readAhead: ReadAhead;
  /** When each open document reached the extension (performance.now()), until its first badges are drawn: for the log. */
  private readonly arrivals = new Map<string, number>();
  private readonly runs = new Map<string, protocol.ScoringStatus>();
  /** Documents that read as datasets but do not parse now: their scores stay, waiting for a valid file. */
  private readonly problems = new Map<string, protocol.DatasetProblem>();
  /** Parquet files open in the table editor (openTable's answer), and those it refused (why). */
  private readonly tables = new Map<string, protocol.TableInfo>();
  private readonly tableRefusals = new Map<string, string>();
  private readonly scoresChanged = new vscode.EventEmitter<ScoresChange>();
  private readonly activeChanged = new vscode.EventEmitter<void>();
  private readonly statusChanged = new vscode.EventEmitter<string>();
  private lastDataset: vscode.Uri | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  /** Fires whenever a document's scores change (opened, edited, scored, cleared). */
  readonly onDidChangeScores = this.scoresChanged.event;
  /** Fires with a document URI whenever a scoring run's state changes. */
  readonly onDidChangeStatus = this.statusChanged.event;
  /** Fires when the active editor changes, a text editor or the table editor (which is no text editor). */
  readonly onDidChangeActive = this.activeChanged.event;

  /**
   * @param log the "Nuggets" output channel: the server's messages and a record of every run (model, anchors,
   * records scored and skipped, duration, cancellations and errors).
   */
  constructor(readonly extensionContext: vscode.ExtensionContext, readonly client: LanguageClient, readonly log: vscode.LogOutputChannel, config?: Config) {
    this.config = config ?? new Config(extensionContext.extensionPath);
    this.readAhead = new ReadAhead(client, (params) => this.receiveScores(params), (uri) => this.scores.has(uri));
    this.disposables.push(
      this.scoresChanged, this.statusChanged, this.activeChanged, this.readAhead,
      client.onNotification(protocol.scoresNotification, (params) => (params.savedFile ? this.readAhead.receive(params) : this.receiveScores(params))),
      client.onNotification(protocol.scoresClearedNotification, ({ uri }) => {
        this.scores.delete(uri);
        this.readAhead.forget(uri);
        this.runs.delete(uri);
        this.scoresChanged.fire({ uri, full: true });
      }),
      client.onNotification(protocol.scoringStatusNotification, (status) => {
        this.runs.set(status.uri, status);
        if (status.phase === 'failed') this.log.error(`[run] ${status.uri}: scoring failed: ${status.message ?? 'unknown error'}`);
        this.statusChanged.fire(status.uri);
      }),
      client.onNotification(protocol.datasetProblemNotification, ({ uri, problem }) => {
        if (problem) {
          this.problems.set(uri, problem);
          this.log.warn(`${uri}:${problem.range.start.line + 1}:${problem.range.start.character + 1}: ${problem.message}`);
        } else {
          this.problems.delete(uri);
        }
        this.scoresChanged.fire({ uri, full: true });
        this.statusChanged.fire(uri);
      }),
      // Anchor choices are kept by file: they follow renames and moves.
      vscode.workspace.onDidRenameFiles((e) => {
        void client.sendNotification(protocol.filesRenamed, { files: e.files.map((f) => ({ oldUri: f.oldUri.toString(), newUri: f.newUri.toString() })) });
      }),
      vscode.workspace.onDidOpenTextDocument((document) => this.arrivals.set(document.uri.toString(), performance.now())),
      vscode.workspace.onDidCloseTextDocument((document) => {
        this.problems.delete(document.uri.toString());
        this.arrivals.delete(document.uri.toString());
      }),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor && this.scores.has(editor.document.uri.toString())) this.lastDataset = editor.document.uri;
        this.activeChanged.fire();
      }),
      // The table editor is a tab, not a text editor: its becoming active is told by the tabs.
      vscode.window.tabGroups.onDidChangeTabs(() => this.tableTabChanged()),
      vscode.window.tabGroups.onDidChangeTabGroups(() => this.tableTabChanged()),
    );
  }

  private receiveScores(params: protocol.ScoresParams): void {
    if (!params.savedFile) this.readAhead.forget(params.uri);
    let held = this.scores.get(params.uri);
    if (params.full || !held) {
      held = { uri: params.uri, version: params.version, records: [], total: params.total, scored: 0, model: null, anchorCount: null, demoModel: false };
      this.scores.set(params.uri, held);
    }
    for (const record of params.records) held.records[record.index] = record;
    Object.assign(held, {
      version: params.version, total: params.total, scored: params.scored, model: params.model, anchorCount: params.anchorCount,
      demoModel: params.demoModel,
    });
    const editor = vscode.window.activeTextEditor;
    if (editor?.document.uri.toString() === params.uri) this.lastDataset = editor.document.uri;
    this.scoresChanged.fire({ uri: params.uri, full: params.full });
  }

  private tableTabChanged(): void {
    const table = activeTableUri();
    if (table && this.tables.has(table.toString())) this.lastDataset = table;
    this.activeChanged.fire();
  }

  /** The table editor opened a Parquet file (openTable answered `info`), or was refused it (`refusal`). */
  tableOpened(uri: vscode.Uri, opened: { info: protocol.TableInfo } | { refusal: string }): void {
    const key = uri.toString();
    if ('info' in opened) {
      this.tables.set(key, opened.info);
      this.tableRefusals.delete(key);
      if (activeTableUri()?.toString() === key) this.lastDataset = uri;
    } else {
      this.tableRefusals.set(key, opened.refusal);
    }
    this.activeChanged.fire();
  }

  /** The file's last table editor closed. */
  tableClosed(uri: vscode.Uri): void {
    this.tables.delete(uri.toString());
    this.tableRefusals.delete(uri.toString());
    this.activeChanged.fire();
  }

  /** What openTable said of the Parquet file, while a table editor has it open. */
  tableOf(uri: vscode.Uri | string): protocol.TableInfo | undefined {
    return this.tables.get(uri.toString());
  }

  /** Why the table editor could not open the file (no readable Parquet), while it shows that. */
  tableRefusalOf(uri: vscode.Uri | string): string | undefined {
    return this.tableRefusals.get(uri.toString());
  }

  /** Records of the dataset: as its scores count them, or, before the server read a table whole, its rows. */
  recordCount(uri: vscode.Uri | string): number {
    return this.scoresOf(uri)?.total ?? this.tableOf(uri)?.rows ?? 0;
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

  /** Why the document, which reads as a dataset, does not parse now; undefined when it does (or is no dataset). */
  problemOf(uri: vscode.Uri | string): protocol.DatasetProblem | undefined {
    return this.problems.get(uri.toString());
  }

  /**
   * The dataset in the active editor: a text document's, or the Parquet file of the active table editor. Only
   * while neither is active (a panel such as the dashboard has focus) the last dataset that was active: a
   * command never acts on a file other than the active editor's.
   */
  activeDataset(): DatasetRef | undefined {
    const active = vscode.window.activeTextEditor?.document;
    if (active) return this.isDataset(active) && !this.problemOf(active.uri) ? { uri: active.uri, name: nameOf(active.uri) } : undefined;
    const table = activeTableUri();
    if (table) return this.tables.has(table.toString()) ? { uri: table, name: nameOf(table) } : undefined;
    if (!this.lastDataset) return undefined;
    const uri = this.lastDataset.toString();
    if (this.tables.has(uri)) return { uri: this.lastDataset, name: nameOf(this.lastDataset) };
    const document = this.scores.has(uri) && !this.problems.has(uri) ? vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri) : undefined;
    return document ? { uri: document.uri, name: nameOf(document.uri) } : undefined;
  }

  /**
   * A custom request of server/protocol.ts, for commands and the dashboard. A request about a document
   * goes after the document's didOpen, which read-ahead may still hold back (ReadAhead.synced).
   */
  async request<P, R>(type: RequestType<P, R, void>, params: P, token?: vscode.CancellationToken): Promise<R> {
    const uri = (params as { textDocument?: { uri?: unknown } } | undefined)?.textDocument?.uri;
    if (typeof uri === 'string') await this.readAhead.synced(uri);
    return this.client.sendRequest(type, params, token);
  }

  sendSettings(): void {
    void this.client.sendNotification(protocol.didChangeSettings, this.config.serverSettings());
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
