/**
 * The real SGLang Model Gateway (`sglang-router` from the Python package index, installed by tools/setup.sh) in front
 * of stand-in workers on 127.0.0.1: a Rust binary that needs no GPU. Started with the `manual` policy, which sends
 * every request with the same X-SMG-Routing-Key to the same worker (0.3.x has no `consistent_hashing`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** The version tools/setup.sh installs. */
export const GATEWAY_VERSION = '0.3.2';

export class SglangGateway {
  private constructor(private readonly child: ChildProcess, readonly url: string, private readonly log: () => string) {}

  /**
   * Throws, saying how to install it, where the gateway is not installed. Waits until it lists every worker healthy,
   * or with `healthy` false (workers that do not answer) only until it answers GET /workers.
   */
  static async start(workers: string[], policy = 'manual', healthy = true): Promise<SglangGateway> {
    const probe = spawnSync('python3', ['-c', 'import sglang_router, importlib.metadata as m; print(m.version("sglang-router"))'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      throw new Error(`The SGLang gateway is not installed (python3 -c 'import sglang_router' failed: ${probe.stderr.trim().split('\n').at(-1)}); run tools/setup.sh, or python3 -m pip install sglang-router==${GATEWAY_VERSION}.`);
    }
    const port = await freePort();
    // Its metrics listen on a port of their own (29000 by default): one each, so that two gateways can run at once.
    const metrics = await freePort();
    const child = spawn('python3', ['-m', 'sglang_router.launch_router', '--host', '127.0.0.1', '--port', String(port), '--worker-urls', ...workers,
      '--policy', policy, '--log-level', 'warn', '--prometheus-host', '127.0.0.1', '--prometheus-port', String(metrics), '--worker-startup-timeout-secs', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    const gateway = new SglangGateway(child, `http://127.0.0.1:${port}`, () => log);
    for (const deadline = Date.now() + 60_000; ;) {
      if (child.exitCode !== null) throw new Error(`The SGLang gateway exited with ${child.exitCode}:\n${log.slice(-2000)}`);
      try {
        const listed = await (await fetch(`${gateway.url}/workers`)).json() as { workers?: { is_healthy?: boolean }[] };
        if (!healthy && Array.isArray(listed.workers)) return gateway;
        if (listed.workers?.length === workers.length && listed.workers.every((w) => w.is_healthy)) return gateway;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await gateway.close();
        throw new Error(`The SGLang gateway did not list ${workers.length} healthy workers within 60 s:\n${log.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get output(): string {
    return this.log();
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** A port nothing listens on (for a moment): the address of a worker that is down. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
