// Bundles each room with esbuild; with --tests, also every test file into out/test/.
// onnxruntime-node stays external: it loads a native binary from its package.
import * as esbuild from 'esbuild';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// NUGGETS_TEST_FAULTS: whether the CLI honours NUGGETS_TEST_FAULT (server/cli/main.ts). False in every bundle
// under dist/, which is what ships; true only in out/cli-faults.js, the tests' own build of the CLI (--tests).
const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: true, logLevel: 'warning', mainFields: ['module', 'main'], define: { NUGGETS_TEST_FAULTS: 'false' } };
const cli = { ...common, entryPoints: ['server/cli/index.ts'], outfile: 'dist/cli.js', external: ['onnxruntime-node'] };
await esbuild.build(cli);

// The editor's rooms. Each writes an esbuild metafile beside it: the border test reads what went in.
const rooms = [
  { entryPoints: ['extension/main.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { entryPoints: ['server/lsp/main.ts'], outfile: 'dist/server.js', external: ['onnxruntime-node'] },
  { entryPoints: ['server/lsp/scoring-worker.ts'], outfile: 'dist/scoring-worker.js', external: ['onnxruntime-node'] },
];
// The dashboard page runs in the browser: no Node, no vscode (webview/ talks to the extension by postMessage).
const browser = { platform: 'browser', target: 'chrome120', format: 'iife', minify: true, mainFields: ['browser', 'module', 'main'] };
rooms.push({ entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js', ...browser });
// The Parquet table editor's page (extension/parquet_editor.ts), a browser script too.
rooms.push({ entryPoints: ['webview/parquet-table.ts'], outfile: 'dist/parquet-table.js', ...browser });
for (const room of rooms) {
  const result = await esbuild.build({ ...common, ...room, metafile: true });
  writeFileSync(room.outfile.replace(/\.js$/, '.meta.json'), JSON.stringify(result.metafile));
}

if (process.argv.includes('--tests')) {
  const tests = readdirSync('test', { recursive: true }).filter((f) => f.endsWith('.test.ts')).map((f) => join('test', f));
  await esbuild.build({ ...common, entryPoints: tests, outdir: 'out/test', outbase: 'test', packages: 'external' });
  await esbuild.build({ ...cli, outfile: 'out/cli-faults.js', define: { NUGGETS_TEST_FAULTS: 'true' } });
}

if (process.argv.includes('--bench')) {
  await esbuild.build({ ...common, entryPoints: ['tools/bench/bench.ts'], outfile: 'out/bench.js', packages: 'external' });
}
