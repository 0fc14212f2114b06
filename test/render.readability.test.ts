/**
 * Charts as a person reads them (issue: "look at each chart at 1x and 2x"): integer features such as
 * years without thousands separators, coded values by their names; no label cut while the chart has
 * room; axis titles that keep the link's scale; the four-fifths line never through a value label;
 * PSI's thresholds labelled on the axis; "± s" said to be a standard error; inputs echoed as the
 * shortest decimal of their float32; sensitive groups named by metadata's labels; a chart of one of
 * several instances says which. The PNGs render at 1x and 2x.
 */
import { strict as assert } from 'node:assert';
import { JSDOM } from 'jsdom';
import type { Explanation } from '../explainers/types.js';
import { driftReport } from '../monitoring/drift/index.js';
import { groupBy, resolveSensitive } from '../monitoring/fairness/groups.js';
import { renderBar } from '../render/bar.js';
import { renderBeeswarm, renderMeanAbs } from '../render/beeswarm.js';
import { renderPsi } from '../render/drift.js';
import { renderAle, renderDependence, renderEffectHeatmap, renderPartialDependence } from '../render/effects.js';
import type { AleEffect, DependenceEffect, PartialDependence2dEffect, PartialDependenceEffect } from '../explainers/effects/types.js';
import { renderGroupComparison } from '../render/groups.js';
import { svgToPng } from '../render/png.js';
import { valueText, type ChartContext } from '../render/select.js';
import { textWidth } from '../render/text.js';
import { renderWaterfall } from '../render/waterfall.js';
import { shortestFloat32 } from '../service/values.js';

const window = new JSDOM('').window;
const parse = (svg: string) => new window.DOMParser().parseFromString(svg, 'image/svg+xml');
const texts = (svg: string) => Array.from(parse(svg).querySelectorAll('text'), (t) => t.textContent ?? '');

function explanation(values: Record<string, number>, attributions: Record<string, number>, extra: Partial<Explanation> = {}): Explanation {
  return {
    method: 'kernel-shap',
    explanations: [
      {
        outputs: [
          {
            output: 'mpg',
            outputIndex: 0,
            baselineOutputValue: 20,
            instanceOutputValue: 20 + Object.values(attributions).reduce((a, b) => a + b, 0),
            attributions: Object.keys(values).map((f) => ({ feature: f, value: values[f], attribution: attributions[f], stderr: 0.01 })),
            approximationError: 0.01,
          },
        ],
        converged: true,
        modelEvaluations: 1,
        computeMs: 1,
      },
    ],
    ...extra,
  };
}

describe('render: charts a person can read', () => {
  it('integer features (years, codes) print without thousands separators; coded values by name; numbers keep theirs', () => {
    assert.equal(valueText(1970, { type: 'integer' }), '1970');
    assert.equal(valueText(77300, { type: 'numeric' }), '77,300');
    assert.equal(valueText(77300), '77,300');
    assert.equal(valueText(1, { type: 'binary', categories: [{ value: 1, label: 'female' }] }), 'female');
    assert.equal(valueText(0.278, { type: 'numeric' }), '0.278');
    const context: ChartContext = { features: { Year: { type: 'integer' }, Weight: { type: 'numeric' } } };
    const svg = renderWaterfall(explanation({ Year: 1970, Weight: 4354 }, { Year: -2, Weight: -3 }), { context });
    const t = texts(svg);
    assert.ok(t.includes('Year = 1970'), t.join(' | '));
    assert.ok(t.includes('Weight = 4,354'));
    assert.ok(!t.some((s) => s.includes('1,970')));
  });

  it('labels are whole while the chart has room, cut only when it does not', () => {
    const name = 'num_late_payments_last_24_months';
    const e = explanation({ [name]: 35.1, age: 40 }, { [name]: 0.3, age: -0.1 });
    const wide = texts(renderWaterfall(e));
    assert.ok(wide.includes(`${name} = 35.1`), wide.join(' | '));
    assert.ok(!wide.some((s) => s.includes('…')));
    // The longest label that fits exactly is not cut by rounding in the layout.
    const exact = texts(renderBar(explanation({ flipper_length_mm: 218, sex: 1 }, { flipper_length_mm: 0.1, sex: 0.2 })));
    assert.ok(exact.includes('flipper_length_mm = 218'), exact.join(' | '));
    const narrow = texts(renderWaterfall(e, { width: 320 }));
    assert.ok(narrow.some((s) => s.includes('…')), 'at 320 px there is no room: the name is cut');
  });

  it('axis titles keep the link scale in the beeswarm and the mean |SHAP| chart', () => {
    const e = explanation({ a: 1, b: 2 }, { a: 0.5, b: -0.2 }, { diagnostics: { link: 'logit' } });
    const many: Explanation = { ...e, explanations: [e.explanations[0], e.explanations[0], e.explanations[0]] };
    for (const svg of [renderBeeswarm(many), renderMeanAbs(many)]) assert.ok(texts(svg).some((s) => /impact on mpg, logit scale/.test(s)), texts(svg).join(' | '));
    assert.ok(texts(renderBar(e)).some((s) => /impact on mpg, logit scale/.test(s)));
  });

  it('"± s" on the bar chart is said to be one standard error', () => {
    const t = texts(renderBar(explanation({ a: 1, b: 2 }, { a: 0.5, b: -0.2 })));
    assert.ok(t.some((s) => /\+0\.5 ± 0\.01/.test(s)));
    assert.ok(t.some((s) => /± s: one standard error/.test(s)), t.join(' | '));
  });

  it('a chart of one of several instances says which; the header says the output and the model value', () => {
    const e = explanation({ a: 1 }, { a: 0.5 });
    const three: Explanation = { ...e, explanations: [e.explanations[0], e.explanations[0], e.explanations[0]] };
    assert.ok(texts(renderWaterfall(three)).includes('Instance 0 of 3 · explaining mpg, f(x) = 20.5'));
    assert.ok(texts(renderWaterfall(three, { instance: 2 })).includes('Instance 2 of 3 · explaining mpg, f(x) = 20.5'));
    assert.ok(texts(renderWaterfall(e)).includes('Explaining mpg, f(x) = 20.5'));
    // A classifier explained in logit space: the header gives the probability.
    const logit = explanation({ a: 1 }, { a: 1.2 }, { diagnostics: { link: 'logit' } });
    logit.explanations[0].outputs[0].output = 'approved';
    const p = 1 / (1 + Math.exp(-(20 + 1.2)));
    assert.ok(texts(renderBar(logit, { context: { classifier: true } })).includes(`Explaining class approved, p = ${p.toFixed(2)}`));
  });

  it('the four-fifths line never runs through a value label', () => {
    const svg = renderGroupComparison(
      [
        { group: 'male', values: [{ label: 'selection rate', value: 0.55, lo: 0.5, hi: 0.6 }] },
        { group: 'female', values: [{ label: 'selection rate', value: 0.33, lo: 0.31, hi: 0.35 }] },
      ],
      { valueLabel: 'Rate', reference: { value: 0.8 * 0.55, label: 'four-fifths' } },
    );
    const doc = parse(svg);
    // Rules are "M x,y0 V y1" paths with a dash; labels are <text> at x with the small font.
    const rules = Array.from(doc.querySelectorAll('path[stroke-dasharray="5 3"]'), (p) => p.getAttribute('d')!)
      .map((d) => /^M([\d.]+),([\d.]+)V([\d.]+)$/.exec(d))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ x: Number(m[1]), y0: Number(m[2]), y1: Number(m[3]) }));
    assert.ok(rules.length >= 2, `the line is drawn in pieces around the label it would cross: ${rules.length}`);
    const labels = Array.from(doc.querySelectorAll('g.bar text'), (t) => {
      const x = Number(t.getAttribute('x'));
      const y = Number(t.getAttribute('y'));
      const w = textWidth(t.textContent ?? '', 10.5);
      const end = t.getAttribute('text-anchor') === 'end';
      return { x0: end ? x - w : x, x1: end ? x : x + w, y0: y - 10, y1: y + 3 };
    });
    const crossed = labels.filter((b) => rules.some((r) => r.x >= b.x0 && r.x <= b.x1 && r.y0 < b.y1 && r.y1 > b.y0));
    assert.deepEqual(crossed, []);
    // This layout puts a label across the line's x: the line must leave it room.
    assert.ok(labels.some((b) => rules[0].x >= b.x0 && rules[0].x <= b.x1 - 10), JSON.stringify({ rules, labels }));
  });

  it('PSI ticks at the thresholds are labelled 0.10 and 0.25 on the axis; the threshold rules leave value labels whole', () => {
    const rows = (n: number, shift: number) => ({ data: Float32Array.from({ length: n }, (_, i) => (i % 97) / 97 + shift), n, d: 1 });
    const svg = renderPsi(driftReport({ reference: rows(500, 0), current: rows(300, 0.05), featureNames: ['a'], outputNames: [] }));
    const axis = Array.from(parse(svg).querySelectorAll('g.axis text'), (t) => t.textContent);
    assert.ok(axis.includes('0.10') && axis.includes('0.25'), axis.join(' | '));
    // PSI just under each threshold: its value label starts right at the rule.
    const report = driftReport({ reference: rows(500, 0), current: rows(300, 0), featureNames: ['a'], outputNames: [] });
    const near = { ...report, features: [0.09, 0.24].map((psi, i) => ({ ...report.features[0], feature: `f${i}`, psi })) };
    const doc = parse(renderPsi(near));
    const rules = Array.from(doc.querySelectorAll('path[stroke-dasharray="5 3"]'), (p) => /^M([\d.]+),([\d.]+)V([\d.]+)$/.exec(p.getAttribute('d')!))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ x: Number(m[1]), y0: Number(m[2]), y1: Number(m[3]) }));
    const labels = Array.from(doc.querySelectorAll('g.row text:not([text-anchor])'), (t) => {
      const x = Number(t.getAttribute('x'));
      const y = Number(t.getAttribute('y'));
      return { text: t.textContent, x0: x, x1: x + textWidth(t.textContent ?? '', 10.5), y0: y - 10, y1: y + 3 };
    });
    assert.equal(labels.length, 2);
    assert.ok(labels.every((b) => rules.some((r) => r.x >= b.x0 - 3 && r.x <= b.x1)), 'each label sits at a rule');
    const crossed = labels.filter((b) => rules.some((r) => r.x >= b.x0 && r.x <= b.x1 && r.y0 < b.y1 && r.y1 > b.y0));
    assert.deepEqual(crossed, []);
  });

  it('inputs are echoed as the shortest decimal that reads back to the same float32', () => {
    assert.equal(Math.fround(0.278), 0.27799999713897705);
    assert.equal(shortestFloat32(Math.fround(0.278)), 0.278);
    assert.equal(shortestFloat32(Math.fround(0.1)), 0.1);
    assert.equal(shortestFloat32(Math.fround(1 / 3)), 0.33333334);
    assert.equal(shortestFloat32(77300), 77300);
    assert.equal(shortestFloat32(-0), -0);
    for (const v of [1e-7, 123.456, 3.4e38, 1.17549435e-38, 6.02e23]) {
      const f = Math.fround(v);
      assert.equal(Math.fround(shortestFloat32(f)), f, `${v}`);
    }
  });

  it('sensitive groups are named by metadata category labels, the values kept as keys', () => {
    const rows = { data: Float32Array.from([0, 1, 1, 0, 1]), n: 5, d: 1 };
    const info = { types: ['binary'], categories: [[{ value: 0, label: 'male' }, { value: 1, label: 'female' }]] };
    const [attr] = resolveSensitive(['sex'], { featureNames: ['sex'], outputNames: ['y'] }, info);
    const g = groupBy(rows, attr, ['sex']);
    assert.deepEqual(g.groups.map((x) => x.label), ['sex=male', 'sex=female']);
    assert.deepEqual(g.groups.map((x) => x.key), [{ sex: 0 }, { sex: 1 }]);
    const plain = groupBy(rows, resolveSensitive(['sex'], { featureNames: ['sex'], outputNames: ['y'] }, { types: ['binary'] })[0], ['sex']);
    assert.deepEqual(plain.groups.map((x) => x.label), ['sex=0', 'sex=1']);
  });

  it('effect charts read integer features whole on their axes and grids (Year 1970, not 1,970)', () => {
    const years = Array.from({ length: 13 }, (_, k) => 1970 + k);
    const common = { output: 'mpg', outputIndex: 0, link: 'identity' as const, rows: 98, modelEvaluations: 1274 };
    const pd: PartialDependenceEffect = { ...common, kind: 'pd', feature: 'Year', featureKind: 'numeric', grid: years, values: years.map((y) => 17 + (y - 1970) * 0.8) };
    const ale: AleEffect = {
      ...common,
      kind: 'ale',
      feature: 'Year',
      featureKind: 'numeric',
      grid: years,
      values: years.map((y) => (y - 1976) * 0.8),
      counts: years.slice(1).map(() => 8),
      intervals: years.slice(1).map((y) => [y - 1, y] as [number, number]),
      stderr: years.map(() => 0.1),
      lower: years.map((y) => (y - 1976) * 0.8 - 0.2),
      upper: years.map((y) => (y - 1976) * 0.8 + 0.2),
      confidence: 0.95,
      offset: 23,
    };
    const dependence: DependenceEffect = {
      ...common,
      kind: 'dependence',
      feature: 'Year',
      featureKind: 'numeric',
      grid: years,
      values: years.map(() => 0),
      points: { values: years, attributions: years.map((y) => (y - 1976) * 0.7) },
      interaction: null,
      interactionScores: [],
      interactionMethod: 'approximate',
      attributionMethod: 'kernel-shap',
    };
    // A 2-D grid of whole years: ~3 significant digits would print 1975 as 1,980.
    const pd2d: PartialDependence2dEffect = {
      ...common,
      kind: 'pd',
      feature: 'Year',
      featureKind: 'numeric',
      feature2: 'Weight',
      featureKind2: 'numeric',
      grid: [1971, 1975, 1979],
      grid2: [2000, 3000, 4000],
      values: [1971, 1975, 1979].map((y) => [2000, 3000, 4000].map((w) => 40 - w / 200 + (y - 1970))),
    };
    const context: ChartContext = { features: { Year: { type: 'integer' }, Weight: { type: 'numeric' } } };
    for (const [name, draw] of [
      ['pd', (o: { context?: ChartContext }) => renderPartialDependence(pd, o)],
      ['ale', (o: { context?: ChartContext }) => renderAle(ale, o)],
      ['dependence', (o: { context?: ChartContext }) => renderDependence(dependence, o)],
    ] as const) {
      const plain = texts(draw({}));
      // Without the metadata a year is just a number: the oracle that the chart has such ticks at all.
      assert.ok(plain.some((t) => /^1,9[78]\d$/.test(t)), `${name} without context: ${plain.join(' | ')}`);
      const read = texts(draw({ context }));
      assert.ok(read.some((t) => /^19[78]\d$/.test(t)), `${name}: ${read.join(' | ')}`);
      assert.ok(!read.some((t) => /1,9[78]\d/.test(t)), `${name}: ${read.join(' | ')}`);
    }
    const heat = texts(renderEffectHeatmap(pd2d, { context }));
    assert.ok(['1971', '1975', '1979'].every((y) => heat.includes(y)), heat.join(' | '));
    assert.ok(heat.includes('3,000'), 'a numeric feature keeps its separators');
    assert.ok(texts(renderEffectHeatmap(pd2d)).includes('1,980'), 'without metadata the grid prints ~3 digits');
  });

  it('the charts render to PNG at 1x and 2x', () => {
    const svg = renderWaterfall(explanation({ Year: 1970, Weight: 4354 }, { Year: -2, Weight: -3 }));
    const one = svgToPng(svg);
    const two = svgToPng(svg, { width: 1440 });
    assert.equal(one.readUInt32BE(16), 720);
    assert.equal(two.readUInt32BE(16), 1440);
    assert.equal(two.readUInt32BE(20), 2 * one.readUInt32BE(20));
  });
});
