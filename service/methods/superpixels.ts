/**
 * The superpixel parameters that Shapley methods take on image models (kernel-shap and
 * partition-shap): how the image is cut into players (SLIC) and what a missing player becomes.
 */
import { z } from 'zod';
import { SUPERPIXEL_DEFAULTS, type Masking } from '../../explainers/image/index.js';
import type { ServedModel } from '../../models/served.js';
import { ServiceError } from '../errors.js';
import type { QueryReader } from './types.js';

export const MASKINGS = ['blur', 'mean', 'inpaint'] as const;

export const superpixelParameters = {
  segments: z
    .number()
    .int()
    .min(1)
    .max(4096)
    .optional()
    .meta({ description: `Image models: about this many superpixels (SLIC), the players; default ${SUPERPIXEL_DEFAULTS.segments}` }),
  compactness: z
    .number()
    .positive()
    .max(100)
    .optional()
    .meta({ description: 'Image models: SLIC compactness, 0.01 ragged .. 1 square segments; default 0.1' }),
  masking: z
    .union([z.enum(MASKINGS), z.number()])
    .optional()
    .meta({
      description: `Image models: what a missing superpixel becomes: "blur" (of the image), "mean" (its per-channel mean), "inpaint" (from the visible pixels around it) or a constant; default "${SUPERPIXEL_DEFAULTS.masking}"`,
    }),
};

export interface SuperpixelPlan {
  segments: number;
  compactness?: number;
  masking: Masking;
}

export function superpixelPlan(
  m: Pick<ServedModel, 'inputShape'>,
  p: { segments?: number; compactness?: number; masking?: Masking },
): SuperpixelPlan {
  const segments = p.segments ?? SUPERPIXEL_DEFAULTS.segments;
  const pixels = m.inputShape[0] * m.inputShape[1];
  if (segments > pixels) {
    throw new ServiceError('BAD_PARAMETER', `parameters.segments: ${segments} superpixels is more than the ${pixels} pixels of the image`);
  }
  return { segments, ...(p.compactness !== undefined ? { compactness: p.compactness } : {}), masking: p.masking ?? SUPERPIXEL_DEFAULTS.masking };
}

/**
 * The most superpixels SLIC can make of an image of `shape` asked for `segments` (explainers/image/
 * segmentation.ts): every segment it keeps holds a connected piece of at least max(1, floor(S^2 / 4))
 * pixels, S^2 = h w / segments; so at most h w / that many. An upper bound for admission control:
 * SLIC's count is known only once it has run.
 */
export function maxSuperpixels(shape: readonly number[], segments: number): number {
  const pixels = shape[0] * shape[1];
  const minSize = Math.max(1, Math.floor(Math.max(1, pixels / segments) / 4));
  return Math.min(pixels, Math.floor(pixels / minSize));
}

/** `masking` from a URL: a name, or a number. */
export function maskingFromQuery(q: QueryReader): string | number | undefined {
  const v = q.string('masking');
  if (v === undefined || (MASKINGS as readonly string[]).includes(v)) return v;
  return q.number('masking');
}
