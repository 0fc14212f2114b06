/**
 * Counterfactual charts (render/counterfactuals.ts): snapshots of hand-made inputs a reader can check
 * by eye, well-formed XML, escaped user text (feature, group, category and class names), and the
 * numbers each chart must show.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';
import type { RecourseBurden } from '../monitoring/fairness/recourse.js';
import type { InstanceCounterfactuals } from '../explainers/counterfactuals/types.js';
import { recourseSections, renderCounterfactuals, renderHtmlReport, renderRecourseBurden } from '../render/index.js';
import { fmtTarget } from '../render/counterfactuals.js';

const SNAPSHOTS = join(dirname(fileURLToPath(import.meta.url)), '__snapshots__', 'render');
const window = new JSDOM('').window;

function parseSvg(svg: string): Document {
  const doc = new window.DOMParser().parseFromString(svg, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0, `not well-formed XML:\n${svg.slice(0, 300)}`);
  return doc;
}

function matchSnapshot(name: string, actual: string) {
  const file = join(SNAPSHOTS, name);
  if (process.env.UPDATE_SNAPSHOTS === '1' || !existsSync(file)) {
    mkdirSync(SNAPSHOTS, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(
    actual === readFileSync(file, 'utf8'),
    `${name} differs from its snapshot (UPDATE_SNAPSHOTS=1 rewrites it after a deliberate change)`,
  );
}

const names = ['age', 'income', 'debt_ratio', 'housing_rent', 'housing_own', 'sex'];
// Instance: age 30, income 26000, debt_ratio 0.5, renting, sex 1.
const base = [30, 26000, 0.5, 1, 0, 1];
const cf = (changes: [number, number][], p: number, distance: number) => {
  const values = base.slice();
  for (const [j, v] of changes) values[j] = v;
  return {
    values,
    changes: changes.map(([j, v]) => ({ feature: names[j], from: base[j], to: v, ...(j === 3 || j === 4 ? { group: 'housing' } : {}) })),
    distance,
    sparsity: new Set(changes.map(([j]) => (j === 3 || j === 4 ? 'housing' : names[j]))).size,
    plausibility: 0.8,
    neighbourDistance: 1.2,
    valid: true,
    prediction: [p],
    source: 'coordinate' as const,
  };
};
const hand: InstanceCounterfactuals = {
  found: true,
  status: 'found',
  stopReason: 'complete',
  prediction: [0.3],
  desired: { class: 1 },
  counterfactuals: [
    cf([[1, 36000.4]], 0.5, 0.75),
    cf([[2, 0.3149]], 0.51, 1.8),
    cf(
      [
        [0, 45],
        [3, 0],
        [4, 1],
      ],
      0.55,
      2.2,
    ),
  ],
  diversity: { dpp: 0.5, meanPairwiseDistance: 3 },
  modelEvaluations: 600,
  gradientEvaluations: 2,
  computeMs: 5,
  diagnostics: { validBySource: { coordinate: 3, gradient: 1, prototype: 0, sphere: 0 }, candidatesEvaluated: 300, implausible: 0 },
};

const burden: RecourseBurden = {
  feature: 'sex',
  favourable: { class: 1 },
  groups: [
    {
      label: 'male',
      rows: 500,
      unfavourable: 200,
      withRecourse: 200,
      withoutRecourse: 0,
      meanCost: { value: 1.5, lo: 1.3, hi: 1.7 },
      medianCost: { value: 1.2, lo: 1, hi: 1.4 },
      noRecourseRate: { value: 0, lo: 0, hi: 0 },
      meanSparsity: 1.4,
    },
    {
      label: 'female',
      rows: 500,
      unfavourable: 280,
      withRecourse: 276,
      withoutRecourse: 4,
      meanCost: { value: 2, lo: 1.8, hi: 2.2 },
      medianCost: { value: 1.6, lo: 1.4, hi: 1.8 },
      noRecourseRate: { value: 0.0143, lo: 0, hi: 0.03 },
      meanSparsity: 1.6,
    },
  ],
  meanCostDifference: { value: 0.5, lo: 0.2, hi: 0.8 },
  meanCostRatio: { value: 1.33, lo: 1.1, hi: 1.6 },
  costs: [],
  bootstrap: { n: 1000, seed: 0, confidence: 0.95 },
  incomplete: { deadline: 0, budget: 0 },
  modelEvaluations: 1000,
  computeMs: 10,
};

const text = (svg: string) => Array.from(parseSvg(svg).querySelectorAll('text'), (t) => t.textContent!);

describe('render: counterfactuals', () => {
  it('a before/after table: one row per changed feature (a group once), one column per counterfactual', () => {
    const svg = renderCounterfactuals(hand, { featureNames: names, classNames: ['rejected', 'approved'] });
    matchSnapshot('counterfactuals.svg', svg);
    const doc = parseSvg(svg);
    const rows = Array.from(doc.querySelectorAll('g.feature'), (g) => g.getAttribute('data-feature'));
    assert.deepEqual(rows, ['age', 'income', 'debt_ratio', 'housing'], 'changed features in model order; sex never changes');
    const t = text(svg);
    for (const s of ['option 1', 'option 2', 'option 3', '↑ 36,010', '↓ 0.3149', '↑ 45', 'rent', '→ own', '26,000', '0.75', '2.2'])
      assert.ok(t.includes(s), `"${s}" missing from ${JSON.stringify(t)}`);
    assert.match(doc.querySelector('title')!.textContent!, /class approved: 3 counterfactuals/);
  });

  it('says so when nothing was found, or the instance already has the outcome', () => {
    const none = renderCounterfactuals(
      { ...hand, found: false, status: 'not-found', stopReason: 'deadline', counterfactuals: [] },
      { featureNames: names, classNames: ['rejected', 'approved'] },
    );
    assert.match(text(none).join(' '), /No counterfactual reaching class approved was found \(stopped at the deadline\)/);
    const already = renderCounterfactuals(
      { ...hand, status: 'already-desired', counterfactuals: [cf([], 0.7, 0)] },
      { featureNames: names },
    );
    assert.match(text(already).join(' '), /already has the desired outcome \(class 1\)/);
    const range = renderCounterfactuals(
      { ...hand, desired: { range: [25, Infinity], output: 0 } },
      { featureNames: names, outputNames: ['mpg'] },
    );
    assert.match(parseSvg(range).querySelector('title')!.textContent!, /mpg ≥ 25/);
  });

  it('rounds a new value away from the instance, so the shown value still reaches the boundary', () => {
    assert.equal(fmtTarget(37633.15, 1), '37,640');
    assert.equal(fmtTarget(0.20483, -1), '0.2048');
    assert.equal(fmtTarget(0.20487, 1), '0.2049');
    assert.equal(fmtTarget(-1.23456, -1), '−1.235');
    assert.equal(fmtTarget(45, 1), '45');
  });

  it('recourse burden by group: mean and median cost with intervals, and a report section', () => {
    const svg = renderRecourseBurden(burden);
    matchSnapshot('recourse-burden.svg', svg);
    const t = text(svg);
    assert.ok(t.includes('female (280 unfavourable)') && t.includes('2 [1.8, 2.2]') && t.includes('1.2 [1, 1.4]'), JSON.stringify(t));
    const html = renderHtmlReport({ title: 'fairness', sections: recourseSections(burden) });
    const doc = new JSDOM(html).window.document;
    const cells = Array.from(doc.querySelectorAll('td'), (td) => td.textContent);
    for (const s of ['female', '276', '2 [1.8, 2.2]', '0.0143 [0, 0.03]'])
      assert.ok(cells.includes(s), `${s} not in ${JSON.stringify(cells)}`);
    assert.match(doc.body.textContent!, /Highest minus lowest group mean: 0\.5 \[0\.2, 0\.8\]/);
  });

  it('escapes feature, group, category and class names', () => {
    const evil = '<script>alert(1)</script>&"';
    const evilNames = names.map((n, j) => (j === 1 ? evil : j === 3 ? `${evil}_rent` : j === 4 ? `${evil}_own` : n));
    const evilHand: InstanceCounterfactuals = {
      ...hand,
      counterfactuals: hand.counterfactuals.map((c) => ({
        ...c,
        changes: c.changes.map((ch) => ({ ...ch, feature: evilNames[names.indexOf(ch.feature)], ...(ch.group ? { group: evil } : {}) })),
      })),
    };
    const svgs = [
      renderCounterfactuals(evilHand, { featureNames: evilNames, classNames: [evil, evil] }),
      renderRecourseBurden({ ...burden, feature: evil, groups: burden.groups.map((g) => ({ ...g, label: evil })) }),
    ];
    for (const svg of svgs) {
      assert.ok(!svg.includes('<script'), 'no literal <script> in the output');
      const doc = parseSvg(svg);
      assert.equal(doc.getElementsByTagName('script').length, 0);
      const texts = Array.from(doc.querySelectorAll('text, title, desc'), (t) => t.textContent!);
      assert.ok(
        texts.some((t) => t.includes(evil)),
        'the name survives as text',
      );
    }
  });
});
