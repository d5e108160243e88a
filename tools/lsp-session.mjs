// What the latency scripts share: the built language server (dist/server.js) driven over stdio like
// any LSP client, and hover timing. Run `node tools/build.mjs` first.
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import lsp from 'vscode-languageserver-protocol/node.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Starts and initializes the server; `onScores` gets each nuggets/scores notification for `uri` (for every document when `uri` is undefined). */
export async function startServer({ storagePath, settings, uri, onScores }) {
  const child = spawn(process.execPath, [join(root, 'dist', 'server.js'), '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const connection = lsp.createProtocolConnection(new lsp.StreamMessageReader(child.stdout), new lsp.StreamMessageWriter(child.stdin));
  connection.onNotification('nuggets/scores', (p) => {
    if (uri === undefined || p.uri === uri) onScores(p);
  });
  connection.listen();
  await connection.sendRequest(lsp.InitializeRequest.type, { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: { storagePath, settings } });
  await connection.sendNotification(lsp.InitializedNotification.type, {});
  const stop = async () => {
    await connection.sendRequest(lsp.ShutdownRequest.type);
    await connection.sendNotification(lsp.ExitNotification.type);
    child.kill();
  };
  return { connection, stop };
}

/** Latencies (ms, sorted) of `count` hovers on random lines of the document, `intervalMs` apart. */
export async function measureHovers(connection, uri, lineCount, count, intervalMs) {
  const latencies = [];
  for (let i = 0; i < count; i++) {
    const line = 1 + Math.floor(Math.random() * (lineCount - 2));
    const start = performance.now();
    await connection.sendRequest(lsp.HoverRequest.type, { textDocument: { uri }, position: { line, character: 4 } });
    latencies.push(performance.now() - start);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return latencies.sort((a, b) => a - b);
}

export const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
