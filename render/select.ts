/** Picking what a chart shows out of an `Explanation`, and the top-k + "N other features" fold. */
import type { Explanation, FeatureAttribution, InstanceExplanation, OutputExplanation } from '../explainers/types.js';

export interface PickOptions {
  /** Which instance of `explanation.explanations`; default 0. */
  instance?: number;
  /**
   * Which explained output: a position in the instance's `outputs` list (0 = the first explained
   * output, whatever its model index) or an output name. Default 0.
   */
  output?: number | string;
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

/** One row of a ranked chart: a feature, or the fold of all the features below the top k. */
export interface Row {
  label: string;
  /** The untruncated name, for the <title> tooltip; absent for the fold row. */
  feature?: string;
  value?: number;
  attribution: number;
  stderr?: number;
  /** How many features the row stands for: 1, or N for "N other features". */
  count: number;
}

/**
 * The top `k` attributions by |attribution| (ties keep feature order, so output is stable), and the
 * rest summed into one row. When only one feature would be folded it is shown itself instead.
 */
export function topK(attributions: FeatureAttribution[], k = 10): Row[] {
  const order = attributions
    .map((a, i) => ({ a, i }))
    .sort((p, q) => Math.abs(q.a.attribution) - Math.abs(p.a.attribution) || p.i - q.i)
    .map((p) => p.a);
  const keep = order.length <= k + 1 ? order : order.slice(0, Math.max(0, k));
  const rows: Row[] = keep.map((a) => ({
    label: a.feature,
    feature: a.feature,
    value: a.value,
    attribution: a.attribution,
    stderr: a.stderr,
    count: 1,
  }));
  const rest = order.slice(keep.length);
  if (rest.length > 0) {
    // Independent estimates: the folded stderr adds in quadrature when every member has one.
    const withErr = rest.every((a) => a.stderr !== undefined);
    rows.push({
      label: `${rest.length} other features`,
      attribution: rest.reduce((s, a) => s + a.attribution, 0),
      stderr: withErr ? Math.sqrt(rest.reduce((s, a) => s + a.stderr! ** 2, 0)) : undefined,
      count: rest.length,
    });
  }
  return rows;
}

/** Methods whose attributions are Shapley values of Kernel SHAP's game (baseline E[f(X)]). */
export function isKernelShapGame(method: Explanation['method']): boolean {
  return method === 'kernel-shap' || method === 'amortised-shap';
}

/** What the baseline is called for a method: the SHAP expectation, or IG's baseline input x'. */
export function baselineName(explanation: Explanation): string {
  return isKernelShapGame(explanation.method) ? 'E[f(X)]' : 'f(x′)';
}

/** "p_default", with the link noted when SHAP worked in logit space. */
export function outputTitle(explanation: Explanation, out: OutputExplanation): string {
  const link = explanation.diagnostics?.link;
  return link && link !== 'identity' ? `${out.output} (${String(link)} scale)` : out.output;
}

export function methodName(explanation: Explanation): string {
  return isKernelShapGame(explanation.method) ? 'SHAP values' : 'Integrated Gradients attributions';
}
