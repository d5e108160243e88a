/**
 * A misbehaving HTTP server on 127.0.0.1 for the network chaos tests, speaking raw HTTP/1.1 over TCP so
 * that it can fail at any point of an exchange. Each connection is handled by the next behaviour in the
 * queue (the last one repeats):
 * - 'silent': accepts the connection and never reads or answers (a server stuck at connect);
 * - 'no-headers': reads the request and never answers (stuck on headers);
 * - 'mid-body': sends the headers and half the body, then nothing (stuck mid-body);
 * - 'reset': drops the connection at once (a flaky network);
 * - 'drip': sends the body one byte every `dripMs` (slow, but never silent for long);
 * - 'ok': the whole answer at once.
 * Held connections are closed by close(), so every test ends by itself.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export type Behaviour = 'silent' | 'no-headers' | 'mid-body' | 'reset' | 'drip' | 'ok';

export class StallingServer {
  connections = 0;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(private readonly server: Server, readonly url: string, private queue: Behaviour[], private readonly body: string, private readonly dripMs: number) {}

  static async start(behaviours: Behaviour[], body = '{"ok":true}', dripMs = 20): Promise<StallingServer> {
    let stalling: StallingServer | undefined;
    const server = createServer((socket) => stalling!.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stalling = new StallingServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, [...behaviours], body, dripMs);
    return stalling;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(socket: Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const behaviour = this.queue.length > 1 ? this.queue.shift()! : this.queue[0]!;
    if (behaviour === 'silent') {
      socket.pause();
      return;
    }
    if (behaviour === 'reset') {
      socket.resetAndDestroy();
      return;
    }
    let request = '';
    socket.on('data', (chunk) => {
      request += chunk.toString('latin1');
      const headersEnd = request.indexOf('\r\n\r\n');
      if (headersEnd < 0) return;
      const length = Number(/content-length:\s*(\d+)/i.exec(request.slice(0, headersEnd))?.[1] ?? 0);
      if (request.length < headersEnd + 4 + length) return;
      socket.removeAllListeners('data');
      this.answer(socket, behaviour);
    });
  }

  private answer(socket: Socket, behaviour: Behaviour): void {
    if (behaviour === 'no-headers') return;
    const body = Buffer.from(this.body);
    socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`);
    if (behaviour === 'mid-body') {
      socket.write(body.subarray(0, Math.floor(body.length / 2)));
      return;
    }
    if (behaviour === 'drip') {
      let sent = 0;
      const next = (): void => {
        socket.write(body.subarray(sent, sent + 1));
        sent++;
        if (sent >= body.length) return void socket.end();
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          next();
        }, this.dripMs);
        this.timers.add(timer);
      };
      next();
      return;
    }
    socket.end(body);
  }
}
