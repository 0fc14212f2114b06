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
import { requirement } from './inputs.js';
import type { ExplainMethodSpec } from './types.js';

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
}

/** Why a request for amortised-shap is answered by Kernel SHAP. */
export interface Fallback {
  requested: 'amortised-shap';
  reason: FallbackReason;
  message: string;
}

/** The servable explainer of `m`, or why there is none (the Kernel SHAP fallback's reason). */
export function amortisedServing(limits: Pick<Limits, 'dataDir' | 'amortisedThreshold'>, m: ServedModel) {
  if (!limits.dataDir) throw new Error('planning amortised-shap needs the service config (dataDir)');
  return servability(limits.dataDir, m, limits.amortisedThreshold);
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
      options: { dir: amortisedDir(limits.dataDir!, m.name, m.version), modelName: m.name, modelVersion: m.version, explainer: f.id, verify: p.verify, seed: p.seed },
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
