/**
 * Render timings: p50/p95 of a 20-feature waterfall (target < 5 ms) and a 2000-point beeswarm
 * (200 explanations x 10 features shown; target < 60 ms), after a warm-up that also creates the
 * shared jsdom document. `npx tsx bench/renderBench.ts` prints them; bench/index.ts can call
 * `renderBench()`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exampleExplanation } from '../render/examples.js';
import { renderBeeswarm, renderWaterfall } from '../render/index.js';

export interface Timing {
  /** Wall-clock milliseconds. */
  p50: number;
  p95: number;
  /**
   * Mean CPU milliseconds of the main thread per render (Linux; NaN elsewhere): close to what the
   * wall time would be on an idle machine when other work shares the cores.
   */
  cpuMean: number;
  runs: number;
  targetMs: number;
}

export interface RenderBenchResult {
  waterfall20: Timing;
  beeswarm2000: Timing;
}

function time(fn: () => unknown, runs: number, warmup: number, targetMs: number): Timing {
  for (let i = 0; i < warmup; i++) fn();
  const ms: number[] = [];
  const c0 = mainThreadCpuMs();
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  const cpuMean = (mainThreadCpuMs() - c0) / runs;
  ms.sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
  return { p50: q(0.5), p95: q(0.95), cpuMean, runs, targetMs };
}

/** utime + stime of the main thread from /proc (clock ticks of 10 ms, fine over hundreds of runs). */
function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

export function renderBench(options: { runs?: number } = {}): RenderBenchResult {
  const runs = options.runs ?? 500;
  const one = exampleExplanation({ features: 20 });
  const many = exampleExplanation({ features: 20, instances: 200 });
  return {
    waterfall20: time(() => renderWaterfall(one, { topK: 20 }), runs, 30, 5),
    beeswarm2000: time(() => renderBeeswarm(many, { topK: 10 }), Math.max(20, Math.round(runs / 5)), 5, 60),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = renderBench();
  for (const [name, t] of Object.entries(r)) {
    const ok = t.p50 < t.targetMs ? 'ok' : 'OVER TARGET';
    console.log(`${name.padEnd(14)} p50 ${t.p50.toFixed(2)} ms  p95 ${t.p95.toFixed(2)} ms  main-thread cpu mean ${t.cpuMean.toFixed(2)} ms  (target p50 < ${t.targetMs} ms, ${t.runs} runs) ${ok}`);
  }
}
