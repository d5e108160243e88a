/**
 * Extension entry (bundled as dist/extension.js): starts the language server, then the views that
 * draw what it sends (inline scores, status bar) and the commands.
 */
import * as vscode from 'vscode';
import { createClient } from './client';
import { registerCommands } from './commands';
import { Config } from './config';
import { Ctx } from './ctx';
import { Decorations } from './decorations';
import { StatusDisplay } from './status_display';

let ctx: Ctx | undefined;

export interface NuggetsApi {
  ctx: Ctx;
}

export async function activate(context: vscode.ExtensionContext): Promise<NuggetsApi> {
  await vscode.workspace.fs.createDirectory(context.globalStorageUri);
  const config = new Config(context.extensionPath);
  const client = createClient(context, config);
  ctx = new Ctx(context, client);
  context.subscriptions.push(
    ctx,
    new Decorations(ctx),
    new StatusDisplay(ctx),
    ...registerCommands(ctx),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (config.affects(e)) ctx?.sendSettings();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => ctx?.sendSettings()),
  );
  await client.start();
  return { ctx };
}

export async function deactivate(): Promise<void> {
  await ctx?.client.stop();
  ctx = undefined;
}
