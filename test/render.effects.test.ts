/**
 * Effect charts: well-formed, accessible, byte-stable SVG (snapshots), the marks each chart promises
 * (ICE thinning, rug, band, heatmap cells and legend, the interacting feature's legend), and hostile
 * feature names escaped. Inputs are hand-made, so the charts are checked apart from the explainers.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';
import type { Ale2dEffect, AleEffect, DependenceEffect, IceEffect, PartialDependence2dEffect, PartialDependenceEffect } from '../explainers/effects/types.js';
import { renderAle, renderDependence, renderEffect, renderEffectHeatmap, renderPartialDependence } from '../render/index.js';

const SNAPSHOTS = join(dirname(fileURLToPath(import.meta.url)), '__snapshots__', 'render');
const window = new JSDOM('').window;

function parseSvg(svg: string): Document {
  const doc = new window.DOMParser().parseFromString(svg, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0, `not well-formed XML:\n${svg.slice(0, 300)}`);
  return doc;
}

/** Compares with the committed snapshot; writes a missing one (except under CI) or all with UPDATE_SNAPSHOTS=1. */
function matchSnapshot(name: string, actual: string) {
  const file = join(SNAPSHOTS, name);
  if (process.env.UPDATE_SNAPSHOTS === '1' || (!existsSync(file) && process.env.CI !== 'true')) {
    mkdirSync(SNAPSHOTS, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `${name} has no committed snapshot`);
  assert.ok(actual === readFileSync(file, 'utf8'), `${name} differs from its snapshot (UPDATE_SNAPSHOTS=1 rewrites it after a deliberate change)`);
}

/** A deterministic wobble, so the hand-made curves are not straight lines. */
const wob = (i: number) => Math.sin(i * 12.9898) * 0.5;
const grid = Array.from({ length: 11 }, (_, k) => k * 10);
const common = { output: 'p_default', outputIndex: 0, link: 'identity' as const, rows: 40, modelEvaluations: 440 };

const pd: PartialDependenceEffect = {
  ...common,
  kind: 'pd',
  feature: 'income',
  featureKind: 'numeric',
  grid,
  values: grid.map((v) => 0.2 + v / 200),
  deciles: [8, 15, 22, 31, 44, 52, 63, 75, 90],
};

const curves = Array.from({ length: 40 }, (_, i) => grid.map((v) => 0.1 + wob(i) * 0.2 + (v / 200) * (1 + wob(i + 7))));
const ice: IceEffect = {
  ...common,
  kind: 'ice',
  feature: 'income',
  featureKind: 'numeric',
  grid,
  values: grid.map((_, k) => curves.reduce((s, c) => s + c[k], 0) / 40),
  curves,
  rowIndices: curves.map((_, i) => i),
  rowValues: curves.map((_, i) => 50 + 45 * wob(i * 3)),
  centered: false,
  deciles: pd.deciles,
};

const catPd: PartialDependenceEffect = {
  ...common,
  kind: 'pd',
  feature: 'housing',
  featureKind: 'one-hot',
  grid: [0, 1, 2],
  categories: ['housing_rent', 'housing_own', 'housing_mortgage'],
  values: [0.42, 0.31, 0.28],
  counts: [15, 10, 15],
};

const edges = [0, 5, 12, 20, 31, 45, 60, 80, 100];
const aleValues = edges.map((z) => (z - 40) / 100);
const stderr = edges.map((_, k) => 0.01 * Math.sqrt(k));
const ale: AleEffect = {
  ...common,
  kind: 'ale',
  feature: 'income',
  featureKind: 'numeric',
  grid: edges,
  values: aleValues,
  counts: [5, 5, 5, 5, 5, 5, 5, 5],
  intervals: edges.slice(1).map((z, k) => [edges[k], z] as [number, number]),
  stderr,
  lower: aleValues.map((v, k) => v - 1.96 * stderr[k]),
  upper: aleValues.map((v, k) => v + 1.96 * stderr[k]),
  confidence: 0.95,
  offset: 0.4,
};

const catAle: AleEffect = {
  ...common,
  kind: 'ale',
  feature: 'housing',
  featureKind: 'one-hot',
  grid: [1, 0, 2],
  categories: ['housing_own', 'housing_rent', 'housing_mortgage'],
  values: [-0.05, 0.08, -0.02],
  counts: [10, 15, 15],
  stderr: [0, 0.01, 0.015],
  lower: [-0.05, 0.06, -0.05],
  upper: [-0.05, 0.1, 0.01],
  confidence: 0.95,
  offset: 0.3,
  categoryOrder: 'similarity',
};

const g2 = [1, 2, 3, 4, 5];
const pd2d: PartialDependence2dEffect = {
  ...common,
  kind: 'pd',
  feature: 'income',
  featureKind: 'numeric',
  feature2: 'debt_ratio',
  featureKind2: 'numeric',
  grid,
  grid2: g2,
  values: grid.map((a) => g2.map((b) => 0.1 + a / 200 + b / 20)),
};

const ale2d: Ale2dEffect = {
  ...common,
  kind: 'ale',
  feature: 'income',
  featureKind: 'numeric',
  feature2: 'debt_ratio',
  featureKind2: 'numeric',
  grid: edges,
  grid2: g2,
  values: edges.map((a) => g2.map((b) => ((a - 40) * (b - 3)) / 500)),
  counts: edges.slice(1).map(() => g2.slice(1).map(() => 2)),
};

const n = 60;
const dependence: DependenceEffect = {
  ...common,
  kind: 'dependence',
  feature: 'income',
  featureKind: 'numeric',
  grid: [10, 30, 50, 70, 90],
  values: [-0.2, -0.1, 0, 0.1, 0.2],
  points: {
    values: Array.from({ length: n }, (_, i) => 50 + 45 * wob(i)),
    attributions: Array.from({ length: n }, (_, i) => wob(i) * 0.4 + wob(i + 3) * 0.1 * wob(i * 5)),
    interaction: Array.from({ length: n }, (_, i) => 0.5 + wob(i * 5)),
  },
  interaction: { feature: 'debt_ratio', kind: 'numeric', score: 4.2 },
  interactionScores: [
    { feature: 'debt_ratio', score: 4.2 },
    { feature: 'age', score: 1.1 },
  ],
  interactionMethod: 'approximate',
  attributionMethod: 'kernel-shap',
};

const catDependence: DependenceEffect = {
  ...dependence,
  points: { ...dependence.points, interaction: Array.from({ length: n }, (_, i) => i % 3) },
  interaction: { feature: 'housing', kind: 'one-hot', categories: ['housing_rent', 'housing_own', 'housing_mortgage'], score: 2 },
};

const charts: Record<string, () => string> = {
  'effect-pd.svg': () => renderPartialDependence(pd),
  'effect-ice.svg': () => renderPartialDependence(ice, { maxCurves: 20 }),
  'effect-ice-centred.svg': () => renderPartialDependence(ice, { centered: true }),
  'effect-pd-categorical.svg': () => renderPartialDependence(catPd),
  'effect-ale.svg': () => renderAle(ale),
  'effect-ale-categorical.svg': () => renderAle(catAle),
  'effect-pd-2d.svg': () => renderEffectHeatmap(pd2d),
  'effect-ale-2d.svg': () => renderEffectHeatmap(ale2d),
  'effect-dependence.svg': () => renderDependence(dependence),
  'effect-dependence-categorical.svg': () => renderDependence(catDependence),
};

describe('render: effect charts', () => {
  for (const [name, render] of Object.entries(charts)) {
    it(`${name} is well-formed, accessible SVG, byte-stable, and matches its snapshot`, () => {
      const svg = render();
      const root = parseSvg(svg).documentElement;
      assert.equal(root.localName, 'svg');
      assert.equal(root.getAttribute('role'), 'img');
      assert.match(root.getAttribute('viewBox') ?? '', /^0 0 \d+(\.\d+)? \d+(\.\d+)?$/);
      assert.equal(root.children[0].localName, 'title');
      assert.equal(root.children[1].localName, 'desc');
      assert.ok(root.children[1].textContent!.length > 40);
      assert.ok(!svg.includes('&nbsp;'));
      assert.equal(render(), svg);
      matchSnapshot(name, svg);
    });
  }

  it('renderEffect picks the chart by kind and dimension', () => {
    assert.equal(renderEffect(pd), renderPartialDependence(pd));
    assert.equal(renderEffect(ice), renderPartialDependence(ice));
    assert.equal(renderEffect(ale), renderAle(ale));
    assert.equal(renderEffect(ale2d), renderEffectHeatmap(ale2d));
    assert.equal(renderEffect(pd2d), renderEffectHeatmap(pd2d));
    assert.equal(renderEffect(dependence), renderDependence(dependence));
  });

  it('ICE curves are thinned to maxCurves behind the PD line, with a rug of the rows', () => {
    const doc = parseSvg(renderPartialDependence(ice, { maxCurves: 12 }));
    const d = doc.querySelector('path.ice')!.getAttribute('d')!;
    assert.equal(d.split('M').length - 1, 12, 'one subpath per curve drawn');
    // The PD line is drawn after (so on top of) the curves.
    const paths = Array.from(doc.querySelectorAll('path'));
    assert.ok(paths.indexOf(doc.querySelector('path.pd')!) > paths.indexOf(doc.querySelector('path.ice')!));
    const rug = doc.querySelector('path.rug')!.getAttribute('d')!;
    assert.ok(rug.split('M').length - 1 >= 30, 'the rows inside the grid range are in the rug');
    assert.match(doc.querySelector('desc')!.textContent!, /12 of 40 individual curves/);
  });

  it('centring draws every curve from 0 at the first grid point', () => {
    const doc = parseSvg(renderPartialDependence(ice, { centered: true, maxCurves: 40 }));
    const starts = doc
      .querySelector('path.ice')!
      .getAttribute('d')!
      .split('M')
      .slice(1)
      .map((s) => s.split(/[L,]/)[1]);
    assert.equal(new Set(starts).size, 1, 'every centred curve starts at the same height');
    assert.match(doc.querySelector('.legend')!.textContent!, /centred PD/);
  });

  it('ALE draws its band as a closed area around the line, and a zero line', () => {
    const doc = parseSvg(renderAle(ale));
    const band = doc.querySelector('path.band')!.getAttribute('d')!;
    assert.ok(band.endsWith('Z'));
    assert.equal(band.split(/[ML]/).length - 1, 2 * edges.length, 'upper edge out, lower edge back');
    assert.ok(doc.querySelector('path.ale'));
  });

  it('the heatmap has one cell per grid pair and a colour legend', () => {
    for (const e of [pd2d, ale2d]) {
      const doc = parseSvg(renderEffectHeatmap(e));
      const cells = Array.from(doc.querySelectorAll('g.cells path')).reduce((s, p) => s + p.getAttribute('d')!.split('M').length - 1, 0);
      assert.equal(cells, e.grid.length * e.grid2.length);
      assert.ok(doc.querySelector('.legend'));
      assert.equal(doc.querySelector('g.effect')!.getAttribute('data-feature2'), 'debt_ratio');
    }
  });

  it('the dependence scatter names its interacting feature and draws every row', () => {
    for (const e of [dependence, catDependence]) {
      const doc = parseSvg(renderDependence(e));
      assert.equal(doc.querySelector('g.effect')!.getAttribute('data-interaction'), e.interaction!.feature);
      const dots = Array.from(doc.querySelectorAll('g.dots path')).reduce((s, p) => s + p.getAttribute('d')!.split('M').length - 1, 0);
      assert.equal(dots, n);
      const texts = Array.from(doc.querySelectorAll('text'), (t) => t.textContent);
      assert.ok(texts.includes(e.interaction!.feature), 'the legend names the interacting feature');
      assert.match(doc.querySelector('title')!.textContent!, new RegExp(`coloured by ${e.interaction!.feature}`));
    }
    assert.ok(parseSvg(renderDependence(catDependence)).querySelector('.legend')!.textContent!.includes('housing_mortgage'));
  });

  it('a document passed in gives the same bytes as the shared one', () => {
    const other = new JSDOM('').window.document;
    assert.equal(renderEffectHeatmap(ale2d, { document: other }), renderEffectHeatmap(ale2d));
    assert.equal(renderPartialDependence(ice, { document: other }), renderPartialDependence(ice));
    assert.equal(renderDependence(dependence, { document: other }), renderDependence(dependence));
  });
});

describe('render: effect charts escape feature names', () => {
  const evil = '<script>alert(1)</script>&"';
  const cases: Record<string, () => string> = {
    pd: () => renderPartialDependence({ ...pd, feature: evil, output: evil }),
    ice: () => renderPartialDependence({ ...ice, feature: evil }),
    'pd categorical': () => renderPartialDependence({ ...catPd, feature: evil, categories: [evil, 'b', 'c'] }),
    ale: () => renderAle({ ...ale, feature: evil }),
    'ale categorical': () => renderAle({ ...catAle, categories: [evil, 'b', 'c'] }),
    heatmap: () => renderEffectHeatmap({ ...pd2d, feature: evil, feature2: evil }),
    'heatmap categories': () => renderEffectHeatmap({ ...pd2d, grid2: [0, 1], categories2: [evil, 'x'], values: grid.map(() => [0, 1]) }),
    dependence: () => renderDependence({ ...dependence, feature: evil, interaction: { ...dependence.interaction!, feature: evil } }),
    'dependence categories': () => renderDependence({ ...catDependence, interaction: { ...catDependence.interaction!, categories: [evil, 'b', 'c'] } }),
  };
  for (const [name, render] of Object.entries(cases)) {
    it(`in the ${name} chart`, () => {
      const svg = render();
      assert.ok(!svg.includes('<script'), 'no literal <script>');
      const doc = parseSvg(svg);
      assert.equal(doc.getElementsByTagName('script').length, 0);
      const texts = Array.from(doc.querySelectorAll('text, title, desc'), (t) => t.textContent!);
      assert.ok(texts.some((t) => t.includes(evil) || t.includes('<script>alert(1)</script>')), 'the name survives as text');
      // And the DOM's own serializer agrees with ours, byte for byte.
      assert.equal(new window.XMLSerializer().serializeToString(doc.documentElement), svg);
    });
  }
});
