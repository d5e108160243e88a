#!/usr/bin/env node
// Editor latency on a 50,000-record file (issue 4, part 5): "a 50,000-record file with cached scores
// opens with all decorations in < 2 s; hover p95 < 50 ms while scoring runs". A measurement, not a test.
//
//  1. Builds a 50,000-record Alpaca JSON file from the three Alpaca files in ../shared/data (gsm8k-train,
//     gpteacher-roleplay, gpteacher-toolformer), repeated with " (copy k)" appended to the instruction
//     of the k-th copy so that every record is distinct (records are keyed by content hash).
//  2. Pre-fills the server's score store (a temp storage path) through the server's own modules
//     (server/lsp/score-book.ts, server/records/store.ts), under the exact key the server will compute (demo
//     model fingerprint, a 100-anchor file, template, maxAnchorTokens): SYNTHETIC scores, since scoring
//     50,000 records with the demo model takes hours here. This measures opening and drawing, not scoring.
//  3. Starts the built server (dist/server.js) over stdio like any LSP client, opens the file and times
//     didOpen -> the full scores notification carrying all 50,000 scored records, and its size. Then
//     the same file under another name opened as VS Code's client opens it: fileOpening when its tab
//     opens (the server reads the saved file ahead) -> its scores, then didOpen -> the full notification.
//  4. Hover latency idle, then while Score Dataset runs on the same file (a new random anchor set makes
//     every score stale, so there is real scoring to do with the demo model).
//  Not measured here: drawing in a real VS Code. The extension logs "[decorations] N badges ... in X ms"
//  to its Nuggets output channel for renders of 10,000 badges or more (extension/decorations.ts);
//  tools/editor-open-vscode.mjs measures that in code-server, with steps 1-2 (prepareLargeDataset) from here.
//
//   node tools/build.mjs && node tools/editor-latency.mjs [--records 50000] [--hovers 200] [--keep]
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import lsp from 'vscode-languageserver-protocol/node.js';
import { measureHovers, quantile, startServer } from './lsp-session.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const demoModel = join(root, 'models', 'demo');

/**
 * Steps 1 and 2, shared with tools/editor-open-vscode.mjs: writes the `count`-record file to
 * `datasetPath` and an anchors file (its first 100 records) to `anchorsPath`, and pre-fills the score
 * store at `storagePath` (the server's storage path, or the extension's globalStorage folder) with
 * synthetic scores under the key the server computes for the demo model, those anchors and
 * maxAnchorTokens 200. Returns the file's text, URI and line count.
 */
export async function prepareLargeDataset({ count, datasetPath, anchorsPath, storagePath }) {
  // The server's own modules, bundled once for this script.
  const libPath = join(root, 'out', 'editor-latency-lib.cjs');
  await esbuild.build({
    stdin: {
      contents: `
        export { ScoreBook } from './server/lsp/score-book';
        export { readAnchors, writeAnchors } from './server/anchors';
        export { readModelFolder } from './server/model/folder';
        export { TEMPLATE_ID } from './server/scoring/template';
        export { parseDataset } from './server/dataset';`,
      resolveDir: root, loader: 'ts',
    },
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', mainFields: ['module', 'main'], outfile: libPath, logLevel: 'warning', external: ['onnxruntime-node'],
  });
  const lib = createRequire(import.meta.url)(libPath);

  // 1. The file.
  const t = performance.now();
  const data = join(root, '..', 'shared', 'data');
  const base = ['gsm8k-train.alpaca.json', 'gpteacher-roleplay.alpaca.json', 'gpteacher-toolformer.alpaca.json']
    .flatMap((f) => JSON.parse(readFileSync(join(data, f), 'utf8')));
  const records = [];
  for (let k = 0; records.length < count; k++) {
    for (const r of base) {
      if (records.length >= count) break;
      records.push(k === 0 ? r : { ...r, instruction: `${r.instruction} (copy ${k})` });
    }
  }
  const text = JSON.stringify(records, null, 2) + '\n';
  writeFileSync(datasetPath, text);
  const uri = pathToFileURL(datasetPath).toString();
  const lineCount = text.split('\n').length;
  console.log(`built ${datasetPath}: ${records.length} records from ${base.length} real ones, ${(text.length / 1e6).toFixed(1)} MB, ${lineCount} lines`);

  // 2. The store, pre-filled under the key the server will use.
  const parsed = lib.parseDataset(text, datasetPath);
  const ids = new Set(parsed.records.map((r) => r.id));
  if (ids.size !== count) throw new Error(`expected ${count} distinct records, found ${ids.size}`);
  lib.writeAnchors(anchorsPath, parsed.records.slice(0, 100));
  const anchors = lib.readAnchors(anchorsPath);
  const folder = lib.readModelFolder(demoModel);
  const key = {
    model: { name: folder.name, fingerprint: folder.fingerprint }, anchors: { hash: anchors.hash, count: anchors.anchors.length },
    template: lib.TEMPLATE_ID, maxAnchorTokens: 200, separator: '',
  };
  mkdirSync(storagePath, { recursive: true });
  const book = new lib.ScoreBook(storagePath);
  book.rememberAnchors(anchors);
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (const r of parsed.records) {
    const deltas = Array.from({ length: anchors.anchors.length }, () => Number(((random() - 0.45) * 0.4).toFixed(4)));
    const wins = deltas.filter((d) => d > 0).length;
    book.append(key, {
      index: r.index, id: r.id, goldenScore: wins / deltas.length, wins, anchors: deltas.length,
      meanDelta: deltas.reduce((a, b) => a + b, 0) / deltas.length, deltas, truncated: false,
    });
  }
  book.close();
  console.log(`store pre-filled with synthetic scores: this measures opening and drawing, not scoring (${count} records x ${anchors.anchors.length} anchors, ${((performance.now() - t) / 1000).toFixed(1)} s to prepare)`);
  return { text, uri, lineCount, key, anchorCount: anchors.anchors.length };
}

async function main() {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '50000' },
      hovers: { type: 'string', default: '200' },
      'interval-ms': { type: 'string', default: '50' },
      keep: { type: 'boolean', default: false },
    },
  });
  const RECORDS = Number(values.records);
  const work = mkdtempSync(join(tmpdir(), 'nuggets-editor-latency-'));
  const storagePath = join(work, 'storage');
  const anchorsPath = join(work, 'anchors.json');
  const rows = [];
  const row = (what, value, note = '') => {
    rows.push([what, value, note]);
    console.log(`  ${what}: ${value}${note ? `  (${note})` : ''}`);
  };

  const { text, uri, lineCount } = await prepareLargeDataset({ count: RECORDS, datasetPath: join(work, 'alpaca-50k.json'), anchorsPath, storagePath });
  const settings = { model: demoModel, modelVariant: null, anchors: anchorsPath, maxAnchorTokens: 200, batchSize: 16, threads: 1, scoringAllowed: true };

  // 3. The server over stdio.
  console.log('\nlanguage server (dist/server.js over stdio):');
  let scored = 0;
  let onFull;
  const { connection, stop } = await startServer({
    storagePath, settings,
    onScores: (p) => {
      if (p.uri === uri) scored = p.scored;
      if (p.full) onFull?.(p);
    },
  });
  /** The next full scores notification that `predicate` accepts. */
  const nextFull = (predicate) => new Promise((r) => (onFull = (p) => predicate(p) && r(p)));
  const fullScores = nextFull((p) => p.uri === uri);
  let t = performance.now();
  await connection.sendNotification(lsp.DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'json', version: 1, text } });
  const full = await fullScores;
  const openMs = performance.now() - t;
  const withScore = full.records.filter((r) => r.score && !r.stale).length;
  if (full.records.length !== RECORDS || withScore !== RECORDS) throw new Error(`the full notification carried ${full.records.length} records, ${withScore} with a current score`);
  row('didOpen -> full scores notification (all records, current scores)', `${openMs.toFixed(0)} ms`, `${full.records.length} records, ${withScore} scored`);
  row('size of that notification (JSON)', `${(Buffer.byteLength(JSON.stringify(full)) / 1e6).toFixed(2)} MB`, `${(Buffer.byteLength(JSON.stringify(full)) / RECORDS).toFixed(0)} bytes per record`);

  // The same file under another name, opened as VS Code's client does it: its tab first (fileOpening:
  // the server reads the saved file ahead), its document later (didOpen reuses that parse).
  const copyPath = join(work, 'alpaca-50k-copy.json');
  writeFileSync(copyPath, text);
  const copyUri = pathToFileURL(copyPath).toString();
  t = performance.now();
  let waiting = nextFull((p) => p.uri === copyUri && p.savedFile !== undefined);
  await connection.sendNotification('nuggets/fileOpening', { uri: copyUri });
  const ahead = await waiting;
  row('fileOpening -> scores of the saved file (read ahead)', `${(performance.now() - t).toFixed(0)} ms`, `${ahead.records.filter((r) => r.score && !r.stale).length} scored`);
  t = performance.now();
  waiting = nextFull((p) => p.uri === copyUri && p.version === 1);
  await connection.sendNotification(lsp.DidOpenTextDocumentNotification.type, { textDocument: { uri: copyUri, languageId: 'json', version: 1, text } });
  await waiting;
  row('then didOpen with the same text -> full scores notification', `${(performance.now() - t).toFixed(0)} ms`, 'the read-ahead parse is reused');

  // 4. Hovers, idle and while scoring runs.
  const hovers = (count) => measureHovers(connection, uri, lineCount, count, Number(values['interval-ms']));
  const hoverRow = (label, sorted, note) => row(label, `p95 ${quantile(sorted, 0.95).toFixed(1)} ms`, `median ${quantile(sorted, 0.5).toFixed(1)} ms, max ${sorted.at(-1).toFixed(1)} ms, n=${sorted.length}${note ? `; ${note}` : ''}`);
  hoverRow('hover, idle (cached scores)', await hovers(Math.min(100, Number(values.hovers))));

  t = performance.now();
  const restale = nextFull((p) => p.uri === uri);
  const chosen = await connection.sendRequest('nuggets/chooseAnchors', { textDocument: { uri }, choice: { method: 'random', count: 100, seed: 7 } });
  await restale;
  console.log(`  (chose ${chosen.count} random anchors in ${((performance.now() - t) / 1000).toFixed(1)} s: ${chosen.staleRecords} scores now stale, to be rescored)`);
  const cancel = new lsp.CancellationTokenSource();
  const scoring = connection.sendRequest('nuggets/scoreDataset', { textDocument: { uri }, workDoneToken: randomUUID() }, cancel.token);
  const scoringStarted = performance.now();
  while (scored === 0) await new Promise((r) => setTimeout(r, 50)); // hover once records are being scored
  const before = scored;
  const during = await hovers(Number(values.hovers));
  const afterHovers = scored;
  cancel.cancel();
  const result = await scoring.catch((err) => ({ error: err.message }));
  hoverRow('hover while Score Dataset runs on the file', during, `${afterHovers - before} records scored during the hovers`);
  console.log(`  (scoring: ${result.scoredNow ?? scored} records in ${((performance.now() - scoringStarted) / 1000).toFixed(1)} s before cancelling, demo model, 1 thread)`);
  await stop();

  console.log(`\n| measurement (${RECORDS} records, store pre-filled with synthetic scores) | value | notes |\n|---|---|---|`);
  for (const [what, value, note] of rows) console.log(`| ${what} | ${value} | ${note} |`);
  if (!values.keep) rmSync(work, { recursive: true, force: true });
  process.exit(0);
}

// Run as a script (not when imported for prepareLargeDataset).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
