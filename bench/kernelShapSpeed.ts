/**
 * Speed of Kernel SHAP's own work, apart from the model: masked-row construction, sampling and the
 * regression. The model here is cheap and timed separately, so "explainer" = wall time - model time.
 * CPU time (process.cpuUsage, all threads, so GC helpers too) is printed alongside: on a loaded
 * machine it is the steadier figure.
 * Also times the (M-1)-sized solves of the regression by hand-written Cholesky against ml-matrix.
 *
 *   npx tsx bench/kernelShapSpeed.ts
 */
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { kernelShap } from '../explainers/kernelShap.js';
import { createSampler } from '../explainers/coalitions.js';
import { solveShapleyRegression } from '../explainers/kernelShapRegression.js';
import { seededRng, normal } from '../explainers/random.js';
import type { Model, Rows } from '../explainers/types.js';

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function timedModel(d: number): Model & { ms: number; rows: number } {
  const m = {
    nFeatures: d,
    nOutputs: 1,
    ms: 0,
    rows: 0,
    async predict(rows: Rows) {
      const t = cpuMs();
      const out = new Float32Array(rows.n);
      for (let i = 0; i < rows.n; i++) out[i] = rows.data[i * d] * rows.data[i * d + 1] + rows.data[i * d + d - 1];
      m.ms += cpuMs() - t;
      m.rows += rows.n;
      return out;
    },
  };
  return m;
}

async function overhead(d: number, nBackground: number, instances: number, groups?: number[][]) {
  const rng = seededRng(1);
  const rows = (n: number): Rows => ({ n, d, data: Float32Array.from({ length: n * d }, () => normal(rng)) });
  const space = {
    featureNames: Array.from({ length: d }, (_, i) => `x${i}`),
    outputNames: ['y'],
    ...(groups && { groups }),
  };
  const bg = rows(nBackground);
  const x = rows(instances);
  // Warm-up: the same work once, so the figures are for JIT-compiled code.
  for (const deadline of [undefined, Date.now() + 1e9]) await kernelShap(timedModel(d), x, { space, background: bg, tolerance: 0, deadline });
  const players = groups ? d - groups.reduce((s, g) => s + g.length - 1, 0) : d;
  console.log(`d=${d} players=${players} background=${nBackground} instances=${instances}, nSamples auto:`);
  // tolerance 0 without a deadline runs one round; a far deadline forces the rounds (and a solve each).
  for (const [label, deadline] of [['one round', undefined], ['in rounds', Date.now() + 1e9]] as const) {
    const model = timedModel(d);
    const t = performance.now();
    const c = cpuMs();
    const e = await kernelShap(model, x, { space, background: bg, tolerance: 0, deadline });
    const cpu = cpuMs() - c;
    const wall = performance.now() - t;
    const own = wall - model.ms;
    const rounds = (e.diagnostics!.instances as { rounds: number }[])[0].rounds;
    console.log(
      `  ${label} (${rounds}): ${model.rows} rows, wall ${wall.toFixed(0)} ms (cpu ${cpu.toFixed(0)} ms incl. GC threads), ` +
        `model ${model.ms.toFixed(0)} ms, explainer ${own.toFixed(0)} ms = ${(model.rows / own / 1000).toFixed(2)} M rows/s, ` +
        `computeMs per instance ${(e.explanations.reduce((s, i) => s + i.computeMs, 0) / instances).toFixed(1)}`,
    );
  }
}

function solves(M: number) {
  const rng = seededRng(2);
  const sampler = createSampler('leverage', M, 2 * M + 2048, rng);
  sampler.grow(2 * M + 2048);
  const y = Float64Array.from(sampler.design.masks, () => normal(rng));
  let t = cpuMs();
  const reps = 20;
  for (let r = 0; r < reps; r++) solveShapleyRegression(sampler.design, [y], [1]);
  const full = (cpuMs() - t) / reps;

  // The inner kernel: one (M-1) x (M-1) factorisation and one back-substitution per sampling unit.
  const p = M - 1;
  const A = Matrix.eye(p).mul(M);
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) A.set(i, j, A.get(i, j) + 1);
  const units = sampler.design.unitStratum.length;
  const b = Matrix.columnVector(Array.from({ length: p }, () => 1));
  t = cpuMs();
  for (let r = 0; r < reps; r++) {
    const chol = new CholeskyDecomposition(A);
    for (let u = 0; u < units; u++) chol.solve(b);
  }
  const mlm = (cpuMs() - t) / reps;
  console.log(
    `M=${M}: ${sampler.design.masks.length} coalitions, ${units} units: solveShapleyRegression (hand Cholesky, incl. stderr) ` +
      `${full.toFixed(2)} ms; ml-matrix Cholesky + ${units} solves alone ${mlm.toFixed(2)} ms`,
  );
}

await overhead(20, 100, 8);
await overhead(64, 100, 4);
await overhead(40, 50, 4, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]]);
for (const M of [16, 32, 64]) solves(M);
