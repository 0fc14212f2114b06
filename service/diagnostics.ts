/**
 * Per-instance diagnostics that an explainer returned as arrays on the call (one entry per instance)
 * are moved onto the instances, so an instance carries its own facts wherever it goes (the cache, a
 * job's results, a merge of several calls). What is left describes the call as a whole.
 * (The explainers could fill InstanceExplanation.diagnostics themselves; until they all do, this splits.)
 */
import type { Explanation } from '../explainers/types.js';

/** Moves per-instance diagnostic arrays onto the instances (in place); returns the rest. */
export function splitDiagnostics(e: Explanation): Record<string, unknown> | undefined {
  if (!e.diagnostics) return undefined;
  const n = e.explanations.length;
  const common: Record<string, unknown> = {};
  const perInstance: [string, unknown[]][] = [];
  for (const [k, v] of Object.entries(e.diagnostics)) {
    if (Array.isArray(v) && v.length === n) perInstance.push([k, v]);
    else common[k] = v;
  }
  if (perInstance.length) {
    e.explanations.forEach((inst, i) => {
      inst.diagnostics = { ...inst.diagnostics, ...Object.fromEntries(perInstance.map(([k, v]) => [k, v[i]])) };
    });
  }
  e.diagnostics = common;
  return common;
}
