/**
 * Serving an amortised explainer: Shapley value estimates for a batch of rows from one model call
 * (f(x) for the rows, f(background) for the baseline and, when the explainer uses them, each row's
 * 2M probe points, together) and one forward pass of the explainer, returned in the shared
 * Explanation shape with stopReason 'amortised'.
 *
 * - Efficiency is exact: FastSHAP's additive normalisation is applied with the model's own f(x) and
 *   background mean, in float64, so attributions sum to link(f(x)) - link(E f(background)).
 * - approximationError is the validated error: the mean over held-out rows of max_j |φ_j - φ*_j|
 *   against exact Shapley values (or Kernel SHAP at a large budget), for that output.
 * - `verify` runs Kernel SHAP on the same rows and game and reports the difference in diagnostics.
 * - Groups are one player; the group's value is split equally among its features, as Kernel SHAP does.
 */
import { ExplainerInputError, type Explanation, type FeatureSpace, type InstanceExplanation, type Model, type Rows } from '../types.js';
import { checkKernelShapInput } from '../kernelShapInput.js';
import { kernelShap } from '../kernelShap.js';
import { endpointEvaluationsPerRow, endpointValues, varyingPlayers, type AmortisedGame } from './game.js';
import { additiveNormalisation } from './normalise.js';
import type { AmortisedExplainer } from './types.js';

export interface AmortisedShapOptions {
  space: FeatureSpace;
  /** Model output indices to explain, among those the explainer was trained on. Default: all of those. */
  outputs?: number[];
  /**
   * The served model's version. When given and different from the explainer's, the call is refused
   * (AMORTISED_STALE): an explainer trained on another version explains a different function.
   */
  modelVersion?: string;
  /** Spot check: also compute Kernel SHAP for every row (default budget 'auto', seed 0) and report the difference. */
  verify?: boolean | { nSamples?: number | 'auto'; seed?: number };
  signal?: AbortSignal;
}

export async function amortisedShap(
  explainer: AmortisedExplainer,
  model: Model,
  instances: Rows,
  options: AmortisedShapOptions,
): Promise<Explanation> {
  const start = performance.now();
  const game = explainer.game;
  const validation = explainer.validation;
  if (!validation) {
    throw new ExplainerInputError('AMORTISED_NOT_VALIDATED', 'this amortised explainer has not been validated: validate it on held-out rows before serving it');
  }
  if (options?.modelVersion !== undefined && options.modelVersion !== explainer.modelVersion) {
    throw staleError(explainer.modelVersion, options.modelVersion);
  }
  if (model.nFeatures !== game.nFeatures) {
    throw new ExplainerInputError(
      'AMORTISED_MODEL_MISMATCH',
      `the amortised explainer was trained for a model with ${game.nFeatures} inputs, this one has ${model.nFeatures}`,
    );
  }
  // Kernel SHAP's checks: instances, feature and output names, output indices.
  checkKernelShapInput(model, instances, { space: options.space, background: game.background, outputs: options.outputs });
  const selected = options.outputs ?? game.outputs;
  const slot = selected.map((o) => {
    const k = game.outputs.indexOf(o);
    if (k < 0) {
      throw new ExplainerInputError(
        'BAD_OUTPUTS',
        `the amortised explainer was trained on outputs ${game.outputs.join(', ')}; output ${o} is not among them: train it for that output or use kernel-shap`,
        { trained: game.outputs },
      );
    }
    return k;
  });
  options.signal?.throwIfAborted();

  const { phi, grand, empty, varying } = await amortisedPlayerValues(explainer, model, instances, options.signal);
  const M = game.players.length;
  const K = game.outputs.length;
  const d = instances.d;

  let verified: Explanation | undefined;
  if (options.verify) {
    const v = typeof options.verify === 'object' ? options.verify : {};
    verified = await kernelShap(model, instances, {
      space: options.space,
      background: game.background,
      backgroundWeights: Float32Array.from(game.weights),
      link: game.link,
      outputs: selected,
      nSamples: v.nSamples ?? 'auto',
      seed: v.seed ?? 0,
      maxBackground: game.background.n,
      signal: options.signal,
    });
  }
  const elapsed = performance.now() - start;

  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < instances.n; i++) {
    const x = instances.data.subarray(i * d, (i + 1) * d);
    const outputs = selected.map((o, si) => {
      const k = slot[si];
      const value = grand[i * K + k];
      const values = featureValues(game, phi.subarray((i * K + k) * M, (i * K + k + 1) * M), d);
      return {
        output: options.space.outputNames[o],
        outputIndex: o,
        baselineOutputValue: empty[k],
        instanceOutputValue: value,
        attributions: Array.from(values, (a, c) => ({ feature: options.space.featureNames[c], value: x[c], attribution: a })),
        approximationError: validation.amortisedPerOutput[k].meanAbs,
      };
    });
    const instance: InstanceExplanation = {
      outputs,
      converged: true,
      stopReason: 'amortised',
      // The row and its probes (the background's and probe rows' outputs are computed once per model and kept: game.ts).
      modelEvaluations: endpointEvaluationsPerRow(game, explainer.probes),
      computeMs: elapsed / instances.n,
      diagnostics: { varyingPlayers: varying.subarray(i * M, (i + 1) * M).reduce((a, b) => a + b, 0) },
    };
    if (verified) instance.diagnostics!.verify = verifyDiagnostics(instance, verified.explanations[i]);
    explanations.push(instance);
  }
  return {
    method: 'amortised-shap',
    explanations,
    diagnostics: {
      link: game.link,
      players: M,
      background: { rows: game.background.n },
      modelName: explainer.modelName,
      modelVersion: explainer.modelVersion,
      validation: {
        reference: validation.reference,
        rows: validation.rows,
        meanAbs: validation.amortised.meanAbs,
        p95Abs: validation.amortised.p95Abs,
        meanRelative: validation.amortised.meanRelative,
        p95Relative: validation.amortised.p95Relative,
        ...(validation.ratioToKernelShap !== undefined && { ratioToKernelShap: validation.ratioToKernelShap }),
        ...(validation.ratioToShapKernelExplainer !== undefined && { ratioToShapKernelExplainer: validation.ratioToShapKernelExplainer }),
      },
    },
  };
}

/**
 * Normalised per-player attributions of every row (rows x explained outputs x players, link units)
 * with v(N) per row and output and v(∅) per output: one model call and one explainer forward pass.
 */
export async function amortisedPlayerValues(
  explainer: Pick<AmortisedExplainer, 'game' | 'estimate' | 'probes'>,
  model: Model,
  rows: Rows,
  signal?: AbortSignal,
): Promise<{ phi: Float64Array; grand: Float64Array; empty: Float64Array; varying: Uint8Array }> {
  const game = explainer.game;
  const M = game.players.length;
  const K = game.outputs.length;
  const d = rows.d;
  const { grand, empty, probes } = await endpointValues(model, game, rows, signal, explainer.probes);
  const raw = await explainer.estimate(rows, probes);
  if (raw.length !== rows.n * K * M) throw new Error(`the explainer returned ${raw.length} values for ${rows.n} rows x ${K} outputs x ${M} players`);
  const phi = new Float64Array(rows.n * K * M);
  const all = new Uint8Array(rows.n * M);
  for (let i = 0; i < rows.n; i++) {
    const varying = varyingPlayers(game, rows.data.subarray(i * d, (i + 1) * d));
    all.set(varying, i * M);
    for (let k = 0; k < K; k++) {
      const at = (i * K + k) * M;
      additiveNormalisation(raw.subarray(at, at + M), varying, grand[i * K + k] - empty[k], phi.subarray(at, at + M));
    }
  }
  return { phi, grand, empty, varying: all };
}

/** Player values spread over feature columns: a group's value split equally among its members. */
export function featureValues(game: AmortisedGame, phi: ArrayLike<number>, d: number): Float64Array {
  const out = new Float64Array(d);
  game.players.forEach((cols, p) => {
    for (const c of cols) out[c] = phi[p] / cols.length;
  });
  return out;
}

function verifyDiagnostics(mine: InstanceExplanation, ks: InstanceExplanation) {
  return {
    method: 'kernel-shap',
    stopReason: ks.stopReason ?? (ks.converged ? 'tolerance' : 'budget'),
    modelEvaluations: ks.modelEvaluations,
    outputs: mine.outputs.map((o, oi) => {
      const differences = o.attributions.map((a, c) => a.attribution - ks.outputs[oi].attributions[c].attribution);
      return {
        outputIndex: o.outputIndex,
        maxAbsDifference: differences.reduce((m, v) => Math.max(m, Math.abs(v)), 0),
        kernelShapApproximationError: ks.outputs[oi].approximationError,
        differences,
      };
    }),
  };
}

export function staleError(trained: string, current: string): ExplainerInputError {
  return new ExplainerInputError(
    'AMORTISED_STALE',
    `the amortised explainer was trained on model version ${trained}, but the model is now version ${current}: ` +
      'train a new one for this version (until then use kernel-shap)',
    { trainedVersion: trained, modelVersion: current },
  );
}
