/**
 * Why each instance's computation stopped (explainers/types.ts StopReason), for every explanation the
 * service hands out. An explainer that sets `stopReason` itself is believed; for one that leaves it
 * unset the reason is derived from what it does report:
 * - converged, by exact enumeration (diagnostics `exact: true`): 'exact';
 * - converged otherwise: 'tolerance';
 * - not converged, and the deadline has passed: 'deadline' (the best estimate so far);
 * - not converged otherwise: 'budget' (the whole requested budget was spent).
 * The cache keeps everything but 'deadline': a deadline-cut answer depends on how busy the machine
 * was, every other one is the complete, reproducible answer to its request.
 */
import type { Explanation, InstanceExplanation, StopReason } from '../explainers/types.js';

export function stopReasonOf(e: Explanation, i: number, deadline: number | undefined, now = Date.now()): StopReason {
  const inst = e.explanations[i];
  if (inst.stopReason) return inst.stopReason;
  if (inst.converged) return inst.diagnostics?.exact === true ? 'exact' : 'tolerance';
  return deadline !== undefined && now >= deadline ? 'deadline' : 'budget';
}

/** Fills in `stopReason` on every instance that lacks one (in place; returns `e`). */
export function withStopReasons(e: Explanation, deadline: number | undefined): Explanation {
  const now = Date.now();
  e.explanations.forEach((inst, i) => {
    inst.stopReason = stopReasonOf(e, i, deadline, now);
  });
  return e;
}

/** What the cache may keep: everything but an answer the deadline cut short. */
export function isCacheable(inst: InstanceExplanation): boolean {
  return inst.stopReason !== undefined ? inst.stopReason !== 'deadline' : inst.converged;
}
