/** Paths shared by the tests: the real datasets beside the checkout, the bundled demo model, the stand-in models, scratch folders. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { readDataset, type DatasetRecord } from '../server/records/dataset';

/** The checkout's root, found upward from wherever the bundled test file runs. */
export const repoRoot = ((): string => {
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'server'))) return dir;
  }
  throw new Error(`no checkout above ${__dirname}`);
})();

export function sharedData(file: string): string {
  const path = join(repoRoot, '..', 'shared', 'data', file);
  if (!existsSync(path)) throw new Error(`test data not found: ${path} (the real datasets live in ../shared/data)`);
  return path;
}

export const demoModel = join(repoRoot, 'models', 'demo');

/** Records of a real dataset in ../shared/data, by index. */
export function sharedRecords(file: string, indices: readonly number[]): DatasetRecord[] {
  const records = readDataset(sharedData(file)).records;
  return indices.map((i) => records[i]!);
}

const scratchDirs: string[] = [];
process.once('exit', () => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under the system's temp directory, removed when the test process exits. */
export function scratchDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `nuggets-${name}-`));
  scratchDirs.push(dir);
  return dir;
}

/** The files in a zip archive (a .vsix), from its central directory: name, size, and where its data starts. */
export function zipEntries(zip: Buffer): { name: string; size: number; read(): Buffer }[] {
  let eocd = zip.length - 22;
  while (eocd >= 0 && zip.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('not a zip archive: no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const entries: { name: string; size: number; read(): Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry ${i}`);
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const read = (): Buffer => {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + compressedSize);
      return method === 0 ? data : inflateRawSync(data);
    };
    entries.push({ name: zip.toString('utf8', at + 46, at + 46 + nameLength), size, read });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/**
 * The stand-in models (tools/standins/make_standins.py: SmolLM2-, Qwen2.5- and Llama-2-style graphs
 * with random weights and the real families' files), generated on first use into .cache/standins and
 * regenerated only when the generator changes. Needs Debian's PyTorch and ONNX (tools/setup.sh).
 */
export function standins(): string {
  const out = join(repoRoot, '.cache', 'standins');
  const run = spawnSync('/usr/bin/python3', [join(repoRoot, 'tools', 'standins', 'make_standins.py'), '--out', out], { encoding: 'utf8' });
  if (run.status !== 0) {
    throw new Error(`could not generate the stand-in models (run bash tools/setup.sh for Debian's PyTorch and ONNX):\n${run.stderr || run.error?.message}`);
  }
  return out;
}

/** The real SmolLM2-135M-Instruct weights as GGUF (Q4_1), fetched by tools/setup.sh (tools/gguf/fetch-smollm2.sh). */
export function smollm2Gguf(): string {
  const path = join(repoRoot, '.cache', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');
  if (!existsSync(path)) throw new Error(`the real SmolLM2 weights are missing: ${path} (run bash tools/setup.sh, which fetches them)`);
  return path;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The built CLI (dist/cli.js) in a child process, in `cwd`, without blocking this one (so that a stand-in server
 * in this process can answer it), with no serving key in its environment.
 */
export function runCli(cwd: string, args: string[]): Promise<CliRun> {
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'cli.js'), ...args], { cwd, env: { ...process.env, NUGGETS_API_KEY: '', OPENAI_API_KEY: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/**
 * Writes ShareGPT records as Parquet with their conversations as list<struct<from, value>>, as Hugging Face datasets
 * store them (`writer`: hyparquet-writer, which the tests import themselves, as it is an ES module).
 */
export function writeShareGptParquet(writer: typeof import('hyparquet-writer'), path: string, rows: readonly { id: string; conversations: unknown[] }[], rowGroupSize?: number): void {
  const STRING = { type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' } as const;
  writeFileSync(path, Buffer.from(writer.parquetWriteBuffer({
    columnData: [{ name: 'id', data: rows.map((r) => r.id) }, { name: 'conversations', data: rows.map((r) => r.conversations) }],
    schema: [
      { name: 'root', num_children: 2 },
      { name: 'id', ...STRING },
      { name: 'conversations', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
      { name: 'from', ...STRING },
      { name: 'value', ...STRING },
    ],
    ...(rowGroupSize ? { rowGroupSize } : {}),
  })));
}
