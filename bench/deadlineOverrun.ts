/**
 * The review's heavy request against a real listening server (`server/main.ts`, one worker thread,
 * the sample models): POST /v1/models/credit/explain with 1000 instances, nSamples 100000 and
 * deadlineMs 1000.
 *
 * - With the default budget (MAX_REQUEST_EVALUATIONS): how fast it is refused (422 TOO_EXPENSIVE).
 * - With the budget off (MAX_REQUEST_EVALUATIONS=0): when it is answered (status and seconds), how
 *   long its worker thread stays busy after the answer (a one-row predict sent the moment the answer
 *   arrives waits for that thread: its latency, less an idle predict's), and the process's resident
 *   memory (/proc VmRSS, sampled every 20 ms): before, at its peak, and 5 s after the answer.
 *
 * Loopback only. Linux (/proc) for the memory figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { waitReady } from './serverReady.js';

export interface OverrunResult {
  refusedMs: number;
  refusedStatus: number;
  answerMs: number;
  answerStatus: number;
  stopReasons: string;
  busyAfterMs: number;
  idlePredictMs: number;
  rssMb: { before: number; peak: number; after: number };
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

function start(port: number, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', WORKERS: '1', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

export async function benchDeadlineOverrun(port = 18095): Promise<OverrunResult> {
  const credit = JSON.parse(await readFile('samples/models/credit/expected.json', 'utf8')) as { rows: number[][] };
  // 1000 distinct rows (distinct cache keys): the reference rows, nudged.
  const instances = Array.from({ length: 1000 }, (_, i) => {
    const r = credit.rows[i % credit.rows.length].slice();
    r[0] += 1e-3 * i;
    return r;
  });
  const json = { 'content-type': 'application/json' };
  const heavy = JSON.stringify({ instances, parameters: { nSamples: 100000, deadlineMs: 1000 } });
  const one = JSON.stringify({ instances: [credit.rows[0]] });
  const url = `http://127.0.0.1:${port}`;

  // The default budget: refused before any work.
  let server = start(port, {});
  let refusedMs: number;
  let refusedStatus: number;
  try {
    await waitReady(url);
    const t0 = performance.now();
    const r = await fetch(`${url}/v1/models/credit/explain`, { method: 'POST', headers: json, body: heavy });
    await r.text();
    refusedMs = performance.now() - t0;
    refusedStatus = r.status;
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }

  // The budget off.
  server = start(port, { MAX_REQUEST_EVALUATIONS: '0' });
  try {
    await waitReady(url);
    // Warm-up: the explain and predict paths once, then the idle predict's latency.
    await (await fetch(`${url}/v1/models/credit/explain`, { method: 'POST', headers: json, body: JSON.stringify({ instances: [credit.rows[1]] }) })).text();
    await (await fetch(`${url}/v1/models/credit/predict`, { method: 'POST', headers: json, body: one })).text();
    const idle: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await (await fetch(`${url}/v1/models/credit/predict`, { method: 'POST', headers: json, body: one })).text();
      idle.push(performance.now() - t);
    }
    idle.sort((a, b) => a - b);
    const idlePredictMs = idle[2];
    await new Promise((r) => setTimeout(r, 2000));
    const pid = server.pid!;
    const before = await rssMb(pid);
    let peak = before;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssMb(pid));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const t0 = performance.now();
    const res = await fetch(`${url}/v1/models/credit/explain`, { method: 'POST', headers: json, body: heavy });
    const body = (await res.json()) as { explanations?: { stopReason?: string }[]; error?: { code: string } };
    const answerMs = performance.now() - t0;
    // The moment the answer is in: a one-row predict queues behind whatever the thread still does.
    const t1 = performance.now();
    await (await fetch(`${url}/v1/models/credit/predict`, { method: 'POST', headers: json, body: one })).text();
    const busyAfterMs = Math.max(0, performance.now() - t1 - idlePredictMs);
    await new Promise((r) => setTimeout(r, Math.max(0, 5000 - (performance.now() - t1))));
    sampling = false;
    await sampler;
    const after = await rssMb(pid);
    const counts = new Map<string, number>();
    for (const e of body.explanations ?? []) counts.set(e.stopReason ?? '?', (counts.get(e.stopReason ?? '?') ?? 0) + 1);
    const stopReasons = body.error ? body.error.code : [...counts].map(([k, v]) => `${k} ${v}`).join(', ');
    return { refusedMs, refusedStatus, answerMs, answerStatus: res.status, stopReasons, busyAfterMs, idlePredictMs, rssMb: { before, peak, after } };
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
}

export function printDeadlineOverrun(r: OverrunResult): void {
  console.log('\n## The review\'s request: 1000 instances x nSamples 100000, deadlineMs 1000 (credit, 1 worker thread)\n');
  console.log('| | figure |');
  console.log('| --- | --- |');
  console.log(`| default budget: answer | ${r.refusedStatus} in ${(r.refusedMs / 1000).toFixed(3)} s |`);
  console.log(`| budget off: answer | ${r.answerStatus} in ${(r.answerMs / 1000).toFixed(3)} s (${r.stopReasons}) |`);
  console.log(`| budget off: worker busy after the answer | ${r.busyAfterMs.toFixed(0)} ms (a one-row predict then; idle ${r.idlePredictMs.toFixed(1)} ms) |`);
  console.log(`| budget off: resident memory before / peak / 5 s after | ${r.rssMb.before.toFixed(0)} / ${r.rssMb.peak.toFixed(0)} / ${r.rssMb.after.toFixed(0)} MB |`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printDeadlineOverrun(await benchDeadlineOverrun());
}
