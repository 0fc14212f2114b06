/**
 * The registry of explain methods. Adding one: write its explainer in explainers/, add its name to
 * ExplainMethod in explainers/types.ts, write its spec (parameters schema, the models it supports,
 * plan, explain, chunk size, query keys) next to kernelShap.ts, and list it here.
 * POST /explain, GET explain.{ext}, permalinks, jobs, the CLI and the OpenAPI document pick it up.
 */
import type { z } from 'zod';
import type { Explanation, ExplainMethod, FeatureSpace, Model, Rows } from '../../explainers/types.js';
import type { ServedModel } from '../../models/served.js';
import { ServiceError } from '../errors.js';
import { parseWith, type Limits } from '../schemas/common.js';
import type { Tokenizer } from '../../models/tokenizer.js';
import { amortisedShapMethod, amortisedServing, type Fallback } from './amortisedShap.js';
import { expectedGradientsMethod } from './expectedGradients.js';
import { gradCamMethod } from './gradCam.js';
import { integratedGradientsMethod } from './integratedGradients.js';
import { kernelShapMethod } from './kernelShap.js';
import { occlusionMethod } from './occlusion.js';
import { partitionShapMethod } from './partitionShap.js';
import { smoothGradMethod } from './smoothGrad.js';
import type { CallOptions, Estimate, ExplainMethodSpec, MethodPlan } from './types.js';
import { xraiMethod } from './xrai.js';

export const EXPLAIN_METHODS = {
  'kernel-shap': kernelShapMethod,
  'integrated-gradients': integratedGradientsMethod,
  smoothgrad: smoothGradMethod,
  'expected-gradients': expectedGradientsMethod,
  occlusion: occlusionMethod,
  'grad-cam': gradCamMethod,
  'partition-shap': partitionShapMethod,
  xrai: xraiMethod,
  'amortised-shap': amortisedShapMethod,
} as const satisfies { [K in ExplainMethod]: ExplainMethodSpec<K, z.ZodType, unknown> };

export const METHOD_NAMES = Object.keys(EXPLAIN_METHODS) as ExplainMethod[];
export const DEFAULT_METHOD: ExplainMethod = 'kernel-shap';

export type Methods = typeof EXPLAIN_METHODS;
/** The planned options of a method, as they travel to a worker. */
export type MethodOptions<K extends ExplainMethod> = ReturnType<Methods[K]['plan']>['options'];

export function isMethod(name: string): name is ExplainMethod {
  return Object.hasOwn(EXPLAIN_METHODS, name);
}

export function checkMethod(name: string | undefined): ExplainMethod {
  const m = name ?? DEFAULT_METHOD;
  if (!isMethod(m)) {
    throw new ServiceError('UNKNOWN_METHOD', `unknown method "${m}"; use one of ${METHOD_NAMES.join(', ')}`, { methods: METHOD_NAMES });
  }
  return m;
}

/** The methods that can explain model `m` (its kind of input, gradients, layer access), in registry order. */
export function supportedMethods(m: ServedModel): ExplainMethod[] {
  return METHOD_NAMES.filter((k) => EXPLAIN_METHODS[k].supports(m) === undefined);
}

/** METHOD_NOT_SUPPORTED, saying why and which methods work for this model, when `method` cannot explain `m`. */
export function checkSupported(m: ServedModel, method: ExplainMethod): void {
  const why = EXPLAIN_METHODS[method].supports(m);
  if (why === undefined) return;
  const ok = supportedMethods(m);
  throw new ServiceError(
    'METHOD_NOT_SUPPORTED',
    `${method} ${why}; methods that work for model "${m.name}": ${ok.join(', ') || 'none'}`,
    { method, methods: ok },
  );
}

export type { Fallback };

/**
 * A method's planned request: the same for POST /explain, chart URLs, permalinks and jobs. `fallback`:
 * amortised-shap was asked for and Kernel SHAP (`method`) answers instead, and why.
 */
export type ExplainPlan = { [K in ExplainMethod]: { method: K; fallback?: Fallback } & MethodPlan<MethodOptions<K>> }[ExplainMethod];

/**
 * A method's parameter schema for these limits, built once: building a zod schema (and the parser
 * zod compiles on its first parse) cost about 0.5 ms of the main thread per request when it was built
 * per call. Keyed by the limits object (the service's config: one per process).
 */
const schemas = new WeakMap<Limits, Map<ExplainMethod, z.ZodType>>();
function parametersSchema<S extends z.ZodType>(limits: Limits, method: ExplainMethod, build: () => S): S {
  let byMethod = schemas.get(limits);
  if (!byMethod) schemas.set(limits, (byMethod = new Map()));
  let schema = byMethod.get(method);
  if (!schema) byMethod.set(method, (schema = build()));
  return schema as S;
}

/**
 * Checks that the method can explain the model (METHOD_NOT_SUPPORTED), validates `parameters` with
 * the method's schema (BAD_PARAMETER) and resolves them against the model.
 */
export function planExplanation(limits: Limits, m: ServedModel, method: ExplainMethod, parameters: unknown): ExplainPlan {
  checkSupported(m, method);
  switch (method) {
    case 'kernel-shap': {
      const spec = EXPLAIN_METHODS[method];
      return { method, ...spec.plan(m, parseWith(parametersSchema(limits, method, () => spec.parameters(limits)), parameters ?? {}, 'parameters', 'BAD_PARAMETER'), limits) };
    }
    case 'integrated-gradients': {
      const spec = EXPLAIN_METHODS[method];
      return { method, ...spec.plan(m, parseWith(parametersSchema(limits, method, () => spec.parameters(limits)), parameters ?? {}, 'parameters', 'BAD_PARAMETER'), limits) };
    }
     case 'smoothgrad': {
      const spec = EXPLAIN_METHODS[method];
      return { method, ...spec.plan(m, parseWith(parametersSchema(limits, method, () => spec.parameters(limits)), parameters ?? {}, 'parameters', 'BAD_PARAMETER'), limits) };
    }
    case 'expected-gradients': {
      const spec = EXPLAIN_METHODS[method];
      return { method, ...spec.plan(m, parseWith(parametersSchema(limits, method, () => spec.parameters(limits)), parameters ?? {}, 'parameters', 'BAD_PARAMETER'), limits) };
    }
    case 'occlusion': {
      const spec = EXPLAIN_METHODS[method];
      return { method, ...spec.plan(m, parseWith(parametersSchema(limits, method, () => spec.parameters(limits)), parameters ?? {}, 'parameters', 'BAD_PARAMETER'), limits) };
    }
    case 'grad-cam': {
      const spec = EXPLAIN_METHODS[method];
      return { method, ...spec.plan(m, parseWith(parametersSchema(limits, method, () => spec.parameters(limits)), parameters ?? {}, 'parameters', 'BAD_PARAMETER'), limits) };
    }
    case 'partition-shap': {
      const spec = EXPLAIN_METHODS[method];
      return { method, ...spec.plan(m, parseWith(parametersSchema(limits, method, () => spec.parameters(limits)), parameters ?? {}, 'parameters', 'BAD_PARAMETER'), limits) };
    }
    case 'xrai': {
      const spec = EXPLAIN_METHODS[method];
      return { method, ...spec.plan(m, parseWith(parametersSchema(limits, method, () => spec.parameters(limits)), parameters ?? {}, 'parameters', 'BAD_PARAMETER'), limits) };
    }
    case 'amortised-shap': {
      const spec = EXPLAIN_METHODS[method];
      const p = parseWith(parametersSchema(limits, method, () => spec.parameters(limits)), parameters ?? {}, 'parameters', 'BAD_PARAMETER');
      const serving = amortisedServing(limits, m);
      if (serving.servable) return { method, ...spec.plan(m, p, limits) };
      const reason = serving.reason ?? 'not-trained';
      const message = serving.message ?? 'no servable amortised explainer';
      if (p.fallback === 'none') throw new ServiceError('AMORTISED_NOT_READY', `${message} (parameters.fallback is "none")`, { reason });
      // Kernel SHAP on the same game: the model's background and link, the request's seed and deadline.
      const ks = EXPLAIN_METHODS['kernel-shap'];
      const ksParameters = { seed: p.seed, ...(p.deadlineMs !== undefined ? { deadlineMs: p.deadlineMs } : {}) };
      const plan = ks.plan(m, parseWith(parametersSchema(limits, 'kernel-shap', () => ks.parameters(limits)), ksParameters, 'parameters', 'BAD_PARAMETER'), limits);
      return {
        method: 'kernel-shap',
        ...plan,
        fallback: { requested: 'amortised-shap', reason, message: `answered by kernel-shap: ${message}` },
      };
    }
  }
}

/** The planned request's estimated model evaluations (admission control), by its method's estimator. */
export function estimateExplanation(m: ServedModel, plan: ExplainPlan, request: { instances: number; outputs: number }): Estimate {
  switch (plan.method) {
    case 'kernel-shap':
      return EXPLAIN_METHODS[plan.method].estimate(m, plan.options, request);
    case 'integrated-gradients':
      return EXPLAIN_METHODS[plan.method].estimate(m, plan.options, request);
    case 'smoothgrad':
      return EXPLAIN_METHODS[plan.method].estimate(m, plan.options, request);
    case 'expected-gradients':
      return EXPLAIN_METHODS[plan.method].estimate(m, plan.options, request);
    case 'occlusion':
      return EXPLAIN_METHODS[plan.method].estimate(m, plan.options, request);
    case 'grad-cam':
      return EXPLAIN_METHODS[plan.method].estimate(m, plan.options, request);
    case 'partition-shap':
      return EXPLAIN_METHODS[plan.method].estimate(m, plan.options, request);
    case 'xrai':
      return EXPLAIN_METHODS[plan.method].estimate(m, plan.options, request);
    case 'amortised-shap':
      return EXPLAIN_METHODS[plan.method].estimate(m, plan.options, request);
  }
}

/** The explain task's method and options, as the worker receives them. */
export type ExplainCall = { [K in ExplainMethod]: { method: K; options: MethodOptions<K> & CallOptions } }[ExplainMethod];

/** Runs a method's explainer (in a worker thread, or inline). `tokenizer`: a text model's. */
export function runMethod(
  call: ExplainCall,
  model: Model,
  rows: Rows,
  space: FeatureSpace,
  signal?: AbortSignal,
  tokenizer?: Tokenizer,
): Promise<Explanation> {
  switch (call.method) {
    case 'kernel-shap':
      return EXPLAIN_METHODS[call.method].explain(model, rows, { ...call.options, space, signal, tokenizer });
    case 'integrated-gradients':
      return EXPLAIN_METHODS[call.method].explain(model, rows, { ...call.options, space, signal, tokenizer });
    case 'smoothgrad':
      return EXPLAIN_METHODS[call.method].explain(model, rows, { ...call.options, space, signal, tokenizer });
    case 'expected-gradients':
      return EXPLAIN_METHODS[call.method].explain(model, rows, { ...call.options, space, signal, tokenizer });
    case 'occlusion':
      return EXPLAIN_METHODS[call.method].explain(model, rows, { ...call.options, space, signal, tokenizer });
    case 'grad-cam':
      return EXPLAIN_METHODS[call.method].explain(model, rows, { ...call.options, space, signal, tokenizer });
    case 'partition-shap':
      return EXPLAIN_METHODS[call.method].explain(model, rows, { ...call.options, space, signal, tokenizer });
    case 'xrai':
      return EXPLAIN_METHODS[call.method].explain(model, rows, { ...call.options, space, signal, tokenizer });
    case 'amortised-shap':
      return EXPLAIN_METHODS[call.method].explain(model, rows, { ...call.options, space, signal, tokenizer });
  }
}
