/**
 * Fairness charts and report sections. The charts are `renderGroupComparison` views of a
 * FairnessReport: rates by group with bootstrap intervals and the four-fifths reference line, and
 * mean attribution per feature by group. The sections (html.ts `Section`) carry every number in
 * tables, intervals included.
 */
import type { Estimate, FairnessOutcome, FairnessReport, GroupMetric } from '../monitoring/fairness/index.js';
import type { RenderOptions } from './document.js';
import { renderGroupComparison, type GroupComparison } from './groups.js';
import { renderHtmlReport, type Cell, type Section } from './html.js';
import type { ModelInfo } from './report.js';
import { fmt } from './text.js';

export const FAIRNESS_PLOTS = ['groups', 'attributions'] as const;
export type FairnessPlot = (typeof FAIRNESS_PLOTS)[number];

export interface FairnessChartOptions extends RenderOptions {
  /** Index into report.outcomes; default 0. */
  outcome?: number;
  /** Index into the outcome's breakdowns (sensitive features, then intersections); default 0. */
  breakdown?: number;
  /** Metrics drawn per group; default selection rate, TPR and FPR (classification), mean prediction and label (regression). */
  metrics?: GroupMetric[];
  /** Attribution chart: features drawn, largest share first. Default 10. */
  topK?: number;
}

const METRIC_NAMES: Record<GroupMetric, string> = {
  selectionRate: 'selection rate',
  accuracy: 'accuracy',
  truePositiveRate: 'TPR',
  falsePositiveRate: 'FPR',
  falseNegativeRate: 'FNR',
  precision: 'precision',
  baseRate: 'base rate',
  meanScore: 'mean score',
  meanPrediction: 'mean prediction',
  meanLabel: 'mean label',
  meanAbsoluteError: 'MAE',
  rootMeanSquaredError: 'RMSE',
};

function pickOutcome(report: FairnessReport, i = 0): FairnessOutcome {
  const o = report.outcomes[i];
  if (!o) throw new RangeError(`outcome ${i} is out of range: the report has ${report.outcomes.length}`);
  return o;
}

function outcomeName(o: FairnessOutcome): string {
  if (o.positiveClass === null) return `output ${o.output}`;
  return `positive class ${o.positiveClassName ?? o.positiveClass}`;
}

/** Rates by group with intervals; for classifiers a reference line at four-fifths of the highest selection rate. */
export function renderFairnessGroups(report: FairnessReport, options: FairnessChartOptions = {}): string {
  const o = pickOutcome(report, options.outcome);
  const b = o.breakdowns[options.breakdown ?? 0];
  if (!b) throw new RangeError(`breakdown ${options.breakdown} is out of range: the outcome has ${o.breakdowns.length}`);
  const classification = report.task !== 'regression';
  const metrics =
    options.metrics ??
    (classification
      ? (['selectionRate', 'truePositiveRate', 'falsePositiveRate'] as GroupMetric[])
      : (['meanPrediction', 'meanLabel'] as GroupMetric[]));
  const groups: GroupComparison[] = b.groups
    .filter((g) => g.count > 0)
    .map((g) => ({
      group: `${g.label} (n=${g.count})`,
      values: metrics.flatMap((m) => {
        const e = g.metrics[m];
        if (!e || e.value === null) return [];
        return [{ label: METRIC_NAMES[m], value: e.value, ...(e.lo != null && e.hi != null ? { lo: e.lo, hi: e.hi } : {}) }];
      }),
    }));
  const rates = b.groups.map((g) => g.metrics.selectionRate?.value).filter((v): v is number => typeof v === 'number');
  const top = rates.length ? Math.max(...rates) : undefined;
  const threshold = report.fourFifthsThreshold;
  return renderGroupComparison(groups, {
    document: options.document,
    width: options.width,
    valueLabel: classification ? 'Rate' : 'Value',
    title: `${metrics.map((m) => METRIC_NAMES[m]).join(', ')} by ${b.features.join(' & ')} (${outcomeName(o)})`,
    ...(classification && top !== undefined && metrics.includes('selectionRate')
      ? { reference: { value: threshold * top, label: `${fmt(threshold)} × highest selection rate` } }
      : {}),
  });
}

/** Mean attribution of the top features within each group of one sensitive feature. */
export function renderGroupAttributions(report: FairnessReport, options: FairnessChartOptions = {}): string {
  const o = pickOutcome(report, options.outcome);
  const a = o.attributions;
  if (!a) throw new RangeError('the report has no attributions (they need a background set)');
  const by = a.byGroup[Math.min(options.breakdown ?? 0, a.byGroup.length - 1)];
  const k = options.topK ?? 10;
  // Features that move the groups apart come first (largest spread of their group means); the
  // sensitive features and flagged proxies are always shown, whatever their rank.
  const always = new Set([...a.sensitive.map((s) => s.feature), ...a.proxies.map((p) => p.feature)]);
  const spread = (p: number) => {
    const means = by.groups.filter((g) => g.count > 0).map((g) => g.attributions[p].meanAttribution);
    return means.length ? Math.max(...means) - Math.min(...means) : 0;
  };
  const ranked = a.overall.map((f, p) => ({ f, p, s: spread(p) })).sort((x, y) => y.s - x.s || x.p - y.p);
  const order = ranked.filter((x, i) => i < k || always.has(x.f.feature));
  const groups: GroupComparison[] = order.map(({ f, p }) => ({
    group: f.feature,
    values: by.groups.map((g) => ({ label: g.label, value: g.attributions[p].meanAttribution })),
  }));
  return renderGroupComparison(groups, {
    document: options.document,
    width: options.width,
    valueLabel: `Mean attribution to ${a.output}`,
    title: `Mean attribution by ${by.features.join(' & ')}, largest group difference first (Kernel SHAP, ${a.rows} rows)`,
  });
}

export function renderFairnessChart(report: FairnessReport, plot: FairnessPlot = 'groups', options: FairnessChartOptions = {}): string {
  return plot === 'attributions' ? renderGroupAttributions(report, options) : renderFairnessGroups(report, options);
}

/** "0.443 [0.401, 0.481]", or the value alone without an interval; null as missing. */
function est(e: Estimate | undefined): Cell {
  if (!e || e.value === null) return null;
  if (e.lo === undefined || e.lo === null || e.hi === undefined || e.hi === null) return e.value;
  return `${fmt(e.value)} [${fmt(e.lo)}, ${fmt(e.hi)}]`;
}

export interface FairnessSectionOptions extends RenderOptions {
  /** Breakdowns given their own chart; default all. */
  maxBreakdowns?: number;
}

/** Report sections: a summary with every flag, then per outcome and breakdown a chart and tables. */
export function fairnessSections(report: FairnessReport & { notes?: string[] }, options: FairnessSectionOptions = {}): Section[] {
  const common = { document: options.document, width: options.width };
  const conf = report.bootstrap ? `${Math.round(report.bootstrap.confidence * 100)}%` : null;
  const sections: Section[] = [
    {
      heading: 'Fairness summary',
      text:
        `${report.rows} rows${report.labelled ? ' with labels' : ' without labels'}; sensitive features ${report.sensitiveFeatures.join(', ')}` +
        (report.threshold !== null ? `; decision threshold ${fmt(report.threshold)}` : '') +
        (report.bootstrap
          ? `; ${conf} percentile intervals from ${report.bootstrap.n} bootstrap replicates (seed ${report.bootstrap.seed})`
          : '') +
        '. Definitions follow Fairlearn: differences are max − min (between groups) or the largest |group − overall|, ratios min / max or the smallest group / overall ratio. ' +
        (report.flags.length ? `${report.flags.length} flag(s) raised.` : 'No flags raised.') +
        (report.notes?.length ? ` Notes: ${report.notes.join('; ')}.` : ''),
      ...(report.flags.length
        ? { table: { columns: ['flag', 'features', 'detail'], rows: report.flags.map((f) => [f.kind, f.features.join(', '), f.message]) } }
        : {}),
    },
  ];
  const classification = report.task !== 'regression';
  report.outcomes.forEach((o, oi) => {
    const shown = o.breakdowns.slice(0, options.maxBreakdowns ?? o.breakdowns.length);
    shown.forEach((b, bi) => {
      const metrics = Object.keys(b.groups[0]?.metrics ?? {}) as GroupMetric[];
      sections.push({
        heading: `${b.features.join(' & ')}: ${outcomeName(o)}`,
        svg: renderFairnessGroups(report, { ...common, outcome: oi, breakdown: bi }),
        table: {
          caption: conf ? `Per group, with ${conf} bootstrap intervals` : 'Per group',
          columns: ['group', 'rows', ...metrics.map((m) => METRIC_NAMES[m])],
          rows: [
            ['overall', o.overall.count, ...metrics.map((m) => est(o.overall.metrics[m]))],
            ...b.groups.map((g) => [g.label, g.count, ...metrics.map((m) => est(g.metrics[m]))]),
          ],
        },
      });
      const rows: Cell[][] = [];
      if (b.criteria) {
        const c = b.criteria;
        rows.push([
          'demographic parity (selection rate)',
          est(c.demographicParity.difference),
          est(c.demographicParity.ratio),
          est(c.demographicParity.differenceToOverall),
          est(c.demographicParity.ratioToOverall),
        ]);
        rows.push([
          'equal opportunity (TPR)',
          est(c.equalOpportunity.difference),
          est(c.equalOpportunity.ratio),
          est(c.equalOpportunity.differenceToOverall),
          est(c.equalOpportunity.ratioToOverall),
        ]);
        rows.push([
          'equalized odds (TPR, FPR)',
          est(c.equalizedOdds.difference),
          est(c.equalizedOdds.ratio),
          est(c.equalizedOdds.differenceToOverall),
          est(c.equalizedOdds.ratioToOverall),
        ]);
      }
      for (const m of metrics) {
        const d = b.disparities[m];
        // Selection rate and TPR are the demographic parity and equal opportunity rows above.
        if (!d || (classification && (m === 'selectionRate' || m === 'truePositiveRate'))) continue;
        rows.push([
          METRIC_NAMES[m],
          est(d.differenceBetweenGroups),
          est(d.ratioBetweenGroups),
          est(d.differenceToOverall),
          est(d.ratioToOverall),
        ]);
      }
      const di = b.criteria?.disparateImpact;
      sections.push({
        heading: `Disparities by ${b.features.join(' & ')}: ${outcomeName(o)}`,
        ...(di && di.ratio.value !== null
          ? {
              text:
                `Disparate impact (selection rate of ${di.lowest} / ${di.highest}) is ${fmt(di.ratio.value)}: ` +
                (di.passes
                  ? `at or above the four-fifths threshold ${fmt(di.threshold)}.`
                  : `below the four-fifths threshold ${fmt(di.threshold)}.`),
            }
          : {}),
        table: { columns: ['criterion', 'difference', 'ratio', 'difference to overall', 'ratio to overall'], rows },
      });
    });
    const a = o.attributions;
    if (a) {
      sections.push({
        heading: `Attributions by group: ${outcomeName(o)}`,
        text:
          `Kernel SHAP (link ${String(a.diagnostics.link ?? 'identity')}) on ${a.rows} sampled rows. ` +
          `A proxy is a feature associated with a sensitive feature (Cramér's V or correlation ratio ≥ ${fmt(a.thresholds.minAssociation)}) ` +
          `that carries at least ${fmt(100 * a.thresholds.minShare)}% of the mean |attribution|; a sensitive feature with that share is used directly.`,
        svg: renderGroupAttributions(report, { ...common, outcome: oi }),
        table: {
          caption: 'Sensitive features and their associated features',
          columns: ['feature', 'of', 'measure', 'association', 'NMI', 'share of |attribution|', 'flag'],
          rows: [
            ...a.sensitive.map((s): Cell[] => [s.feature, '', '(itself)', null, null, s.share, s.used ? 'used directly' : '']),
            ...a.associations
              .filter((x) => x.proxy || x.association >= a.thresholds.minAssociation / 2)
              .map((x): Cell[] => [
                x.feature,
                x.sensitiveFeature,
                x.measure,
                x.association,
                x.normalizedMutualInformation,
                x.attributionShare,
                x.proxy ? 'proxy' : '',
              ]),
          ],
        },
      });
    }
  });
  return sections;
}

/** A standalone HTML page for a fairness report. */
export function renderFairnessReport(
  report: FairnessReport & { notes?: string[] },
  model: ModelInfo,
  options: FairnessSectionOptions = {},
): string {
  return renderHtmlReport({
    title: `Fairness: ${model.name}`,
    subtitle: model.version ? `version ${model.version}` : undefined,
    sections: fairnessSections(report, options),
  });
}
