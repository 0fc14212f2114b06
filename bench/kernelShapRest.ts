/**
 * Kernel SHAP rows per request through the REST API and in process, on a held-out 20-64-64-3 ReLU MLP
 * (test/helpers/heldOutMlp.ts: correlated features on unrelated scales, some integer-valued; softmax
 * over 3 classes; background 100 rows): the same rows explained 1, 10 or 100 per request with the
 * service's defaults (nSamples auto, tolerance 0.01) and all 3 outputs: per pass one set of fresh rows
 * (reference rows jittered), explained in requests of each size by each path (the servers run without
 * an explanation cache, CACHE_MAX_BYTES=1, so every request computes). REST: a real server (`tsx server/main.ts`, one worker thread) answering POST
 * /v1/models/mlp/explain one request at a time, wall time per row as the client sees it. In process:
 * kernelShap on the same model and rows, CPU time per row. Each with the masked rows built by the
 * explainer (KERNEL_SHAP_MASKING=off: before) and summed in the fused kernel's first layer (default).
 *
 *   npx tsx bench/kernelShapRest.ts [--quick 1]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { kernelShap } from '../explainers/kernelShap.js';
import { normal, seededRng } from '../explainers/random.js';
import type { Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder } from '../models/repository.js';
import { writeHeldOutMlp } from '../test/helpers/heldOutMlp.js';
import { waitReady } from './serverReady.js';

const fmt = (v: number, digits = 2) => v.toFixed(digits);
const median = (v: number[]) => {
  const s = v.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const send = () => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  // A kept-alive connection the server closed while this process computed fails once: sent again.
  const r = await send().catch((e: unknown) => {
    if (!['UND_ERR_SOCKET', 'EPIPE', 'ECONNRESET'].includes((e as { cause?: { code?: string } }).cause?.code ?? '')) throw e;
    return send();
  });
  const json = (await r.json()) as Record<string, unknown>;
  if (r.status !== 200) throw new Error(`explain answered ${r.status}: ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

export async function kernelShapRest(options: { quick?: boolean; log?: (line: string) => void; port?: number } = {}): Promise<void> {
  const log = options.log ?? ((l: string) => console.log(l));
  const N = options.quick ? 40 : 100;
  const passes = options.quick ? 1 : 3;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ks-rest-bench-'));
  const modelDir = path.join(tmp, 'models');
  await writeHeldOutMlp(modelDir, 'mlp', { seed: 3, features: 20, hidden: [64, 64], epochs: 5 });
  await selectBackend('wasm');
  const m = await loadModelFolder('mlp', path.join(modelDir, 'mlp'));
  const ref = m.reference!.rows;
  const d = ref.d;
  // Fresh rows for every request: reference rows jittered by 1% of each column's spread.
  const sd = Array.from({ length: d }, (_, c) => {
    let s = 0;
    let s2 = 0;
    for (let r = 0; r < ref.n; r++) {
      s += ref.data[r * d + c];
      s2 += ref.data[r * d + c] ** 2;
    }
    return Math.sqrt(Math.max(0, s2 / ref.n - (s / ref.n) ** 2));
  });
  const rng = seededRng(12);
  const fresh = (n: number): Rows => {
    const data = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const r = Math.floor(rng() * ref.n);
      for (let c = 0; c < d; c++) data[i * d + c] = ref.data[r * d + c] + 0.01 * sd[c] * normal(rng);
    }
    return { data, n, d };
  };
  const asArrays = (rows: Rows) => Array.from({ length: rows.n }, (_, i) => Array.from(rows.data.subarray(i * d, (i + 1) * d)));
  const sizes = [1, 10, 100].filter((s) => s <= N);
  const sets = Array.from({ length: passes }, () => fresh(N));
  const slices = (rows: Rows, per: number) => Array.from({ length: rows.n / per }, (_, i) => ({ n: per, d, data: rows.data.subarray(i * per * d, (i + 1) * per * d) }));

  const rest: Record<string, number[]> = {};
  const port = options.port ?? 18_111;
  const url = `http://127.0.0.1:${port}`;
  for (const masking of ['off', 'first-layer']) {
    const server: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', WORKERS: '1', MODEL_DIR: modelDir, DATA_DIR: path.join(tmp, `data-${masking}`), KERNEL_SHAP_MASKING: masking, CACHE_MAX_BYTES: '1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      await waitReady(url);
      const explain = (rows: Rows) => post(`${url}/v1/models/mlp/explain`, { instances: asArrays(rows), method: 'kernel-shap', outputs: 'all' });
      for (let i = 0; i < 3; i++) await explain(fresh(10)); // warm-up: the worker's JIT and the kernel's first call
      for (let pass = 0; pass < passes; pass++) {
        for (const per of sizes) {
          const requests = slices(sets[pass], per);
          const t0 = performance.now();
          for (const r of requests) await explain(r);
          (rest[`${masking}|${per}`] ??= []).push((performance.now() - t0) / N);
        }
      }
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
  }

  // In process: the same model (its masked rows hidden for 'off'), the service's defaults.
  const inproc: Record<string, number[]> = {};
  const inprocWall: Record<string, number[]> = {};
  const plain = { nFeatures: m.model.nFeatures, nOutputs: m.model.nOutputs, predict: (r: Rows) => m.model.predict(r) };
  const options_ = { space: m.space, background: m.background! };
  for (let i = 0; i < 3; i++) {
    await kernelShap(m.model, fresh(10), options_);
    await kernelShap(plain, fresh(10), options_);
  }
  for (let pass = 0; pass < passes; pass++) {
    for (const per of sizes) {
      for (const [masking, model] of [['off', plain], ['first-layer', m.model]] as const) {
        const requests = slices(sets[pass], per);
        const c = cpuMs();
        const t0 = performance.now();
        for (const r of requests) await kernelShap(model, r, options_);
        (inproc[`${masking}|${per}`] ??= []).push((cpuMs() - c) / N);
        (inprocWall[`${masking}|${per}`] ??= []).push((performance.now() - t0) / N);
      }
    }
  }
  m.model.dispose();
  await rm(tmp, { recursive: true, force: true });

  log(`Held-out 20-64-64-3 MLP, background ${m.background!.n} rows, defaults, all outputs; the same ${N} fresh rows per pass for every size and path, ${passes} pass(es), medians. REST: wall ms per row as the client sees it (one request at a time, server with one worker thread). In process: wall and CPU ms per row (this process, one request at a time).\n`);
  log('| masked rows | rows per request | REST ms per row (wall) | REST rows/s | REST vs 1 per request | in process ms per row (wall) | in process, CPU | in process rows/s (CPU) | in process vs 1 per request (CPU) |');
  log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const masking of ['off', 'first-layer']) {
    const r1 = median(rest[`${masking}|1`]);
    const i1 = median(inproc[`${masking}|1`]);
    for (const per of sizes) {
      const r = median(rest[`${masking}|${per}`]);
      const i = median(inproc[`${masking}|${per}`]);
      const name = masking === 'off' ? 'explainer-built (before)' : 'first-layer (default)';
      log(`| ${name} | ${per} | ${fmt(r)} | ${fmt(1000 / r, 0)} | ${fmt(r1 / r)}x | ${fmt(median(inprocWall[`${masking}|${per}`]))} | ${fmt(i)} | ${fmt(1000 / i, 0)} | ${fmt(i1 / i)}x |`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
  await kernelShapRest({ quick: args.get('quick') === '1' || process.env.BENCH_QUICK === '1' });
}
