import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';
import type { Explanation, Importance } from '../explainers/types.js';
import {
  EXPLANATION_PLOTS,
  defaultPlot,
  renderExplanationPlot,
  renderBar,
  renderBeeswarm,
  renderExplanationReport,
  renderForce,
  renderGroupComparison,
  renderHtmlReport,
  renderImageAttribution,
  renderImportance,
  renderImportanceReport,
  renderMeanAbs,
  renderWaterfall,
} from '../render/index.js';
import { exampleExplanation, exampleGroups, exampleImageExplanation, exampleImportance } from '../render/examples.js';

/** SNAPSHOT_DIR overrides the committed snapshots' folder (test/harness.test.ts uses an empty one). */
const SNAPSHOTS = process.env.SNAPSHOT_DIR || join(dirname(fileURLToPath(import.meta.url)), '__snapshots__', 'render');
const window = new JSDOM('').window;

/** Strict XML parse: jsdom's DOMParser returns a <parsererror> document for anything malformed. */
function parseSvg(svg: string): Document {
  const doc = new window.DOMParser().parseFromString(svg, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0, `not well-formed XML:\n${svg.slice(0, 300)}`);
  return doc;
}

/**
 * Compares with the committed snapshot; writes it when UPDATE_SNAPSHOTS=1, or when absent outside
 * CI. Under CI a missing snapshot fails: it was not committed, and writing it would pass anything.
 */
function matchSnapshot(name: string, actual: string) {
  const file = join(SNAPSHOTS, name);
  if (!existsSync(file) && process.env.CI && process.env.UPDATE_SNAPSHOTS !== '1') {
    assert.fail(`missing snapshot ${name} under CI: run the tests locally (or with UPDATE_SNAPSHOTS=1) and commit ${file}`);
  }
  if (process.env.UPDATE_SNAPSHOTS === '1' || !existsSync(file)) {
    mkdirSync(SNAPSHOTS, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  const expected = readFileSync(file, 'utf8');
  assert.ok(actual === expected, `${name} differs from its snapshot (UPDATE_SNAPSHOTS=1 rewrites it after a deliberate change)`);
}

// Hand-made inputs: small, with round numbers, so a reader can check the charts by eye.
const hand: Explanation = {
  method: 'kernel-shap',
  explanations: [
    {
      outputs: [
        {
          output: 'p_default',
          outputIndex: 0,
          baselineOutputValue: 0.2,
          instanceOutputValue: 0.7,
          attributions: [
            { feature: 'income', value: 42000, attribution: -0.1, stderr: 0.01 },
            { feature: 'debt_ratio', value: 0.62, attribution: 0.4, stderr: 0.02 },
            { feature: 'age', value: 35, attribution: 0.05, stderr: 0.005 },
            { feature: 'late_payments', value: 3, attribution: 0.15, stderr: 0.01 },
          ],
          approximationError: 0.02,
        },
      ],
      converged: true,
      modelEvaluations: 16,
      computeMs: 1.5,
    },
  ],
};

const importance: Importance = {
  metric: 'accuracy',
  baselineScore: 0.9,
  importances: [
    { feature: 'income', mean: 0.1, std: 0.02, values: [0.08, 0.1, 0.12] },
    { feature: 'age', mean: 0.01, std: 0.01, values: [0, 0.01, 0.02] },
    { feature: 'noise', mean: -0.005, std: 0.005, values: [-0.01, -0.005, 0] },
  ],
  nSamples: 200,
  repeats: 3,
  modelEvaluations: 1800,
  computeMs: 20,
};

const big = exampleExplanation({ features: 20, instances: 40 });
const img = exampleImageExplanation(12);

const charts: Record<string, () => string> = {
  'waterfall.svg': () => renderWaterfall(hand),
  'waterfall-20.svg': () => renderWaterfall(big, { instance: 3, topK: 8 }),
  'force.svg': () => renderForce(hand),
  'force-20.svg': () => renderForce(big, { instance: 1 }),
  'bar.svg': () => renderBar(hand),
  'beeswarm.svg': () => renderBeeswarm(big),
  'mean-abs.svg': () => renderMeanAbs(big.explanations),
  'importance.svg': () => renderImportance(importance),
  'image.svg': () => renderImageAttribution(img.explanation, { image: img.image, shape: img.shape }),
  'groups.svg': () => renderGroupComparison(exampleGroups(), { valueLabel: 'Rate', reference: { value: 0.8, label: 'four-fifths' } }),
};

describe('render: every chart', () => {
  for (const [name, render] of Object.entries(charts)) {
    it(`${name} is well-formed SVG with role=img, viewBox, size, title and desc`, () => {
      const svg = render();
      const root = parseSvg(svg).documentElement;
      assert.equal(root.localName, 'svg');
      assert.equal(root.namespaceURI, 'http://www.w3.org/2000/svg');
      assert.equal(root.getAttribute('role'), 'img');
      assert.match(root.getAttribute('viewBox') ?? '', /^0 0 \d+(\.\d+)? \d+(\.\d+)?$/);
      assert.ok(Number(root.getAttribute('width')) > 0 && Number(root.getAttribute('height')) > 0);
      const [title, desc] = [root.children[0], root.children[1]];
      assert.equal(title.localName, 'title');
      assert.equal(desc.localName, 'desc');
      assert.ok(title.textContent!.length > 10 && desc.textContent!.length > 30);
      assert.ok(!svg.includes('&nbsp;'));
      assert.ok(root.getElementsByTagName('text').length > 0, 'numbers and names are labelled');
    });

    it(`${name} is byte-stable and matches its snapshot`, () => {
      const a = render();
      assert.equal(render(), a);
      matchSnapshot(name, a);
    });
  }

  it('the waterfall describes itself in words', () => {
    const desc = parseSvg(renderWaterfall(hand)).querySelector('desc')!.textContent!;
    assert.match(desc, /output p_default: from E\[f\(X\)\] = 0\.2 to f\(x\) = 0\.7; largest push: debt_ratio \(\+0\.4\)/);
  });

  it('a document passed in gives the same bytes as the shared one', () => {
    const other = new JSDOM('').window.document;
    assert.equal(renderWaterfall(hand, { document: other }), renderWaterfall(hand));
    assert.equal(renderBeeswarm(big, { document: other }), renderBeeswarm(big));
  });

  it('serializeSvg writes the same bytes as the DOM XMLSerializer', () => {
    // serializeSvg is a faster writer for our trees; this holds it to the standard serializer, by
    // re-serializing the parsed output (so no \r in the names: XML parsing turns it into \n).
    const names = ['plain', 'a & b < c > d "q" \'s\'', 'tab\tnew\nline', 'nbsp\u00a0here', 'emoji 😀 ünï', '<script>alert(1)</script>&"'];
    const e = exampleExplanation({ features: 6, instances: 6, names });
    for (const svg of [renderWaterfall(e), renderForce(e), renderBar(e), renderBeeswarm(e), renderMeanAbs(e)]) {
      const node = new window.DOMParser().parseFromString(svg, 'image/svg+xml').documentElement;
      assert.equal(new window.XMLSerializer().serializeToString(node), svg);
    }
  });

  it('characters XML forbids become U+FFFD instead of breaking the SVG', () => {
    const e = exampleExplanation({ features: 3, names: ['bell\u0007', 'nul\u0000', 'lone\ud800surrogate'] });
    for (const svg of [renderWaterfall(e), renderBar(e), renderForce(e)]) {
      const doc = parseSvg(svg);
      const features = Array.from(doc.querySelectorAll('[data-feature]'), (n) => n.getAttribute('data-feature'));
      assert.ok(features.includes('bell\uFFFD') && features.includes('lone\uFFFDsurrogate'));
    }
  });

  it('renderExplanationPlot renders every plot by name, the heatmap by default for images', () => {
    // Text: tokens with their positions.
    const text: Explanation = {
      method: 'partition-shap',
      explanations: [0, 1].map(() => ({
        outputs: [{ output: 'positive', outputIndex: 1, baselineOutputValue: 0.4, instanceOutputValue: 0.9, approximationError: 0, attributions: ['a', 'superb', 'film'].map((w, p) => ({ feature: w, value: p + 3, attribution: p === 1 ? 0.45 : 0.025, position: p })) }],
        converged: true,
        modelEvaluations: 8,
        computeMs: 1,
      })),
    };
    for (const plot of EXPLANATION_PLOTS) {
      const input = plot === 'image' || plot === 'overlay' ? img.explanation : plot === 'tokens' ? text : big;
      const title = parseSvg(renderExplanationPlot(input, plot, { instance: 1 % input.explanations.length })).querySelector('title')!.textContent!;
      assert.ok(title.length > 0, plot);
    }
    assert.equal(defaultPlot(img.explanation), 'image');
    assert.equal(defaultPlot(hand), 'waterfall');
    assert.equal(defaultPlot(text), 'tokens');
    assert.equal(renderExplanationPlot(img.explanation), renderImageAttribution(img.explanation));
  });

  it('out-of-range instances and outputs fail with a clear message', () => {
    assert.throws(() => renderWaterfall(hand, { instance: 3 }), /instance 3 is out of range: the explanation has 1 instance/);
    assert.throws(() => renderBar(hand, { output: 'nope' }), /no output named "nope"; explained outputs: p_default/);
    assert.throws(() => renderImageAttribution(hand, { shape: [3, 3, 1] }), /holds 9 values but there are 4 attributions/);
  });
});

describe('render: waterfall geometry', () => {
  const rowsOf = (svg: string) =>
    Array.from(parseSvg(svg).querySelectorAll('path.bar')).map((g) => {
      const xs = Array.from(g.getAttribute('d')!.matchAll(/[MHL](-?[\d.]+)/g), (m) => Number(m[1]));
      return {
        feature: g.getAttribute('data-feature'),
        count: Number(g.getAttribute('data-count') ?? 1),
        start: Number(g.getAttribute('data-start')),
        end: Number(g.getAttribute('data-end')),
        attribution: Number(g.getAttribute('data-attribution')),
        px: [Math.min(...xs), Math.max(...xs)],
      };
    });

  it('bars chain from the baseline at the bottom to f(x) at the top, sorted by |attribution|', () => {
    const rows = rowsOf(renderWaterfall(hand));
    assert.deepEqual(rows.map((r) => r.feature), ['debt_ratio', 'late_payments', 'income', 'age']);
    assert.equal(rows[rows.length - 1].start, 0.2);
    for (let i = 0; i < rows.length - 1; i++) assert.equal(rows[i].start, rows[i + 1].end);
    assert.ok(Math.abs(rows[0].end - 0.7) < 1e-12);
    for (const r of rows) assert.ok(Math.abs(r.end - r.start - r.attribution) < 1e-12);
  });

  it('bar ends sit where one linear scale puts their values', () => {
    const svg = renderWaterfall(hand);
    const rows = rowsOf(svg);
    // Fit the scale from two bar ends, then every end (and both dashed rules) must agree with it.
    const a = rows[0];
    const lo = (v: number, p: number) => ({ v, p });
    const p1 = lo(Math.min(a.start, a.end), a.px[0]);
    const p2 = lo(Math.max(a.start, a.end), a.px[1]);
    const scale = (v: number) => p1.p + ((v - p1.v) * (p2.p - p1.p)) / (p2.v - p1.v);
    for (const r of rows) {
      assert.ok(Math.abs(r.px[0] - scale(Math.min(r.start, r.end))) < 0.02, `${r.feature} left end`);
      assert.ok(Math.abs(r.px[1] - scale(Math.max(r.start, r.end))) < 0.02, `${r.feature} right end`);
    }
    const rules = Array.from(parseSvg(svg).querySelectorAll('path[stroke-dasharray="4 3"]'), (p) => Number(/^M(-?[\d.]+)/.exec(p.getAttribute('d')!)![1]));
    assert.equal(rules.length, 2);
    assert.ok(Math.abs(rules[0] - scale(0.2)) < 0.02, 'baseline rule');
    assert.ok(Math.abs(rules[1] - scale(0.7)) < 0.02, 'f(x) rule');
  });

  it('top-k keeps the k largest and folds the rest into one row holding their sum', () => {
    const out = big.explanations[5].outputs[0];
    const rows = rowsOf(renderWaterfall(big, { instance: 5, topK: 6 }));
    assert.equal(rows.length, 7);
    const byMagnitude = [...out.attributions].sort((p, q) => Math.abs(q.attribution) - Math.abs(p.attribution));
    assert.deepEqual(rows.slice(0, 6).map((r) => r.feature), byMagnitude.slice(0, 6).map((a) => a.feature));
    const fold = rows[6];
    assert.equal(fold.feature, null);
    assert.equal(fold.count, 14);
    const restSum = byMagnitude.slice(6).reduce((s, a) => s + a.attribution, 0);
    assert.ok(Math.abs(fold.attribution - restSum) < 1e-12);
    assert.equal(fold.start, out.baselineOutputValue);
    assert.ok(Math.abs(rows[0].end - out.instanceOutputValue) < 1e-9);
    assert.match(parseSvg(renderWaterfall(big, { instance: 5, topK: 6 })).querySelector('desc')!.textContent!, /6 of 20 features shown, the other 14 sum to/);
  });

  it('a single leftover feature is drawn itself rather than folded', () => {
    const rows = rowsOf(renderWaterfall(hand, { topK: 3 }));
    assert.equal(rows.length, 4);
    assert.ok(rows.every((r) => r.feature !== null));
  });

  it('an IG completeness gap is reported, not hidden', () => {
    const ig: Explanation = { ...hand, method: 'integrated-gradients' };
    ig.explanations = [{ ...hand.explanations[0], outputs: [{ ...hand.explanations[0].outputs[0], instanceOutputValue: 0.75 }] }];
    const desc = parseSvg(renderWaterfall(ig)).querySelector('desc')!.textContent!;
    assert.match(desc, /from f\(x′\) = 0\.2 to f\(x\) = 0\.75/);
    assert.match(desc, /attributions sum to \+0\.5, leaving \+0\.05 unexplained/);
  });
});

describe('render: feature names are escaped', () => {
  const evil = '<script>alert(1)</script>&"';
  const withEvil = (e: Explanation): Explanation => ({
    ...e,
    explanations: e.explanations.map((inst) => ({
      ...inst,
      outputs: inst.outputs.map((o) => ({ ...o, attributions: o.attributions.map((a, j) => (j === 1 ? { ...a, feature: evil } : a)) })),
    })),
  });
  const evilImportance: Importance = { ...importance, importances: importance.importances.map((f, j) => (j === 0 ? { ...f, feature: evil } : f)) };

  const svgs: Record<string, () => string> = {
    waterfall: () => renderWaterfall(withEvil(hand)),
    force: () => renderForce(withEvil(hand)),
    bar: () => renderBar(withEvil(hand)),
    beeswarm: () => renderBeeswarm(withEvil(big)),
    meanAbs: () => renderMeanAbs(withEvil(big)),
    importance: () => renderImportance(evilImportance),
    groups: () => renderGroupComparison([{ group: evil, values: [{ label: evil, value: 0.5 }] }], { reference: { value: 0.4, label: evil } }),
  };
  for (const [name, render] of Object.entries(svgs)) {
    it(`in the ${name} SVG`, () => {
      const svg = render();
      assert.ok(!svg.includes('<script'), 'no literal <script> in the output');
      const doc = parseSvg(svg);
      assert.equal(doc.getElementsByTagName('script').length, 0);
      const texts = Array.from(doc.querySelectorAll('text, title, desc'), (t) => t.textContent!);
      assert.ok(texts.some((t) => t.includes(evil)), 'the name survives as text');
    });
  }

  it('in the HTML reports', () => {
    for (const html of [renderExplanationReport(withEvil(hand), { name: evil, version: evil }), renderImportanceReport(evilImportance, { name: 'm' })]) {
      assert.ok(!html.includes('<script'));
      const doc = new JSDOM(html).window.document;
      assert.equal(doc.querySelectorAll('script').length, 0);
      const cells = Array.from(doc.querySelectorAll('td'), (td) => td.textContent);
      assert.ok(cells.includes(evil), 'the table cell holds the name');
    }
    const page = renderHtmlReport({ title: evil, subtitle: evil, sections: [{ heading: evil, text: evil, table: { columns: [evil], rows: [[evil]], caption: evil } }], footer: evil });
    const doc = new JSDOM(page).window.document;
    assert.equal(doc.querySelectorAll('script').length, 0);
    assert.equal(doc.title, evil);
    assert.equal(doc.querySelector('h2')!.textContent, evil);
  });
});

describe('render: HTML reports', () => {
  it('a report is one self-contained page with every SVG inline', () => {
    const html = renderExplanationReport(big, { name: 'credit', version: 'abc123' });
    const doc = new JSDOM(html).window.document;
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    assert.equal(doc.querySelectorAll('link, script, img, iframe').length, 0, 'no external assets');
    assert.ok(!/\b(src|href)=/.test(html));
    // Beeswarm and mean |attribution| summaries, then one waterfall per instance shown (10 of 40).
    assert.equal(doc.querySelectorAll('svg').length, 2 + 10);
    assert.match(doc.querySelector('footer')!.textContent!, /30 more instance/);
    assert.ok(Array.from(doc.querySelectorAll('td'), (td) => td.textContent).includes('approximation error'));
  });

  it('image explanations get the heatmap and a shortened attribution table', () => {
    const html = renderExplanationReport(img.explanation, { name: 'digits' });
    const doc = new JSDOM(html).window.document;
    assert.equal(doc.querySelectorAll('svg').length, 1);
    assert.match(doc.querySelector('svg title')!.textContent!, /heatmap/);
    assert.match(html, /The 30 largest of 144 attributions/);
  });

  it('reports are byte-stable and match their snapshots', () => {
    const a = renderExplanationReport(hand, { name: 'credit', version: 'v1' });
    assert.equal(renderExplanationReport(hand, { name: 'credit', version: 'v1' }), a);
    matchSnapshot('report.html', a);
    matchSnapshot('importance-report.html', renderImportanceReport(exampleImportance(6, 4), { name: 'credit' }));
  });
});
