/**
 * Hostile load against a real listening server (`server/main.ts`, 2 worker threads, the sample
 * models): for a fixed time, at once,
 *   - cold Kernel SHAP explanations saturate both worker threads and the queue (429s expected),
 *   - 200 connections poll /healthz,
 *   - cached explanations are requested (answered by the main thread alone),
 *   - junk arrives: text/plain bodies (415), 1 MB JSON bodies (parsed, then refused), distinct 404 paths.
 * Reported: latency p50/p99/max of each stream, the main thread's event-loop delay p99 and max over
 * the window (prom-client's monitorEventLoopDelay gauges, reset by a scrape just before), and the
 * process's resident memory before and after (after the load, once idle). Loopback only.
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { waitReady } from './serverReady.js';

export interface HostileResult {
  streams: { name: string; requests: number; p50: number; p99: number; max: number; statuses: string }[];
  eventLoop: { p99ms: number; maxms: number };
  rss: { beforeMb: number; afterMb: number };
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

const metric = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);

function stream(name: string, r: autocannon.Result): HostileResult['streams'][number] {
  const l = r.latency as unknown as Record<string, number>;
  const codes = Object.entries(r.statusCodeStats ?? {})
    .map(([code, s]) => `${code}: ${(s as { count: number }).count}`)
    .join(', ');
  return { name, requests: r.requests.total, p50: l.p50, p99: l.p99, max: l.max, statuses: codes };
}

export async function benchHostile(seconds = 10, port = 18090): Promise<HostileResult> {
  const url = `http://127.0.0.1:${port}`;
  const server: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', WORKERS: '2' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitReady(url);
    const credit = JSON.parse(await readFile('samples/models/credit/expected.json', 'utf8')) as { rows: number[][] };
    const rows = credit.rows;
    const json = { 'content-type': 'application/json' };
    const hot = JSON.stringify({ instances: [rows[1]] });
    // Warm-up: every path the load takes, once.
    await fetch(`${url}/v1/models/credit/explain`, { method: 'POST', headers: json, body: hot });
    await fetch(`${url}/v1/models/credit/fairness`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ attributions: { sampleSize: 20 } }),
    });
    await new Promise((r) => setTimeout(r, 2000));
    const rssBefore = metric(await (await fetch(`${url}/metrics`)).text(), 'process_resident_memory_bytes');

    let counter = 0;
    const cold = () => {
      const r = rows[counter % rows.length].slice();
      r[0] += 1e-3 * ++counter;
      return JSON.stringify({ instances: [r], parameters: { nSamples: 'auto' } });
    };
    const big = JSON.stringify({ instances: Array.from({ length: 6000 }, (_, i) => rows[i % rows.length]) }); // ~1 MB
    let junk = 0;
    await fetch(`${url}/metrics`); // opens the event-loop window
    const duration = seconds;
    const [explains, health, cached, plain, large, paths] = await Promise.all([
      run({
        url: `${url}/v1/models/credit/explain`,
        method: 'POST',
        headers: json,
        connections: 50,
        duration,
        requests: [{ setupRequest: (req) => ({ ...req, body: cold() }) }],
      }),
      run({ url: `${url}/healthz`, connections: 200, duration }),
      run({ url: `${url}/v1/models/credit/explain`, method: 'POST', headers: json, body: hot, connections: 10, duration }),
      run({
        url: `${url}/v1/models/credit/predict`,
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: hot,
        connections: 5,
        duration,
      }),
      run({ url: `${url}/v1/models/credit/predict`, method: 'POST', headers: json, body: big, connections: 3, duration }),
      run({ url, connections: 5, duration, requests: [{ setupRequest: (req) => ({ ...req, path: `/nothing/${++junk}` }) }] }),
    ]);
    const window = await (await fetch(`${url}/metrics`)).text();
    await new Promise((r) => setTimeout(r, 5000));
    const rssAfter = metric(await (await fetch(`${url}/metrics`)).text(), 'process_resident_memory_bytes');
    return {
      streams: [
        stream('GET /healthz, 200 connections', health),
        stream('POST explain, cached (10 connections)', cached),
        stream('POST explain, cold, saturating (50 connections)', explains),
        stream('POST text/plain (415)', plain),
        stream('POST 1 MB JSON predict, 6000 rows (400: MAX_INSTANCES)', large),
        stream('GET distinct unknown paths (404)', paths),
      ],
      // prom-client's gauges are the intervals between monitorEventLoopDelay's 10 ms ticks: less 10 ms.
      eventLoop: {
        p99ms: Math.max(0, metric(window, 'nodejs_eventloop_lag_p99_seconds') * 1000 - 10),
        maxms: Math.max(0, metric(window, 'nodejs_eventloop_lag_max_seconds') * 1000 - 10),
      },
      rss: { beforeMb: rssBefore / 2 ** 20, afterMb: rssAfter / 2 ** 20 },
    };
  } finally {
    server.kill('SIGTERM');
  }
}

export function printHostile(r: HostileResult): void {
  console.log('| stream | requests | p50 ms | p99 ms | max ms | statuses |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const s of r.streams) console.log(`| ${s.name} | ${s.requests} | ${s.p50} | ${s.p99} | ${s.max} | ${s.statuses} |`);
  console.log(`\nEvent-loop delay over the window: p99 ${r.eventLoop.p99ms.toFixed(1)} ms, max ${r.eventLoop.maxms.toFixed(1)} ms.`);
  console.log(`Resident memory: ${r.rss.beforeMb.toFixed(0)} MB before, ${r.rss.afterMb.toFixed(0)} MB 5 s after the load.`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printHostile(await benchHostile(Number(process.env.BENCH_SECONDS ?? 10)));
}
