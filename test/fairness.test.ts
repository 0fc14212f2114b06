/**
 * Fairness: Fairlearn's definitions on small hand-computed examples, the statistics helpers against
 * closed forms, the credit sample's planted bias and proxy found through the endpoint, an unbiased
 * synthetic model that raises no flags, and the errors a caller can cause.
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import express from 'express';
import { JSDOM } from 'jsdom';
import request from 'supertest';
import { correlationRatio, cramersV, levelsOfValues, normalizedMutualInformation } from '../stats/association.js';
import { bootstrap } from '../stats/bootstrap.js';
import { quantile } from '../stats/quantile.js';
import {
  demographicParityDifference,
  demographicParityRatio,
  equalizedOddsDifference,
  equalizedOddsRatio,
  fairnessReport,
  metricFrame,
} from '../monitoring/fairness/index.js';
import { normal, seededRng } from '../stats/random.js';
import { groupBy, intersect, resolveSensitive } from '../monitoring/fairness/groups.js';
import { ExplainerInputError, type Model, type Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { parseMetadata } from '../models/metadata.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';
import type { Registry } from '../models/served.js';
import { served } from './helpers/jsModels.js';

const close = (a: number | null | undefined, b: number, tol = 1e-12) => {
  assert.ok(a !== null && a !== undefined && Math.abs(a - b) <= tol, `${a} != ${b}`);
};

function parsesAsSvg(text: string): void {
  const doc = new new JSDOM('').window.DOMParser().parseFromString(text, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0, 'SVG parses as XML');
}

function appWith(registry: Registry) {
  return createApp({ registry, config: testConfig({ BODY_LIMIT: '20mb' }), backend: 'test' });
}

describe('fairness: Fairlearn definitions on hand-computed examples', () => {
  // Group a (4 rows): y_true 1 1 0 0, y_pred 1 0 1 0 -> selection 2/4, TPR 1/2, FPR 1/2, accuracy 2/4, precision 1/2.
  // Group b (6 rows): y_true 1 1 1 0 0 0, y_pred 1 1 0 0 0 0 -> selection 2/6, TPR 2/3, FPR 0/3, accuracy 5/6, precision 2/2.
  // Overall (10 rows): selection 4/10, TPR 3/5, FPR 1/5.
  const yTrue = [1, 1, 0, 0, 1, 1, 1, 0, 0, 0];
  const yPred = [1, 0, 1, 0, 1, 1, 0, 0, 0, 0];
  const s = ['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b', 'b', 'b'];

  it('MetricFrame by group and overall', () => {
    const mf = metricFrame(yTrue, yPred, s);
    close(mf.byGroup.a.selectionRate!, 0.5);
    close(mf.byGroup.b.selectionRate!, 1 / 3);
    close(mf.byGroup.a.truePositiveRate!, 0.5);
    close(mf.byGroup.b.truePositiveRate!, 2 / 3);
    close(mf.byGroup.a.falsePositiveRate!, 0.5);
    close(mf.byGroup.b.falsePositiveRate!, 0);
    close(mf.byGroup.a.falseNegativeRate!, 0.5);
    close(mf.byGroup.b.falseNegativeRate!, 1 / 3);
    close(mf.byGroup.a.accuracy!, 0.5);
    close(mf.byGroup.b.accuracy!, 5 / 6);
    close(mf.byGroup.a.precision!, 0.5);
    close(mf.byGroup.b.precision!, 1);
    close(mf.overall.selectionRate!, 0.4);
    close(mf.overall.truePositiveRate!, 0.6);
    close(mf.overall.falsePositiveRate!, 0.2);
  });

  it('demographic_parity_difference / _ratio, between_groups and to_overall', () => {
    // between: 1/2 - 1/3 = 1/6; ratio (1/3)/(1/2) = 2/3.
    close(demographicParityDifference(yTrue, yPred, s), 1 / 6);
    close(demographicParityRatio(yTrue, yPred, s), 2 / 3);
    // to_overall: max(|0.5 - 0.4|, |1/3 - 0.4|) = 0.1; ratio min(0.5/0.4 = 1.25 -> 0.8, (1/3)/0.4 = 0.8333) = 0.8.
    close(demographicParityDifference(yTrue, yPred, s, 'to_overall'), 0.1, 1e-12);
    close(demographicParityRatio(yTrue, yPred, s, 'to_overall'), 0.8, 1e-12);
  });

  it('equalized_odds_difference / _ratio: the worse of TPR and FPR', () => {
    // TPR diff 2/3 - 1/2 = 1/6, FPR diff 1/2 - 0 = 1/2 -> 1/2. Ratios: TPR 0.5/(2/3) = 0.75, FPR 0/0.5 = 0 -> 0.
    close(equalizedOddsDifference(yTrue, yPred, s), 0.5);
    close(equalizedOddsRatio(yTrue, yPred, s), 0);
    // to_overall: TPR max(|0.5-0.6|, |2/3-0.6|) = 0.1, FPR max(|0.5-0.2|, |0-0.2|) = 0.3 -> 0.3.
    // Ratios: TPR min(0.5/0.6, 0.6/(2/3)) = 0.8333, FPR min(0.2/0.5 = 0.4, 0/0.2 = 0) = 0 -> 0.
    close(equalizedOddsDifference(yTrue, yPred, s, 'to_overall'), 0.3, 1e-12);
    close(equalizedOddsRatio(yTrue, yPred, s, 'to_overall'), 0);
    const mf = metricFrame(yTrue, yPred, s);
    close(mf.ratio('truePositiveRate', 'to_overall'), 0.5 / 0.6);
  });

  it('a group without positives has an undefined TPR (null), left out of the disparities', () => {
    // Group c: y_true 0 0, y_pred 1 0 -> TPR 0/0 (Fairlearn would report 0), FPR 1/2.
    const mf = metricFrame([...yTrue, 0, 0], [...yPred, 1, 0], [...s, 'c', 'c']);
    assert.equal(mf.byGroup.c.truePositiveRate, null);
    close(mf.byGroup.c.falsePositiveRate!, 0.5);
    close(mf.difference('truePositiveRate'), 1 / 6); // still a vs b only
  });
});

describe('fairness: the report on a small hand-computed data set', () => {
  // Columns: s (0/1), t (0/1). Scores decide at > 0.5. Six rows:
  //   s t  score  label  decision
  //   0 0  0.9    1      1
  //   0 0  0.2    0      0
  //   0 1  0.7    0      1
  //   1 0  0.4    1      0
  //   1 0  0.6    1      1
  //   1 0  0.1    0      0
  // s=0: selection 2/3, TPR 1/1, FPR 1/2; s=1: selection 1/3, TPR 1/2, FPR 0/1.
  // Intersection s x t: (0,0) 2 rows, (0,1) 1 row, (1,0) 3 rows, (1,1) no rows.
  const rows: Rows = { data: Float32Array.from([0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0]), n: 6, d: 2 };
  const space = { featureNames: ['s', 't'], outputNames: ['p'] };
  const scores = Float32Array.from([0.9, 0.2, 0.7, 0.4, 0.6, 0.1]);
  const labels = [1, 0, 0, 1, 1, 0];

  function build(bootstrapN = 0) {
    const [s, t] = resolveSensitive(['s', 't'], space, { types: ['binary', 'binary'] });
    const gs = groupBy(rows, s, space.featureNames);
    const gt = groupBy(rows, t, space.featureNames);
    return fairnessReport(
      { predictions: scores, nOutputs: 1, n: 6, labels, groupings: [gs, gt, intersect(gs, gt)] },
      { task: 'binary-classification', bootstrap: { n: bootstrapN, seed: 1 } },
    );
  }

  it('per-group metrics, disparities, disparate impact and the four-fifths flag', () => {
    const r = build();
    const o = r.outcomes[0];
    const bs = o.breakdowns[0];
    assert.deepEqual(bs.features, ['s']);
    assert.deepEqual(
      bs.groups.map((g) => [g.label, g.count]),
      [
        ['s=0', 3],
        ['s=1', 3],
      ],
    );
    close(bs.groups[0].metrics.selectionRate!.value, 2 / 3);
    close(bs.groups[1].metrics.selectionRate!.value, 1 / 3);
    close(bs.groups[0].metrics.truePositiveRate!.value, 1);
    close(bs.groups[1].metrics.truePositiveRate!.value, 0.5);
    close(bs.groups[0].metrics.falsePositiveRate!.value, 0.5);
    close(bs.groups[1].metrics.falsePositiveRate!.value, 0);
    close(bs.criteria!.demographicParity.difference.value, 1 / 3);
    close(bs.criteria!.demographicParity.ratio.value, 0.5);
    // Equalized odds: max(TPR diff 1/2, FPR diff 1/2) = 1/2; min(TPR ratio 1/2, FPR ratio 0) = 0.
    close(bs.criteria!.equalizedOdds.difference.value, 0.5);
    close(bs.criteria!.equalizedOdds.ratio.value, 0);
    close(bs.criteria!.equalOpportunity.difference.value, 0.5);
    assert.equal(bs.criteria!.disparateImpact.passes, false);
    assert.equal(bs.criteria!.disparateImpact.lowest, 's=1');
    assert.equal(bs.criteria!.disparateImpact.highest, 's=0');
    assert.deepEqual(
      bs.disparities.selectionRate!.gap && [bs.disparities.selectionRate!.gap.higher, bs.disparities.selectionRate!.gap.lower],
      ['s=0', 's=1'],
    );
    assert.ok(o.flags.some((f) => f.kind === 'four-fifths-rule' && f.features[0] === 's'));
    // Without a bootstrap no interval, so no gap flags.
    assert.ok(!o.flags.some((f) => f.kind.endsWith('-gap')));
    assert.equal(bs.groups[0].metrics.selectionRate!.lo, undefined);
  });

  it('intersections keep empty cells with count 0 and null metrics, left out of disparities', () => {
    const o = build().outcomes[0];
    const st = o.breakdowns[2];
    assert.deepEqual(st.features, ['s', 't']);
    assert.deepEqual(
      st.groups.map((g) => [g.label, g.count]),
      [
        ['s=0 & t=0', 2],
        ['s=0 & t=1', 1],
        ['s=1 & t=0', 3],
        ['s=1 & t=1', 0],
      ],
    );
    assert.deepEqual(st.groups[0].key, { s: 0, t: 0 });
    assert.equal(st.groups[3].metrics.selectionRate!.value, null);
    // Selection rates 1/2, 1, 1/3 -> difference 1 - 1/3, ratio 1/3.
    close(st.criteria!.demographicParity.difference.value, 2 / 3);
    close(st.criteria!.demographicParity.ratio.value, 1 / 3);
  });

  it('bootstrap: seeded, intervals bracket the estimate, same seed same bytes', () => {
    const a = build(50);
    const b = build(50);
    assert.deepEqual(a, b);
    const e = a.outcomes[0].breakdowns[0].groups[0].metrics.selectionRate!;
    assert.ok(e.lo! <= e.value! && e.value! <= e.hi!);
  });
});

describe('fairness: statistics helpers against closed forms', () => {
  it('quantile interpolates linearly, as numpy.quantile', () => {
    // [1, 2, 3, 4] at 0.25: position 3 x 0.25 = 0.75 -> 1 + 0.75 (2 - 1) = 1.75.
    close(quantile([4, 1, 3, 2], 0.25), 1.75);
    close(quantile([1, null, 3], 0.5), 2);
    assert.equal(quantile([null], 0.5), null);
  });

  it('bootstrap of a mean: the point estimate and an interval around it', () => {
    const x = Array.from({ length: 200 }, (_, i) => i % 2);
    const mean = (w: Int32Array | null) => {
      let s = 0;
      let n = 0;
      x.forEach((v, i) => {
        const c = w ? w[i] : 1;
        s += c * v;
        n += c;
      });
      return [s / n];
    };
    const r = bootstrap(200, mean, { n: 400, seed: 3, confidence: 0.95 });
    close(r.point[0], 0.5);
    // sd of the mean = sqrt(0.25 / 200) = 0.0354: the 95% interval is about 0.5 +- 0.069.
    assert.ok(Math.abs(r.intervals[0].lo! - 0.431) < 0.02 && Math.abs(r.intervals[0].hi! - 0.569) < 0.02, JSON.stringify(r.intervals));
  });

  it("Cramér's V, correlation ratio and normalised mutual information", () => {
    // 2x2 table [[30, 10], [10, 30]]: phi = (30*30 - 10*10) / sqrt(40^4) = 800 / 1600 = 0.5.
    const a: number[] = [];
    const b: number[] = [];
    const add = (x: number, y: number, k: number) => {
      for (let i = 0; i < k; i++) {
        a.push(x);
        b.push(y);
      }
    };
    add(0, 0, 30);
    add(0, 1, 10);
    add(1, 0, 10);
    add(1, 1, 30);
    close(cramersV(levelsOfValues(a), levelsOfValues(b)), 0.5, 1e-12);
    // Groups A = {1, 2, 3}, B = {4, 5, 6}: SS_between = 2 x 3 x 1.5^2 = 13.5, SS_total = 17.5.
    close(correlationRatio(levelsOfValues([0, 0, 0, 1, 1, 1]), [1, 2, 3, 4, 5, 6]), Math.sqrt(13.5 / 17.5), 1e-12);
    // Identical balanced binary variables: MI = H = ln 2 -> 1; independent: 0.
    close(normalizedMutualInformation(levelsOfValues([0, 0, 1, 1]), levelsOfValues([1, 1, 0, 0])), 1, 1e-12);
    close(normalizedMutualInformation(levelsOfValues([0, 0, 1, 1]), levelsOfValues([0, 1, 0, 1])), 0, 1e-12);
  });
});

describe('fairness: inputs a caller can get wrong', () => {
  const space = { featureNames: ['x', 'sex', 'age'], outputNames: ['p'] };
  const rows: Rows = { data: Float32Array.from([0, 0, 30, 1, 0, 40, 2, 0, 50]), n: 3, d: 3 };

  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ExplainerInputError, String(e));
      return e.code;
    }
    assert.fail('did not throw');
  };

  it('unknown sensitive feature, none at all, empty group, a continuous one, labels of the wrong length', () => {
    assert.equal(
      code(() => resolveSensitive(['gender'], space)),
      'UNKNOWN_FEATURE',
    );
    assert.equal(
      code(() => resolveSensitive([], space)),
      'NO_SENSITIVE_FEATURES',
    );
    const [sex] = resolveSensitive(['sex'], space, { types: ['numeric', 'binary', 'integer'] });
    assert.equal(
      code(() => groupBy(rows, sex, space.featureNames)),
      'EMPTY_GROUP',
    ); // nobody with sex = 1
    const ages: Rows = { data: Float32Array.from({ length: 75 }, (_, i) => (i % 3 === 2 ? 20 + i : i % 2)), n: 25, d: 3 };
    const [age] = resolveSensitive(['age'], space);
    assert.equal(
      code(() => groupBy(ages, age, space.featureNames)),
      'BAD_SENSITIVE_FEATURE',
    );
    const ok: Rows = { data: Float32Array.from([0, 0, 30, 1, 1, 40]), n: 2, d: 3 };
    const g = groupBy(ok, sex, space.featureNames);
    assert.equal(
      code(() =>
        fairnessReport(
          { predictions: Float32Array.of(0.2, 0.8), nOutputs: 1, n: 2, labels: [1], groupings: [g] },
          { task: 'binary-classification' },
        ),
      ),
      'BAD_LABELS',
    );
  });
});

describe('fairness endpoint', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let app: express.Express;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(path.resolve('samples/models'));
    app = appWith(repo);
  });

  it('credit: finds the planted bias against sex = 1, flags it, and names part_time as a proxy of sex', async () => {
    const res = await request(app).post('/v1/models/credit/fairness').send({});
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body;
    assert.equal(body.dataset, 'reference');
    assert.equal(body.rows, 1000);
    assert.deepEqual(body.sensitiveFeatures, ['sex']);
    const o = body.outcomes[0];
    assert.equal(o.positiveClass, 1);
    assert.equal(o.positiveClassName, 'approved');
    const sex = o.breakdowns[0];
    const [men, women] = sex.groups;
    // Groups are named by metadata's category labels (sex 0 = male, 1 = female).
    assert.deepEqual([men.label, women.label], ['sex=male', 'sex=female']);
    assert.deepEqual([men.key, women.key], [{ sex: 0 }, { sex: 1 }]);
    // metadata.notes.fairness_facts: model selection rate women 0.4431, men 0.5878.
    close(women.metrics.selectionRate.value, 0.4431, 5e-5);
    close(men.metrics.selectionRate.value, 0.5878, 5e-5);
    close(women.metrics.meanScore.value, 0.4599, 5e-5);
    const di = sex.criteria.disparateImpact;
    assert.equal(di.passes, false);
    assert.ok(di.ratio.value < 0.8);
    assert.equal(di.lowest, 'sex=female');
    const gap = sex.disparities.selectionRate.gap;
    assert.equal(gap.higher, 'sex=male');
    assert.ok(gap.difference.lo > 0, `selection-rate gap interval ${gap.difference.lo}..${gap.difference.hi} should exclude 0`);
    const kinds = body.flags.map((f: { kind: string }) => f.kind);
    assert.ok(kinds.includes('four-fifths-rule'));
    assert.ok(kinds.includes('selection-rate-gap'));
    // Attributions: sex is used directly, part_time is a proxy; weekday and the rest are not.
    const a = o.attributions;
    assert.equal(a.rows, 200);
    assert.ok(a.sensitive[0].used && a.sensitive[0].share > 0.04, JSON.stringify(a.sensitive));
    assert.deepEqual(
      a.proxies.map((p: { feature: string; sensitiveFeature: string }) => [p.feature, p.sensitiveFeature]),
      [['part_time', 'sex']],
    );
    const pt = a.proxies[0];
    assert.equal(pt.measure, 'cramers-v');
    close(pt.association, 0.7047, 0.03); // metadata: correlation with sex 0.7047 (|phi| = V for 2x2)
    assert.ok(pt.meanAttributionByGroup['sex=female'] < 0 && pt.meanAttributionByGroup['sex=male'] > 0, JSON.stringify(pt));
    assert.ok(kinds.includes('uses-sensitive-feature') && kinds.includes('proxy'));
    // One-hot groups are one player.
    assert.ok(a.overall.some((f: { feature: string; features?: string[] }) => f.feature === 'housing' && f.features?.length === 3));
  });

  it('an unbiased model (ignores sex, labels independent of sex) raises no flags; its intervals cover 0', async () => {
    // x1, x2 ~ N(0, 1); sex ~ Bernoulli(0.5) independent of them; x3 = sex + N(0, 0.5²) is strongly
    // associated with sex but unused by the model, so it is no proxy. Model and labels: sigmoid(1.2 x1 - 0.8 x2).
    const rng = seededRng(2024);
    const n = 1000;
    const d = 4;
    const f = (x1: number, x2: number) => 1 / (1 + Math.exp(-(1.2 * x1 - 0.8 * x2)));
    const make = (m: number) => {
      const data = new Float32Array(m * d);
      const labels = new Float32Array(m);
      for (let i = 0; i < m; i++) {
        const sex = rng() < 0.5 ? 1 : 0;
        const x1 = normal(rng);
        const x2 = normal(rng);
        data.set([x1, x2, sex, sex + 0.5 * normal(rng)], i * d);
        labels[i] = rng() < f(x1, x2) ? 1 : 0;
      }
      return { rows: { data, n: m, d }, labels };
    };
    const ref = make(n);
    const bg = make(50);
    const model: Model = {
      nFeatures: d,
      nOutputs: 1,
      async predict(rows: Rows) {
        return Float32Array.from({ length: rows.n }, (_, i) => f(rows.data[i * d], rows.data[i * d + 1]));
      },
    };
    const metadata = parseMetadata({
      task: 'binary-classification',
      features: [{ name: 'x1' }, { name: 'x2' }, { name: 'sex', type: 'binary' }, { name: 'x3' }],
      outputs: [{ name: 'p' }],
      sensitiveFeatures: ['sex'],
      link: 'logit',
    });
    const m = served('fair', model, {
      space: { featureNames: ['x1', 'x2', 'sex', 'x3'], outputNames: ['p'] },
      metadata,
      background: bg.rows,
      reference: { rows: ref.rows, labels: ref.labels },
    });
    const local = appWith({ models: new Map([['fair', m]]), errors: [] });
    const res = await request(local)
      .post('/v1/models/fair/fairness')
      .send({ attributions: { nSamples: 64, sampleSize: 100 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.flags, []);
    const sex = res.body.outcomes[0].breakdowns[0];
    assert.equal(sex.criteria.disparateImpact.passes, true);
    for (const metric of ['selectionRate', 'truePositiveRate', 'falsePositiveRate']) {
      const g = sex.disparities[metric].gap.difference;
      assert.ok(g.lo <= 0 && 0 <= g.hi, `${metric} gap interval ${g.lo}..${g.hi} should cover 0`);
    }
    const a = res.body.outcomes[0].attributions;
    assert.equal(a.sensitive[0].used, false);
    assert.ok(a.sensitive[0].share < 1e-6, `sex share ${a.sensitive[0].share}`);
    const x3 = a.associations.find((x: { feature: string }) => x.feature === 'x3');
    assert.ok(x3.association > 0.5 && !x3.proxy, JSON.stringify(x3));
    assert.deepEqual(a.proxies, []);
  });

  it('data in the request: labels by class name, sensitive features named, multiclass one-vs-rest per class', async () => {
    const pen = repo.models.get('penguins')!;
    const ref = pen.reference!;
    const rows = Array.from({ length: ref.rows.n }, (_, i) => Array.from(ref.rows.data.subarray(i * ref.rows.d, (i + 1) * ref.rows.d)));
    const labels = Array.from(ref.labels, (y) => pen.metadata!.classes![y]);
    const res = await request(app)
      .post('/v1/models/penguins/fairness')
      .send({ data: rows, labels, sensitiveFeatures: ['sex', 'island'], attributions: false, bootstrap: { n: 20 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.dataset, 'request');
    assert.equal(res.body.outcomes.length, 3);
    assert.deepEqual(
      res.body.outcomes.map((o: { positiveClassName: string }) => o.positiveClassName),
      pen.metadata!.classes,
    );
    const b = res.body.outcomes[0].breakdowns;
    assert.deepEqual(
      b.map((x: { features: string[] }) => x.features),
      [['sex'], ['island'], ['sex', 'island']],
    );
    assert.deepEqual(
      b[1].groups.map((g: { label: string }) => g.label),
      ['island=Biscoe', 'island=Dream', 'island=Torgersen'],
    );
    // Counts of a one-hot breakdown add up to the rows.
    assert.equal(
      b[1].groups.reduce((s: number, g: { count: number }) => s + g.count, 0),
      ref.rows.n,
    );
    const one = await request(app)
      .post('/v1/models/penguins/fairness')
      .send({ data: rows, labels, sensitiveFeatures: ['sex'], positiveClass: 'Gentoo', attributions: false, bootstrap: { n: 0 } });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal(one.body.outcomes.length, 1);
    assert.equal(one.body.outcomes[0].positiveClass, 2);
    assert.equal(one.body.bootstrap, null);
  });

  it('regression: mean prediction, mean label, MAE and RMSE by group, checked against the predictions', async () => {
    const lin = repo.models.get('linear')!;
    const res = await request(app)
      .post('/v1/models/linear/fairness')
      .send({ sensitiveFeatures: ['x5_binary'], attributions: false, bootstrap: { n: 0 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.task, 'regression');
    const ref = lin.reference!;
    const pred = await lin.model.predict(ref.rows);
    const j = lin.space.featureNames.indexOf('x5_binary');
    for (const g of res.body.outcomes[0].breakdowns[0].groups) {
      const v = g.key.x5_binary;
      const idx = Array.from({ length: ref.rows.n }, (_, i) => i).filter((i) => ref.rows.data[i * ref.rows.d + j] === v);
      const mean = (f: (i: number) => number) => idx.reduce((s, i) => s + f(i), 0) / idx.length;
      assert.equal(g.count, idx.length);
      close(
        g.metrics.meanPrediction.value,
        mean((i) => pred[i]),
        1e-9,
      );
      close(
        g.metrics.meanAbsoluteError.value,
        mean((i) => Math.abs(pred[i] - ref.labels[i])),
        1e-9,
      );
      close(g.metrics.rootMeanSquaredError.value, Math.sqrt(mean((i) => (pred[i] - ref.labels[i]) ** 2)), 1e-9);
    }
  });

  it('errors: unknown sensitive feature, labels length, empty group, no sensitive features, labels without data', async () => {
    const post = (name: string, body: object) => request(app).post(`/v1/models/${name}/fairness`).send(body);
    let r = await post('credit', { sensitiveFeatures: ['gender'] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'UNKNOWN_FEATURE');
    assert.match(r.body.error.message, /gender/);
    const credit = repo.models.get('credit')!;
    const rows = Array.from({ length: 20 }, (_, i) => Array.from(credit.reference!.rows.data.subarray(i * 14, (i + 1) * 14)));
    r = await post('credit', { data: rows, labels: [1, 0] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'BAD_LABELS');
    const men = rows.map((x) => x.map((v, j) => (j === 11 ? 0 : v)));
    r = await post('credit', { data: men, attributions: false });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'EMPTY_GROUP');
    assert.match(r.body.error.message, /sex=female/);
    r = await post('cars', {});
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'NO_SENSITIVE_FEATURES');
    r = await post('credit', { labels: [1] });
    assert.equal(r.body.error.code, 'BAD_LABELS');
    r = await post('credit', { bootstrap: { n: -1 } });
    assert.equal(r.body.error.code, 'INVALID_REQUEST');
  });

  it('content negotiation: SVG chart with the four-fifths line, HTML report, PNG', async () => {
    const body = { attributions: { nSamples: 64, sampleSize: 50 }, bootstrap: { n: 50 } };
    const svg = await request(app).post('/v1/models/credit/fairness').set('Accept', 'image/svg+xml').buffer(true).parse(asText).send(body);
    assert.equal(svg.status, 200);
    assert.match(svg.headers['content-type'], /image\/svg\+xml/);
    parsesAsSvg(svg.body);
    assert.match(svg.body, /0\.8 × highest selection rate/);
    assert.match(svg.body, /sex=female/);
    const attr = await request(app)
      .post('/v1/models/credit/fairness?plot=attributions')
      .set('Accept', 'image/svg+xml')
      .buffer(true)
      .parse(asText)
      .send(body);
    assert.equal(attr.status, 200);
    parsesAsSvg(attr.body);
    assert.match(attr.body, /part_time/);
    const html = await request(app).post('/v1/models/credit/fairness').set('Accept', 'text/html').send(body);
    assert.equal(html.status, 200);
    assert.match(html.text, /<h2>Fairness summary<\/h2>/);
    assert.match(html.text, /proxy/);
    const png = await request(app)
      .post('/v1/models/credit/fairness?format=png')
      .send({ ...body, attributions: false });
    assert.equal(png.status, 200);
    assert.equal(png.headers['content-type'], 'image/png');
    const bad = await request(app).post('/v1/models/credit/fairness?plot=pie').set('Accept', 'image/svg+xml').send(body);
    assert.equal(bad.status, 400);
  });
});
