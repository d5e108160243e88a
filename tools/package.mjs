// `npm run package`: builds the bundles and writes nuggets-<version>.vsix with @vscode/vsce, offline.
// vsce --no-dependencies packs no node_modules, yet dist/server.js and dist/scoring-worker.js require
// onnxruntime-node (a native binary) at run time: its JavaScript, its onnxruntime-common and the
// linux/x64 binaries are staged into dist/node_modules, where Node finds them from dist/*.js.
// .vscodeignore says what else goes in (bundles, media, the demo model).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { name, version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const out = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : join(root, `${name}-${version}.vsix`);
const platform = 'linux';
const arch = 'x64';

execFileSync(process.execPath, [join(root, 'tools', 'build.mjs')], { cwd: root, stdio: 'inherit' });

const staged = join(root, 'dist', 'node_modules');
rmSync(staged, { recursive: true, force: true });
const runtimeFile = (src) => !/\.(map|d\.ts|ts)$/.test(src) && !/[/\\](lib|script|test)$/.test(src);
for (const pkg of ['onnxruntime-common', 'onnxruntime-node']) {
  const from = join(root, 'node_modules', pkg);
  if (!existsSync(from)) throw new Error(`${from} is missing: run npm ci first`);
  mkdirSync(join(staged, pkg), { recursive: true });
  for (const entry of ['package.json', 'LICENSE', 'README.md', 'dist']) {
    if (existsSync(join(from, entry))) cpSync(join(from, entry), join(staged, pkg, entry), { recursive: true, filter: runtimeFile });
  }
}
// Only this platform's native runtime (the other platforms' binaries are ~200 MB).
const bin = join('bin', 'napi-v6', platform, arch);
cpSync(join(root, 'node_modules', 'onnxruntime-node', bin), join(staged, 'onnxruntime-node', bin), { recursive: true });

const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
execFileSync(process.execPath, [vsce, 'package', '--no-dependencies', '--no-rewrite-relative-links', '--allow-missing-repository',
  '--target', `${platform}-${arch}`, '--out', out], { cwd: root, stdio: 'inherit' });
console.log(`package: ${out} (${(statSync(out).size / 1e6).toFixed(1)} MB)`);
