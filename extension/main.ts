/**
 * Extension entry (bundled as dist/extension.js): starts the language server, then the views that
 * draw what it sends (inline scores, status bar) and the commands.
 */
import * as vscode from 'vscode';
import { createClient } from './client';
import { registerCommands } from './commands';
import { registerCostQuestion } from './cost_question';
import { Config, SECRET_KEYS } from './config';
import { Ctx } from './ctx';
import { Decorations } from './decorations';
import { FirstRun } from './first_run';
import { hoverLinks } from './hover_links';
import { ParquetEditorProvider } from './parquet_editor';
import { StatusDisplay } from './status_display';

let ctx: Ctx | undefined;

export interface NuggetsApi {
  ctx: Ctx;
}

export async function activate(context: vscode.ExtensionContext): Promise<NuggetsApi> {
  await vscode.workspace.fs.createDirectory(context.globalStorageUri);
  const config = new Config(context.extensionPath);
  await config.loadSecrets(context.secrets);
  const log = vscode.window.createOutputChannel('Nuggets', { log: true });
  // The client exists before ctx, which holds the read-ahead: documents open only once the client starts, below.
  const documentSync = {
    sync: (document: vscode.TextDocument, send: () => Promise<void>) => ctx?.readAhead.sync(document, send) ?? send(),
    synced: (uri: string) => ctx?.readAhead.synced(uri) ?? Promise.resolve(),
  };
  const client = createClient(context, config, log, documentSync, (document, position) => (ctx ? hoverLinks(ctx, document, position) : undefined));
  ctx = new Ctx(context, client, log, config);
  context.subscriptions.push(
    log,
    ctx,
    new FirstRun(ctx),
    new Decorations(ctx),
    new StatusDisplay(ctx),
    ...registerCommands(ctx),
    registerCostQuestion(ctx),
    ParquetEditorProvider.register(ctx),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (config.affects(e)) ctx?.sendSettings();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => ctx?.sendSettings()),
    // Credentials reach the server in the settings notification only (it never stores them).
    context.secrets.onDidChange(async (e) => {
      if (!Object.values(SECRET_KEYS).includes(e.key as never)) return;
      if (await config.loadSecrets(context.secrets)) ctx?.sendSettings();
    }),
  );
  await client.start();
  ctx.readAhead.askFor(vscode.window.tabGroups.all.flatMap((group) => group.tabs));
  return { ctx };
}

export async function deactivate(): Promise<void> {
  await ctx?.client.stop();
  ctx = undefined;
}
