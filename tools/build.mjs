// Bundles each room with esbuild; with --tests, also every test file into out/test/.
// onnxruntime-node stays external: it loads a native binary from its package.
import * as esbuild from 'esbuild';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: true, logLevel: 'warning', mainFields: ['module', 'main'] };
await esbuild.build({ ...common, entryPoints: ['server/cli/index.ts'], outfile: 'dist/cli.js', external: ['onnxruntime-node'] });

if (process.argv.includes('--tests')) {
  const tests = readdirSync('test', { recursive: true }).filter((f) => f.endsWith('.test.ts')).map((f) => join('test', f));
  await esbuild.build({ ...common, entryPoints: tests, outdir: 'out/test', outbase: 'test', packages: 'external' });
}
