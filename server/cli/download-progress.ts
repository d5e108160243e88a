/** Hub downloads on the command line: one progress bar per file, and a line for each retry or cache use. */
import type { GgufImportProgress } from '../model/gguf/import';
import type { DownloadProgress } from '../model/hub';
import { ProgressBar } from './progress';

export function downloadProgress(stream: NodeJS.WriteStream = process.stderr): (progress: DownloadProgress) => void {
  let bar: { file: string; bar: ProgressBar; shown: number } | undefined;
  const close = (): void => {
    bar?.bar.finish();
    bar = undefined;
  };
  return (p) => {
    switch (p.phase) {
      case 'downloading': {
        if ((p.total ?? 0) < 1 << 20) return; // small files need no bar
        if (bar?.file !== p.file) {
          close();
          const total = Math.max(1, Math.ceil((p.total ?? p.received) / 1024));
          bar = { file: p.file, bar: new ProgressBar(total, `KiB ${p.file}`, stream), shown: Math.floor(p.received / 1024) };
          if (bar.shown > 0) bar.bar.tick(bar.shown);
        }
        const now = Math.floor(p.received / 1024);
        if (now > bar.shown) {
          bar.bar.tick(now - bar.shown);
          bar.shown = now;
        }
        return;
      }
      case 'done':
        if (bar?.file === p.file) {
          const total = Math.max(1, Math.ceil((p.total ?? 0) / 1024));
          if (total > bar.shown) bar.bar.tick(total - bar.shown);
          close();
        }
        stream.write(p.unverified ? `warning: downloaded ${p.message}\n` : `downloaded and verified ${p.file} (${p.total} bytes, ${p.message ?? 'checksum checked'})\n`);
        return;
      case 'retrying':
        close();
        stream.write(`retrying ${p.file}: ${p.message ?? ''}\n`);
        return;
      case 'offline':
        stream.write(`${p.unverified ? 'warning: ' : ''}${p.message ?? 'offline'}\n`);
        return;
      case 'cached':
        stream.write(p.unverified ? `warning: cached ${p.message}\n` : `cached ${p.file}\n`);
        return;
      default:
        return;
    }
  };
}

/** A GGUF model's one-time import on the command line: a line when it starts, and when it is done or found in the cache. */
export function importProgress(stream: NodeJS.WriteStream = process.stderr): (model: string, progress: GgufImportProgress) => void {
  let started: number | undefined;
  return (model, p) => {
    if (p.phase !== 'importing') return;
    if (started === undefined) {
      started = Date.now();
      stream.write(`importing ${model} into the model cache (once per file)…\n`);
    }
    if (p.phase === 'importing' && p.done === p.total) stream.write(`imported ${model} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  };
}
