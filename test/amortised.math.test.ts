/**
 * The pure parts of the amortised explainer held to oracles written here: the Shapley kernel
 * distribution of coalition sizes (its formula), the Shapley value of small random games (the
 * permutation formula, all M! orders), and the efficiency axiom; copula synthetic rows held to
 * the real rows' values, marginals and rank correlations.
 */
import assert from 'node:assert/strict';
import { rowCoalitions, samplePairedCoalitions, streamRng } from '../explainers/amortised/sampling.js';
import { allCoalitions, CoalitionStats, constrainedMinimiser } from '../explainers/amortised/targets.js';
import { additiveNormalisation } from '../explainers/amortised/normalise.js';
import { createGame, endpointEvaluations, endpointEvaluationsPerRow, endpointValues, probeBackground } from '../explainers/amortised/game.js';
import { seededRng } from '../explainers/random.js';
import { withCopulaRows } from '../explainers/amortised/synthetic.js';
import { withHybrids } from '../explainers/amortised/training.js';
import { servable } from '../explainers/amortised/validation.js';
import path from 'node:path';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder } from '../models/repository.js';
import type { Model } from '../explainers/types.js';
import type { AmortisedValidation } from '../explainers/amortised/types.js';

/** Shapley values by averaging marginal contributions over all M! player orders. */
function shapleyByPermutations(M: number, v: (mask: number) => number): number[] {
  const phi = new Array(M).fill(0);
  let count = 0;
  const perm = Array.from({ length: M }, (_, i) => i);
  const visit = (k: number) => {
    if (k === M) {
      let mask = 0;
      for (const p of perm) {
        phi[p] += v(mask | (1 << p)) - v(mask);
        mask |= 1 << p;
      }
      count++;
      return;
    }
    for (let i = k; i < M; i++) {
      [perm[k], perm[i]] = [perm[i], perm[k]];
      visit(k + 1);
      [perm[k], perm[i]] = [perm[i], perm[k]];
    }
  };
  visit(0);
  return phi.map((x) => x / count);
}

function randomGame(M: number, seed: number): (mask: number) => number {
  const rng = seededRng(seed);
  const table = Array.from({ length: 1 << M }, () => 4 * rng() - 2);
  return (mask) => table[mask];
}

/** The per-row objective's constrained minimiser from (masks, weights) of one row. */
function minimiserOf(M: number, masks: Uint8Array, weights: Float64Array, v: (mask: number) => number): Float64Array {
  const C = weights.length;
  const stats = new CoalitionStats(1, M, 1);
  const y = new Float64Array(C);
  for (let j = 0; j < C; j++) {
    let mask = 0;
    for (let p = 0; p < M; p++) if (masks[j * M + p]) mask |= 1 << p;
    y[j] = v(mask) - v(0);
  }
  stats.add(new Int32Array(C), masks, y, weights);
  // In float64 straight from the sums (read() rounds to float32 for the network).
  const A64 = Float64Array.from({ length: M * M }, (_, t) => stats.sums[t] / stats.weight[0]);
  const b64 = Float64Array.from({ length: M }, (_, t) => stats.sums[M * M + t] / stats.weight[0]);
  return constrainedMinimiser(A64, b64, M, v((1 << M) - 1) - v(0));
}

describe('amortised SHAP: coalition sampling', () => {
  it('draws coalition sizes from the Shapley kernel distribution, in complementary pairs', () => {
    const M = 10;
    const pairs = 40_000;
    const masks = samplePairedCoalitions(seededRng(3), M, pairs);
    const counts = new Array(M).fill(0);
    for (let p = 0; p < pairs; p++) {
      let size = 0;
      for (let i = 0; i < M; i++) {
        const a = masks[2 * p * M + i];
        const b = masks[(2 * p + 1) * M + i];
        assert.equal(a + b, 1, 'the second coalition of a pair is the complement of the first');
        size += a;
      }
      assert.ok(size >= 1 && size <= M - 1, 'never the empty or the full coalition');
      counts[size]++;
    }
    // p(s) ∝ (M - 1) / (s (M - s)), s = 1..M-1.
    const mass = Array.from({ length: M }, (_, s) => (s === 0 ? 0 : (M - 1) / (s * (M - s))));
    const total = mass.reduce((a, b) => a + b, 0);
    for (let s = 1; s < M; s++) {
      const p = mass[s] / total;
      const sd = Math.sqrt((pairs * p * (1 - p)));
      assert.ok(Math.abs(counts[s] - pairs * p) < 4.5 * sd, `size ${s}: ${counts[s]} draws, expected ${(pairs * p).toFixed(0)} ± ${sd.toFixed(0)}`);
    }
  });

  it('derives independent, reproducible streams from (seed, index, stream)', () => {
    const a = streamRng(7, 3, 1);
    const b = streamRng(7, 3, 1);
    const seqA = Array.from({ length: 5 }, () => a());
    assert.deepEqual(Array.from({ length: 5 }, () => b()), seqA);
    for (const [s, i, st] of [[8, 3, 1], [7, 4, 1], [7, 3, 2]]) {
      const c = streamRng(s, i, st);
      assert.notDeepEqual(Array.from({ length: 5 }, () => c()), seqA);
    }
  });

  it('gives every coalition its kernel weight when the budget covers them all', () => {
    const M = 5;
    for (const sampler of ['balanced', 'kernel'] as const) {
      const { masks, weights } = rowCoalitions(sampler, M, 100, seededRng(1));
      assert.equal(weights.length, 2 ** M - 2);
      const seen = new Set<string>();
      for (let j = 0; j < weights.length; j++) seen.add(masks.subarray(j * M, (j + 1) * M).join(''));
      assert.equal(seen.size, 2 ** M - 2, 'each coalition once');
    }
    const { weights } = allCoalitions(M);
    assert.ok(Math.abs(weights.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  });
});

describe('amortised SHAP: the training objective', () => {
  it('is minimised exactly by the Shapley values when every coalition is enumerated', () => {
    for (const [M, seed] of [[3, 1], [5, 2], [7, 3]]) {
      const v = randomGame(M, seed);
      const { masks, weights } = allCoalitions(M);
      const phi = minimiserOf(M, masks, weights, v);
      const truth = shapleyByPermutations(M, v);
      for (let i = 0; i < M; i++) assert.ok(Math.abs(phi[i] - truth[i]) < 1e-9, `M=${M} player ${i}: ${phi[i]} vs ${truth[i]}`);
    }
  });

  it('has a sampled minimiser that approaches the Shapley values as the budget grows (balanced and kernel samplers)', () => {
    const M = 8;
    const v = randomGame(M, 11);
    const truth = shapleyByPermutations(M, v);
    const err = (phi: Float64Array) => Math.max(...truth.map((t, i) => Math.abs(phi[i] - t)));
    for (const sampler of ['balanced', 'kernel'] as const) {
      const errors = [16, 64, 200].map((budget) => {
        let sum = 0;
        for (let s = 0; s < 20; s++) {
          const { masks, weights } = rowCoalitions(sampler, M, budget, seededRng(100 + s));
          sum += err(minimiserOf(M, masks, weights, v));
        }
        return sum / 20;
      });
      assert.ok(errors[2] < errors[0], `${sampler}: error ${errors.map((e) => e.toFixed(3)).join(' -> ')} should shrink with budget`);
      // A random game has interactions of every order: a loose bound, the point is convergence.
      assert.ok(errors[2] < 0.5 * errors[0], `${sampler}: ${errors[2]} vs ${errors[0]}`);
    }
  });

  it('reports the excess over the row minimum as (φ - φ̂)ᵀA(φ - φ̂) >= 0, zero at φ̂', () => {
    const M = 4;
    const v = randomGame(M, 5);
    const { masks, weights } = allCoalitions(M);
    const C = weights.length;
    const stats = new CoalitionStats(1, M, 1);
    const y = Float64Array.from({ length: C }, (_, j) => {
      let mask = 0;
      for (let p = 0; p < M; p++) if (masks[j * M + p]) mask |= 1 << p;
      return v(mask) - v(0);
    });
    stats.add(new Int32Array(C), masks, y, weights);
    const total = v(15) - v(0);
    stats.computeMinimum([total], [1, 1, 1, 1]);
    const A = new Float32Array(M * M);
    const b = new Float32Array(M);
    const c = new Float32Array(1);
    stats.read(0, A, b, c, 0);
    const objective = (phi: number[]) => {
      let q = 0;
      for (let i = 0; i < M; i++) for (let j = 0; j < M; j++) q += phi[i] * A[i * M + j] * phi[j];
      return q - 2 * phi.reduce((s, p, i) => s + p * b[i], 0) + c[0];
    };
    const truth = shapleyByPermutations(M, v);
    assert.ok(Math.abs(objective(truth)) < 1e-5, `excess at the Shapley values: ${objective(truth)}`);
    // Any other efficient φ has a larger objective.
    const moved = truth.map((t, i) => t + (i === 0 ? 0.1 : i === 1 ? -0.1 : 0));
    assert.ok(objective(moved) > 1e-4);
  });
});

describe('amortised SHAP: additive efficient normalisation', () => {
  it('makes the attributions sum to the target exactly and leaves non-varying players at 0', () => {
    const rng = seededRng(9);
    for (let t = 0; t < 200; t++) {
      const M = 2 + Math.floor(rng() * 30);
      const raw = Float32Array.from({ length: M }, () => 1e3 * (rng() - 0.5));
      const varying = Uint8Array.from({ length: M }, () => (rng() < 0.8 ? 1 : 0));
      varying[0] = 1;
      const total = 1e4 * (rng() - 0.5);
      const phi = additiveNormalisation(raw, varying, total);
      let sum = 0;
      for (let j = 0; j < M; j++) sum += phi[j];
      assert.ok(Math.abs(sum - total) <= 1e-12 * Math.max(1, Math.abs(total)) * M, `sum ${sum} vs ${total}`);
      const shift = phi[0] - raw[0];
      for (let j = 0; j < M; j++) {
        if (!varying[j]) assert.equal(phi[j], 0);
        else assert.ok(Math.abs(phi[j] - raw[j] - shift) < 1e-9 * Math.max(1, Math.abs(total)), 'the gap is shared equally');
      }
    }
  });
});

describe('amortised SHAP: probe values', () => {
  /** A small nonlinear model (pairwise and triple products) as a plain function over rows. */
  const d = 4;
  const f = (x: ArrayLike<number>) => [x[0] * x[1] + 0.5 * x[2] - x[1] * x[2] * x[3] + x[3] ** 2];
  const model = {
    nFeatures: d,
    nOutputs: 1,
    async predict(rows: { data: Float32Array; n: number; d: number }) {
      return Float32Array.from({ length: rows.n }, (_, i) => f(rows.data.subarray(i * d, (i + 1) * d))[0]);
    },
  };
  const rng = seededRng(3);
  const bg = { data: Float32Array.from({ length: 7 * d }, () => Math.round(8 * rng() - 4) / 2), n: 7, d };
  const x = Float32Array.from([1.5, -2, 0.5, 3]);
  /** v(S) = mean over background rows of f(x on S, b elsewhere), computed here. */
  const v = (mask: number) => {
    let s = 0;
    for (let b = 0; b < bg.n; b++) {
      const z = Array.from({ length: d }, (_, c) => ((mask >> c) & 1 ? x[c] : bg.data[b * d + c]));
      s += f(z)[0];
    }
    return s / bg.n;
  };

  it('against the whole background are the game\'s first and last marginal contributions, v({i}) - v(∅) and v(N) - v(N \\ {i})', async () => {
    const space = { featureNames: ['a', 'b', 'c', 'e'], outputNames: ['y'] };
    const game = createGame(model, { space, background: bg });
    game.probeRows = probeBackground(game, bg.n);
    const { probes, grand, empty } = await endpointValues(model, game, { data: x, n: 1, d }, undefined, true);
    const full = (1 << d) - 1;
    assert.ok(Math.abs(grand[0] - v(full)) < 1e-5 && Math.abs(empty[0] - v(0)) < 1e-5);
    for (let i = 0; i < d; i++) {
      assert.ok(Math.abs(probes![i] - (v(1 << i) - v(0))) < 1e-5, `first probe of ${i}`);
      assert.ok(Math.abs(probes![d + i] - (v(full) - v(full & ~(1 << i)))) < 1e-5, `last probe of ${i}`);
    }
    assert.equal(endpointEvaluations(game, 1, true), 1 + 2 * d * bg.n + bg.n + bg.n);
    // Against the mean row (the default): the marginals of the game on that one row.
    game.probeRows = probeBackground(game, 0);
    const mu = Array.from({ length: d }, (_, c) => Math.fround(Array.from({ length: bg.n }, (_, b) => bg.data[b * d + c]).reduce((a, z) => a + z, 0) / bg.n));
    const atMu = await endpointValues(model, game, { data: x, n: 1, d }, undefined, true);
    for (let i = 0; i < d; i++) {
      const z = [...mu];
      z[i] = x[i];
      assert.ok(Math.abs(atMu.probes![i] - (f(z)[0] - f(mu)[0])) < 1e-5);
    }
  });
  it('the background and the probe rows are evaluated once per model object: a later row costs its own model rows only, with the same values', async () => {
    const space = { featureNames: ['a', 'b', 'c', 'e'], outputNames: ['y'] };
    let rowsSeen = 0;
    const counting: Model = { nFeatures: d, nOutputs: 1, predict: (r) => ((rowsSeen += r.n), model.predict(r)) };
    const game = createGame(counting, { space, background: bg });
    game.probeRows = probeBackground(game, 3);
    const R = game.probeRows.rows.n;
    rowsSeen = 0;
    await endpointValues(counting, game, { data: x, n: 1, d }, undefined, true);
    assert.equal(rowsSeen, 1 + 2 * d * R + bg.n + R, 'the first row also pays for the background and the probe rows');
    const y = Float32Array.from([0.5, 1, -1, 2]);
    rowsSeen = 0;
    const later = await endpointValues(counting, game, { data: y, n: 1, d }, undefined, true);
    assert.equal(rowsSeen, 1 + 2 * d * R);
    assert.equal(endpointEvaluationsPerRow(game, true), rowsSeen);
    // v(∅) against the game computed in this test, and everything against a model object with nothing kept.
    assert.ok(Math.abs(later.empty[0] - v(0)) < 1e-5);
    const fresh: Model = { nFeatures: d, nOutputs: 1, predict: (r) => model.predict(r) };
    assert.deepEqual(later, await endpointValues(fresh, game, { data: y, n: 1, d }, undefined, true));
    // Other probe rows on the same model: computed for them, not taken from the kept ones.
    game.probeRows = probeBackground(game, 0);
    rowsSeen = 0;
    const atMean = await endpointValues(counting, game, { data: y, n: 1, d }, undefined, true);
    assert.equal(rowsSeen, 1 + 2 * d + 1);
    assert.deepEqual(atMean, await endpointValues(fresh, game, { data: y, n: 1, d }, undefined, true));
  });
});

describe('amortised SHAP: copula synthetic rows', () => {
  /** Spearman's rank correlation (average ranks for ties), written here as the oracle. */
  function spearman(a: number[], b: number[]): number {
    const ranks = (x: number[]) => {
      const idx = x.map((_, i) => i).sort((i, j) => x[i] - x[j]);
      const r = new Array<number>(x.length);
      for (let i = 0; i < idx.length; ) {
        let j = i;
        while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
        for (let t = i; t <= j; t++) r[idx[t]] = (i + j) / 2;
        i = j + 1;
      }
      return r;
    };
    const ra = ranks(a);
    const rb = ranks(b);
    const n = a.length;
    const ma = ra.reduce((s, v) => s + v, 0) / n;
    const mb = rb.reduce((s, v) => s + v, 0) / n;
    let sab = 0;
    let saa = 0;
    let sbb = 0;
    for (let i = 0; i < n; i++) {
      sab += (ra[i] - ma) * (rb[i] - mb);
      saa += (ra[i] - ma) ** 2;
      sbb += (rb[i] - mb) ** 2;
    }
    return sab / Math.sqrt(saa * sbb);
  }

  // Columns: x0; x1 = x0 + small noise (strongly dependent); x2 independent integer-valued; x3..x5 a one-hot group.
  const n = 400;
  const rng = seededRng(3);
  const d = 6;
  const real = new Float32Array(n * d);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  for (let i = 0; i < n; i++) {
    const x0 = 5 + 2 * gauss();
    real.set([x0, x0 + 0.2 * gauss(), Math.round(3 * rng()), 0, 0, 0], i * d);
    real[i * d + 3 + Math.floor(3 * rng())] = 1;
  }
  const players = [[0], [1], [2], [3, 4, 5]];
  const rows = { data: real, n, d };
  const count = 3000;
  const out = withCopulaRows(rows, count, players, streamRng(1, 0, 6));
  const col = (c: number, from: number, to: number) => Array.from({ length: to - from }, (_, i) => out.data[(from + i) * d + c]);

  it('keeps the real rows first and draws every value (and one-hot pattern) from the real rows', () => {
    assert.equal(out.n, n + count);
    assert.deepEqual(Array.from(out.data.subarray(0, n * d)), Array.from(real));
    const values = Array.from({ length: 3 }, (_, c) => new Set(col(c, 0, n)));
    for (let i = n; i < n + count; i++) {
      for (let c = 0; c < 3; c++) assert.ok(values[c].has(out.data[i * d + c]), `row ${i} column ${c}`);
      const group = Array.from(out.data.subarray(i * d + 3, i * d + 6));
      assert.equal(group.reduce((a, b) => a + b, 0), 1, `row ${i}: one-hot group ${group}`);
      assert.ok(group.every((v) => v === 0 || v === 1));
    }
    // Same generator, same rows.
    assert.deepEqual(Array.from(withCopulaRows(rows, count, players, streamRng(1, 0, 6)).data), Array.from(out.data));
  });

  it('keeps each marginal and the rank dependence between players (hybrids of two rows do not)', () => {
    // Marginals: the synthetic quartiles of x0 match the real ones within sampling error.
    const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))];
    for (const p of [0.1, 0.25, 0.5, 0.75, 0.9]) {
      assert.ok(Math.abs(q(col(0, n, n + count), p) - q(col(0, 0, n), p)) < 0.35, `quantile ${p}`);
    }
    const realRho = spearman(col(0, 0, n), col(1, 0, n));
    const synthRho = spearman(col(0, n, n + count), col(1, n, n + count));
    assert.ok(realRho > 0.95, `real ${realRho}`);
    assert.ok(Math.abs(synthRho - realRho) < 0.03, `copula ${synthRho} vs real ${realRho}`);
    assert.ok(Math.abs(spearman(col(0, n, n + count), col(2, n, n + count))) < 0.08, 'independent players stay independent');
    const hybrids = withHybrids(rows, count, players, streamRng(1, 0, 6));
    const hybridRho = spearman(
      Array.from({ length: count }, (_, i) => hybrids.data[(n + i) * d]),
      Array.from({ length: count }, (_, i) => hybrids.data[(n + i) * d + 1]),
    );
    assert.ok(hybridRho < 0.7, `hybrids ${hybridRho}`);
  });
});

describe('amortised: when a validated explainer is served', () => {
  const stats = (meanAbs: number, meanRelative: number) => ({ count: 10, meanAbs, p95Abs: 2 * meanAbs, meanRelative, p95Relative: 2 * meanRelative });
  const validation = (meanRelative: number, shapMeanAbs?: number): AmortisedValidation => ({
    reference: 'kernel-shap',
    referenceSamples: 32768,
    rows: 10,
    players: 20,
    amortised: stats(0.02, meanRelative),
    amortisedPerOutput: [stats(0.02, meanRelative)],
    ...(shapMeanAbs !== undefined ? { shapKernelExplainer: { nSamples: 2088, ...stats(shapMeanAbs, 0.03) }, ratioToShapKernelExplainer: 0.02 / shapMeanAbs } : {}),
    modelEvaluations: 1,
    computeMs: 1,
  });

  it('under the absolute threshold, whatever the comparison', () => {
    assert.equal(servable(validation(0.049)), true);
    assert.equal(servable(validation(0.049, 0.001)), true);
    assert.equal(servable(validation(0.051)), false);
    assert.equal(servable(validation(0.08), { threshold: 0.1 }), true);
  });

  it("above it, only within maxRatio (default 3) of shap's KernelExplainer scheme on the same rows", () => {
    assert.equal(servable(validation(0.1, 0.02 / 2.9)), true);
    assert.equal(servable(validation(0.1, 0.02 / 3.1)), false);
    assert.equal(servable(validation(0.1, 0.02 / 2.9), { maxRatio: 0 }), false, '0 turns the ratio off');
    assert.equal(servable(validation(0.1, 0.02 / 3.1), { maxRatio: 4 }), true);
    assert.equal(servable(validation(0.1)), false, 'no comparison measured: the threshold alone decides');
    assert.equal(servable(undefined), false);
  });
});

describe('amortised SHAP: probes formed in the fused kernel', () => {
  it('a Dense model that forms masked rows gives the probes the written rows give (credit: one-hot groups, logit link)', async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    const credit = await loadModelFolder('credit', path.resolve('samples/models/credit'));
    const game = createGame(credit.model, { space: credit.space, background: credit.background!, link: 'logit' });
    game.probeRows = probeBackground(game, 40);
    const rows = { data: credit.reference!.rows.data.slice(0, 5 * credit.reference!.rows.d), n: 5, d: credit.reference!.rows.d };
    // A first predict lets the kernel check itself against tfjs; from then on it forms masked rows.
    await credit.model.predict(rows);
    assert.notEqual(await credit.model.maskedRows!(game.probeRows.rows), null, 'the fused kernel forms masked rows for this model');
    const inKernel = await endpointValues(credit.model, game, rows, undefined, true);
    // The same model without maskedRows: every probe row written out and predicted.
    const plain: Model = { nFeatures: credit.model.nFeatures, nOutputs: credit.model.nOutputs, predict: (r) => credit.model.predict(r) };
    const written = await endpointValues(plain, game, rows, undefined, true);
    assert.deepEqual(inKernel.grand, written.grand);
    assert.deepEqual(inKernel.empty, written.empty);
    const M = game.players.length;
    assert.equal(inKernel.probes!.length, rows.n * 2 * M);
    let worst = 0;
    let scale = 0;
    for (let j = 0; j < written.probes!.length; j++) {
      worst = Math.max(worst, Math.abs(inKernel.probes![j] - written.probes![j]));
      scale = Math.max(scale, Math.abs(written.probes![j]));
    }
    assert.ok(scale > 0.01, 'the probes are not all zero');
    // The first layer summed from the changed columns: equal up to float32 rounding.
    assert.ok(worst < 1e-4 * Math.max(1, scale), `largest difference ${worst} (probes up to ${scale})`);
  });
});
