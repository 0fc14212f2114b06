/**
 * Counterfactuals on the credit sample's rejected reference rows: milliseconds and model evaluations
 * per instance, one instance per call and all in one call, with and without the gradient path; the
 * share of rows with a valid counterfactual; the cost found against a baseline measured in the same
 * run (the nearest reference row the model approves, moved back into the constraints: DiCE's k-d tree
 * start, Wachter's "nearest unlike neighbour"); the recourse burden over the whole reference set.
 * Time is also given as a ratio to raw predict calls on the same number of rows.
 * `npx tsx bench/counterfactualBench.ts` runs it alone.
 */
import { pathToFileURL } from 'node:url';
import { counterfactuals } from '../explainers/counterfactuals/counterfactuals.js';
import { recourseBurden } from '../monitoring/fairness/recourse.js';
import { admissible, buildSpace, distance, domainOf } from '../explainers/counterfactuals/space.js';
import type { Model, Rows } from '../explainers/types.js';
import { counterfactualOptionsFromMetadata } from '../service/counterfactualConstraints.js';
import type { LoadedModel } from '../models/repository.js';
import { percentile } from './igBench.js';

const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function pick(rows: Rows, idx: number[]): Rows {
  const data = new Float32Array(idx.length * rows.d);
  idx.forEach((r, i) => data.set(rows.data.subarray(r * rows.d, (r + 1) * rows.d), i * rows.d));
  return { data, n: idx.length, d: rows.d };
}

/** Milliseconds of raw predict calls on `rows` rows (median of a few), in chunks as the explainer sends them. */
async function rawPredictMs(model: Model, src: Rows, rows: number): Promise<number> {
  const k = Math.max(1, Math.round(rows));
  const data = new Float32Array(k * src.d);
  for (let i = 0; i < k; i++) data.set(src.data.subarray((i % src.n) * src.d, ((i % src.n) + 1) * src.d), i * src.d);
  await model.predict({ data, n: k, d: src.d });
  const times: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    await model.predict({ data, n: k, d: src.d });
    times.push(performance.now() - t0);
  }
  return percentile(times, 0.5);
}

export interface CounterfactualBenchOptions {
  /** Rejected rows asked one per call. */
  single: number;
  quick?: boolean;
}

export async function benchCounterfactuals(m: LoadedModel, o: CounterfactualBenchOptions): Promise<string[]> {
  const out: string[] = [];
  const ref = m.reference!.rows;
  const meta = counterfactualOptionsFromMetadata(m.metadata);
  const base = { space: m.space, reference: ref, ...meta, seed: 1 };
  const p = await m.model.predict(ref);
  const rejected = [...Array(ref.n).keys()].filter((i) => p[i] < 0.5);
  const blackBox: Model = { nFeatures: m.model.nFeatures, nOutputs: m.model.nOutputs, predict: (r) => m.model.predict(r) };

  out.push(
    `${rejected.length} of ${ref.n} reference rows rejected (p < 0.5). "found" = rows with a valid (re-predicted) counterfactual.`,
    '',
  );
  out.push(
    '| run | k | ms / instance (p50) | p95 | model rows / instance | gradient rows / instance | found | ratio to raw predict of the same rows |',
  );
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');

  // One instance per call, as a single REST request would run.
  for (const [label, model] of [
    ['one per call, gradients', m.model],
    ['one per call, black box', blackBox],
  ] as [string, Model][]) {
    const times: number[] = [];
    let evals = 0;
    let grads = 0;
    let found = 0;
    const idx = rejected.slice(0, o.single);
    for (const i of idx) {
      const t0 = performance.now();
      const r = await counterfactuals(model, pick(ref, [i]), { ...base, k: 3, referencePredictions: p });
      times.push(performance.now() - t0);
      evals += r.instances[0].modelEvaluations;
      grads += r.instances[0].gradientEvaluations;
      found += r.instances[0].found ? 1 : 0;
    }
    const per = evals / idx.length;
    const raw = await rawPredictMs(m.model, ref, per);
    const p50 = percentile(times, 0.5);
    out.push(
      `| ${label} | 3 | ${fmt(p50)} | ${fmt(percentile(times, 0.95))} | ${Math.round(per)} | ${fmt(grads / idx.length, 1)} | ${found}/${idx.length} | ${fmt(p50 / raw, 1)} |`,
    );
  }

  // Every rejected row in one call: model calls shared across instances.
  const all = pick(ref, rejected);
  const costs = new Map<string, number[]>();
  for (const [label, model, k] of [
    ['all in one call, gradients', m.model, 1],
    ['all in one call, gradients', m.model, 3],
    ['all in one call, black box', blackBox, 1],
  ] as [string, Model, number][]) {
    const t0 = performance.now();
    const r = await counterfactuals(model, all, { ...base, k });
    const ms = performance.now() - t0;
    const evals = r.instances.reduce((t, x) => t + x.modelEvaluations, 0) + r.referenceEvaluations;
    const grads = r.instances.reduce((t, x) => t + x.gradientEvaluations, 0);
    const found = r.instances.filter((x) => x.found).length;
    const raw = await rawPredictMs(m.model, ref, Math.min(evals, 200_000));
    const rawAll = raw * (evals / Math.min(evals, 200_000));
    out.push(
      `| ${label} | ${k} | ${fmt(ms / all.n, 2)} (mean) | – | ${Math.round(evals / all.n)} | ${fmt(grads / all.n, 1)} | ${found}/${all.n} | ${fmt(ms / rawAll, 1)} |`,
    );
    if (k === 1)
      costs.set(
        label,
        r.instances.map((x) => (x.found ? x.counterfactuals[0].distance : NaN)),
      );
  }

  // Baseline cost: the nearest approved reference row, projected into the constraints, and re-predicted.
  const space = buildSpace(m.space, ref, meta.constraints, meta.groupNames);
  const baseline: number[] = [];
  const candidates: Float32Array[] = [];
  for (const i of rejected) {
    const x = ref.data.slice(i * ref.d, (i + 1) * ref.d);
    const doms = space.units.map((u) => domainOf(u, x));
    let best: { cost: number; row: Float32Array } | null = null;
    for (let r = 0; r < ref.n; r++) {
      if (p[r] < 0.5) continue;
      const row = x.slice();
      space.units.forEach((u, ui) => {
        if (u.immutable) return;
        for (const j of u.columns) {
          if (u.kind === 'numeric' || u.kind === 'integer') row[j] = admissible(u, doms[ui], x[j], ref.data[r * ref.d + j]);
          else if (u.kind === 'one-hot') row[j] = ref.data[r * ref.d + j];
          else if (doms[ui].codes.includes(ref.data[r * ref.d + j])) row[j] = ref.data[r * ref.d + j];
        }
      });
      const cost = distance(space, x, 0, row, 0);
      if (!best || cost < best.cost) best = { cost, row };
    }
    candidates.push(best!.row);
    baseline.push(best!.cost);
  }
  const bp = await m.model.predict({ data: Float32Array.from(candidates.flatMap((c) => Array.from(c))), n: candidates.length, d: ref.d });
  const ours = costs.get('all in one call, gradients')!;
  const pairs = rejected
    .map((_, q) => ({ ours: ours[q], base: baseline[q], valid: bp[q] >= 0.5 }))
    .filter((x) => x.valid && Number.isFinite(x.ours));
  const ratios = pairs.map((x) => x.ours / x.base);
  out.push(
    '',
    `Cost of the cheapest counterfactual against the projected nearest approved reference row (${pairs.length} rows where that baseline is still approved after projection, ` +
      `${rejected.length - bp.filter((v) => v >= 0.5).length} where it is not): median ratio ours / baseline ${fmt(percentile(ratios, 0.5), 3)}, ` +
      `p90 ${fmt(percentile(ratios, 0.9), 3)}; median cost ours ${fmt(
        percentile(
          pairs.map((x) => x.ours),
          0.5,
        ),
        3,
      )}, baseline ${fmt(
        percentile(
          pairs.map((x) => x.base),
          0.5,
        ),
        3,
      )} (MAD units).`,
  );

  const sex = m.space.featureNames.indexOf('sex');
  const t0 = performance.now();
  const burden = await recourseBurden(m.model, {
    space: m.space,
    rows: ref,
    ...meta,
    seed: 1,
    groups: { feature: 'sex', labels: ['male', 'female'], index: Int32Array.from({ length: ref.n }, (_, i) => ref.data[i * ref.d + sex]) },
    bootstrap: { n: o.quick ? 200 : 1000 },
  });
  const ms = performance.now() - t0;
  const g = burden.groups;
  const e = (v: { value: number | null; lo: number | null; hi: number | null }) =>
    `${fmt(v.value ?? NaN, 3)} [${fmt(v.lo ?? NaN, 3)}, ${fmt(v.hi ?? NaN, 3)}]`;
  out.push(
    '',
    `Recourse burden over the ${ref.n} reference rows by sex: ${fmt(ms, 0)} ms, ${burden.modelEvaluations.toLocaleString('en-US')} model rows. ` +
      `Mean cost men ${e(g[0].meanCost)}, women ${e(g[1].meanCost)}; median men ${e(g[0].medianCost)}, women ${e(g[1].medianCost)}; ` +
      `difference ${e(burden.meanCostDifference)}, ratio ${e(burden.meanCostRatio)}.`,
  );
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { selectBackend } = await import('../models/backend.js');
  const { loadModelFolder } = await import('../models/repository.js');
  await selectBackend(process.env.TFJS_BACKEND);
  const m = await loadModelFolder('credit', 'samples/models/credit');
  for (const line of await benchCounterfactuals(m, { single: 30, quick: process.env.BENCH_QUICK === '1' })) console.log(line);
}
