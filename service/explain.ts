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
import { layoutOf, parseInstances, rowOf, withWords } from './instances.js';
import { fixedOutputs, selectionKey, selectOutputs, type OutputSelection, type OutputSelectionName } from './outputs.js';
import { admit } from './cost.js';
import { checkMethod, estimateExplanation, planExplanation, type ExplainPlan } from './methods/index.js';
import type { ExplainBody } from './schemas/requests.js';
import { isCacheable } from './stopReason.js';
import type { ExplainTask } from './tasks.js';

export type ServedExplanation = Explanation & {
  model: { name: string; version: string };
  id: string;
  links: Record<'json' | 'svg' | 'png' | 'html', string>;
  /** Which outputs were explained: the requested ones, all, or each instance's predicted class (service/outputs.ts). */
  outputSelection: OutputSelectionName;
  cached: boolean;
};

export type CacheState = 'HIT' | 'MISS' | 'PARTIAL';

export interface ExplainOptions {
  /** When the request arrived (its deadline counts from here). */
  started?: number;
  /** Persist the request behind its id (POST /explain and chart URLs; not a permalink's recomputation). */
  record?: boolean;
  /**
   * Recorded in the live window (drift of live traffic): POST /explain only. Never chart URLs (their
   * rows are views, partly defaulted from the background) nor permalinks (re-renders). Default false.
   */
  live?: boolean;
  signal?: AbortSignal;
}

function pick(rows: Rows, indices: number[]): Rows {
  const data = new Float32Array(indices.length * rows.d);
  indices.forEach((src, dst) => data.set(rowOf(rows, src), dst * rows.d));
  return { data, n: indices.length, d: rows.d };
}

function taskOf(m: ServedModel, plan: ExplainPlan, rows: Rows, selection: OutputSelection, deadline: number): ExplainTask {
  // The plan's method and options belong together (ExplainPlan is a union per method); TypeScript
  // cannot follow that correlation through the spread, hence the one cast.
  return {
    kind: 'explain',
    model: m.name,
    version: m.version,
    rows,
    ...(selection.kind === 'predicted-class' ? { predictedClass: true } : {}),
    method: plan.method,
    options: { ...plan.options, outputs: fixedOutputs(selection), deadline },
  } as ExplainTask;
}

/** Text instances sent as strings: named by their words, with the count of tokens cut off beyond the model's input length. */
function withTokens(e: InstanceExplanation, tokens: string[] | undefined, truncated: number): InstanceExplanation {
  const named = withWords(e, tokens);
  return truncated > 0 ? { ...named, diagnostics: { ...named.diagnostics, truncatedTokens: truncated } } : named;
}

/**
 * The id hashes everything the answer depends on (model version, method, parameters, outputs,
 * instances), so equal ids mean equal answers. Outputs: service/outputs.ts (a classifier explains each
 * instance's predicted class unless the request names outputs or says "all").
 */
export async function explain(
  svc: Service,
  m: ServedModel,
  body: ExplainBody,
  options: ExplainOptions = {},
): Promise<{ explanation: ServedExplanation; cacheState: CacheState; rows: Rows }> {
  const started = options.started ?? Date.now();
  const method = checkMethod(body.method);
  const parsed = parseInstances(body.instances, layoutOf(m));
  const rows = parsed.rows;
  const selection = selectOutputs(body.outputs, m);
  if (options.live) svc.live.record(m, rows);
  const plan = planExplanation(svc.config, m, method, body.parameters);
  const budget = budgetOf(svc.config, { started, signal: options.signal }, plan.deadlineMs);
  const deadline = budget.deadline;

  const context = ExplanationCache.contextHash({
    model: m.name,
    version: m.version,
    method,
    // The resolved selection: a default (predicted-class) answer never stands in for a requested output.
    outputs: selectionKey(selection),
    plan: plan.context,
  });
  const keys = Array.from({ length: rows.n }, (_, i) => ExplanationCache.key(context, rowOf(rows, i)));
  let diagnostics: Explanation['diagnostics'];
  let inputShape: number[] | undefined;
  // Outputs explained per instance: one for the predicted class (plus the predict that picks it).
  const outputsPerInstance =
    selection.kind === 'requested' ? selection.outputs.length : selection.kind === 'all' ? m.model.nOutputs : 1;
  const resolve = () =>
    svc.cache.resolve(
      keys,
      async (missing) => {
        // Admission control on what is left to compute (cached instances cost nothing).
        const cost = estimateExplanation(m, plan, { instances: missing.length, outputs: outputsPerInstance });
        if (selection.kind === 'predicted-class') cost.evaluations += missing.length;
        admit(svc.config, `this ${method} request`, cost, 'Send fewer instances per request, or lower the parameters named');
        const e = await svc.executor.run(taskOf(m, plan, pick(rows, missing), selection, deadline), runOptions(budget));
        // Call-wide facts only: each explainer puts per-instance facts on its instances itself.
        diagnostics = e.diagnostics;
        if (diagnostics) await svc.cache.setContextInfo(context, diagnostics);
        for (const inst of e.explanations) svc.observer.explained?.(m.name, method, inst);
        inputShape = e.inputShape;
        return e.explanations;
      },
      // Everything but a result cut short by its deadline: a later request may do better than that one.
      isCacheable,
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
  diagnostics ??= await svc.cache.getContextInfo(context);
  const id = ExplanationCache.contextHash({ context, keys }).slice(0, 32);
  const base = `/v1/explanations/${id}`;
  const explanation: ServedExplanation = {
    model: { name: m.name, version: m.version },
    method,
    id,
    links: { json: `${base}.json`, svg: `${base}.svg`, png: `${base}.png`, html: `${base}.html` },
    explanations: parsed.tokens ? results.map((e, i) => withTokens(e, parsed.tokens![i], parsed.truncated![i])) : results,
    outputSelection: selection.kind,
    ...(diagnostics ? { diagnostics } : {}),
    ...(inputShape || m.inputShape.length > 1 ? { inputShape: inputShape ?? m.inputShape } : {}),
    cached: cacheState === 'HIT',
  };
  if (options.record) await svc.records.put(id, { model: m.name, version: m.version, body });
  return { explanation, cacheState, rows };
}
