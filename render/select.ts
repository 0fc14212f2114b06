/**
 * Picking what a chart shows out of an `Explanation`: the instance and output, the rows (features,
 * and one-hot groups as one row each), the top-k + "N other features" fold, how values read, and the
 * header line that says which instance and output a chart explains and the model's value for it.
 */
import type { Explanation, FeatureAttribution, InstanceExplanation, OutputExplanation } from '../explainers/types.js';
import { fmt, fmtValue } from './text.js';

/** What charts know about the model beyond the explanation (from its metadata); every field optional. */
export interface ChartContext {
  /** Per feature name: metadata's type (integer features print without thousands separators), unit and category labels. */
  features?: Record<string, FeatureFacts>;
  /** The model is a classifier: its outputs are class probabilities (charts say "p = 0.93"). */
  classifier?: boolean;
  /** Which outputs the instances explain; 'predicted-class' makes the header say "(predicted)". */
  outputSelection?: 'requested' | 'all' | 'predicted-class';
}

export interface FeatureFacts {
  type?: string;
  unit?: string;
  categories?: { value: number; label: string }[];
}

export interface PickOptions {
  /** Which instance of `explanation.explanations`; default 0. */
  instance?: number;
  /**
   * Which explained output: a position in the instance's `outputs` list (0 = the first explained
   * output, whatever its model index) or an output name. Default 0.
   */
  output?: number | string;
  context?: ChartContext;
}

export function pickInstance(explanation: Explanation, instance = 0): InstanceExplanation {
  const n = explanation.explanations.length;
  if (!Number.isInteger(instance) || instance < 0 || instance >= n) {
    throw new RangeError(`instance ${instance} is out of range: the explanation has ${n} instance(s)`);
  }
  return explanation.explanations[instance];
}

export function pickOutput(outputs: OutputExplanation[], output: number | string = 0): OutputExplanation {
  if (typeof output === 'string') {
    const found = outputs.find((o) => o.output === output);
    if (!found) throw new RangeError(`no output named "${output}"; explained outputs: ${outputs.map((o) => o.output).join(', ')}`);
    return found;
  }
  if (!Number.isInteger(output) || output < 0 || output >= outputs.length) {
    throw new RangeError(`output ${output} is out of range: ${outputs.length} output(s) were explained`);
  }
  return outputs[output];
}

export function pick(explanation: Explanation, options: PickOptions = {}): OutputExplanation {
  return pickOutput(pickInstance(explanation, options.instance).outputs, options.output);
}

/** Whether a feature's whole values read without thousands separators (years, counts, codes: 1970, not 1,970). */
export function plainIntegers(facts?: FeatureFacts): boolean {
  return facts?.type === 'integer' || facts?.type === 'categorical' || facts?.type === 'binary' || facts?.type === 'one-hot';
}

/** An integer as a plain-integer feature's value reads: no separators, a true minus sign. */
export function plainInteger(value: number): string {
  return String(value).replace('-', '−');
}

/** A feature's value as a label reads it: its category label, an integer without separators, or ~3 digits. */
export function valueText(value: number, facts?: FeatureFacts): string {
  const label = facts?.categories?.find((c) => c.value === value)?.label;
  if (label !== undefined) return label;
  if (plainIntegers(facts) && Number.isInteger(value)) return plainInteger(value);
  return fmtValue(value);
}

/** One chart row: a feature, a one-hot group, or (in ranked charts) the fold of the rest. */
export interface Item {
  /** The feature's or group's name. */
  name: string;
  /** The value as read ("mortgage", "1970", "77,300"); absent for a fold. */
  valueText?: string;
  /** The value as a number (features), for colour scales. */
  value?: number;
  attribution: number;
  stderr?: number;
  /** The feature names the row stands for (a group's members, or the one feature). */
  features: string[];
}

/**
 * The rows of one explained output, in feature order: each one-hot group (out.groups) as one row named
 * by the group, valued by its active category, at its first member's place; every other feature alone.
 */
export function items(out: OutputExplanation, context?: ChartContext): Item[] {
  const groupOf = new Map<string, NonNullable<OutputExplanation['groups']>[number]>();
  for (const g of out.groups ?? []) for (const f of g.members) groupOf.set(f, g);
  const done = new Set<string>();
  const rows: Item[] = [];
  for (const a of out.attributions) {
    const g = groupOf.get(a.feature);
    if (!g) {
      rows.push(featureItem(a, context));
    } else if (!done.has(g.group)) {
      done.add(g.group);
      rows.push({
        name: g.group,
        valueText: g.active ?? 'none',
        attribution: g.attribution,
        ...(g.stderr !== undefined ? { stderr: g.stderr } : {}),
        features: g.members,
      });
    }
  }
  return rows;
}

function featureItem(a: FeatureAttribution, context?: ChartContext): Item {
  return {
    name: a.feature,
    valueText: valueText(a.value, context?.features?.[a.feature]),
    value: a.value,
    attribution: a.attribution,
    ...(a.stderr !== undefined ? { stderr: a.stderr } : {}),
    features: [a.feature],
  };
}

/** One row of a ranked chart: a feature or group, or the fold of all the rows below the top k. */
export interface Row {
  label: string;
  /** The untruncated name, for the <title> tooltip and data-feature; absent for the fold row. */
  feature?: string;
  valueText?: string;
  attribution: number;
  stderr?: number;
  /** How many rows it stands for: 1, or N for "N other features". */
  count: number;
}

/**
 * The top `k` rows by |attribution| (ties keep feature order, so output is stable), and the rest
 * summed into one row. When only one row would be folded it is shown itself instead.
 */
export function topK(rows: Item[], k = 10): Row[] {
  const order = rows
    .map((a, i) => ({ a, i }))
    .sort((p, q) => Math.abs(q.a.attribution) - Math.abs(p.a.attribution) || p.i - q.i)
    .map((p) => p.a);
  const keep = order.length <= k + 1 ? order : order.slice(0, Math.max(0, k));
  const out: Row[] = keep.map((a) => ({
    label: a.name,
    feature: a.name,
    valueText: a.valueText,
    attribution: a.attribution,
    stderr: a.stderr,
    count: 1,
  }));
  const rest = order.slice(keep.length);
  if (rest.length > 0) {
    // Independent estimates: the folded stderr adds in quadrature when every member has one.
    const withErr = rest.every((a) => a.stderr !== undefined);
    out.push({
      label: `${rest.length} other features`,
      attribution: rest.reduce((s, a) => s + a.attribution, 0),
      stderr: withErr ? Math.sqrt(rest.reduce((s, a) => s + a.stderr! ** 2, 0)) : undefined,
      count: rest.length,
    });
  }
  return out;
}

/** What the baseline is called for a method: the SHAP expectation, or IG's baseline input x'. */
export function baselineName(explanation: Explanation): string {
  return explanation.method === 'kernel-shap' ? 'E[f(X)]' : 'f(x′)';
}

/** The link the explanation's values are in ('identity' when none). */
export function linkOf(explanation: Explanation): string {
  const link = explanation.diagnostics?.link;
  return typeof link === 'string' ? link : 'identity';
}

/** "p_default", with the link noted when SHAP worked in logit space. */
export function outputTitle(explanation: Explanation, out: OutputExplanation | string): string {
  const name = typeof out === 'string' ? out : out.output;
  const link = linkOf(explanation);
  return link !== 'identity' ? `${name} (${link} scale)` : name;
}

/** For axis titles already in parentheses: "approved, logit scale" (the link noted, no nested parentheses). */
export function impactOn(explanation: Explanation, out: OutputExplanation | string): string {
  const name = typeof out === 'string' ? out : out.output;
  const link = linkOf(explanation);
  return link !== 'identity' ? `${name}, ${link} scale` : name;
}

export function methodName(explanation: Explanation): string {
  return explanation.method === 'kernel-shap' ? 'SHAP values' : 'Integrated Gradients attributions';
}

/** The model's own output for the instance: f(x), taken back out of the link's scale (a probability for logit). */
export function modelValue(explanation: Explanation, out: OutputExplanation): number {
  const v = out.instanceOutputValue;
  return linkOf(explanation) === 'logit' ? 1 / (1 + Math.exp(-v)) : v;
}

/**
 * The chart's header: which instance (when the explanation has several, numbered from 0 as the
 * `instance` option is), which output, and the model's value for it:
 * "Instance 2 of 3 · explaining class Gentoo (predicted), p = 0.98".
 */
export function headerText(explanation: Explanation, out: OutputExplanation, options: PickOptions = {}): string {
  const n = explanation.explanations.length;
  const i = options.instance ?? 0;
  const ctx = options.context;
  const parts: string[] = [];
  if (n > 1) parts.push(`Instance ${i} of ${n}`);
  const v = modelValue(explanation, out);
  if (ctx?.classifier) {
    const predicted = ctx.outputSelection === 'predicted-class' ? ' (predicted)' : '';
    parts.push(`explaining class ${out.output}${predicted}, p = ${v.toFixed(2)}`);
  } else {
    parts.push(`explaining ${out.output}, f(x) = ${fmt(v)}`);
  }
  const s = parts.join(' · ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}
