import assert from 'node:assert/strict';
import { compositeOnSegments, gaussLegendre, quadrature, QUADRATURE_RULES } from '../explainers/quadrature.js';

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const integrate = (q: { alphas: number[]; weights: number[] }, g: (a: number) => number) =>
  sum(q.alphas.map((a, k) => q.weights[k] * g(a)));

describe('quadrature', () => {
  it('every rule has weights summing to 1 and nodes in [0, 1]', () => {
    for (const rule of QUADRATURE_RULES) {
      for (const n of [2, 3, 7, 16, 100, 257]) {
        const q = quadrature(rule, n);
        assert.equal(q.alphas.length, n);
        assert.equal(q.weights.length, n);
        assert.ok(Math.abs(sum(q.weights) - 1) < 1e-13, `${rule} n=${n}: ${sum(q.weights)}`);
        assert.ok(q.alphas.every((a) => a >= 0 && a <= 1));
        assert.ok(q.alphas.every((a, k) => k === 0 || a > q.alphas[k - 1]), `${rule} n=${n}: nodes ascending`);
      }
    }
  });

  it('Gauss-Legendre with n points integrates x^k exactly up to k = 2n - 1', () => {
    for (const n of [1, 2, 3, 4, 5, 8, 12]) {
      const q = gaussLegendre(n);
      for (let k = 0; k <= 2 * n - 1; k++) {
        const got = integrate(q, (a) => a ** k);
        assert.ok(Math.abs(got - 1 / (k + 1)) < 1e-14, `n=${n} k=${k}: ${got} vs ${1 / (k + 1)}`);
      }
      // Degree 2n is off by the textbook remainder (n!)^4 / ((2n+1) ((2n)!)^2) on [0, 1], so the
      // rule is exactly as good as claimed and no better.
      const fact = (m: number): number => (m <= 1 ? 1 : m * fact(m - 1));
      const remainder = fact(n) ** 4 / ((2 * n + 1) * fact(2 * n) ** 2);
      const over = 1 / (2 * n + 1) - integrate(q, (a) => a ** (2 * n));
      assert.ok(Math.abs(over - remainder) < 1e-15 + 1e-9 * remainder, `n=${n}: ${over} vs ${remainder}`);
    }
  });

  it('Gauss-Legendre nodes for n = 2 and 3 match the closed forms', () => {
    // On [-1, 1]: n=2 at +-1/sqrt(3), weights 1; n=3 at 0, +-sqrt(3/5), weights 8/9, 5/9. Halved onto [0, 1].
    const q2 = gaussLegendre(2);
    const r = 1 / Math.sqrt(3);
    assert.ok(Math.abs(q2.alphas[0] - (1 - r) / 2) < 1e-15);
    assert.ok(Math.abs(q2.alphas[1] - (1 + r) / 2) < 1e-15);
    assert.deepEqual(q2.weights.map((w) => +w.toFixed(15)), [0.5, 0.5]);
    const q3 = gaussLegendre(3);
    const s = Math.sqrt(3 / 5);
    const want = [(1 - s) / 2, 0.5, (1 + s) / 2];
    const wantW = [5 / 18, 8 / 18, 5 / 18];
    for (let k = 0; k < 3; k++) {
      assert.ok(Math.abs(q3.alphas[k] - want[k]) < 1e-15, `node ${k}`);
      assert.ok(Math.abs(q3.weights[k] - wantW[k]) < 1e-15, `weight ${k}`);
    }
  });

  it('Gauss-Legendre stays accurate for hundreds of points', () => {
    for (const n of [200, 400]) {
      const q = gaussLegendre(n);
      assert.ok(Math.abs(sum(q.weights) - 1) < 1e-14);
      // Smooth integrand with a known integral: int_0^1 cos(40 a) da = sin(40) / 40.
      assert.ok(Math.abs(integrate(q, (a) => Math.cos(40 * a)) - Math.sin(40) / 40) < 1e-14);
      // Symmetric about 1/2.
      for (let k = 0; k < n; k++) assert.ok(Math.abs(q.alphas[k] + q.alphas[n - 1 - k] - 1) < 1e-15);
    }
  });

  it('each Riemann rule integrates a linear function as its definition says', () => {
    const g = (a: number) => 3 * a + 1; // exact integral 2.5
    for (const n of [2, 5, 10]) {
      // left: sum_{i<n} (3 i/n + 1)/n = 3 (n-1)/(2n) + 1; right: 3 (n+1)/(2n) + 1.
      assert.ok(Math.abs(integrate(quadrature('riemann-left', n), g) - (1 + (3 * (n - 1)) / (2 * n))) < 1e-14);
      assert.ok(Math.abs(integrate(quadrature('riemann-right', n), g) - (1 + (3 * (n + 1)) / (2 * n))) < 1e-14);
      assert.ok(Math.abs(integrate(quadrature('riemann-middle', n), g) - 2.5) < 1e-14);
      assert.ok(Math.abs(integrate(quadrature('riemann-trapezoid', n), g) - 2.5) < 1e-14);
    }
  });

  it('trapezoid is the composite rule on n points (step 1/(n-1)), endpoints half-weighted', () => {
    const q = quadrature('riemann-trapezoid', 5);
    assert.deepEqual(q.alphas, [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(q.weights, [0.125, 0.25, 0.25, 0.25, 0.125]);
  });

  it('rejects point counts a rule cannot use', () => {
    assert.throws(() => quadrature('riemann-trapezoid', 1), RangeError);
    assert.throws(() => quadrature('gauss-legendre', 0), RangeError);
    assert.throws(() => quadrature('riemann-left', 2.5), RangeError);
  });

  it('cached Gauss-Legendre rules are not shared with callers', () => {
    const a = gaussLegendre(6);
    a.alphas[0] = 42;
    assert.notEqual(gaussLegendre(6).alphas[0], 42);
  });

  it('compositeOnSegments maps a rule onto each segment', () => {
    const q = compositeOnSegments([0.25, 0.5, 0.5], quadrature('riemann-middle', 1));
    assert.deepEqual(q.alphas, [0.125, 0.375, 0.75]);
    assert.deepEqual(q.weights, [0.25, 0.25, 0.5]);
    // A kinked integrand |a - 0.3| is integrated exactly by 2-point Gauss-Legendre per smooth piece.
    const k = compositeOnSegments([0.3], gaussLegendre(2));
    assert.ok(Math.abs(integrate(k, (a) => Math.abs(a - 0.3)) - (0.3 ** 2 + 0.7 ** 2) / 2) < 1e-15);
  });
});
