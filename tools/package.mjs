// `npm run package`: builds the bundles once and writes one platform-specific .vsix per target
// (nuggets-<version>-<target>.vsix), as `vsce package --target` intends: VS Code's marketplace and
// `code --install-extension` pick the file whose target matches the machine.
//
// vsce --no-dependencies packs no node_modules, yet dist/server.js and dist/scoring-worker.js require
// onnxruntime-node (a native binary) at run time: its JavaScript, its onnxruntime-common and the one
// target's binaries are staged into dist/node_modules, where Node finds them from dist/*.js. Each
// package carries only its own runtime (the six together are ~250 MB). .vscodeignore says what else
// goes in (bundles, media, the demo model).
//
//   node tools/package.mjs                              all six targets, into the repository root
//   node tools/package.mjs --target linux-x64 [--out f] one target
//   node tools/package.mjs --out-dir DIR                all six, into DIR
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TARGETS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { name, version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function option(flag) {
  const i = process.argv.indexOf(flag);
  return i < 0 ? undefined : process.argv[i + 1];
}

const only = option('--target');
if (only && !TARGETS.includes(only)) throw new Error(`unknown --target ${only}; one of ${TARGETS.join(', ')}`);
const targets = only ? [only] : TARGETS;
const outDir = option('--out-dir') ?? root;
if (option('--out') && targets.length !== 1) throw new Error('--out names one file: pass --target too');

execFileSync(process.execPath, [join(root, 'tools', 'build.mjs')], { cwd: root, stdio: 'inherit' });

const staged = join(root, 'dist', 'node_modules');
const runtimeFile = (src) => !/\.(map|d\.ts|ts)$/.test(src) && !/[/\\](lib|script|test)$/.test(src);
const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');

for (const target of targets) {
  const [platform, arch] = target.split('-');
  rmSync(staged, { recursive: true, force: true });
  for (const pkg of ['onnxruntime-common', 'onnxruntime-node']) {
    const from = join(root, 'node_modules', pkg);
    if (!existsSync(from)) throw new Error(`${from} is missing: run npm ci first`);
    mkdirSync(join(staged, pkg), { recursive: true });
    for (const entry of ['package.json', 'LICENSE', 'README.md', 'dist']) {
      if (existsSync(join(from, entry))) cpSync(join(from, entry), join(staged, pkg, entry), { recursive: true, filter: runtimeFile });
    }
  }
  // onnxruntime-node loads bin/napi-v6/<platform>/<arch>/onnxruntime_binding.node: only that folder goes in.
  const bin = join('bin', 'napi-v6', platform, arch);
  cpSync(join(root, 'node_modules', 'onnxruntime-node', bin), join(staged, 'onnxruntime-node', bin), { recursive: true });

  const out = option('--out') ?? join(outDir, `${name}-${version}-${target}.vsix`);
  execFileSync(process.execPath, [vsce, 'package', '--no-dependencies', '--no-rewrite-relative-links', '--allow-missing-repository',
    '--target', target, '--out', out], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  console.log(`package: ${out} (${(statSync(out).size / 1e6).toFixed(1)} MB)`);
}
rmSync(staged, { recursive: true, force: true });
