/**
 * Two-sample Kolmogorov-Smirnov: D = sup |F_a - F_b| over all values (ties handled exactly), with
 * the two-sided p-value from the asymptotic Kolmogorov distribution Q(sqrt(n m / (n + m)) D)
 * (scipy's kstwobign; scipy.stats.ks_2samp(method='asymp') before 1.5 did the same). On discrete
 * data the asymptotic p-value is conservative.
 */

/**
 * Survival function of the Kolmogorov distribution, Q(λ) = P(K > λ) = 2 Σ_{k>=1} (-1)^(k-1) e^(-2k²λ²).
 * For small λ that series converges slowly, so there the equivalent Jacobi theta form is used:
 * 1 - sqrt(2π)/λ Σ_{k>=1} e^(-(2k-1)² π² / (8λ²)).
 */
export function kolmogorovSurvival(lambda: number): number {
  if (!(lambda > 0)) return 1;
  if (lambda < 1.18) {
    let s = 0;
    for (let k = 1; k <= 20; k++) s += Math.exp((-((2 * k - 1) ** 2) * Math.PI ** 2) / (8 * lambda * lambda));
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * s));
  }
  let s = 0;
  for (let k = 1; k <= 100; k++) {
    const t = Math.exp(-2 * k * k * lambda * lambda);
    s += (k % 2 === 1 ? 1 : -1) * t;
    if (t < 1e-17) break;
  }
  return Math.min(1, Math.max(0, 2 * s));
}

/** Two-sample KS statistic and asymptotic two-sided p-value; both samples must be non-empty. */
export function ksTwoSample(a: ArrayLike<number>, b: ArrayLike<number>): { statistic: number; pValue: number } {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) throw new RangeError('the KS test needs values on both sides');
  const x = Float64Array.from(a).sort();
  const y = Float64Array.from(b).sort();
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const v = Math.min(x[i], y[j]);
    while (i < n && x[i] === v) i++;
    while (j < m && y[j] === v) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  const en = (n * m) / (n + m);
  return { statistic: d, pValue: kolmogorovSurvival(Math.sqrt(en) * d) };
}
