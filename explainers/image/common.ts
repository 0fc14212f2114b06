/**
 * What the image explainers share: the image shape from the feature space, checks of instances and
 * outputs (each a stable 4xx-mappable code), and assembling the shared Explanation shape.
 */
import { checkRows } from '../rows.js';
import { ExplainerInputError, type FeatureSpace, type Model, type OutputExplanation, type Rows } from '../types.js';

export interface ImageShape {
  h: number;
  w: number;
  c: number;
}

/** [h, w, c] (or [h, w]) from space.inputShape, checked against the model's input size. */
export function imageShape(model: Model, space: FeatureSpace, method: string): ImageShape {
  const s = space?.inputShape;
  if (!s || s.length < 2 || s.length > 3 || !s.every((v) => Number.isInteger(v) && v > 0))
    throw new ExplainerInputError('NOT_AN_IMAGE', `${method} explains image models: the model's inputShape must be [height, width, channels] or [height, width], got ${s ? `[${s}]` : 'none'}`);
  const [h, w, c = 1] = s;
  if (h * w * c !== model.nFeatures)
    throw new ExplainerInputError('BAD_SHAPE', `inputShape [${s}] has ${h * w * c} values but the model takes ${model.nFeatures}`);
  return { h, w, c };
}

/** Images sent by the caller (explainers/rows.ts checkRows, worded for images): BAD_INSTANCES otherwise. */
export function checkInstances(instances: Rows, d: number, what = 'instances'): void {
  checkRows(instances, d, { code: 'BAD_INSTANCES', what, tooFew: { message: `${what} must hold at least one image` }, fix: "send images of the model's input shape" });
}

/** The outputs to explain (default all), each checked. */
export function resolveOutputs(model: Model, outputs?: number[]): number[] {
  const out = outputs ?? Array.from({ length: model.nOutputs }, (_, i) => i);
  if (!Array.isArray(out) || out.length === 0) throw new ExplainerInputError('BAD_OUTPUTS', 'outputs must list at least one output index');
  for (const o of out)
    if (!Number.isInteger(o) || o < 0 || o >= model.nOutputs)
      throw new ExplainerInputError('BAD_OUTPUTS', `output ${o} does not exist: the model has outputs 0..${model.nOutputs - 1}`);
  if (new Set(out).size !== out.length) throw new ExplainerInputError('BAD_OUTPUTS', 'outputs lists an output twice');
  return out;
}

export function checkInteger(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new ExplainerInputError('BAD_PARAMETER', `${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  return v;
}

export function checkNumber(name: string, v: number, min: number, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw new ExplainerInputError('BAD_PARAMETER', `${name} must be a number from ${min}${max < Infinity ? ` to ${max}` : ''}, got ${String(v)}`);
  return v;
}

export function row(rows: Rows, i: number): Float32Array {
  return rows.data.subarray(i * rows.d, (i + 1) * rows.d);
}

/** One explained output in the shared shape: attributions in input order. */
export function outputExplanation(
  space: FeatureSpace,
  o: number,
  x: Float32Array,
  attributions: ArrayLike<number>,
  values: { baseline: number; instance: number; error: number },
  stderr?: ArrayLike<number>,
): OutputExplanation {
  return {
    output: space.outputNames[o] ?? `y${o}`,
    outputIndex: o,
    baselineOutputValue: values.baseline,
    instanceOutputValue: values.instance,
    attributions: Array.from(x, (v, j) => ({
      feature: space.featureNames[j] ?? `x${j}`,
      value: v,
      attribution: attributions[j],
      ...(stderr ? { stderr: stderr[j] } : {}),
    })),
    approximationError: values.error,
  };
}

/** Sum over channels: a [h, w] map from a flat [h, w, c] array. */
export function pixelSums(a: ArrayLike<number>, shape: ImageShape): Float64Array {
  const { h, w, c } = shape;
  const out = new Float64Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let ch = 0; ch < c; ch++) s += a[p * c + ch];
    out[p] = s;
  }
  return out;
}
