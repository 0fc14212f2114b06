/**
 * Efficiency of an amortised (or any Kernel SHAP-shaped) explanation of a single-output model, checked
 * against the model's own predictions: each row's attributions sum to link(f(x)) - link(mean f(background)).
 */
import assert from 'node:assert/strict';
import type { Explanation, Rows } from '../../explainers/types.js';
import type { LoadedModel } from '../../models/repository.js';

export async function checkEfficiency(m: LoadedModel, rows: Rows, e: Explanation, link: (p: number) => number): Promise<void> {
  const fx = await m.model.predict(rows);
  const bg = m.background!;
  const fb = await m.model.predict(bg);
  let mean = 0;
  for (let b = 0; b < bg.n; b++) mean += fb[b] / bg.n;
  e.explanations.forEach((inst, i) => {
    const o = inst.outputs[0];
    assert.equal(o.instanceOutputValue, link(fx[i]));
    assert.ok(Math.abs(o.baselineOutputValue - link(mean)) <= 1e-12 * Math.max(1, Math.abs(link(mean))), `baseline ${o.baselineOutputValue} vs ${link(mean)}`);
    const sum = o.attributions.reduce((s, a) => s + a.attribution, 0);
    const target = o.instanceOutputValue - o.baselineOutputValue;
    assert.ok(Math.abs(sum - target) <= 1e-12 * Math.max(1, Math.abs(target)) * o.attributions.length, `row ${i}: Σφ = ${sum}, f(x) - E f = ${target}`);
  });
}
