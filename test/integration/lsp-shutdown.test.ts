/**
 * The language server ends cleanly, whatever the scoring worker is doing: repeated open / score / close cycles
 * with the demo model (ONNX Runtime in the worker thread), closed after a finished run, in the middle of one,
 * and right after the model was opened, each exit with code 0 and no signal (never an abort in ONNX Runtime's
 * teardown, which a worker terminated while its sessions were live, or still running a pass, used to cause).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ExitNotification, ShutdownRequest } from 'vscode-languageserver-protocol/node';
import * as protocol from '../../server/protocol';
import { demoModel, scratchDir, sharedRecords } from '../helpers';
import { TestClient } from './lsp-client';

const work = scratchDir('lsp-shutdown');
const datasetPath = join(work, 'records.alpaca.json');
const uri = pathToFileURL(datasetPath).toString();
const text = JSON.stringify(sharedRecords('gsm8k-train.alpaca.json', [...Array(12).keys()]).map((r) => r.original), null, 2);
writeFileSync(datasetPath, text);
const settings: protocol.ServerSettings = { model: demoModel, anchors: null, maxAnchorTokens: 96, batchSize: 4, threads: 1, scoringAllowed: true };

type Moment = 'after the run' | 'mid-run' | 'after the model opened';

/** One editor session: open, score (all, part, or nothing), then shutdown and exit; how the server process ended. */
async function cycle(n: number, moment: Moment): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const client = await TestClient.start({ storagePath: join(work, `storage-${n}`), settings });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => client.child.once('exit', (code, signal) => resolve({ code, signal })));
  await client.open(uri, text);
  await client.waitForScores(uri, (p) => p.full, 'the opened file\'s scores');
  if (moment !== 'after the model opened') {
    const token = randomUUID();
    client.listenProgress(token);
    const run = client.connection.sendRequest(protocol.scoreDataset, { textDocument: { uri }, workDoneToken: token });
    if (moment === 'after the run') await run;
    else {
      await client.waitForScores(uri, (p) => p.scored >= 1, 'a first record scored');
      void run.catch(() => undefined);
    }
  }
  // A server that aborts while shutting down never answers: its exit ends the wait.
  const shutdown = client.connection.sendRequest(ShutdownRequest.type).then(() => client.connection.sendNotification(ExitNotification.type));
  await Promise.race([shutdown.catch(() => undefined), exited]);
  const timer = setTimeout(() => client.child.kill('SIGKILL'), 15_000);
  const ended = await exited;
  clearTimeout(timer);
  client.connection.dispose();
  return { ...ended, stderr: client.stderr };
}

test('open / score / close cycles for about a minute: the server exits with code 0 every time, never aborted by a signal', { timeout: 180_000 }, async () => {
  const moments: Moment[] = ['mid-run', 'after the run', 'after the model opened'];
  const endings: string[] = [];
  const started = Date.now();
  for (let n = 0; Date.now() - started < 60_000 || n < moments.length; n++) {
    const moment = moments[n % moments.length]!;
    const { code, signal, stderr } = await cycle(n, moment);
    endings.push(`${moment}: ${signal ?? code}`);
    assert.ok(code === 0 && signal === null, `cycle ${n} (${moment}) ended with ${signal ?? `code ${code}`}; stderr:\n${stderr.slice(-2000)}`);
  }
  process.stdout.write(`# ${endings.length} cycles in ${((Date.now() - started) / 1000).toFixed(0)} s, every one exit 0\n`);
});
