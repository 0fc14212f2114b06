#!/usr/bin/env node
/**
 * Builds the fused-kernel Node addon (native/build/Release/fused_mlp.node) with node-gyp against
 * the running Node's headers. Runs as the package's `install` script, so `npm ci` / `npm install`
 * build it; `npm run build:native` rebuilds it. Never fails the install: when the build cannot run
 * (no compiler, no headers, not x86-64 Linux/macOS...) it says why on one line and Dense models
 * predict through the committed wasm kernel instead (models/fusedKernel.ts).
 *
 * node-gyp is npm's own copy (npm passes its path to scripts as npm_config_node_gyp), else one
 * installed beside npm. Node's headers: the Node installation's own include/node (Debian's and
 * NodeSource's packages ship them), so nothing is downloaded; without them node-gyp would try to
 * download them, which fails offline and is reported like any other build failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const say = (msg) => console.log(`fused kernel addon: ${msg}`);

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((p) => p && existsSync(p));
}

function main() {
  if (process.env.FUSED_KERNEL_BUILD === '0') return say('skipped (FUSED_KERNEL_BUILD=0); Dense models use the wasm kernel');
  const gyp = nodeGyp();
  if (!gyp) return say('not built: node-gyp was not found; Dense models use the wasm kernel');
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const headers = path.join(prefix, 'include', 'node', 'node_api.h');
  const args = [gyp, 'rebuild', `--directory=${here}`, '--loglevel=warn'];
  if (existsSync(headers)) args.push(`--nodedir=${prefix}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
  if (r.status === 0) {
    const loaded = spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(path.join(here, 'build', 'Release', 'fused_mlp.node'))}).isa())`], { encoding: 'utf8' });
    if (loaded.status === 0) return say(`built in ${((Date.now() - started) / 1000).toFixed(1)} s; this CPU runs its ${loaded.stdout.trim()} code`);
    rmSync(path.join(here, 'build'), { recursive: true, force: true });
    return say(`built but does not load (${(loaded.stderr || '').trim().split('\n')[0]}); removed; Dense models use the wasm kernel`);
  }
  const out = `${r.stderr ?? ''}\n${r.stdout ?? ''}`;
  const reason = r.error ? r.error.message : (out.split('\n').find((l) => /error/i.test(l)) ?? `exit ${r.status}`).trim();
  rmSync(path.join(here, 'build'), { recursive: true, force: true });
  say(`not built (${reason.slice(0, 300)}); Dense models use the wasm kernel. Needs g++, make, python3 and Node's headers; retry with npm run build:native`);
}

main();
