/**
 * Coalition designs on their own: shap's KernelExplainer scheme against shap's arithmetic written out
 * here (its size enumeration for M = 20 and 2088 samples), and the property the deadline relies on:
 * any prefix of a stratified design is a design (every size present from the first units, weights from
 * the prefix's own counts, and an unbiased estimate: the mean over seeds of a cut design's estimate is
 * the exact Shapley value).
 */
import assert from 'node:assert/strict';
import { binomial, createSampler, kernelMass } from '../explainers/coalitions.js';
import { DesignIndex, designSnapshot, StreamStats, unitValue } from '../explainers/kernelShapRegression.js';
import { seededRng, normal } from '../explainers/random.js';

const sizeOf = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);

describe('coalition designs', () => {
  it("shap's scheme for M = 20, 2088 samples: sizes 1, 2 (and 19, 18) enumerated, the rest drawn with shap's weights", () => {
    const M = 20;
    const budget = 2 * M + 2048;
    // shap's arithmetic: size weights (M-1)/(s(M-s)), doubled for paired sizes, normalised; a size is
    // enumerated while budget_left * its share / its subsets >= 1, renormalising the rest each time.
    const numSizes = Math.ceil((M - 1) / 2);
    const numPaired = Math.floor((M - 1) / 2);
    let w = Array.from({ length: numSizes }, (_, i) => ((M - 1) / ((i + 1) * (M - i - 1))) * (i < numPaired ? 2 : 1));
    const total = w.reduce((a, b) => a + b, 0);
    const weightVector = w.map((v) => v / total);
    w = weightVector.slice();
    let left = budget;
    let full = 0;
    for (let s = 1; s <= numSizes; s++) {
      const n = binomial(M, s) * (s <= numPaired ? 2 : 1);
      if ((left * w[s - 1]) / n < 1 - 1e-8) break;
      full++;
      left -= n;
      const r = w[s - 1];
      if (r < 1) w = w.map((v) => v / (1 - r));
    }
    assert.equal(full, 2);
    const sampler = createSampler('shap', M, budget, seededRng(1));
    sampler.grow(budget);
    const { masks, strata, unitStratum, unitFirst, unitSecond } = sampler.design;
    assert.equal(masks.length, budget);
    const enumerated = 2 * (binomial(M, 1) + binomial(M, 2));
    const sizes = masks.slice(0, enumerated).map(sizeOf);
    assert.deepEqual([...new Set(sizes)].sort((a, b) => a - b), [1, 2, 18, 19]);
    // Enumerated coalitions carry weight_vector[s] / C(M, s) / 2 in shap's units; ours are kernelMass / C(M, s):
    // the same up to one factor, which the least squares does not see. Draws share what is left equally.
    const scale = kernelMass(M, 1) / binomial(M, 1) / (weightVector[0] / binomial(M, 1) / 2);
    assert.ok(Math.abs(strata[1].coalitionWeight - (weightVector[1] / binomial(M, 2) / 2) * scale) < 1e-12);
    const sampled = strata.length - 1;
    let draws = 0;
    for (let u = 0; u < unitStratum.length; u++) if (unitStratum[u] === sampled) draws += unitSecond[u] >= 0 ? 2 : 1;
    const weightLeft = weightVector.slice(full).reduce((a, b) => a + b, 0) * scale;
    assert.ok(Math.abs(strata[sampled].coalitionWeight * draws - weightLeft) < 1e-9);
    // Drawn sizes are 3..10, paired with their complements (10 = M/2 is drawn alone, as shap does).
    for (let u = 0; u < unitStratum.length; u++) {
      if (unitStratum[u] !== sampled) continue;
      const s = sizeOf(masks[unitFirst[u]]);
      assert.ok(s >= 3 && s <= 10, `drawn size ${s}`);
      if (s === 10) assert.equal(unitSecond[u], -1);
    }
  });

  it('stratified designs: every prefix holds every size from its first units, in proportion, with its own weights', () => {
    for (const name of ['balanced', 'leverage'] as const) {
      const M = 16;
      const sampler = createSampler(name, M, 4000, seededRng(3));
      const H = sampler.design.strata.length;
      sampler.grow(64);
      const firstGrow = sampler.design.unitStratum.length;
      sampler.grow(1000);
      const { unitStratum } = sampler.design;
      // A grow's first units are one of each size it adds to.
      assert.equal(new Set(unitStratum.slice(0, H)).size, H, `${name}: first grow`);
      const added = new Set(unitStratum.slice(firstGrow));
      assert.ok(added.size >= H - 1, `${name}: sizes added by the second grow`);
      assert.equal(new Set(unitStratum.slice(firstGrow, firstGrow + added.size)).size, added.size, `${name}: second grow`);
      for (const units of [H, 50, firstGrow + 37, unitStratum.length]) {
        const strata = sampler.strataAt(units);
        const counts = new Array(H).fill(0);
        for (let u = 0; u < units; u++) counts[unitStratum[u]]++;
        strata.forEach((st, h) => {
          assert.equal(st.drawn, counts[h]);
          // Each drawn unit stands for population / drawn of its size's kernel mass.
          assert.ok(Math.abs(st.coalitionWeight * st.drawn * binomial(M, st.size) - kernelMass(M, st.size) * st.population) < 1e-9);
        });
      }
    }
  });

  it('an estimate from a cut design is unbiased: its mean over seeds is the exact Shapley value', () => {
    // A game with interactions of order 3 (which paired sampling does not remove): v(S) = Σ a_i + Σ c_ijk.
    const M = 12;
    const rng = seededRng(9);
    const a = Array.from({ length: M }, () => normal(rng));
    const triples = Array.from({ length: 10 }, () => [0, 1, 2].map(() => Math.floor(rng() * M)).concat(normal(rng)));
    const v = (z: Uint8Array) => a.reduce((s, ai, i) => s + ai * z[i], 0) + triples.reduce((s, [i, j, k, c]) => s + c * z[i] * z[j] * z[k], 0);
    const full = new Uint8Array(M).fill(1);
    const delta = v(full);
    // Exact Shapley values: a_i plus each triple's coefficient shared among its distinct members.
    const exact = a.slice();
    for (const [i, j, k, c] of triples) {
      const members = [...new Set([i, j, k])];
      for (const m of members) exact[m] += c / members.length;
    }
    const runs = 300;
    const mean = new Array(M).fill(0);
    for (let seed = 0; seed < runs; seed++) {
      const sampler = createSampler('balanced', M, 4094, seededRng(100 + seed));
      sampler.grow(60);
      sampler.grow(1600);
      // Cut early in the second grow, as a deadline would: its sizes are not in the grow's proportions.
      const units = 30 + 60;
      const index = new DesignIndex(sampler.design);
      const snap = designSnapshot(index, units, sampler.strataAt(units));
      const stats = new StreamStats(index, sampler.design.strata.length, 1, Infinity);
      const du = new Float64Array(1);
      for (let u = 0; u < units; u++) {
        const f = index.first[u];
        const s = index.second[u];
        du[0] = unitValue(index, u, v(sampler.design.masks[f]), s >= 0 ? v(sampler.design.masks[s]) : 0, delta);
        stats.add(u, du);
      }
      const phi = new Float64Array(M);
      stats.solve(snap, [delta], phi, new Float64Array(M));
      for (let j = 0; j < M; j++) mean[j] += phi[j] / runs;
    }
    // The spread of one estimate is about 0.1 here; the mean of 300 is within a few hundredths.
    mean.forEach((m, j) => assert.ok(Math.abs(m - exact[j]) < 0.03, `player ${j}: mean ${m} vs exact ${exact[j]}`));
  });
});
