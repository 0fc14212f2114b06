import { Router, type Request, type Response } from 'express';
import type { Explanation, InstanceExplanation, Rows } from '../../explainers/types.js';
import { ExplanationCache } from '../cache.js';
import type { AppContext } from '../context.js';
import { ApiError } from '../errors.js';
import { resolveOutputs, toRows } from '../instances.js';
import { getModel, type ServedModel } from '../registry.js';
import { METHODS, parseWith } from '../schemas.js';
import type { ExplainTask } from '../tasks.js';
import { planExplanation } from '../explainPlan.js';
import { recordLive } from '../live.js';
import { chooseFormat, queryInt, sendVisual, type Format } from '../negotiate.js';
import {
  EXPLANATION_PLOTS,
  isExplanationPlot,
  renderExplanationPlot,
  renderExplanationReport,
  type ExplanationPlot,
} from '../../render/index.js';

function rowOf(rows: Rows, i: number): Float32Array {
  return rows.data.subarray(i * rows.d, (i + 1) * rows.d);
}

function pick(rows: Rows, indices: number[]): Rows {
  const data = new Float32Array(indices.length * rows.d);
  indices.forEach((src, dst) => data.set(rowOf(rows, src), dst * rows.d));
  return { data, n: indices.length, d: rows.d };
}

export interface ExplainBody {
  instances: unknown[];
  method: string;
  outputs?: (number | string)[];
  parameters: Record<string, unknown>;
}

export type ServedExplanation = Explanation & {
  model: { name: string; version: string };
  id: string;
  links: Record<'json' | 'svg' | 'png' | 'html', string>;
  cached: boolean;
};

/**
 * Runs one explain request: validates, resolves what it can from the cache, computes the rest on the
 * executor. The id hashes everything the answer depends on (model version, method, parameters,
 * outputs, instances), so equal ids mean equal answers.
 */
export async function computeExplanation(
  ctx: AppContext,
  m: ServedModel,
  body: ExplainBody,
  started = Date.now(),
): Promise<{ explanation: ServedExplanation; cacheState: 'HIT' | 'MISS' | 'PARTIAL'; rows: Rows }> {
  if (!(METHODS as readonly string[]).includes(body.method)) {
    throw new ApiError('UNKNOWN_METHOD', `unknown method "${body.method}"; use one of ${METHODS.join(', ')}`, { methods: METHODS });
  }
  const method = body.method as (typeof METHODS)[number];
  const rows = toRows(body.instances, { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space });
  const outputs = resolveOutputs(body.outputs, m.space);
  recordLive(m, rows);
  const plan = planExplanation(ctx.schemas, m, method, body.parameters);
  const deadline = started + (plan.deadlineMs ?? ctx.config.defaultDeadlineMs);
  const task = (rows: Rows): ExplainTask => {
    const base = { kind: 'explain' as const, model: m.name, version: m.version, rows };
    return plan.method === 'kernel-shap'
      ? { ...base, method: plan.method, options: { ...plan.options, outputs, deadline } }
      : { ...base, method: plan.method, options: { ...plan.options, outputs, deadline } };
  };

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
  const { results, reused } = await ctx.cache.resolve(
    keys,
    async (missing) => {
      const e = await ctx.executor.run(task(pick(rows, missing)));
      diagnostics = splitDiagnostics(e);
      if (diagnostics) ctx.cache.contextInfo.set(context, diagnostics);
      for (const inst of e.explanations) {
        ctx.metrics?.explainDuration.observe({ model: m.name, method }, inst.computeMs / 1000);
        ctx.metrics?.modelEvaluations.observe({ model: m.name, method }, inst.modelEvaluations);
      }
      inputShape = e.inputShape;
      return e.explanations;
    },
    // A result cut short by its deadline is not the answer to cache: a later request may do better.
    (e: InstanceExplanation) => e.converged,
  );
  const cacheState = reused === rows.n ? 'HIT' : reused === 0 ? 'MISS' : 'PARTIAL';
  diagnostics ??= ctx.cache.contextInfo.get(context);
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
  return { explanation, cacheState, rows };
}

/**
 * Moves per-instance diagnostics (arrays with one entry per explained instance) onto the instances,
 * so cached instances keep theirs; returns what is left: facts about the request as a whole.
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

export interface VisualOptions {
  plot?: ExplanationPlot;
  topK?: number;
  instance?: number;
}

export function visualOptions(ctx: AppContext, req: Request): VisualOptions {
  const plot = typeof req.query.plot === 'string' ? req.query.plot : undefined;
  if (plot !== undefined && !isExplanationPlot(plot)) {
    throw new ApiError('BAD_PARAMETER', `plot must be one of ${EXPLANATION_PLOTS.join(', ')}`);
  }
  return { plot, topK: queryInt(req, 'topK', 1, 1000), instance: queryInt(req, 'instance', 0, ctx.config.maxInstances) };
}

export function sendExplanation(res: Response, m: ServedModel, explanation: ServedExplanation, format: Format, v: VisualOptions): void {
  if (format === 'json') {
    res.json(explanation);
    return;
  }
  const n = explanation.explanations.length;
  if (v.instance !== undefined && v.instance >= n) {
    throw new ApiError('BAD_PARAMETER', `instance=${v.instance} but the explanation has ${n} instance(s)`);
  }
  sendVisual(res, format, {
    svg: () => renderExplanationPlot(explanation, v.plot, { topK: v.topK, instance: v.instance }),
    html: () =>
      renderExplanationReport(explanation, { name: m.name, version: m.version, description: m.metadata?.description }, { topK: v.topK }),
  });
}

export function explainRoutes(ctx: AppContext): Router {
  const r = Router();

  r.post('/v1/models/:name/explain', async (req, res) => {
    const started = Date.now();
    const m = getModel(ctx.registry, req.params.name, req);
    const format = chooseFormat(req);
    const visual = visualOptions(ctx, req);
    const body = parseWith(ctx.schemas.explain, req.body);
    const { explanation, cacheState } = await computeExplanation(ctx, m, body, started);
    res.setHeader('X-Cache', cacheState);
    await ctx.records?.put(explanation.id, { model: m.name, version: m.version, body });
    sendExplanation(res, m, explanation, format, visual);
  });

  return r;
}
