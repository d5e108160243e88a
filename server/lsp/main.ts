/**
 * Entry of the Nuggets language server (bundled as dist/server.js). Started by the extension over
 * IPC, or by any LSP client with --stdio. Standard document sync and hover; the custom requests and
 * notifications are declared in ../protocol.ts.
 */
import { createConnection, ProposedFeatures, TextDocuments, TextDocumentSyncKind } from 'vscode-languageserver/node';
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
connection.onRequest(protocol.chooseAnchors, (params) => ready().chooseAnchors(params));
connection.onRequest(protocol.clearScores, (params) => ready().clearScores(params.textDocument.uri));
connection.onRequest(protocol.selectionPreview, (params) => ready().selectionPreview(params));
connection.onRequest(protocol.selectSubset, (params) => ready().selectSubset(params));
connection.onRequest(protocol.distribution, (params) => ready().dashboard.distribution(params));
connection.onRequest(protocol.tablePage, (params) => ready().dashboard.tablePage(params));
connection.onRequest(protocol.anchorEffects, (params) => ready().dashboard.anchorEffects(params.textDocument.uri));
connection.onRequest(protocol.compareModels, (params, token) => ready().compareModels(params, token));
connection.onRequest(protocol.nearestNeighbours, (params) => ready().dashboard.nearestNeighbours(params));
connection.onRequest(protocol.goldenIfdScatter, (params) => ready().dashboard.goldenIfdScatter(params.textDocument.uri));
connection.onRequest(protocol.recordEffects, (params) => ready().dashboard.recordEffects(params));
connection.onRequest(protocol.exportScores, (params) => ready().dashboard.exportScores(params));
connection.onRequest(protocol.suggestedModels, () => ready().suggestedModels());
connection.onRequest(protocol.ollamaModels, () => ready().ollamaModels());
connection.onShutdown(() => server?.dispose());

documents.listen(connection);
connection.listen();
