/**
 * A real LSP client for the integration tests: starts the built server (dist/server.js) as a child
 * process and talks JSON-RPC over its stdio, recording every notification it sends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import {
  createProtocolConnection,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  HoverRequest,
  InitializedNotification,
  InitializeRequest,
  ProgressType,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type Hover,
  type MarkupContent,
  type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import * as protocol from '../../server/protocol';
import { repoRoot } from '../helpers';

export interface Received {
  at: number;
  method: string;
  params: unknown;
}

export class TestClient {
  readonly received: Received[] = [];
  private waiters: { predicate: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];
  stderr = '';

  private constructor(readonly child: ChildProcess, readonly connection: ProtocolConnection) {}

  /**
   * `env`: variables added to (or, when undefined, removed from) this process's environment for the server.
   * `shellPrefix`: shell commands run before the server in the same process (for example `ulimit -f 4`).
   */
  static async start(options: protocol.InitializationOptions, env: Record<string, string | undefined> = {}, shellPrefix?: string): Promise<TestClient> {
    const serverEnv = { ...process.env };
    for (const [name, value] of Object.entries(env)) {
      if (value === undefined) delete serverEnv[name];
      else serverEnv[name] = value;
    }
    const server = [process.execPath, join(repoRoot, 'dist', 'server.js'), '--stdio'];
    const child = shellPrefix === undefined
      ? spawn(server[0]!, server.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: serverEnv })
      : spawn('bash', ['-c', `${shellPrefix} && exec "$@"`, 'bash', ...server], { stdio: ['pipe', 'pipe', 'pipe'], env: serverEnv });
    const connection = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    const client = new TestClient(child, connection);
    child.stderr!.on('data', (chunk: Buffer) => (client.stderr += chunk.toString()));
    for (const method of [protocol.scoresNotification.method, protocol.scoresClearedNotification.method, protocol.scoringStatusNotification.method,
      protocol.datasetProblemNotification.method, protocol.tableIndexNotification.method, 'textDocument/publishDiagnostics', 'window/logMessage', 'window/showMessage']) {
      connection.onNotification(method, (params: unknown) => client.record(method, params));
    }
    connection.listen();
    await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid, rootUri: null, capabilities: { window: { workDoneProgress: true } }, initializationOptions: options,
    });
    await connection.sendNotification(InitializedNotification.type, {});
    return client;
  }

  /** Records $/progress values sent to `token` as notifications named `$/progress:<token>`. */
  listenProgress(token: string): void {
    this.connection.onProgress(new ProgressType<unknown>(), token, (value) => this.record(`$/progress:${token}`, value));
  }

  private record(method: string, params: unknown): void {
    const r = { at: performance.now(), method, params };
    this.received.push(r);
    this.waiters = this.waiters.filter((w) => {
      if (!w.predicate(r)) return true;
      w.resolve(r);
      return false;
    });
  }

  /** The first notification (already received or still to come) matching `predicate`, after `from`. */
  waitFor(predicate: (r: Received) => boolean, what: string, timeoutMs = 60_000, from = 0): Promise<Received> {
    const seen = this.received.slice(from).find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; server stderr:\n${this.stderr}`)), timeoutMs);
      this.waiters.push({ predicate, resolve: (r) => (clearTimeout(timer), resolve(r)) });
    });
  }

  scores(uri: string): protocol.ScoresParams[] {
    return this.received.filter((r) => r.method === protocol.scoresNotification.method && (r.params as protocol.ScoresParams).uri === uri)
      .map((r) => r.params as protocol.ScoresParams);
  }

  waitForScores(uri: string, predicate: (p: protocol.ScoresParams) => boolean, what: string, from = 0): Promise<protocol.ScoresParams> {
    return this.waitFor((r) => r.method === protocol.scoresNotification.method && (r.params as protocol.ScoresParams).uri === uri
      && predicate(r.params as protocol.ScoresParams), what, 60_000, from).then((r) => r.params as protocol.ScoresParams);
  }

  open(uri: string, text: string, languageId = 'json'): Promise<void> {
    return this.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId, version: 1, text } });
  }

  change(uri: string, version: number, text: string): Promise<void> {
    return this.connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version }, contentChanges: [{ text }] });
  }

  async hover(uri: string, line: number, character = 0): Promise<string | null> {
    const hover: Hover | null = await this.connection.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line, character } });
    return hover ? (hover.contents as MarkupContent).value : null;
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.connection.sendRequest(ShutdownRequest.type);
    await this.connection.sendNotification(ExitNotification.type);
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    this.child.kill();
    this.connection.dispose();
  }
}
