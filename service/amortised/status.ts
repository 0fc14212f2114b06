/**
 * The state of a model's amortised explainer as the API shows it: what is stored (state.ts) and the
 * latest training job of the model's current version (the job runner's, passed in).
 *   training  a job is queued or running for this version (an explainer stored earlier still serves)
 *   ready     an explainer is stored for this version (servable when its validated error is under the threshold)
 *   failed    the latest job for this version failed, and nothing is stored for it
 *   stale     explainers are stored only for other versions: the model changed since it was trained
 *   none      never trained
 */
import type { ServedModel } from '../../models/served.js';
import type { AmortisedStateBody } from '../schemas/amortised.js';
import { servability } from './state.js';

/** The fields of a job view the state needs (jobs/types.ts JobView). */
export interface TrainingJobLike {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress?: object;
  error?: { code: string; message: string };
  createdAt: string;
  finishedAt: string | null;
  etaSeconds: number | null;
}

export interface AmortisedSettings {
  dataDir: string;
  amortisedThreshold: number;
  amortisedMaxRatio: number;
}

export function amortisedStatus(config: AmortisedSettings, m: ServedModel, job?: TrainingJobLike): AmortisedStateBody {
  const s = servability(config.dataDir, m, { threshold: config.amortisedThreshold, maxRatio: config.amortisedMaxRatio });
  const f = s.info?.explainer;
  const active = job && (job.status === 'queued' || job.status === 'running');
  const state: AmortisedStateBody['state'] = active ? 'training' : f ? 'ready' : job?.status === 'failed' ? 'failed' : s.otherVersions.length ? 'stale' : 'none';
  const out: AmortisedStateBody = {
    model: { name: m.name, version: m.version },
    state,
    servable: s.servable,
    threshold: s.threshold,
    maxRatio: s.maxRatio,
    ...(s.servable ? {} : { reason: s.message }),
  };
  if (job) {
    out.job = {
      id: job.id,
      status: job.status,
      ...(job.progress ? { progress: job.progress as Record<string, unknown> } : {}),
      ...(job.error ? { error: job.error } : {}),
      createdAt: job.createdAt,
      finishedAt: job.finishedAt,
      etaSeconds: job.etaSeconds,
    };
  }
  if (f) {
    const { history: _h, ...training } = s.info?.training ?? { history: [] };
    out.explainer = {
      id: f.id,
      createdAt: f.createdAt,
      modelVersion: f.modelVersion,
      players: f.game.players.length,
      link: f.game.link === 'logit' ? 'logit' : 'identity',
      outputs: f.game.outputs.map((o) => m.space.outputNames[o] ?? String(o)),
      probes: f.probes,
      network: f.network,
      hyperparameters: { ...f.hyperparameters },
      ...(s.info?.training ? { training } : {}),
      ...(s.info?.validation ? { validation: s.info.validation } : {}),
    };
  }
  if (state === 'stale') out.otherVersions = s.otherVersions;
  return out;
}

/** The part GET /v1/models/:name publishes. */
export function amortisedBrief(status: AmortisedStateBody) {
  const v = status.explainer?.validation;
  return {
    state: status.state,
    servable: status.servable,
    threshold: status.threshold,
    maxRatio: status.maxRatio,
    ...(v
      ? {
          validation: {
            reference: v.reference,
            rows: v.rows,
            meanAbs: v.amortised.meanAbs,
            p95Abs: v.amortised.p95Abs,
            meanRelative: v.amortised.meanRelative,
            p95Relative: v.amortised.p95Relative,
            ...(v.kernelShap ? { kernelShapMeanAbs: v.kernelShap.meanAbs } : {}),
            ...(v.ratioToKernelShap !== undefined ? { ratioToKernelShap: v.ratioToKernelShap } : {}),
            ...(v.shapKernelExplainer ? { shapKernelExplainerMeanAbs: v.shapKernelExplainer.meanAbs } : {}),
            ...(v.ratioToShapKernelExplainer !== undefined ? { ratioToShapKernelExplainer: v.ratioToShapKernelExplainer } : {}),
          },
        }
      : {}),
  };
}
