/**
 * HTML reports for an explanation and for permutation importance: the charts that fit the data, and
 * tables with every number, including the quality figures a reader needs to trust the charts.
 */
import type { Explanation, Importance, OutputExplanation } from '../explainers/types.js';
import type { RenderOptions } from './document.js';
import { renderBar } from './bar.js';
import { renderBeeswarm, renderMeanAbs } from './beeswarm.js';
import { renderForce } from './force.js';
import { renderHtmlReport, type Section } from './html.js';
import { renderImageAttribution } from './image.js';
import { renderImportance } from './importance.js';
import { renderTextTokensHtml } from './textTokens.js';
import { baselineName, headerText, items, methodName, type ChartContext } from './select.js';
import { fmt } from './text.js';
import { renderWaterfall } from './waterfall.js';

export interface ModelInfo {
  name: string;
  version?: string;
  description?: string;
}

export interface ExplanationReportOptions extends RenderOptions {
  /** Chart per instance and output for tabular models; default 'waterfall'. */
  chart?: 'waterfall' | 'bar' | 'force';
  /** Instances given their own section; default 10 (the summary covers all of them). */
  maxInstances?: number;
  topK?: number;
  /** Attribution table rows per section; default all for tabular models, 30 for images. */
  maxTableRows?: number;
  title?: string;
  /** What the charts know about the model (feature types, category labels, classifier). */
  context?: ChartContext;
}

/** Image models: an input shape of [h, w] or [h, w, c] holding every attribution. */
function isImage(explanation: Explanation, out: OutputExplanation): boolean {
  const s = explanation.inputShape;
  return !!s && (s.length === 2 || s.length === 3) && s.reduce((a, b) => a * b, 1) === out.attributions.length && s[0] > 1 && s[1] > 1;
}

export function renderExplanationReport(explanation: Explanation, model: ModelInfo, options: ExplanationReportOptions = {}): string {
  const n = explanation.explanations.length;
  const shown = Math.min(n, options.maxInstances ?? 10);
  const common = { document: options.document, width: options.width, topK: options.topK, context: options.context };
  const what = methodName(explanation);
  const sections: Section[] = [
    {
      heading: 'Overview',
      table: {
        columns: ['', ''],
        rows: [
          ['Model', model.version ? `${model.name} (version ${model.version})` : model.name],
          ['Method', explanation.method],
          ['Instances', n],
          ['Outputs', Array.from(new Set(explanation.explanations.flatMap((e) => e.outputs.map((o) => o.output)))).join(', ')],
          ...Object.entries(explanation.diagnostics ?? {}).map(([k, v]): [string, string | number] => [k, typeof v === 'number' ? v : JSON.stringify(v)]),
        ],
      },
      text: model.description,
    },
  ];

  // Every output some instance explains, in model order (instances may explain different ones: each its predicted class).
  const explained = new Map<number, OutputExplanation>();
  for (const e of explanation.explanations) for (const o of e.outputs) if (!explained.has(o.outputIndex)) explained.set(o.outputIndex, o);
  const outputs = [...explained].sort((a, b) => a[0] - b[0]).map(([, o]) => o);
  // A summary only says something with several instances, and only for tabular features.
  if (n >= 5) {
    outputs.forEach((o) => {
      if (isImage(explanation, o)) return;
      const covered = explanation.explanations.filter((e) => e.outputs.some((x) => x.outputIndex === o.outputIndex)).length;
      if (covered < 2) return;
      const of = covered < n ? `${covered} of ${n}` : `${n}`;
      sections.push({ heading: `Summary over ${of} instances: ${o.output}`, svg: renderBeeswarm(explanation, { ...common, output: o.output }) });
      sections.push({ heading: `Mean |attribution|: ${o.output}`, svg: renderMeanAbs(explanation, { ...common, output: o.output }) });
    });
  }

  for (let i = 0; i < shown; i++) {
    const inst = explanation.explanations[i];
    inst.outputs.forEach((o, k) => {
      const image = isImage(explanation, o);
      const text = !image && o.attributions[0]?.position !== undefined;
      const pickOpts = { ...common, instance: i, output: k };
      const chart = options.chart ?? 'waterfall';
      // Text: the tokens as highlighted, selectable HTML rather than a picture.
      const svg = image
        ? renderImageAttribution(explanation, pickOpts)
        : text
          ? undefined
          : chart === 'bar'
            ? renderBar(explanation, pickOpts)
            : chart === 'force'
              ? renderForce(explanation, pickOpts)
              : renderWaterfall(explanation, pickOpts);
      const sum = o.attributions.reduce((s, a) => s + a.attribution, 0);
      const limit = options.maxTableRows ?? (image ? 30 : Infinity);
      // One-hot groups as one row, as in the charts (images and texts have none: each pixel or token its own row).
      const all: { name: string; valueText?: string; value?: number; position?: number; attribution: number; stderr?: number }[] =
        image || text
          ? o.attributions.map((a) => ({ name: a.feature, value: a.value, position: a.position, attribution: a.attribution, stderr: a.stderr }))
          : items(o, options.context);
      const ranked = all
        .map((a, j) => ({ a, j }))
        .sort((p, q) => Math.abs(q.a.attribution) - Math.abs(p.a.attribution) || p.j - q.j)
        .slice(0, limit);
      sections.push({
        heading: `Instance ${i}: ${o.output}`,
        text: headerText(explanation, o, { instance: i, context: options.context }) + '.',
        svg,
        ...(text ? { html: renderTextTokensHtml(explanation, { instance: i, output: k }) } : {}),
        table: {
          caption: 'Quality',
          columns: ['figure', 'value'],
          rows: [
            [baselineName(explanation), o.baselineOutputValue],
            ['f(x)', o.instanceOutputValue],
            ['sum of attributions', sum],
            ['approximation error', o.approximationError],
            ['converged', inst.converged],
            ['stop reason', inst.stopReason ?? (inst.converged ? 'converged' : 'not converged')],
            ['model evaluations', inst.modelEvaluations],
            ['compute ms', inst.computeMs],
          ],
        },
      });
      sections.push({
        heading: `Attributions, instance ${i}: ${o.output}`,
        table: {
          caption:
            ranked.length < all.length
              ? `The ${ranked.length} largest of ${all.length} attributions, by |attribution|`
              : `${what}, by |attribution|${all.length < o.attributions.length ? ' (one-hot groups as one row)' : ''}`,
          columns: text ? ['token', 'position', 'token id', 'attribution', 'stderr'] : ['feature', 'value', 'attribution', 'stderr'],
          rows: ranked.map(({ a }) =>
            text ? [a.name, a.position ?? null, a.value ?? null, a.attribution, a.stderr] : [a.name, a.valueText ?? a.value ?? null, a.attribution, a.stderr],
          ),
        },
      });
    });
  }

  return renderHtmlReport({
    title: options.title ?? `${what}: ${model.name}`,
    subtitle: `${n} instance(s), method ${explanation.method}${model.version ? `, model version ${model.version}` : ''}`,
    sections,
    footer: n > shown ? `${n - shown} more instance(s) are in the summary but have no section of their own.` : undefined,
  });
}

export function renderImportanceReport(importance: Importance, model: ModelInfo, options: RenderOptions & { topK?: number; title?: string } = {}): string {
  const metrics = [importance.metric, ...Object.keys(importance.others ?? {})];
  const sections: Section[] = [
    {
      heading: 'Overview',
      text: model.description,
      table: {
        columns: ['', ''],
        rows: [
          ['Model', model.version ? `${model.name} (version ${model.version})` : model.name],
          ['Metrics', metrics.join(', ')],
          ['Samples', importance.nSamples],
          ['Repeats', importance.repeats],
          ['Model evaluations', importance.modelEvaluations],
          ['Compute ms', importance.computeMs],
        ],
      },
    },
  ];
  for (const metric of metrics) {
    const set = metric === importance.metric ? importance : importance.others![metric];
    sections.push({
      heading: `Permutation importance: ${metric}`,
      svg: renderImportance(importance, { ...options, metric }),
      table: {
        caption: `Baseline ${metric}: ${fmt(set.baselineScore)}`,
        columns: ['feature', 'mean', 'std', 'min', 'max'],
        rows: [...set.importances]
          .sort((a, b) => b.mean - a.mean)
          .map((f) => [f.feature, f.mean, f.std, Math.min(...f.values), Math.max(...f.values)]),
      },
    });
  }
  return renderHtmlReport({ title: options.title ?? `Permutation importance: ${model.name}`, subtitle: model.version ? `model version ${model.version}` : undefined, sections });
}
