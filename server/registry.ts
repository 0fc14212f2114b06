/**
 * What the server needs of a loaded model. models/repository.ts's LoadedModel satisfies it; tests
 * may serve any Model through it.
 */
import type { FeatureSpace, Model, Rows } from '../explainers/types.js';
import type { Metadata } from '../models/metadata.js';
import type { Request } from 'express';
import { checkModelAccess } from './auth.js';
import { ApiError } from './errors.js';

export interface ServedModel {
  name: string;
  version: string;
  model: Model;
  space: FeatureSpace;
  inputShape: number[];
  metadata?: Metadata;
  background?: Rows;
  reference?: { rows: Rows; labels: Float32Array; labelNames?: string[] };
  describe(): object;
}

export interface Registry {
  models: Map<string, ServedModel>;
  errors: { name: string; message: string }[];
}

export function getModel(registry: Registry, name: string, req?: Request): ServedModel {
  if (req) checkModelAccess(req, name);
  const m = registry.models.get(name);
  if (!m) {
    const known = [...registry.models.keys()];
    const broken = registry.errors.find((e) => e.name === name);
    throw new ApiError(
      'MODEL_NOT_FOUND',
      broken
        ? `model "${name}" failed to load: ${broken.message}`
        : `no model named "${name}"; served models: ${known.join(', ') || '(none)'}`,
      { known },
    );
  }
  return m;
}
