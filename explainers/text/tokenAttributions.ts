/**
 * Token attributions for text models whose input is a row of token ids (models/tokenizer.ts turns
 * text into such rows). Features are the instance's own tokens, in order, with their positions.
 * - `tokenIntegratedGradients`: Integrated Gradients in the embedding space (Captum's
 *   LayerIntegratedGradients): the path runs from the embeddings of a baseline sequence (every token
 *   replaced by `baselineId`, the pad token by default) to the instance's embeddings; a token's
 *   attribution sums over its embedding dimensions. Complete: the sum equals f(x) - f(baseline ids),
 *   and the gap is reported. All path points of all instances go to layerGradients in one call.
 * - `tokenShap`: Shapley values over tokens with a mask token standing for a removed one; 'partition'
 *   (Owen values over contiguous halves of the sentence, as shap's Text masker) or 'kernel' (our
 *   Kernel SHAP on a model over token-presence indicators, unchanged).
 */
import { kernelShap } from '../kernelShap.js';
import { owenValues, sequenceTree } from '../partition.js';
import { gaussLegendre } from '../quadrature.js';
import {
  ExplainerInputError,
  type CommonOptions,
  type Explanation,
  type FeatureAttribution,
  type InstanceExplanation,
  type Model,
  type OutputExplanation,
  type Rows,
  type StopReason,
} from '../types.js';

export interface TextOptions extends CommonOptions {
  /** The kept tokens of each instance (positions 0..k-1 of its row); the rest of the row is padding. */
  tokens: string[][];
}

export interface TokenIgOptions extends TextOptions {
  /** The embedding layer's name; default the model's first Embedding layer. */
  layer?: string;
  /** Token id of the baseline sequence (the pad id). */
  baselineId: number;
  /** Gauss-Legendre points along the path. Default 64. */
  steps?: number;
}

export interface TokenShapOptions extends TextOptions {
  /** Token id put in place of a removed token. */
  maskId: number;
  algorithm?: 'partition' | 'kernel';
  /** Partition: coalitions per instance (default 500). */
  maxEvaluations?: number;
  nSamples?: number | 'auto';
  seed?: number;
}

function check(model: Model, rows: Rows, o: TextOptions): number[] {
  const L = model.nFeatures;
  if (rows.d !== L || rows.data.length !== rows.n * L) throw new ExplainerInputError('BAD_INSTANCES', `token rows must have ${L} ids each`);
  if (!Array.isArray(o.tokens) || o.tokens.length !== rows.n) throw new ExplainerInputError('BAD_INSTANCES', 'tokens must list the tokens of every instance');
  o.tokens.forEach((t, i) => {
    if (t.length === 0) throw new ExplainerInputError('EMPTY_TEXT', `instance ${i} has no tokens`);
    if (t.length > L) throw new ExplainerInputError('BAD_INSTANCES', `instance ${i} has ${t.length} tokens, more than the model's ${L}`);
  });
  const outs = o.outputs ?? Array.from({ length: model.nOutputs }, (_, i) => i);
  for (const k of outs) if (!Number.isInteger(k) || k < 0 || k >= model.nOutputs) throw new ExplainerInputError('BAD_OUTPUTS', `output ${k} does not exist: the model has outputs 0..${model.nOutputs - 1}`);
  return outs;
}

function tokenOutput(o: number, space: TextOptions['space'], tokens: string[], ids: Float32Array, phi: ArrayLike<number>, v: { baseline: number; instance: number; error: number }, se?: ArrayLike<number>): OutputExplanation {
  const attributions: FeatureAttribution[] = tokens.map((t, p) => ({ feature: t, value: ids[p], attribution: phi[p], position: p, ...(se ? { stderr: se[p] } : {}) }));
  return { output: space.outputNames[o] ?? `y${o}`, outputIndex: o, baselineOutputValue: v.baseline, instanceOutputValue: v.instance, attributions, approximationError: v.error };
}

export async function tokenIntegratedGradients(model: Model, rows: Rows, options: TokenIgOptions): Promise<Explanation> {
  const started = performance.now();
  const outputs = check(model, rows, options);
  if (!model.layerGradients || !model.layerActivations || !model.layers)
    throw new ExplainerInputError('METHOD_NOT_SUPPORTED', 'integrated-gradients on text needs layer gradients, which this model does not provide; use partition-shap');
  const layer = options.layer ?? model.layers.find((l) => l.className === 'Embedding')?.name;
  if (!layer) throw new ExplainerInputError('BAD_LAYER', 'the model has no Embedding layer; name the layer to integrate in with "layer"');
  if (!model.layers.some((l) => l.name === layer)) throw new ExplainerInputError('UNKNOWN_LAYER', `the model has no layer "${layer}"`, { layers: model.layers.map((l) => l.name) });
  const steps = options.steps ?? 64;
  if (!Number.isInteger(steps) || steps < 1 || steps > 4096) throw new ExplainerInputError('BAD_PARAMETER', `steps must be an integer from 1 to 4096, got ${String(steps)}`);
  const L = rows.d;
  const n = rows.n;
  const base = Float32Array.from(rows.data);
  options.tokens.forEach((t, i) => {
    for (let p = 0; p < t.length; p++) base[i * L + p] = options.baselineId;
  });
  const baseRows: Rows = { data: base, n, d: L };
  const E = await model.layerActivations(rows, layer);
  const E0 = await model.layerActivations(baseRows, layer);
  const size = E.length / n;
  const D = size / L;
  const { alphas, weights } = gaussLegendre(steps);
  const k = model.nOutputs;
  const fx = await model.predict(rows);
  const fb = await model.predict(baseRows);
  // Path points: rows repeated per alpha, with the layer's output replaced by the interpolation.
  const pathRows = new Float32Array(n * steps * L);
  const acts = new Float32Array(n * steps * size);
  for (let i = 0; i < n; i++)
    for (let s = 0; s < steps; s++) {
      pathRows.set(rows.data.subarray(i * L, (i + 1) * L), (i * steps + s) * L);
      const off = (i * steps + s) * size;
      for (let j = 0; j < size; j++) acts[off + j] = E0[i * size + j] + alphas[s] * (E[i * size + j] - E0[i * size + j]);
    }
  const perOutput: Float64Array[][] = [];
  for (const o of outputs) {
    options.signal?.throwIfAborted();
    const { gradients } = await model.layerGradients({ data: pathRows, n: n * steps, d: L }, layer, o, acts);
    perOutput.push(
      Array.from({ length: n }, (_, i) => {
        const phi = new Float64Array(options.tokens[i].length);
        for (let s = 0; s < steps; s++) {
          const off = (i * steps + s) * size;
          for (let p = 0; p < phi.length; p++)
            for (let e = 0; e < D; e++) {
              const j = p * D + e;
              phi[p] += weights[s] * gradients[off + j] * (E[i * size + j] - E0[i * size + j]);
            }
        }
        return phi;
      }),
    );
  }
  const explanations: InstanceExplanation[] = options.tokens.map((tokens, i) => ({
    outputs: outputs.map((o, oi) => {
      const phi = perOutput[oi][i];
      const gap = phi.reduce((a, b) => a + b, 0) - (fx[i * k + o] - fb[i * k + o]);
      return tokenOutput(o, options.space, tokens, rows.data.subarray(i * L, (i + 1) * L), phi, { baseline: fb[i * k + o], instance: fx[i * k + o], error: gap });
    }),
    converged: true,
    stopReason: 'budget' as StopReason,
    modelEvaluations: steps * outputs.length + 2,
    computeMs: (performance.now() - started) / n,
    diagnostics: { layer, steps, baselineId: options.baselineId },
  }));
  return { method: 'integrated-gradients', explanations, diagnostics: { layer, steps, quadrature: 'gauss-legendre', space: 'embedding' } };
}

/** A model over token-presence indicators (z_p >= 0.5: token p kept) for instance `ids`. */
export function maskedTokenModel(model: Model, ids: Float32Array, nTokens: number, maskId: number): Model {
  const L = ids.length;
  return {
    nFeatures: nTokens,
    nOutputs: model.nOutputs,
    async predict(z: Rows) {
      const data = new Float32Array(z.n * L);
      for (let t = 0; t < z.n; t++) {
        data.set(ids, t * L);
        for (let p = 0; p < nTokens; p++) if (z.data[t * nTokens + p] < 0.5) data[t * L + p] = maskId;
      }
      return model.predict({ data, n: z.n, d: L });
    },
  };
}

export async function tokenShap(model: Model, rows: Rows, options: TokenShapOptions): Promise<Explanation> {
  const outputs = check(model, rows, options);
  const algorithm = options.algorithm ?? 'partition';
  if (algorithm !== 'partition' && algorithm !== 'kernel') throw new ExplainerInputError('BAD_PARAMETER', `algorithm must be 'partition' or 'kernel'`);
  const maxEvaluations = options.maxEvaluations ?? 500;
  if (!Number.isInteger(maxEvaluations) || maxEvaluations < 4) throw new ExplainerInputError('BAD_PARAMETER', 'maxEvaluations must be an integer >= 4');
  const L = rows.d;
  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < rows.n; i++) {
    const started = performance.now();
    const ids = rows.data.subarray(i * L, (i + 1) * L);
    const M = options.tokens[i].length;
    const masked = maskedTokenModel(model, ids, M, options.maskId);
    let outs: OutputExplanation[];
    let evaluations: number;
    let stopReason: StopReason;
    if (algorithm === 'partition') {
      const players = Array.from({ length: M }, (_, p) => p);
      const r = await owenValues(M, sequenceTree(players), outputs.length, async (cs) => {
        const data = new Float32Array(cs.length * M);
        cs.forEach((z, t) => data.set(z, t * M));
        const y = await masked.predict({ data, n: cs.length, d: M });
        return cs.map((_, t) => Float64Array.from(outputs, (o) => y[t * model.nOutputs + o]));
      }, { maxEvaluations, signal: options.signal, deadline: options.deadline });
      outs = outputs.map((o, oi) => {
        const gap = r.phi[oi].reduce((a, b) => a + b, 0) - (r.full[oi] - r.empty[oi]);
        return tokenOutput(o, options.space, options.tokens[i], ids, r.phi[oi], { baseline: r.empty[oi], instance: r.full[oi], error: gap });
      });
      evaluations = r.evaluations;
      stopReason = r.deadlineReached ? 'deadline' : r.exact ? 'exact' : 'budget';
    } else {
      const ks = await kernelShap(masked, { data: new Float32Array(M).fill(1), n: 1, d: M }, {
        space: { featureNames: options.tokens[i], outputNames: options.space.outputNames },
        background: { data: new Float32Array(M), n: 1, d: M },
        outputs,
        nSamples: options.nSamples,
        seed: options.seed,
        deadline: options.deadline,
        signal: options.signal,
      });
      const e = ks.explanations[0];
      outs = e.outputs.map((out) =>
        tokenOutput(out.outputIndex, options.space, options.tokens[i], ids, out.attributions.map((a) => a.attribution), { baseline: out.baselineOutputValue, instance: out.instanceOutputValue, error: out.approximationError }, out.attributions.map((a) => a.stderr ?? 0)),
      );
      evaluations = e.modelEvaluations;
      stopReason = e.stopReason ?? (e.converged ? 'tolerance' : 'budget');
    }
    explanations.push({ outputs: outs, converged: stopReason !== 'deadline', stopReason, modelEvaluations: evaluations, computeMs: performance.now() - started, diagnostics: { maskId: options.maskId, tokens: M } });
  }
  return { method: algorithm === 'partition' ? 'partition-shap' : 'kernel-shap', explanations, diagnostics: { text: true, algorithm, maskId: options.maskId } };
}
