/**
 * Scale-out figures (part of `npm run bench`; `npx tsx bench/scaleBench.ts` alone), all measured in
 * one run on this machine with a local redis-server:
 *
 * - startup to /readyz: the TypeScript sources under tsx against the compiled output (node dist/);
 * - cold explain throughput and latency with 1 replica x 2 worker threads against 2 replicas x 1
 *   worker thread, both with the shared state on Redis, the same total concurrency spread evenly;
 * - cache-hit latency from level one (this replica) and level two (computed on the other replica,
 *   read from Redis), and the bytes one explanation takes in level two against its JSON.
 *
 * The load generator runs on the same cores as the servers (2 here, shared with other jobs), so
 * absolute figures are noisy: compare the rows of one run, not runs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { redisServerBinary, startDevRedis, type DevRedis } from '../jobs/devRedis.js';
import { encodeValue } from '../service/cache/codec.js';
import { getJson, startReplica, type Replica } from '../test/helpers/replicas.js';
import { percentile } from './igBench.js';

export interface ScaleBench {
  startup: { mode: string; runs: number[] }[];
  throughput: { config: string; seconds: number; requests: number; rps: number; p50: number; p99: number; failed: number }[];
  hits: { level: string; requests: number; p50: number; p99: number; hits: number }[];
  bytes: { json: number; stored: number; writes: number };
}

const json = { 'content-type': 'application/json' };

async function post(r: Replica, body: string): Promise<{ ms: number; status: number; cache: string | null; text: string }> {
  const t0 = performance.now();
  const res = await fetch(`${r.url}/v1/models/credit/explain`, { method: 'POST', headers: json, body });
  const text = await res.text();
  return { ms: performance.now() - t0, status: res.status, cache: res.headers.get('x-cache'), text };
}

/** `connections` loops, each sending its next request when the last one answered, for `seconds`. */
async function load(targets: Replica[], connections: number, seconds: number, body: () => string) {
  const latencies: number[] = [];
  let failed = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async (_, c) => {
      const r = targets[c % targets.length];
      while (Date.now() < end) {
        const x = await post(r, body());
        if (x.status === 200) latencies.push(x.ms);
        else failed++;
      }
    }),
  );
  return { requests: latencies.length, rps: latencies.length / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), failed };
}

async function startupMs(compiled: boolean, env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  const r = await startReplica({ name: compiled ? 'compiled' : 'tsx', compiled, env });
  const ms = performance.now() - t0;
  await r.stop();
  return ms;
}

export async function scaleBench(o: { quick?: boolean } = {}): Promise<ScaleBench | undefined> {
  const bin = redisServerBinary();
  if (!bin) {
    console.log('(skipped: redis-server is not installed)');
    return undefined;
  }
  const built = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stdout}\n${built.stderr}`);
  const seconds = o.quick ? 8 : 20;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'scale-bench-'));
  let redis: DevRedis | undefined;
  const running: Replica[] = [];
  try {
    redis = await startDevRedis(bin);
    const base = { WORKERS: '1', LOG_LEVEL: 'warn', MODEL_POLL_SECONDS: '0', MAX_QUEUE: '256' };
    const out: ScaleBench = { startup: [], throughput: [], hits: [], bytes: { json: 0, stored: 0, writes: 0 } };

    const runs = o.quick ? 2 : 3;
    for (const compiled of [false, true]) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) times.push(await startupMs(compiled, { ...base, DATA_DIR: path.join(tmp, 'startup') }));
      out.startup.push({ mode: compiled ? 'node dist/server/main.js (compiled)' : 'tsx server/main.ts (sources)', runs: times });
    }

    const rows = (JSON.parse(await readFile('samples/models/credit/expected.json', 'utf8')) as { rows: number[][] }).rows;
    let counter = 0;
    // Every request a new instance (a perturbed row): nothing comes from either cache level.
    const cold = () => {
      const r = rows[counter % rows.length].slice();
      r[0] += 1e-3 * ++counter;
      return JSON.stringify({ instances: [r], method: 'kernel-shap', parameters: { nSamples: 'auto' } });
    };
    const configs: { name: string; replicas: number; workers: number }[] = [
      { name: '1 replica x 2 workers', replicas: 1, workers: 2 },
      { name: '2 replicas x 1 worker', replicas: 2, workers: 1 },
    ];
    for (const [ci, c] of configs.entries()) {
      const env = (i: number) => ({ ...base, WORKERS: String(c.workers), REDIS_URL: redis!.url, REDIS_PREFIX: `bench-${ci}`, DATA_DIR: path.join(tmp, `d${ci}-${i}`) });
      const reps = await Promise.all(Array.from({ length: c.replicas }, (_, i) => startReplica({ name: `r${i}`, compiled: true, env: env(i) })));
      running.push(...reps);
      // Warm every worker thread (each loads its models on its first task).
      await Promise.all(Array.from({ length: 4 }, (_, i) => post(reps[i % reps.length], cold())));
      const r = await load(reps, 8, seconds, cold);
      out.throughput.push({ config: c.name, seconds, ...r });

      if (c.replicas === 2) {
        const [a, b] = reps;
        const n = o.quick ? 100 : 300;
        const bodies = Array.from({ length: n }, () => cold());
        for (const body of bodies) await post(a, body); // computed on A: level one on A, level two for B
        const l1: number[] = [];
        let l1hits = 0;
        for (const body of bodies) {
          const x = await post(a, body);
          l1.push(x.ms);
          if (x.cache === 'HIT') l1hits++;
        }
        const l2: number[] = [];
        let l2hits = 0;
        for (const body of bodies) {
          const x = await post(b, body); // first time on B: read from Redis
          l2.push(x.ms);
          if (x.cache === 'HIT') l2hits++;
        }
        out.hits.push({ level: 'level one (same replica, in process)', requests: n, p50: percentile(l1, 0.5), p99: percentile(l1, 0.99), hits: l1hits });
        out.hits.push({ level: 'level two (other replica, Redis)', requests: n, p50: percentile(l2, 0.5), p99: percentile(l2, 0.99), hits: l2hits });
        // Bytes per explanation: each instance as level two stores it (the same codec) against its JSON.
        let jsonBytes = 0;
        let stored = 0;
        for (const body of bodies) {
          const inst = JSON.parse((await post(a, body)).text).explanations[0];
          jsonBytes += Buffer.byteLength(JSON.stringify(inst));
          stored += (await encodeValue(inst)).byteLength;
        }
        const health = (await getJson(a, '/healthz')).body;
        out.bytes = { json: jsonBytes / n, stored: stored / n, writes: health.cache.shared.writes };
      }
      for (const x of reps) await x.stop();
      running.length = 0;
    }
    return out;
  } finally {
    for (const r of running) await r.stop();
    await redis?.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

export function printScale(r: ScaleBench): void {
  const f = (v: number, d = 1) => v.toFixed(d);
  console.log('Startup to /readyz (one worker thread; each run a fresh process):\n');
  console.log('| how | runs (s) | median s |\n| --- | --- | ---: |');
  for (const s of r.startup) console.log(`| ${s.mode} | ${s.runs.map((x) => f(x / 1000)).join(', ')} | ${f(percentile(s.runs, 0.5) / 1000)} |`);
  console.log('\nCold Kernel SHAP explains on credit (a new instance per request, nSamples auto), 8 concurrent clients spread evenly, shared state on Redis:\n');
  console.log('| configuration | seconds | requests | req/s | p50 ms | p99 ms | failed |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const t of r.throughput) console.log(`| ${t.config} | ${t.seconds} | ${t.requests} | ${f(t.rps)} | ${f(t.p50)} | ${f(t.p99)} | ${t.failed} |`);
  console.log('\nCache hits, one request at a time (each instance computed once on replica A before):\n');
  console.log('| from | requests | X-Cache HIT | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: |');
  for (const h of r.hits) console.log(`| ${h.level} | ${h.requests} | ${h.hits} | ${f(h.p50, 2)} | ${f(h.p99, 2)} |`);
  console.log(
    `\nBytes per credit explanation (14 features, Kernel SHAP, mean over the instances above): ${f(r.bytes.json, 0)} of JSON, ${f(r.bytes.stored, 0)} in level two (deflated JSON, ${f(r.bytes.json / Math.max(1, r.bytes.stored), 2)}x smaller); replica A wrote ${r.bytes.writes} values.`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await scaleBench({ quick: process.env.BENCH_QUICK === '1' });
  if (r) printScale(r);
}
