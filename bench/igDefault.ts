/**
 * Integrated Gradients at default settings on the seeded 20-64-64-3 softmax MLPs (bench/seededMlp.ts),
 * all outputs explained, mean-of-background baseline: latency per row at 1, 10 and 100 rows per
 * call, model gradient rows per row, and the largest per-feature error against exact IG (composite
 * Gauss-Legendre, 64 nodes per segment between breakpoints or 64 panels x 32 nodes), next to the
 * previous default (completeness-only stop at 1 %, one gradient call per output, measured here in
 * the same run through the `criterion: 'completeness'` option on a per-output view of the model)
 * and to the time of one raw gradient call on as many rows.
 *
 * Times are CPU time of this process (process.cpuUsage), not wall time: on a shared machine a
 * call that outlives its time slice waits for other processes, which says nothing about this code.
 * Wall time is printed too, for single-row calls.
 *
 *   npx tsx bench/igDefault.ts [--quick]
 */
import { pathToFileURL } from 'node:url';
import { integratedGradients, type IntegratedGradientsOptions } from '../explainers/integratedGradients.js';
import { compositeOnSegments, gaussLegendre } from '../explainers/quadrature.js';
import type { Model, Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { percentile } from './igBench.js';
import { normalRows, perOutputView, seededMlp } from './seededMlp.js';

interface Config {
  label: string;
  model: Model;
  options: Partial<IntegratedGradientsOptions>;
}

interface Row {
  label: string;
  /** CPU ms per row, by rows per call. */
  p50: Record<number, number>;
  wallP50: number;
  gradientRowsPerRow: number;
  jacobian: boolean;
  worstError: number;
  rowsAbove1e4: number;
  stops: string;
}

/** Exact IG of every output for each instance, against one baseline row. */
async function exactIG(model: Model, instances: Rows, baseline: Float32Array): Promise<Float64Array[]> {
  const { d } = instances;
  const k = model.nOutputs;
  const out: Float64Array[] = [];
  for (let i = 0; i < instances.n; i++) {
    const x = instances.data.subarray(i * d, (i + 1) * d);
    const rule = model.pathBreakpoints
      ? compositeOnSegments((await model.pathBreakpoints(baseline, x)).alphas, gaussLegendre(64))
      : compositeOnSegments(Array.from({ length: 63 }, (_, s) => (s + 1) / 64), gaussLegendre(32));
    const m = rule.alphas.length;
    const points = new Float32Array(m * d);
    rule.alphas.forEach((a, r) => {
      for (let j = 0; j < d; j++) points[r * d + j] = baseline[j] + a * (x[j] - baseline[j]);
    });
    const ig = new Float64Array(k * d);
    for (let o = 0; o < k; o++) {
      const g = await model.inputGradients!({ data: points, n: m, d }, o);
      rule.weights.forEach((w, r) => {
        for (let j = 0; j < d; j++) ig[o * d + j] += w * g[r * d + j];
      });
      for (let j = 0; j < d; j++) ig[o * d + j] *= x[j] - baseline[j];
    }
    out.push(ig);
  }
  return out;
}

function slice(rows: Rows, start: number, n: number): Rows {
  return { data: rows.data.subarray(start * rows.d, (start + n) * rows.d), n, d: rows.d };
}

/** Wall and CPU milliseconds of `f`. */
export async function timed(f: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

/**
 * Median CPU time of one raw call of the kind IG made (logitJacobian, or inputGradients of output 0)
 * on `rows` rows.
 */
async function rawGradientMs(model: Model, jacobian: boolean, source: Rows, rows: number, reps: number): Promise<number> {
  const m = Math.max(1, Math.round(rows));
  const data = new Float32Array(m * source.d);
  for (let r = 0; r < m; r++) data.set(source.data.subarray((r % source.n) * source.d, ((r % source.n) + 1) * source.d), r * source.d);
  const call = () => (jacobian ? model.logitJacobian!({ data, n: m, d: source.d }) : model.inputGradients!({ data, n: m, d: source.d }, 0));
  await call();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) times.push((await timed(call)).cpu);
  return percentile(times, 0.5);
}

export async function igDefaultBench(quick = false): Promise<void> {
  const instances = normalRows(101, 100);
  const background = normalRows(102, 200);
  const baseline = new Float32Array(instances.d);
  for (let r = 0; r < background.n; r++) for (let j = 0; j < instances.d; j++) baseline[j] += background.data[r * instances.d + j] / background.n;
  const space = { featureNames: [], outputNames: [] };
  const perCall = [1, 10, 100];
  const reps = quick ? 2 : 5;

  for (const hidden of ['relu', 'tanh'] as const) {
    const model = await seededMlp(hidden, hidden === 'relu' ? 5 : 6);
    const exact = await exactIG(model, instances, baseline);
    const configs: Config[] = [
      { label: 'default', model, options: {} },
      { label: 'previous default', model: perOutputView(model), options: { criterion: 'completeness', tolerance: 0.01 } },
    ];
    if (hidden === 'relu') configs.push({ label: '8 nodes per segment', model, options: { method: 'exact', steps: 8 } });
    const results: Row[] = [];
    for (const c of configs) {
      const e = await integratedGradients(c.model, instances, { space, baseline: 'mean', background, ...c.options });
      let worstError = 0;
      let rowsAbove1e4 = 0;
      const stops = new Map<string, number>();
      e.explanations.forEach((inst, i) => {
        let w = 0;
        inst.outputs.forEach((out, q) => out.attributions.forEach((a, j) => (w = Math.max(w, Math.abs(a.attribution - exact[i][q * instances.d + j])))));
        worstError = Math.max(worstError, w);
        if (w > 1e-4) rowsAbove1e4++;
        stops.set(inst.stopReason ?? '?', (stops.get(inst.stopReason ?? '?') ?? 0) + 1);
      });
      results.push({
        label: c.label,
        p50: {},
        wallP50: NaN,
        gradientRowsPerRow: (e.diagnostics?.gradientRows as number) / instances.n,
        jacobian: e.diagnostics?.gradients === 'jacobian',
        worstError,
        rowsAbove1e4,
        stops: [...stops].map(([s, n]) => `${s} ${n}`).join(', '),
      });
    }
    // Timing: configurations interleaved call by call, so that load from elsewhere hits all alike.
    for (const per of perCall) {
      const samples = configs.map(() => [] as number[]);
      const wall = configs.map(() => [] as number[]);
      for (let rep = 0; rep < reps; rep++) {
        for (let start = 0; start + per <= instances.n; start += per) {
          for (const [c, config] of configs.entries()) {
            const t = await timed(() => integratedGradients(config.model, slice(instances, start, per), { space, baseline: 'mean', background, ...config.options }));
            samples[c].push(t.cpu / per);
            wall[c].push(t.wall / per);
          }
        }
      }
      configs.forEach((_, c) => (results[c].p50[per] = percentile(samples[c], 0.5)));
      if (per === 1) configs.forEach((_, c) => (results[c].wallP50 = percentile(wall[c], 0.5)));
    }
    const previous = results[1];
    console.log(`\n${hidden.toUpperCase()} 20-64-64-3 softmax MLP (${model.logitJacobian ? 'logitJacobian, ' : ''}${model.pathBreakpoints ? 'path breakpoints' : 'no breakpoints'}), ${instances.n} rows, all 3 outputs, mean baseline\n`);
    console.log('| configuration | CPU ms/row p50, 1 row/call | 10 rows/call | 100 rows/call | wall ms/row p50, 1 row/call | vs previous default (CPU, 1 row) | gradient rows / row | ratio to one raw gradient call (of the kind used) on as many rows | max per-feature error vs exact | rows > 1e-4 | stop reasons |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    // Gradient rows count rows through the model's gradient pass: a logitJacobian row gives every output.
    for (const r of results) {
      const raw = await rawGradientMs(model, r.jacobian, instances, r.gradientRowsPerRow, quick ? 5 : 11);
      console.log(
        `| ${r.label} | ${r.p50[1].toFixed(2)} | ${r.p50[10].toFixed(2)} | ${r.p50[100].toFixed(2)} | ${r.wallP50.toFixed(2)} | ${(r.p50[1] / previous.p50[1]).toFixed(2)} | ${Math.round(r.gradientRowsPerRow)} | ${(r.p50[1] / raw).toFixed(2)} | ${r.worstError.toExponential(1)} | ${r.rowsAbove1e4}/${instances.n} | ${r.stops} |`,
      );
    }
    model.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await selectBackend(process.env.TFJS_BACKEND);
  await igDefaultBench(process.argv.includes('--quick'));
}
