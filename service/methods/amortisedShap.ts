/**
 * Amortised SHAP as an explain method: Shapley values of Kernel SHAP's game from one forward pass of
 * the explainer trained for the model's current version (POST /v1/models/:name/amortised), with the
 * validated error as each output's approximationError and stopReason 'amortised'. Planning decides
 * whether it can be served (service/amortised/state.ts); when it cannot (not trained, stale after a
 * model update, above AMORTISED_THRESHOLD), planExplanation answers with Kernel SHAP instead and the
 * response says so (`fallback`), unless the request asks for no fallback (409 AMORTISED_NOT_READY).
 */
import { z } from 'zod';
import { amortisedShap } from '../../explainers/amortised/amortisedShap.js';
import type { ServedModel } from '../../models/served.js';
import { servability, type FallbackReason } from '../amortised/state.js';
import { leaseAmortised } from '../amortised/source.js';
import { amortisedDir } from '../amortised/store.js';
import { ServiceError } from '../errors.js';
import { deadlineMsSchema, seedSchema, type Limits } from '../schemas/common.js';
import { kernelShapEstimate, sumEstimates } from '../cost.js';
import { requirement } from './inputs.js';
import type { Estimate, ExplainMethodSpec } from './types.js';

export const amortisedShapParameters = (limits: Limits) =>
  z.strictObject({
    verify: z
      .boolean()
      .default(false)
      .meta({ description: 'Spot check: also compute Kernel SHAP (nSamples "auto", `seed`) for each row and return the difference in diagnostics.verify' }),
    fallback: z
      .enum(['kernel-shap', 'none'])
      .default('kernel-shap')
      .meta({ description: 'When no servable explainer exists for the model version: answer with Kernel SHAP (and say so in `fallback`), or 409 AMORTISED_NOT_READY' }),
    seed: seedSchema.default(0).meta({ description: 'Seed of the Kernel SHAP of `verify` and of the fallback' }),
    deadlineMs: deadlineMsSchema(limits).optional().meta({ description: 'Deadline of the Kernel SHAP fallback' }),
  });

type Parameters = z.infer<ReturnType<typeof amortisedShapParameters>>;

/** What the worker needs: where the explainer is and which one the request was planned against. */
interface Options {
  dir: string;
  modelName: string;
  modelVersion: string;
  explainer: string;
  verify: boolean;
  seed: number;
  /** The stored explainer's game, as admission control counts its model rows (estimate below). */
  cost: { players: number; probeRows: number; backgroundRows: number };
}

/** Why a request for amortised-shap is answered by Kernel SHAP. */
export interface Fallback {
  requested: 'amortised-shap';
  reason: FallbackReason;
  message: string;
}

/** The servable explainer of `m`, or why there is none (the Kernel SHAP fallback's reason). */
export function amortisedServing(limits: Pick<Limits, 'dataDir' | 'amortisedThreshold' | 'amortisedMaxRatio'>, m: ServedModel) {
  if (!limits.dataDir) throw new Error('planning amortised-shap needs the service config (dataDir)');
  return servability(limits.dataDir, m, { threshold: limits.amortisedThreshold, maxRatio: limits.amortisedMaxRatio });
}

export const amortisedShapMethod: ExplainMethodSpec<'amortised-shap', ReturnType<typeof amortisedShapParameters>, Options> = {
  name: 'amortised-shap',
  summary:
    "Amortised SHAP: Kernel SHAP's Shapley values from one forward pass of an explainer trained for the model version (POST /v1/models/{name}/amortised), with its validated error; falls back to Kernel SHAP until one is trained",
  parameters: amortisedShapParameters,
  supports: (m) =>
    requirement(m, { inputs: ['tabular'] }) ??
    (!m.background || !m.reference ? `needs a background and a reference set in the metadata of model "${m.name}" (its game and its training rows)` : undefined),
  plan(m: ServedModel, p: Parameters, limits: Limits) {
    const s = amortisedServing(limits, m);
    const f = s.info?.explainer;
    if (!s.servable || !f) throw new ServiceError('AMORTISED_NOT_READY', s.message ?? 'no servable amortised explainer', { reason: s.reason });
    const v = s.info!.validation!;
    return {
      options: {
        dir: amortisedDir(limits.dataDir!, m.name, m.version),
        modelName: m.name,
        modelVersion: m.version,
        explainer: f.id,
        verify: p.verify,
        seed: p.seed,
        cost: { players: f.game.players.length, probeRows: f.probes ? (f.game.probeRows?.n ?? 1) : 0, backgroundRows: f.game.background.n },
      },
      // The explainer's identity goes into cache keys and ids: a retrained explainer is a new answer.
      context: { explainer: f.id, verify: p.verify, ...(p.verify ? { seed: p.seed } : {}) },
      display: {
        explainer: f.id,
        trainedAt: f.createdAt,
        link: f.game.link,
        validatedMeanMaxError: v.amortised.meanAbs,
        validatedMeanRelativeError: v.amortised.meanRelative,
        verify: p.verify,
        ...(p.verify ? { seed: p.seed } : {}),
      },
    };
  },
  async explain(model, rows, options) {
    const lease = await leaseAmortised(options.dir, options.modelName, options.modelVersion, options.explainer);
    try {
      return await amortisedShap(lease.explainer, model, rows, {
        space: options.space,
        outputs: options.outputs,
        modelVersion: options.modelVersion,
        verify: options.verify ? { seed: options.seed } : false,
        signal: options.signal,
      });
    } finally {
      lease.release();
    }
  },
  estimate: (m, options, request) => amortisedEstimate(options, request.instances, m.model.nOutputs),
  // One forward pass for a whole chunk: as many rows as a chunk may hold.
  chunkSize: 4096,
  queryKeys: ['verify', 'fallback', 'seed', 'deadlineMs'],
  fromQuery: (q) => {
    const verify = q.string('verify');
    return {
      verify: verify === undefined ? undefined : verify === 'true' || verify === '1',
      fallback: q.string('fallback'),
      seed: q.number('seed'),
      deadlineMs: q.number('deadlineMs'),
    };
  },
};

/**
 * Model rows of an amortised-shap request: per instance the row and its 2MR probe rows, plus the
 * background and the R probe rows once per model call (one call per predicted class at most); with
 * `verify`, Kernel SHAP's own estimate on the same rows and background. The network's forward pass is
 * not a model evaluation. A request that falls back to Kernel SHAP is planned (and estimated) as Kernel SHAP.
 */
export function amortisedEstimate(options: Pick<Options, 'cost' | 'verify'>, instances: number, nOutputs: number): Estimate {
  const { players: M, probeRows: R, backgroundRows: bg } = options.cost;
  const calls = Math.max(1, Math.min(instances, nOutputs));
  const own: Estimate = {
    evaluations: instances * (1 + 2 * M * R) + calls * (bg + R),
    terms: `${instances} instance(s) x ${1 + 2 * M * R} rows (the row and its ${2 * M * R} probe rows) + ${calls} x ${bg + R} background and probe rows`,
  };
  if (!options.verify) return own;
  const ks = kernelShapEstimate({ instances, players: M, nSamples: 'auto', backgroundRows: bg, maxBackground: bg });
  return sumEstimates(own, { evaluations: ks.evaluations + (calls - 1) * bg, terms: `verify: ${ks.terms}` });
}
