/**
 * Starts the Nuggets language server (dist/server.js, a separate Node process over IPC) with
 * vscode-languageclient. Hovers are rendered as untrusted Markdown: no command links, no HTML; the
 * extension's own links follow in a block of its own (hover_links.ts).
 */
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import type { InitializationOptions } from '../server/protocol';
import type { Config } from './config';
import type { ReadAhead } from './read_ahead';

/**
 * `documentSync` sends a document's didOpen, perhaps a moment later, and says when it has gone (see
 * ReadAhead.sync): hovers wait for it. `hoverLinks` adds the extension's own (trusted) links under a record's hover.
 */
export function createClient(context: vscode.ExtensionContext, config: Config, log: vscode.LogOutputChannel,
  documentSync: Pick<ReadAhead, 'sync' | 'synced'>,
  hoverLinks: (document: vscode.TextDocument, position: vscode.Position) => vscode.MarkdownString | undefined): LanguageClient {
  const module = context.asAbsolutePath('dist/server.js');
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6010'] } },
  };
  const initializationOptions: InitializationOptions = {
    storagePath: context.globalStorageUri.fsPath,
    settings: config.serverSettings(),
  };
  const clientOptions: LanguageClientOptions = {
    // Every JSON and JSON Lines file is offered; the server answers only for Alpaca datasets.
    documentSelector: [
      { scheme: 'file', language: 'json' },
      { scheme: 'file', language: 'jsonl' },
      { scheme: 'file', pattern: '**/*.jsonl' },
      { scheme: 'untitled', language: 'json' },
    ],
    initializationOptions,
    markdown: { isTrusted: false, supportHtml: false },
    middleware: {
      didOpen(document, next) {
        return documentSync.sync(document, async () => {
          if (!document.isClosed) await next(document); // closed meanwhile: the server never needs it
        });
      },
      async provideHover(document, position, token, next) {
        await documentSync.synced(document.uri.toString());
        const hover = await next(document, position, token);
        for (const content of hover?.contents ?? []) {
          if (content instanceof vscode.MarkdownString) {
            content.isTrusted = false;
            content.supportHtml = false;
            content.supportThemeIcons = false;
          }
        }
        const links = hover ? hoverLinks(document, position) : undefined;
        if (hover && links) hover.contents.push(links);
        return hover;
      },
    },
    // One channel for the server's messages and the extension's run log (Output > Nuggets).
    outputChannel: log,
  };
  return new LanguageClient('nuggets', 'Nuggets', serverOptions, clientOptions);
}
