/**
 * Entry of the Nuggets language server (bundled as dist/server.js). Started by the extension over
 * IPC, or by any LSP client with --stdio. Standard document sync and hover; the custom requests and
 * notifications are declared in ../protocol.ts.
 */
import { createConnection, LSPErrorCodes, ProposedFeatures, ResponseError, TextDocuments, TextDocumentSyncKind, type CancellationToken } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import * as protocol from '../protocol';
import { NuggetsServer } from './server';

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);
let server: NuggetsServer | undefined;

function ready(): NuggetsServer {
  if (!server) throw new Error('the Nuggets server was not initialized');
  return server;
}

connection.onInitialize((params) => {
  const options = params.initializationOptions as Partial<protocol.InitializationOptions> | undefined;
  if (!options?.storagePath || !options.settings) {
    throw new Error('initializationOptions must give storagePath and settings (see server/protocol.ts)');
  }
  server = new NuggetsServer(connection, options.storagePath, options.settings);
  return {
    capabilities: { textDocumentSync: TextDocumentSyncKind.Incremental, hoverProvider: true },
    serverInfo: { name: 'nuggets' },
  };
});

// TextDocuments fires onDidChangeContent right after onDidOpen: the open is parsed at once, edits debounced.
const justOpened = new Set<string>();
documents.onDidOpen((e) => {
  justOpened.add(`${e.document.uri}@${e.document.version}`);
  void ready().documents.open(e.document).catch((err) => connection.console.error(String(err?.stack ?? err)));
});
documents.onDidChangeContent((e) => {
  if (justOpened.delete(`${e.document.uri}@${e.document.version}`)) return;
  ready().documents.changed(e.document);
});
documents.onDidClose((e) => ready().documents.closed(e.document.uri));

connection.onNotification(protocol.fileOpening, ({ uri }) => {
  void ready().documents.fileOpening(uri).catch((err) => connection.console.error(String(err?.stack ?? err)));
});
connection.onNotification(protocol.filesRenamed, ({ files }) => {
  void ready().filesRenamed(files).catch((err) => connection.console.error(String(err?.stack ?? err)));
});
connection.onHover((params) => ready().hover(params));
connection.onNotification(protocol.didChangeSettings, (settings) => void ready().settingsChanged(settings));
connection.onRequest(protocol.scoreDataset, (params, token) => ready().scoreDataset(params, token));
connection.onRequest(protocol.chooseAnchors, logRefusals(protocol.chooseAnchors.method, (params) => ready().chooseAnchors(params)));
connection.onRequest(protocol.clearScores, logRefusals(protocol.clearScores.method, (params) => ready().clearScores(params.textDocument.uri)));
connection.onRequest(protocol.selectionPreview, logRefusals(protocol.selectionPreview.method, (params) => ready().selectionPreview(params)));
connection.onRequest(protocol.selectSubset, logRefusals(protocol.selectSubset.method, (params) => ready().selectSubset(params)));
connection.onRequest(protocol.distribution, logRefusals(protocol.distribution.method, (params) => ready().dashboard.distribution(params)));
connection.onRequest(protocol.tablePage, logRefusals(protocol.tablePage.method, (params) => ready().dashboard.tablePage(params)));
connection.onRequest(protocol.anchorEffects, logRefusals(protocol.anchorEffects.method, (params) => ready().dashboard.anchorEffects(params.textDocument.uri)));
// Compare Models logs every comparison itself, its refusals included, as [compare] lines.
connection.onRequest(protocol.compareModels, (params, token) => ready().compareModels(params, token));
connection.onRequest(protocol.nearestNeighbours, logRefusals(protocol.nearestNeighbours.method, (params) => ready().dashboard.nearestNeighbours(params)));
connection.onRequest(protocol.goldenIfdScatter, logRefusals(protocol.goldenIfdScatter.method, (params) => ready().dashboard.goldenIfdScatter(params.textDocument.uri)));
connection.onRequest(protocol.recordEffects, logRefusals(protocol.recordEffects.method, (params) => ready().dashboard.recordEffects(params)));
connection.onRequest(protocol.exportScores, logRefusals(protocol.exportScores.method, (params) => ready().exportScores(params)));
connection.onRequest(protocol.openTable, logRefusals(protocol.openTable.method, (params) => ready().openTable(params.textDocument.uri)));
connection.onNotification(protocol.closeTable, (params) => ready().closeTable(params.textDocument.uri));
connection.onRequest(protocol.suggestedModels, () => ready().suggestedModels());
connection.onRequest(protocol.ollamaModels, () => ready().ollamaModels());
/**
 * A request refused with a message for the user (a ResponseError other than a cancel) gets its `[refused]` line in the
 * Nuggets output channel, with the file, model and anchors, as the other work does. Score Dataset's refusals are
 * logged by the client with its run line.
 */
function logRefusals<P, R>(method: string, handler: (params: P, token: CancellationToken) => Promise<R> | R): (params: P, token: CancellationToken) => Promise<R> {
  return async (params, token) => {
    const started = Date.now();
    try {
      return await handler(params, token);
    } catch (err) {
      if (err instanceof ResponseError && err.code !== LSPErrorCodes.RequestCancelled && server) {
        const uri = (params as { textDocument?: { uri?: string } } | undefined)?.textDocument?.uri;
        void server.refused(method.replace(/^nuggets\//, ''), uri, err.message, started).catch(() => undefined);
      }
      throw err;
    }
  };
}

connection.onShutdown(() => server?.dispose());

documents.listen(connection);
connection.listen();
