/**
 * `npm run package` writes one .vsix per desktop target (linux, macOS and Windows on x64 and arm64), each
 * declaring its target and carrying the bundles, the demo model and only that target's ONNX runtime.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { repoRoot, scratchDir, zipEntries } from '../helpers';

const TARGETS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64'];
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
let outDir = '';

before(() => {
  outDir = scratchDir('packages');
  execFileSync(process.execPath, [join(repoRoot, 'tools', 'package.mjs'), '--out-dir', outDir], { cwd: repoRoot, stdio: 'pipe', timeout: 540_000 });
}, { timeout: 600_000 });

test('one .vsix per target, and nothing else', () => {
  assert.deepEqual(readdirSync(outDir).sort(), TARGETS.map((t) => `nuggets-${version}-${t}.vsix`).sort());
});

for (const target of TARGETS) {
  test(`the ${target} .vsix declares its target and holds the bundles, the demo model and only its own ONNX runtime`, () => {
    const vsix = join(outDir, `nuggets-${version}-${target}.vsix`);
    const entries = zipEntries(readFileSync(vsix));
    const names = entries.map((e) => e.name);
    const [platform, arch] = target.split('-');
    const runtime = `extension/dist/node_modules/onnxruntime-node/bin/napi-v6/${platform}/${arch}/`;
    for (const file of ['extension/package.json', 'extension/dist/extension.js', 'extension/dist/server.js', 'extension/dist/scoring-worker.js',
      'extension/dist/webview.js', 'extension/dist/webview.css', 'extension/media/dashboard.css',
      'extension/dist/parquet-table.js', 'extension/media/parquet-table.css', 'extension/media/alpaca.schema.json', 'extension/models/demo/model.onnx',
      'extension/models/demo/tokenizer.json', 'extension/models/demo/config.json',
      'extension/dist/node_modules/onnxruntime-node/dist/index.js', 'extension/dist/node_modules/onnxruntime-common/package.json',
      `${runtime}onnxruntime_binding.node`]) {
      assert.ok(names.includes(file), `${file} is in the ${target} .vsix`);
    }
    const library = { linux: 'libonnxruntime.so.1', darwin: `libonnxruntime.`, win32: 'onnxruntime.dll' }[platform!]!;
    assert.ok(names.some((n) => n.startsWith(runtime + library)), `the ${target} ONNX Runtime library (${library}) is in it`);
    const otherRuntimes = names.filter((n) => n.includes('/napi-v6/') && !n.startsWith(runtime));
    assert.deepEqual(otherRuntimes, [], `no other target's binaries in the ${target} .vsix`);
    const leaked = names.filter((n) => /\.(ts|map)$/.test(n) || /^extension\/(server|extension|webview|test|tools|samples|out|node_modules|\.cache)\//.test(n));
    assert.deepEqual(leaked, [], 'no sources, tests or source maps');
    const manifest = entries.find((e) => e.name === 'extension.vsixmanifest')!.read().toString('utf8');
    assert.match(manifest, new RegExp(`TargetPlatform="${target}"`), 'the manifest declares the target');
    assert.ok(statSync(vsix).size < 50e6, `the ${target} .vsix is ${(statSync(vsix).size / 1e6).toFixed(1)} MB`);
  });
}
