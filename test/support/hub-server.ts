/**
 * A stand-in for the Hugging Face hub on 127.0.0.1, serving fixture files in the hub's URL layout:
 *
 *   HEAD|GET /{owner}/{name}/resolve/{revision}/{path}
 *     a file kept in git  -> 200, ETag = git blob id (sha1 of "blob <size>\0" + content), X-Repo-Commit
 *     a file kept in LFS  -> 302 to the storage host, X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit
 *   HEAD|GET {storage}/lfs/{owner}/{name}/{sha256} -> the bytes, with Content-Length, Accept-Ranges
 *     and Range (206) support. The storage is another origin (another port), as the hub's CDN is.
 *
 * Faults can be armed per repository path, each for one response: a body cut short (the connection
 * is dropped after half the bytes), corrupted bytes (same length), a 500, or a stall (half the bytes,
 * then nothing, the connection held open). `stallHeads` holds the next HEAD requests unanswered, and
 * `opaqueEtags` makes the hub lie about checksums as some mirrors do: ETags that are neither a sha256
 * nor a git blob id.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubRequest {
  method: string;
  url: string;
  range: string | undefined;
  authorization: string | undefined;
}

interface StoredFile {
  content: Buffer;
  lfs: boolean;
  sha256: string;
  gitBlobId: string;
}

export type Fault = 'truncate' | 'corrupt' | 'error500' | 'stall';

/** The demo model's files as a hub repository exported for transformers.js lays them out: the graph under onnx/. */
export const DEMO_ONNX = 'onnx/model.onnx';
export function demoRepository(modelFolder: string): Record<string, string> {
  return {
    'tokenizer.json': join(modelFolder, 'tokenizer.json'),
    'tokenizer_config.json': join(modelFolder, 'tokenizer_config.json'),
    'config.json': join(modelFolder, 'config.json'),
    [DEMO_ONNX]: join(modelFolder, 'model.onnx'),
  };
}

export const FIXTURE_COMMIT = '0123456789abcdef0123456789abcdef01234567';

export class FakeHub {
  readonly requests: HubRequest[] = [];
  stallHeads = 0;
  opaqueEtags = false;
  private readonly armed = new Map<string, Fault[]>();
  private constructor(
    private readonly servers: Server[],
    private readonly repos: Map<string, Map<string, StoredFile>>,
    readonly endpoint: string,
    readonly storage: string,
  ) {}

  /**
   * `repos` maps "owner/name" to { repository path: local file }. Files ending in .onnx, .onnx_data or .gguf
   * are served as LFS files (as on the hub); the rest as git files.
   */
  static async start(repos: Record<string, Record<string, string>>): Promise<FakeHub> {
    const stored = new Map<string, Map<string, StoredFile>>();
    for (const [repo, files] of Object.entries(repos)) {
      const map = new Map<string, StoredFile>();
      for (const [path, local] of Object.entries(files)) {
        const content = readFileSync(local);
        map.set(path, {
          content,
          lfs: /\.(onnx(_data)?|gguf)$/.test(path),
          sha256: createHash('sha256').update(content).digest('hex'),
          gitBlobId: createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex'),
        });
      }
      stored.set(repo, map);
    }
    let hub: FakeHub | undefined;
    const servers = [createServer((req, res) => hub!.handle(req, res)), createServer((req, res) => hub!.handleStorage(req, res))];
    const origins: string[] = [];
    for (const server of servers) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origins.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
    hub = new FakeHub(servers, stored, origins[0]!, origins[1]!);
    return hub;
  }

  /** The next response carrying the bytes of `path` fails in this way (faults queue up in order). */
  arm(path: string, fault: Fault): void {
    this.armed.set(path, [...(this.armed.get(path) ?? []), fault]);
  }

  /** Faults armed but not yet fired. */
  pendingFaults(): number {
    return [...this.armed.values()].reduce((n, list) => n + list.length, 0);
  }

  sha256Of(repo: string, path: string): string {
    return this.repos.get(repo)!.get(path)!.sha256;
  }

  async close(): Promise<void> {
    for (const server of this.servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private handleStorage(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.storage);
    this.requests.push({ method: req.method ?? '', url: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const lfs = /^\/lfs\/([^/]+)\/([^/]+)\/([0-9a-f]{64})$/.exec(url.pathname);
    const files = lfs ? this.repos.get(`${lfs[1]}/${lfs[2]}`) : undefined;
    const entry = files && [...files].find(([, f]) => f.lfs && f.sha256 === lfs![3]);
    if (!entry) return notFound(res);
    this.sendBytes(req, res, entry[0], entry[1], { 'content-type': 'application/octet-stream' });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.endpoint);
    this.requests.push({ method: req.method ?? '', url: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const resolve = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!resolve) return notFound(res);
    const [, owner, name, revision, rawPath] = resolve;
    const files = this.repos.get(`${owner}/${name}`);
    if (!files) return notFound(res, 'Repository not found');
    if (decodeURIComponent(revision!) !== 'main' && revision !== FIXTURE_COMMIT) return notFound(res, 'Invalid rev id');
    const path = rawPath!.split('/').map(decodeURIComponent).join('/');
    const file = files.get(path);
    if (!file) return notFound(res, 'Entry not found');
    if (req.method === 'HEAD' && this.stallHeads > 0) {
      this.stallHeads--;
      return; // never answered; the connection stays open
    }
    const common = { 'x-repo-commit': FIXTURE_COMMIT };
    const etag = (checksum: string): string => (this.opaqueEtags ? `"mirror-${checksum.slice(0, 8)}"` : `"${checksum}"`);
    if (file.lfs) {
      res.writeHead(302, {
        ...common, location: `${this.storage}/lfs/${owner}/${name}/${file.sha256}`, etag: etag(file.sha256),
        'x-linked-etag': etag(file.sha256), 'x-linked-size': String(file.content.length), 'content-length': '0',
      });
      res.end();
      return;
    }
    this.sendBytes(req, res, path, file, { ...common, etag: etag(file.gitBlobId) });
  }

  private sendBytes(req: IncomingMessage, res: ServerResponse, path: string, file: StoredFile, headers: Record<string, string>): void {
    const total = file.content.length;
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= total) {
        res.writeHead(416, { 'content-range': `bytes */${total}` });
        res.end();
        return;
      }
      status = 206;
      headers = { ...headers, 'content-range': `bytes ${start}-${total - 1}/${total}` };
    }
    const body = file.content.subarray(start);
    headers = { ...headers, 'accept-ranges': 'bytes', 'content-length': String(body.length) };
    if (req.method === 'HEAD') {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const fault = this.armed.get(path)?.shift();
    if (fault === 'error500') {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('Internal Server Error');
      return;
    }
    res.writeHead(status, headers);
    if (fault === 'stall') {
      res.write(body.subarray(0, Math.floor(body.length / 2))); // and nothing more
      return;
    }
    if (fault === 'truncate') {
      // Announce the whole length, send half, drop the connection.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
      return;
    }
    if (fault === 'corrupt') {
      const damaged = Buffer.from(body);
      for (let i = Math.floor(damaged.length / 3); i < damaged.length; i += 4099) damaged[i] = damaged[i]! ^ 0xff;
      res.end(damaged);
      return;
    }
    res.end(body);
  }
}

function notFound(res: ServerResponse, message = 'Not Found'): void {
  res.writeHead(404, { 'content-type': 'text/plain', 'x-error-message': message });
  res.end(message);
}
