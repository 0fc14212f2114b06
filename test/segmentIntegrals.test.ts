/**
 * The pieces of exact segment integration, against closed forms: the integral of an activation's
 * Jacobian along a straight line of logits, and one path built from segments of a known function.
 */
import assert from 'node:assert/strict';
import { activationJacobianRows, sigmoid, softmaxInto } from '../explainers/outputActivation.js';
import { headIntegral, SegmentPath } from '../explainers/segmentIntegrals.js';
import { normal, seededRng } from '../explainers/random.js';

const softmax = (z: number[]) => {
  const e = z.map((v) => Math.exp(v - Math.max(...z)));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe('segment integrals', () => {
  it('activation Jacobian rows match finite differences of the activation', () => {
    const z = [0.3, -1.2, 2.5, 0.1];
    const J = new Float64Array(2 * 4);
    for (const act of ['softmax', 'sigmoid', 'tanh', 'linear'] as const) {
      const f = (v: number[]) => (act === 'softmax' ? softmax(v) : v.map((x) => (act === 'sigmoid' ? 1 / (1 + Math.exp(-x)) : act === 'tanh' ? Math.tanh(x) : x)));
      activationJacobianRows(act, z, 0, 4, [2, 0], J, new Float64Array(4));
      [2, 0].forEach((o, r) => {
        for (let c = 0; c < 4; c++) {
          const up = [...z];
          const down = [...z];
          up[c] += 1e-6;
          down[c] -= 1e-6;
          assert.ok(Math.abs(J[r * 4 + c] - (f(up)[o] - f(down)[o]) / 2e-6) < 1e-8, `${act} J[${o}][${c}]`);
        }
      });
    }
    assert.equal(sigmoid(-800), 0);
    assert.equal(sigmoid(800), 1);
    const p = new Float64Array(3);
    softmaxInto([1000, 1000, 0], 0, 3, p);
    assert.deepEqual(Array.from(p).map((v) => Math.round(v * 1e6) / 1e6), [0.5, 0.5, 0]);
  });

  it('integral of J along z0 + t dz: closed forms for sigmoid and tanh, the chain rule for softmax', () => {
    const rng = seededRng(3);
    for (let trial = 0; trial < 30; trial++) {
      const k = 4;
      const scale = trial < 10 ? 0.1 : trial < 20 ? 3 : 40; // short, moderate and very steep segments
      const z0 = Float64Array.from({ length: k }, () => 2 * normal(rng));
      const dz = Float64Array.from({ length: k }, () => scale * normal(rng));
      const outputs = [0, 1, 2, 3];
      const M = new Float64Array(k * k);
      const E = new Float64Array(k * k);
      // Elementwise: integral_0^1 act'(z0 + t dz) dt = (act(z0 + dz) - act(z0)) / dz.
      for (const [act, f] of [['sigmoid', (x: number) => 1 / (1 + Math.exp(-x))], ['tanh', Math.tanh]] as const) {
        headIntegral(act, z0, dz, k, outputs, M, E);
        for (let o = 0; o < k; o++) {
          const want = (f(z0[o] + dz[o]) - f(z0[o])) / dz[o];
          assert.ok(Math.abs(M[o * k + o] - want) < 1e-11, `${act} #${trial}: ${M[o * k + o]} vs ${want}`);
          assert.ok(E[o * k + o] < 1e-10);
        }
      }
      // Softmax: sum_c M_oc dz_c = p_o(z0 + dz) - p_o(z0) (d/dt p_o(z0 + t dz) = sum_c J_oc dz_c).
      headIntegral('softmax', z0, dz, k, outputs, M, E);
      const p0 = softmax(Array.from(z0));
      const p1 = softmax(Array.from(z0, (v, c) => v + dz[c]));
      for (let o = 0; o < k; o++) {
        let s = 0;
        for (let c = 0; c < k; c++) s += M[o * k + c] * dz[c];
        assert.ok(Math.abs(s - (p1[o] - p0[o])) < 1e-10 * Math.max(1, scale), `softmax #${trial} output ${o}`);
      }
    }
  });

  it('a path of affine-logit segments integrates y = sigmoid(w . x) exactly, and flags a broken breakpoint', () => {
    // One segment model: z = w . x is affine everywhere, so any cut of [0, 1] into segments must give
    // IG_j = (x_j - x'_j) w_j (sigmoid(w . x) - sigmoid(w . x')) / (w . (x - x')).
    const w = [1.5, -2, 0.5];
    const x = [1, 0.5, -2];
    const b = [0, 0, 0];
    const delta = Float64Array.from(x, (v, j) => v - b[j]);
    const path = new SegmentPath('sigmoid', 1, 3, [0], delta);
    const edges = [0, 0.2, 0.21, 0.7, 1];
    for (let s = 0; s + 1 < edges.length; s++) {
      const at = (edges[s] + edges[s + 1]) / 2;
      const z = [w.reduce((acc, wj, j) => acc + wj * (b[j] + at * delta[j]), 0)];
      path.add(edges[s], edges[s + 1], at, z, 0, w, 0);
    }
    const zx = w.reduce((a, wj, j) => a + wj * x[j], 0);
    const factor = (1 / (1 + Math.exp(-zx)) - 0.5) / zx;
    for (let j = 0; j < 3; j++) assert.ok(Math.abs(delta[j] * path.integral[j] - delta[j] * w[j] * factor) < 1e-12);
    assert.ok(path.mismatch < 1e-12);
    assert.equal(path.segments, 4);
    // A segment whose logits are off (a kink the breakpoints missed) breaks continuity.
    const broken = new SegmentPath('sigmoid', 1, 3, [0], delta);
    broken.add(0, 0.5, 0.25, [w.reduce((a, wj, j) => a + wj * 0.25 * delta[j], 0)], 0, w, 0);
    broken.add(0.5, 1, 0.75, [0.3 + w.reduce((a, wj, j) => a + wj * 0.75 * delta[j], 0)], 0, w, 0);
    assert.ok(Math.abs(broken.mismatch - 0.3) < 1e-12);
  });
});
