/**
 * Models written in plain JS for tests of the server and explainers: their outputs and gradients
 * come from closed forms, not from our code.
 */
import type { FeatureSpace, Model, Rows } from '../../explainers/types.js';
import type { ServedModel } from '../../models/served.js';

/** f(x) = w . x + b, with analytic gradients. */
export function linearModel(w: number[], b = 0): Model {
  const d = w.length;
  return {
    nFeatures: d,
    nOutputs: 1,
    async predict(rows: Rows) {
      const out = new Float32Array(rows.n);
      for (let i = 0; i < rows.n; i++) {
        let s = b;
        for (let j = 0; j < d; j++) s += w[j] * rows.data[i * d + j];
        out[i] = s;
      }
      return out;
    },
    async inputGradients(rows: Rows) {
      const g = new Float32Array(rows.n * d);
      for (let i = 0; i < rows.n; i++) for (let j = 0; j < d; j++) g[i * d + j] = w[j];
      return g;
    },
  };
}

export function served(name: string, model: Model, opts: Partial<ServedModel> = {}): ServedModel {
  const space: FeatureSpace = opts.space ?? {
    featureNames: Array.from({ length: model.nFeatures }, (_, i) => `x${i}`),
    outputNames: Array.from({ length: model.nOutputs }, (_, i) => `y${i}`),
  };
  const inputShape = opts.inputShape ?? [model.nFeatures];
  return {
    name,
    version: opts.version ?? 'test-v1',
    model,
    space,
    inputShape,
    background: opts.background,
    reference: opts.reference,
    metadata: opts.metadata,
    describe: () => ({
      name,
      version: opts.version ?? 'test-v1',
      inputShape,
      features: space.featureNames.map((n) => ({ name: n })),
      outputs: space.outputNames.map((n) => ({ name: n })),
    }),
  };
}
