/**
 * Quadrature rules on [0, 1]: a rule name and a point count map to nodes (`alphas`) and weights,
 * so that integral_0^1 g(a) da ~= sum_k weights[k] * g(alphas[k]). Integrated Gradients uses them
 * along the straight path from the baseline to the input.
 *
 * Every rule's weights sum to 1, so a constant integrand is integrated exactly. (Captum's
 * trapezoid puts n points on [0, 1] but uses step 1/n, so its weights sum to 1 - 1/n; ours is the
 * composite trapezoid rule proper, with step 1/(n-1).)
 */

export type QuadratureRule = 'gauss-legendre' | 'riemann-left' | 'riemann-right' | 'riemann-middle' | 'riemann-trapezoid';

export const QUADRATURE_RULES: readonly QuadratureRule[] = [
  'gauss-legendre',
  'riemann-left',
  'riemann-right',
  'riemann-middle',
  'riemann-trapezoid',
];

export interface Quadrature {
  alphas: number[];
  weights: number[];
}

/** The fewest points each rule accepts. */
export function minPoints(rule: QuadratureRule): number {
  return rule === 'riemann-trapezoid' ? 2 : 1;
}

export function quadrature(rule: QuadratureRule, n: number): Quadrature {
  if (!Number.isInteger(n) || n < minPoints(rule)) {
    throw new RangeError(`${rule} needs an integer number of points >= ${minPoints(rule)}, got ${n}`);
  }
  switch (rule) {
    case 'gauss-legendre':
      return gaussLegendre(n);
    case 'riemann-left':
      return riemann(n, (i) => i / n);
    case 'riemann-right':
      return riemann(n, (i) => (i + 1) / n);
    case 'riemann-middle':
      return riemann(n, (i) => (i + 0.5) / n);
    case 'riemann-trapezoid':
      return trapezoid(n);
    default:
      throw new RangeError(`unknown quadrature rule "${rule as string}"`);
  }
}

function riemann(n: number, node: (i: number) => number): Quadrature {
  const alphas = Array.from({ length: n }, (_, i) => node(i));
  return { alphas, weights: new Array<number>(n).fill(1 / n) };
}

function trapezoid(n: number): Quadrature {
  const h = 1 / (n - 1);
  const alphas = Array.from({ length: n }, (_, i) => (i === n - 1 ? 1 : i * h));
  const weights = alphas.map((_, i) => (i === 0 || i === n - 1 ? h / 2 : h));
  return { alphas, weights };
}

const glCache = new Map<number, Quadrature>();

/**
 * n-point Gauss-Legendre on [0, 1], exact for polynomials of degree <= 2n - 1. Nodes are the roots
 * of P_n found by Newton's method from Tricomi's asymptotic estimate, which starts close enough
 * that a handful of iterations reach machine precision for any n we use.
 */
export function gaussLegendre(n: number): Quadrature {
  let rule = glCache.get(n);
  if (!rule) {
    rule = computeGaussLegendre(n);
    if (glCache.size < 64) glCache.set(n, rule);
  }
  // Callers may mutate what they get; the cached copy must stay intact.
  return { alphas: rule.alphas.slice(), weights: rule.weights.slice() };
}

function computeGaussLegendre(n: number): Quadrature {
  const alphas = new Array<number>(n);
  const weights = new Array<number>(n);
  const half = Math.ceil(n / 2);
  for (let i = 0; i < half; i++) {
    // i-th root of P_n in descending order on [-1, 1].
    let x = (1 - (n - 1) / (8 * n * n * n)) * Math.cos((Math.PI * (4 * i + 3)) / (4 * n + 2));
    for (let iter = 0; iter < 100; iter++) {
      const [p, d] = legendre(n, x);
      const dx = p / d;
      x -= dx;
      // Quadratic convergence: once a step is this small the next would be below rounding.
      if (Math.abs(dx) < 1e-14) break;
    }
    const dp = legendre(n, x)[1];
    const w = 2 / ((1 - x * x) * dp * dp);
    // Map x in [-1, 1] to alpha in [0, 1]; the two mirror nodes share a weight. (1 - x) / 2 keeps
    // the small alphas accurate near 0, and 1 - that for the mirror node near 1.
    const lo = (1 - x) / 2;
    alphas[i] = lo;
    weights[i] = w / 2;
    alphas[n - 1 - i] = 1 - lo;
    weights[n - 1 - i] = w / 2;
  }
  if (n % 2 === 1) alphas[(n - 1) / 2] = 0.5;
  return { alphas, weights };
}

/** P_n(x) and P_n'(x) by the three-term recurrence. */
function legendre(n: number, x: number): [number, number] {
  let p0 = 1;
  let p1 = x;
  if (n === 0) return [1, 0];
  for (let k = 2; k <= n; k++) {
    const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
    p0 = p1;
    p1 = p2;
  }
  return [p1, (n * (x * p1 - p0)) / (x * x - 1)];
}

/**
 * A rule repeated on each segment between consecutive breakpoints of [0, 1] (breakpoints sorted,
 * inside (0, 1)). Zero-length segments contribute nothing and are dropped.
 */
export function compositeOnSegments(breakpoints: readonly number[], rule: Quadrature): Quadrature {
  const edges = [0, ...breakpoints, 1];
  const alphas: number[] = [];
  const weights: number[] = [];
  for (let s = 0; s + 1 < edges.length; s++) {
    const a = edges[s];
    const len = edges[s + 1] - a;
    if (!(len > 0)) continue;
    for (let k = 0; k < rule.alphas.length; k++) {
      alphas.push(a + len * rule.alphas[k]);
      weights.push(len * rule.weights[k]);
    }
  }
  return { alphas, weights };
}
