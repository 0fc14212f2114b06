/**
 * Recourse burden by group (explainers/counterfactuals/recourse.ts). Oracles: the closed-form cost of
 * the cheapest counterfactual of a logistic model, row by row; the planted bias of the credit sample
 * (sex = 1, female, -0.9 on the approval logit); the median of an explicitly expanded multiset.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fc from 'fast-check';
import { recourseBurden, weightedMedian } from '../monitoring/fairness/recourse.js';
import { ExplainerInputError, type FeatureSpace, type Rows } from '../explainers/types.js';
import { counterfactualOptionsFromMetadata } from '../service/counterfactualConstraints.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { TfjsModel } from '../models/tfjsModel.js';
import { bernoulli, gaussian, mulberry32 } from '../samples/lib/rng.js';

const SAMPLES = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'samples', 'models');

function rowsOf(matrix: number[][]): Rows {
  const d = matrix[0].length;
  const data = new Float32Array(matrix.length * d);
  matrix.forEach((r, i) => data.set(r, i * d));
  return { data, n: matrix.length, d };
}

function mad(values: number[]): number {
  const med = (a: number[]) => {
    const s = [...a].sort((x, y) => x - y);
    const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  };
  const m = med(values);
  return med(values.map((v) => Math.abs(v - m)));
}

describe('recourse burden by group', function () {
  this.timeout(300_000);
  before(async () => {
    if (tf.getBackend() !== 'wasm') await tf.setBackend('wasm');
    await tf.ready();
  });

  it('matches the closed-form cheapest cost of every rejected row of a logistic model, per group', async () => {
    // logit = 0.9 a + 0.2 b + 0.3 c - 1.2 g + 0.3; g is the group (frozen by recourseBurden itself).
    // The cheapest way to approval moves the feature with the largest |w_j| MAD_j by -logit / w_j.
    const w = [0.9, 0.2, 0.3, -1.2];
    const bias = 0.3;
    const rng = mulberry32(17);
    const matrix = Array.from({ length: 800 }, () => [gaussian(rng), 2 * gaussian(rng), gaussian(rng), bernoulli(rng, 0.5)]);
    const rows = rowsOf(matrix);
    const net = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 1, activation: 'sigmoid' })] });
    net.layers[0].setWeights([tf.tensor2d(w, [4, 1]), tf.tensor1d([bias])]);
    const model = await TfjsModel.create(net);
    try {
      const space: FeatureSpace = { featureNames: ['a', 'b', 'c', 'g'], outputNames: ['p'] };
      const index = Int32Array.from(matrix, (r) => r[3]);
      const res = await recourseBurden(model, {
        space,
        rows,
        groups: { feature: 'g', labels: ['g=0', 'g=1'], index },
        minPlausibility: 0,
        seed: 2,
        bootstrap: { n: 200 },
      });

      const col = (j: number) => Array.from({ length: rows.n }, (_, i) => rows.data[i * 4 + j]);
      const mads = [0, 1, 2].map((j) => mad(col(j)));
      const ratios = [0, 1, 2].map((j) => Math.abs(w[j]) * mads[j]);
      const best = ratios.indexOf(Math.max(...ratios));
      const lo = Math.min(...col(best));
      const hi = Math.max(...col(best));
      const logit = (i: number) => [0, 1, 2, 3].reduce((t, j) => t + w[j] * rows.data[i * 4 + j], bias);
      let checked = 0;
      const sums = [0, 0];
      const counts = [0, 0];
      for (const c of res.costs) {
        const z = logit(c.row);
        assert.ok(z < 0, `row ${c.row} is not rejected (logit ${z})`);
        const crossing = rows.data[c.row * 4 + best] - z / w[best];
        if (crossing < lo || crossing > hi) continue; // beyond the data's range the closed form does not apply
        const expected = -z / ratios[best];
        assert.ok(
          c.cost !== null && Math.abs(c.cost - expected) <= 1e-4 * expected + 1e-6,
          `row ${c.row}: cost ${c.cost}, closed form ${expected}`,
        );
        sums[c.group] += expected;
        counts[c.group]++;
        checked++;
      }
      assert.ok(checked >= 0.9 * res.costs.length, `${checked} of ${res.costs.length} rows had an in-range closed form`);
      // The rejected rows: every row with logit < 0, and only those.
      assert.equal(res.costs.length, matrix.filter((_, i) => logit(i) < 0).length);
      // g = 1 starts 1.2 lower on the logit: its rejected rows are farther from approval.
      assert.ok(res.groups[1].meanCost.value! > res.groups[0].meanCost.value!);
      assert.ok(res.meanCostDifference.value! > 0 && res.meanCostRatio.value! > 1);
      for (const g of res.groups) {
        assert.ok(g.meanCost.lo! <= g.meanCost.value! && g.meanCost.value! <= g.meanCost.hi!);
        assert.equal(g.withoutRecourse, 0);
      }
      assert.equal(res.groups[0].unfavourable + res.groups[1].unfavourable, res.costs.length);
    } finally {
      model.dispose();
    }
  });

  describe('on the credit sample', () => {
    let credit: LoadedModel;
    before(async () => {
      credit = await loadModelFolder('credit', join(SAMPLES, 'credit'));
    });
    after(() => credit.model.dispose());

    const run = (constraints = counterfactualOptionsFromMetadata(credit.metadata).constraints) => {
      const rows = credit.reference!.rows;
      const sex = credit.space.featureNames.indexOf('sex');
      const index = Int32Array.from({ length: rows.n }, (_, i) => rows.data[i * rows.d + sex]);
      return recourseBurden(credit.model, {
        space: credit.space,
        rows,
        ...counterfactualOptionsFromMetadata(credit.metadata),
        constraints,
        groups: { feature: 'sex', labels: ['male', 'female'], index },
        seed: 1,
        bootstrap: { n: 500, seed: 3 },
      });
    };

    it('shows a higher burden for women, the group the planted bias hurts', async () => {
      const r = await run();
      const [male, female] = r.groups;
      assert.equal(male.rows + female.rows, 1000);
      assert.ok(female.unfavourable > male.unfavourable, 'the model rejects more women (selection rate 0.443 vs 0.588)');
      assert.ok(female.meanCost.value! > male.meanCost.value!, `mean cost women ${female.meanCost.value}, men ${male.meanCost.value}`);
      assert.ok(
        female.medianCost.value! > male.medianCost.value!,
        `median cost women ${female.medianCost.value}, men ${male.medianCost.value}`,
      );
      assert.equal(r.incomplete.deadline + r.incomplete.budget, 0);
      assert.ok(male.withRecourse >= 0.95 * male.unfavourable && female.withRecourse >= 0.95 * female.unfavourable);
      // An independent bootstrap of the women-minus-men difference of mean costs: positive in >= 97.5% of replicates.
      const rng = mulberry32(99);
      const costs = r.costs.filter((c) => c.cost !== null);
      let positive = 0;
      const B = 2000;
      for (let b = 0; b < B; b++) {
        const s = [0, 0];
        const n = [0, 0];
        for (let q = 0; q < costs.length; q++) {
          const c = costs[Math.floor(rng() * costs.length)];
          s[c.group] += c.cost!;
          n[c.group]++;
        }
        if (s[1] / n[1] > s[0] / n[0]) positive++;
      }
      assert.ok(positive >= 0.975 * B, `women's mean cost above men's in ${positive} of ${B} replicates`);
    });

    it('freezes the sensitive feature even when the constraints leave it free', async () => {
      const declared = counterfactualOptionsFromMetadata(credit.metadata).constraints;
      const { sex: _sex, ...free } = declared;
      void _sex;
      const a = await run(declared);
      const b = await run(free);
      assert.deepEqual(b.costs, a.costs);
    });
  });

  it('takes the median of a multiset given by multiplicities', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 30 }),
        (items) => {
          const sorted = items.map((_, i) => i).sort((a, b) => items[a][0] - items[b][0]);
          const expanded = items.flatMap(([v, c]) => Array(c).fill(v)).sort((a, b) => a - b);
          const total = expanded.length;
          const got = weightedMedian(
            sorted,
            (p) => items[p][0],
            (p) => items[p][1],
            total,
          );
          const want = total === 0 ? null : total % 2 ? expanded[(total - 1) / 2] : (expanded[total / 2 - 1] + expanded[total / 2]) / 2;
          assert.equal(got, want);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });

  it('refuses groups that do not match the rows', async () => {
    const model = await TfjsModel.create(
      tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1, activation: 'sigmoid' })] }),
    );
    try {
      const rows = rowsOf([
        [0, 1],
        [1, 0],
        [2, 2],
      ]);
      const space: FeatureSpace = { featureNames: ['u', 'v'], outputNames: ['p'] };
      await assert.rejects(
        recourseBurden(model, { space, rows, groups: { feature: 'u', labels: ['a', 'b'], index: [0, 1] } }),
        (e: unknown) => e instanceof ExplainerInputError && e.code === 'BAD_PARAMETER' && /2 entries for 3 rows/.test(e.message),
      );
      await assert.rejects(
        recourseBurden(model, { space, rows, groups: { feature: 'u', labels: ['a', 'b'], index: [0, 1, 2] } }),
        (e: unknown) => e instanceof ExplainerInputError && e.code === 'BAD_PARAMETER' && /group 2/.test(e.message),
      );
    } finally {
      model.dispose();
    }
  });
});
