/**
 * The fairness assessment end to end: sensitive groups from the rows, the model's decisions, the
 * group metrics and disparities (report.ts), and attributions by group with proxies
 * (attributions.ts). The steps are exported one by one so the server can run the model calls
 * on its executor (worker threads) and the rest here; `assessFairness` runs them all in-process
 * (CLI, jobs, tests).
 */
import { kernelShap } from '../../explainers/kernelShap.js';
import type { LinkName } from '../../explainers/link.js';
import { ExplainerInputError, type Explanation, type FeatureSpace, type Model, type Rows } from '../../explainers/types.js';
import type { FeatureInfo } from '../features.js';
import { pickRows, sampleRows } from '../sample.js';
import { groupAttributionReport } from './attributions.js';
import { groupBy, intersect, resolveSensitive, type Grouping, type SensitiveAttribute } from './groups.js';
import { fairnessReport } from './report.js';
import type { FairnessOptions, FairnessReport, ProxyOptions } from './types.js';

export interface FairnessGroupings {
  sensitive: SensitiveAttribute[];
  /** One grouping per sensitive attribute, in order. */
  single: Grouping[];
  /** `single`, then the intersection of every pair. */
  all: Grouping[];
}

export function prepareGroupings(
  rows: Rows,
  space: FeatureSpace,
  names: string[],
  info: FeatureInfo = {},
  intersections = true,
): FairnessGroupings {
  const sensitive = resolveSensitive(names, space, info);
  const single = sensitive.map((s) => groupBy(rows, s, space.featureNames));
  const pairs: Grouping[] = [];
  if (intersections)
    for (let a = 0; a < single.length; a++) for (let b = a + 1; b < single.length; b++) pairs.push(intersect(single[a], single[b]));
  return { sensitive, single, all: [...single, ...pairs] };
}

export interface AttributionSettings {
  /** Rows explained, a seeded sample of the data. Default 200. */
  sampleSize?: number;
  /** Kernel SHAP coalitions per row. Default 256. */
  nSamples?: number;
  seed?: number;
  link?: LinkName;
  background: Rows;
  /** The background is summarised to this many k-means centroids. Default 50. */
  maxBackground?: number;
  deadline?: number;
}

export const DEFAULT_ATTRIBUTION_SAMPLE = 200;
export const DEFAULT_ATTRIBUTION_NSAMPLES = 256;
export const DEFAULT_ATTRIBUTION_BACKGROUND = 50;

/** Outputs the report's outcomes are read from (what Kernel SHAP must explain). */
export function outcomeOutputs(report: FairnessReport): number[] {
  return Array.from(new Set(report.outcomes.map((o) => o.output)));
}

/** Adds attributions by group to each outcome of a report, and their flags to the report's. */
export function attachAttributions(
  report: FairnessReport,
  input: {
    rows: Rows;
    space: FeatureSpace;
    info?: FeatureInfo;
    groupings: FairnessGroupings;
    sample: ArrayLike<number>;
    explanation: Explanation;
  },
  proxy: ProxyOptions = {},
): FairnessReport {
  const outcomes = report.outcomes.map((o) => {
    const attributions = groupAttributionReport(
      {
        rows: input.rows,
        space: input.space,
        info: input.info,
        sensitive: input.groupings.sensitive,
        groupings: input.groupings.single,
        sample: input.sample,
        explanation: input.explanation,
        outputIndex: o.output,
        positiveClass: o.positiveClass,
      },
      proxy,
    );
    return { ...o, attributions, flags: [...o.flags, ...attributions.flags] };
  });
  return { ...report, outcomes, flags: outcomes.flatMap((o) => o.flags) };
}

export interface AssessFairnessOptions extends FairnessOptions {
  space: FeatureSpace;
  info?: FeatureInfo;
  sensitiveFeatures: string[];
  /** Intersections of every pair of sensitive features. Default true. */
  intersections?: boolean;
  attributions?: AttributionSettings;
  proxy?: ProxyOptions;
}

export async function assessFairness(
  model: Model,
  rows: Rows,
  labels: ArrayLike<number> | undefined,
  options: AssessFairnessOptions,
): Promise<FairnessReport> {
  if (rows.d !== model.nFeatures)
    throw new ExplainerInputError('BAD_DATA', `rows have ${rows.d} values but the model takes ${model.nFeatures}`);
  const groupings = prepareGroupings(rows, options.space, options.sensitiveFeatures, options.info, options.intersections ?? true);
  const predictions = await model.predict(rows);
  let report = fairnessReport({ predictions, nOutputs: model.nOutputs, n: rows.n, labels, groupings: groupings.all }, options);
  const a = options.attributions;
  if (a) {
    const sample = sampleRows(rows.n, a.sampleSize ?? DEFAULT_ATTRIBUTION_SAMPLE, a.seed ?? 0);
    const explanation = await kernelShap(model, pickRows(rows, sample), {
      space: options.space,
      background: a.background,
      outputs: outcomeOutputs(report),
      nSamples: a.nSamples ?? DEFAULT_ATTRIBUTION_NSAMPLES,
      seed: a.seed ?? 0,
      link: a.link,
      maxBackground: a.maxBackground ?? DEFAULT_ATTRIBUTION_BACKGROUND,
      deadline: a.deadline,
    });
    report = attachAttributions(report, { rows, space: options.space, info: options.info, groupings, sample, explanation }, options.proxy);
  }
  return report;
}
