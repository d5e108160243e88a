#!/usr/bin/env node
// Hover latency while a large dataset is being scored: starts the built language server
// (dist/server.js) over stdio like any LSP client, opens a real Alpaca file (default: the
// 7,473-record gsm8k-train from ../shared/data), starts Score Dataset, and hovers random records at
// a steady pace while scoring runs. Prints median and p95 latency, with a baseline taken before
// scoring starts. Run `node tools/build.mjs` first.
//
//   node tools/hover-latency.mjs [--data file] [--model folder] [--anchors 100] [--hovers 200]
//                                [--interval-ms 100] [--threads 0]
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import lsp from 'vscode-languageserver-protocol/node.js';
import { measureHovers, quantile, startServer } from './lsp-session.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    data: { type: 'string', default: join(root, '..', 'shared', 'data', 'gsm8k-train.alpaca.json') },
    model: { type: 'string', default: join(root, 'models', 'demo') },
    anchors: { type: 'string', default: '100' },
    hovers: { type: 'string', default: '200' },
    'interval-ms': { type: 'string', default: '100' },
    threads: { type: 'string', default: '0' },
  },
});
const hovers = Number(values.hovers);
const interval = Number(values['interval-ms']);
const storagePath = mkdtempSync(join(tmpdir(), 'nuggets-hover-'));
const text = readFileSync(values.data, 'utf8');
const uri = pathToFileURL(resolve(values.data)).toString();
const lineCount = text.split('\n').length;

let scored = 0;
let total = 0;
let opened;
const openedPromise = new Promise((r) => (opened = r));
const settings = { model: resolve(values.model), anchors: null, maxAnchorTokens: 200, batchSize: 16, threads: Number(values.threads), scoringAllowed: true };
const { connection, stop } = await startServer({
  storagePath, settings, uri,
  onScores: (p) => {
    total = p.total;
    scored = p.scored;
    if (p.full) opened();
  },
});
let t = performance.now();
await connection.sendNotification(lsp.DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'json', version: 1, text } });
await openedPromise;
console.log(`opened ${values.data}: ${total} records, first scores notification after ${(performance.now() - t).toFixed(0)} ms`);

const measure = (count) => measureHovers(connection, uri, lineCount, count, interval);
const report = (label, sorted) => console.log(`${label}: n=${sorted.length} median ${quantile(sorted, 0.5).toFixed(2)} ms, p95 ${quantile(sorted, 0.95).toFixed(2)} ms, max ${sorted.at(-1).toFixed(2)} ms`);

report('hover latency, idle', await measure(Math.min(50, hovers)));

t = performance.now();
const anchors = await connection.sendRequest('nuggets/chooseAnchors', { textDocument: { uri }, choice: { method: 'kmeans', count: Number(values.anchors) } });
console.log(`chose ${anchors.count} k-means anchors in ${((performance.now() - t) / 1000).toFixed(1)} s`);

const cancel = new lsp.CancellationTokenSource();
const started = performance.now();
const scoring = connection.sendRequest('nuggets/scoreDataset', { textDocument: { uri }, workDoneToken: randomUUID() }, cancel.token);
while (scored === 0) await new Promise((r) => setTimeout(r, 50)); // hover once records are being scored
const scoredBefore = scored;
const during = await measure(hovers);
const scoredAfter = scored;
cancel.cancel();
const result = await scoring.catch((err) => ({ error: err.message }));
const seconds = (performance.now() - started) / 1000;
report(`hover latency while scoring (${scoredBefore}→${scoredAfter} of ${total} records scored during the hovers)`, during);
console.log(`scoring: ${result.scoredNow ?? scored} records in ${seconds.toFixed(1)} s before cancelling (${result.cancelled ? 'cancelled' : JSON.stringify(result)})`);

await stop();
rmSync(storagePath, { recursive: true, force: true });
process.exit(0);
