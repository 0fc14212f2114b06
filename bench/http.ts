/**
 * HTTP latency under concurrent load against a real listening server (`tsx server/main.ts` on the
 * sample models, worker pool on): p50/p95/p99 for predict, explain (cold and cached) and /healthz
 * while explanations keep every worker busy. Loopback only; every run is bounded in time.
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { waitReady } from './serverReady.js';

export interface LatencyRow {
  name: string;
  requests: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  non2xx: number;
}

function row(name: string, r: autocannon.Result): LatencyRow {
  const l = r.latency as unknown as Record<string, number>;
  return { name, requests: r.requests.total, rps: Math.round(r.requests.average), p50: l.p50, p95: l.p97_5 ?? l.p95, p99: l.p99, non2xx: r.non2xx };
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export async function benchHttp(seconds = 5, port = 18080): Promise<LatencyRow[]> {
  const url = `http://127.0.0.1:${port}`;
  const server: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', WORKERS: '2', MAX_QUEUE: '256' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitReady(url);
    const credit = JSON.parse(await readFile('samples/models/credit/expected.json', 'utf8')) as { rows: number[][] };
    const rows: number[][] = credit.rows;
    const json = { 'content-type': 'application/json' };
    const out: LatencyRow[] = [];

    out.push(row('GET /healthz (idle)', await run({ url: `${url}/healthz`, connections: 10, duration: seconds })));
    out.push(
      row(
        'POST predict, 1 row',
        await run({ url: `${url}/v1/models/credit/predict`, method: 'POST', headers: json, body: JSON.stringify({ instances: [rows[0]] }), connections: 10, duration: seconds }),
      ),
    );
    // Cold: every request a new instance (a perturbed row), so nothing comes from the cache.
    let counter = 0;
    const cold = () => {
      const r = rows[counter % rows.length].slice();
      r[0] += 1e-3 * ++counter;
      return JSON.stringify({ instances: [r], method: 'kernel-shap', parameters: { nSamples: 'auto' } });
    };
    out.push(
      row(
        'POST explain kernel-shap, cold',
        await run({ url: `${url}/v1/models/credit/explain`, method: 'POST', headers: json, connections: 4, duration: seconds, requests: [{ setupRequest: (req) => ({ ...req, body: cold() }) }] }),
      ),
    );
    const hot = JSON.stringify({ instances: [rows[1]], method: 'kernel-shap' });
    await fetch(`${url}/v1/models/credit/explain`, { method: 'POST', headers: json, body: hot });
    out.push(row('POST explain kernel-shap, cached', await run({ url: `${url}/v1/models/credit/explain`, method: 'POST', headers: json, body: hot, connections: 10, duration: seconds })));
    let igCounter = 0;
    const igCold = () => {
      const r = rows[igCounter % rows.length].slice();
      r[0] += 1e-3 * ++igCounter;
      return JSON.stringify({ instances: [r], method: 'integrated-gradients' });
    };
    out.push(
      row(
        'POST explain integrated-gradients, cold',
        await run({ url: `${url}/v1/models/credit/explain`, method: 'POST', headers: json, connections: 4, duration: seconds, requests: [{ setupRequest: (req) => ({ ...req, body: igCold() }) }] }),
      ),
    );
    // /healthz while cold explanations saturate both workers.
    const saturate = run({ url: `${url}/v1/models/credit/explain`, method: 'POST', headers: json, connections: 8, duration: seconds + 1, requests: [{ setupRequest: (req) => ({ ...req, body: cold() }) }] });
    await new Promise((r) => setTimeout(r, 500));
    out.push(row('GET /healthz while workers are saturated', await run({ url: `${url}/healthz`, connections: 4, duration: seconds })));
    out.push(row('  (the saturating explain load)', await saturate));
    return out;
  } finally {
    server.kill('SIGTERM');
  }
}

export function printLatency(rows: LatencyRow[]): void {
  console.log('| request | requests | req/s | p50 ms | p97.5 ms | p99 ms | non-2xx |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.name} | ${r.requests} | ${r.rps} | ${r.p50} | ${r.p95} | ${r.p99} | ${r.non2xx} |`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printLatency(await benchHttp(Number(process.env.BENCH_SECONDS ?? 5)));
}
