/**
 * What a worker thread (or the inline executor) runs for an `effects` task: computeEffects over the
 * worker's own copy of the model, with what the model knows of itself (its reference, else
 * background, rows as the default data; its background for Kernel SHAP; metadata types, group names
 * and link). Nothing here imports the Service: service/tasks.ts runs it.
 */
import { computeEffects, type EffectsContext, type EffectsLimits, type EffectsRequest, type EffectsResult } from '../explainers/effects/index.js';
import type { ServedModel } from '../models/served.js';

/** Metadata facts computeEffects takes: per-column types, and the names of the one-hot groups in space.groups order. */
export function effectsInfo(m: Pick<ServedModel, 'metadata'>): { featureTypes?: (string | undefined)[]; groupNames?: string[] } {
  const features = m.metadata?.features;
  if (!features) return {};
  const sizes = new Map<string, number>();
  for (const f of features) if (f.group !== undefined) sizes.set(f.group, (sizes.get(f.group) ?? 0) + 1);
  return { featureTypes: features.map((f) => f.type), groupNames: [...sizes].filter(([, k]) => k > 1).map(([g]) => g) };
}

export interface EffectsTaskOptions {
  limits?: Partial<EffectsLimits>;
  /** Epoch milliseconds. */
  deadline?: number;
  signal?: AbortSignal;
}

/** What computeEffects knows of the model: its default data, background, link and metadata facts. */
export function effectsContext(m: ServedModel, o: EffectsTaskOptions = {}): EffectsContext {
  return {
    defaultData: m.reference?.rows ?? m.background,
    background: m.background,
    link: m.metadata?.link,
    ...effectsInfo(m),
    ...(o.limits ? { limits: o.limits } : {}),
    ...(o.deadline !== undefined ? { deadline: o.deadline } : {}),
    signal: o.signal,
  };
}

export function runEffects(m: ServedModel, request: EffectsRequest, o: EffectsTaskOptions = {}): Promise<EffectsResult> {
  return computeEffects(m.model, m.space, request, effectsContext(m, o));
}
