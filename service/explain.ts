/**
 * One explain request, without HTTP: validated, resolved from the cache where it can be, computed on
 * the executor for the rest. Used by POST /explain, the GET chart URLs and permalinks.
 */
import type { Explanation, InstanceExplanation, Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { budgetOf, runOptions } from './bounds.js';
import { ExplanationCache } from './cache.js';
import type { Service } from './context.js';
import { ServiceError } from './errors.js';
import { layoutOf, resolveOutputs, rowOf, toRows } from './instances.js';
import { recordLive } from './live.js';
import { admit } from './cost.js';
import { checkMethod, estimateExplanation, planExplanation, type ExplainPlan } from './methods/index.js';
import type { ExplainBody } from './schemas/requests.js';
import type { ExplainTask } from './tasks.js';

export type ServedExplanation = Explanation & {
  model: { name: string; version: string };
  id: string;
  links: Record<'json' | 'svg' | 'png' | 'html', string>;
  cached: boolean;
};

export type CacheState = 'HIT' | 'MISS' | 'PARTIAL';

export interface ExplainOptions {
  /** When the request arrived (its deadline counts from here). */
  started?: number;
  /** Persist the request behind its id (POST /explain and chart URLs; not a permalink's recomputation). */
  record?: boolean;
  /** Recorded in the live window (drift of live traffic). */
  live?: boolean;
  signal?: AbortSignal;
}

function pick(rows: Rows, indices: number[]): Rows {
  const data = new Float32Array(indices.length * rows.d);
  indices.forEach((src, dst) => data.set(rowOf(rows, src), dst * rows.d));
  return { data, n: indices.length, d: rows.d };
}

function taskOf(m: ServedModel, plan: ExplainPlan, rows: Rows, outputs: number[] | undefined, deadline: number): ExplainTask {
  const base = { kind: 'explain' as const, model: m.name, version: m.version, rows };
  const call = { outputs, deadline };
  return plan.method === 'kernel-shap'
    ? { ...base, method: plan.method, options: { ...plan.options, ...call } }
    : { ...base, method: plan.method, options: { ...plan.options, ...call } };
}

/**
 * The id hashes everything the answer depends on (model version, method, parameters, outputs,
 * instances), so equal ids mean equal answers.
 */
export async function explain(
  svc: Service,
  m: ServedModel,
  body: ExplainBody,
  options: ExplainOptions = {},
): Promise<{ explanation: ServedExplanation; cacheState: CacheState; rows: Rows }> {
  const started = options.started ?? Date.now();
  const method = checkMethod(body.method);
  const rows = toRows(body.instances, layoutOf(m));
  const outputs = resolveOutputs(body.outputs, m.space);
  if (options.live ?? options.record) recordLive(m, rows);
  const plan = planExplanation(svc.config, m, method, body.parameters);
  const budget = budgetOf(svc.config, { started, signal: options.signal }, plan.deadlineMs);
  const deadline = budget.deadline;

  const context = ExplanationCache.contextHash({
    model: m.name,
    version: m.version,
    method,
    outputs: outputs ?? 'all',
    plan: plan.context,
  });
  const keys = Array.from({ length: rows.n }, (_, i) => ExplanationCache.key(context, rowOf(rows, i)));
  let diagnostics: Explanation['diagnostics'];
  let inputShape: number[] | undefined;
  const resolve = () =>
    svc.cache.resolve(
      keys,
      async (missing) => {
        // Admission control on what is left to compute (cached instances cost nothing).
        const cost = estimateExplanation(m, plan, { instances: missing.length, outputs: outputs?.length ?? m.model.nOutputs });
        admit(svc.config, `this ${method} request`, cost, 'Send fewer instances per request, or lower the parameters named');
        const e = await svc.executor.run(taskOf(m, plan, pick(rows, missing), outputs, deadline), runOptions(budget));
        diagnostics = splitDiagnostics(e);
        if (diagnostics) svc.cache.contextInfo.set(context, diagnostics);
        for (const inst of e.explanations) svc.observer.explained?.(m.name, method, inst);
        inputShape = e.inputShape;
        return e.explanations;
      },
      // A result cut short by its deadline is not the answer to cache: a later request may do better.
      (e: InstanceExplanation) => e.converged,
    );
  let resolved: Awaited<ReturnType<typeof resolve>>;
  for (let attempt = 1; ; attempt++) {
    try {
      resolved = await resolve();
      break;
    } catch (e) {
      // Another request's computation we joined was cancelled (its client left): compute our own.
      if (attempt < 3 && e instanceof ServiceError && e.code === 'CANCELLED' && !options.signal?.aborted) continue;
      throw e;
    }
  }
  const { results, reused } = resolved;
  const cacheState: CacheState = reused === rows.n ? 'HIT' : reused === 0 ? 'MISS' : 'PARTIAL';
  diagnostics ??= svc.cache.contextInfo.get(context);
  const id = ExplanationCache.contextHash({ context, keys }).slice(0, 32);
  const base = `/v1/explanations/${id}`;
  const explanation: ServedExplanation = {
    model: { name: m.name, version: m.version },
    method,
    id,
    links: { json: `${base}.json`, svg: `${base}.svg`, png: `${base}.png`, html: `${base}.html` },
    explanations: results,
    ...(diagnostics ? { diagnostics } : {}),
    ...(inputShape || m.inputShape.length > 1 ? { inputShape: inputShape ?? m.inputShape } : {}),
    cached: cacheState === 'HIT',
  };
  if (options.record) await svc.records.put(id, { model: m.name, version: m.version, body });
  return { explanation, cacheState, rows };
}

/**
 * Moves per-instance diagnostics (arrays with one entry per explained instance) onto the instances,
 * so cached instances keep theirs; returns what is left: facts about the request as a whole.
 * (The explainers could fill InstanceExplanation.diagnostics themselves; until they do, this splits.)
 */
function splitDiagnostics(e: Explanation): Record<string, unknown> | undefined {
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
  return common;
}
