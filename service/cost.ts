/**
 * Admission control by cost: before any model call, a request's model evaluations are estimated
 * (an upper bound from its parameters: coalitions x background rows x instances for Kernel SHAP,
 * path points x instances x outputs for Integrated Gradients, repeats x rows x features for
 * permutation importance, ...) and a request above the per-request budget
 * (MAX_REQUEST_EVALUATIONS) is refused with 422 TOO_EXPENSIVE, naming the estimate, the budget and
 * what to do instead. The caps on each parameter stay; this bounds their product. Each explain
 * method's estimator sits next to its spec (service/methods/*: `estimate`); fairness, drift and
 * importance add theirs from the pieces here.
 */
import type { ServiceConfig } from './config.js';
import { ServiceError } from './errors.js';
import type { Estimate } from './methods/types.js';

export type { Estimate };

const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toPrecision(3)} million` : String(Math.round(n)));

/** Players of Kernel SHAP (and permutation importance): one per group, one per feature in no group. */
export function playerCount(d: number, groups: number[][] | undefined): number {
  const grouped = new Set((groups ?? []).flat());
  return d - grouped.size + (groups?.length ?? 0);
}

/**
 * Kernel SHAP on `instances` rows: per instance at most min(nSamples, 2^M - 2) coalitions, each
 * evaluated on every (summarised) background row, plus the instance; plus the background rows once.
 */
export function kernelShapEstimate(o: {
  instances: number;
  players: number;
  nSamples: number | 'auto';
  backgroundRows: number;
  maxBackground: number;
}): Estimate {
  const asked = o.nSamples === 'auto' ? 2 * o.players + 2048 : o.nSamples;
  const coalitions = o.players >= 2 ? Math.min(asked, o.players < 52 ? 2 ** o.players - 2 : Infinity) : 0;
  const bg = Math.min(o.backgroundRows, o.maxBackground);
  return {
    evaluations: o.instances * (coalitions * bg + 1) + bg,
    terms: `${o.instances} instance(s) x ${coalitions} coalitions x ${bg} background rows`,
  };
}

/** The sum of estimates (a request made of several model passes). */
export function sumEstimates(...parts: Estimate[]): Estimate {
  return { evaluations: parts.reduce((s, p) => s + p.evaluations, 0), terms: parts.map((p) => p.terms).join(' + ') };
}

/** Throws TOO_EXPENSIVE when `e` exceeds the budget. `what` names the request, `fix` says what to lower. */
export function admit(
  config: Pick<ServiceConfig, 'maxRequestEvaluations'>,
  what: string,
  e: Estimate,
  fix: string,
  instead = 'work this large belongs in a batch job: POST /v1/jobs takes it, without this limit',
): void {
  const limit = config.maxRequestEvaluations;
  if (limit > 0 && e.evaluations > limit) {
    throw new ServiceError(
      'TOO_EXPENSIVE',
      `${what} would evaluate the model on up to ${fmt(e.evaluations)} rows (${e.terms}), more than this service's per-request budget of ` +
        `${fmt(limit)} model evaluations (MAX_REQUEST_EVALUATIONS). ${fix}; ${instead}.`,
      { estimate: Math.round(e.evaluations), limit, terms: e.terms },
    );
  }
}
