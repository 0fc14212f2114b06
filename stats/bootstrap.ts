/**
 * The nonparametric bootstrap as Fairlearn's MetricFrame runs it (`n_boot`, `ci_quantiles`,
 * `random_state`): every replicate resamples all rows with replacement (not per group), the
 * statistics are recomputed on it, and an interval is read off the replicates at two quantiles with
 * numpy's default linear interpolation. Replicates carry multiplicities (how often each row was
 * drawn) rather than copied rows, so a statistic is a weighted sum over the original arrays.
 */
import { quantile } from './quantile.js';
import { randomInt, seededRng, type Rng } from './random.js';

/** How often each of n rows is drawn in one replicate of n draws with replacement. */
export function resampleCounts(rng: Rng, n: number, out = new Int32Array(n)): Int32Array {
  out.fill(0);
  for (let i = 0; i < n; i++) out[randomInt(rng, n)]++;
  return out;
}

export interface BootstrapOptions {
  /** Replicates; 0 turns the bootstrap off. */
  n: number;
  seed: number;
  /** Central interval, e.g. 0.95 for the 2.5% and 97.5% quantiles. */
  confidence: number;
  /** Called every few replicates; throws to stop (a deadline, a cancelled request). */
  checkpoint?: () => void;
}

export interface Interval {
  lo: number | null;
  hi: number | null;
}

/**
 * Runs `statistics` on the full data (multiplicities null) and on opts.n replicates, and returns the
 * point estimates with percentile intervals. A statistic is a fixed-length vector whose entries may be
 * null where undefined (a group with no positives has no TPR); replicates where an entry is
 * undefined are left out of its interval, and `defined` counts the replicates that were used.
 * `replicates[j]` holds statistic j of every replicate, for intervals at other levels.
 */
export function bootstrap(
  n: number,
  statistics: (counts: Int32Array | null) => (number | null)[],
  opts: BootstrapOptions,
): { point: (number | null)[]; intervals: Interval[]; defined: Int32Array; replicates: (number | null)[][] } {
  const point = statistics(null);
  const k = point.length;
  const intervals: Interval[] = point.map(() => ({ lo: null, hi: null }));
  const defined = new Int32Array(k);
  if (opts.n <= 0) return { point, intervals, defined, replicates: [] };
  const rng = seededRng(opts.seed);
  const reps: (number | null)[][] = point.map(() => new Array<number | null>(opts.n));
  const counts = new Int32Array(n);
  for (let b = 0; b < opts.n; b++) {
    if (opts.checkpoint && b % 8 === 0) opts.checkpoint();
    const s = statistics(resampleCounts(rng, n, counts));
    for (let j = 0; j < k; j++) {
      reps[j][b] = s[j];
      if (s[j] !== null && !Number.isNaN(s[j] as number)) defined[j]++;
    }
  }
  const alpha = (1 - opts.confidence) / 2;
  for (let j = 0; j < k; j++) intervals[j] = { lo: quantile(reps[j], alpha), hi: quantile(reps[j], 1 - alpha) };
  return { point, intervals, defined, replicates: reps };
}
