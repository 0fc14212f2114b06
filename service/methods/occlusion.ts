/**
 * Occlusion as an explain method (Captum's Occlusion): windows slid over the image and replaced by a
 * baseline; each value gets the mean output drop of the windows that covered it. Predictions only:
 * any image model.
 */
import { z } from 'zod';
import { occlusion, type OcclusionOptions } from '../../explainers/image/index.js';
import { OCCLUSION_MAX_WINDOWS } from '../../explainers/image/occlusion.js';
import { hashRows } from '../cache.js';
import { ServiceError } from '../errors.js';
import { layoutOf, toRows } from '../instances.js';
import { deadlineMsSchema, rowsOf } from '../schemas/common.js';
import type { ServedModel } from '../../models/served.js';
import { requirement } from './inputs.js';
import type { ExplainMethodSpec, QueryReader, TaskOptions } from './types.js';

const pair = (what: string) =>
  z
    .tuple([z.number().int().min(1), z.number().int().min(1)])
    .meta({ description: `${what} [height, width] in pixels` });

export const occlusionParameters = (limits: { maxDeadlineMs: number }) =>
  z.strictObject({
    window: pair('Window').optional().meta({ description: 'Window [height, width] in pixels; default an eighth of the smaller side, square' }),
    strides: pair('Strides').optional().meta({ description: 'Steps between windows [down, across]; default half the window' }),
    baseline: z
      .union([z.number(), rowsOf(1, 'baseline')])
      .optional()
      .meta({ description: 'What occluded values become: a number (default 0) or one image of the input shape' }),
    perChannel: z.boolean().default(false).meta({ description: 'Occlude one channel at a time' }),
    deadlineMs: deadlineMsSchema(limits).optional(),
  });

type Options = TaskOptions<Omit<OcclusionOptions, 'outputs' | 'deadline'>>;

/** "8x8" or "8,8" (or "8") from a URL. */
export function pairFromQuery(q: QueryReader, key: string): [number, number] | undefined {
  const v = q.string(key);
  if (v === undefined) return undefined;
  const parts = v.split(/[x,]/).map((t) => Number(t.trim()));
  if (parts.length > 2 || parts.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new ServiceError('BAD_PARAMETER', `query parameter ${key}="${v}" must be a positive integer or two, as "8x8"`);
  }
  return parts.length === 1 ? [parts[0], parts[0]] : [parts[0], parts[1]];
}

/** Occluded images per instance, as the explainer places the windows: every stride, plus one flush with the far edge. */
function occludedImages(m: ServedModel, window: [number, number], strides: [number, number], perChannel: boolean | undefined): number {
  const [h, w] = m.inputShape;
  const count = (size: number, win: number, stride: number) => Math.floor((size - win) / stride) + 1 + ((size - win) % stride ? 1 : 0);
  return count(h, window[0], strides[0]) * count(w, window[1], strides[1]) * (perChannel ? (m.inputShape[2] ?? 1) : 1);
}

export const occlusionMethod: ExplainMethodSpec<'occlusion', ReturnType<typeof occlusionParameters>, Options> = {
  name: 'occlusion',
  summary: 'Occlusion: the output drop when sliding windows of the image are replaced by a baseline',
  parameters: occlusionParameters,
  supports: (m) => requirement(m, { inputs: ['image'] }),
  plan(m, p) {
    const [h, w] = m.inputShape;
    const where = (k: string, v: [number, number]) => {
      if (v[0] > h || v[1] > w) throw new ServiceError('BAD_PARAMETER', `parameters.${k} [${v}] is larger than the ${h} x ${w} image`);
    };
    if (p.window) where('window', p.window);
    const window = p.window ?? ([Math.max(1, Math.floor(Math.min(h, w) / 8)), Math.max(1, Math.floor(Math.min(h, w) / 8))] as [number, number]);
    const strides = p.strides ?? ([Math.max(1, Math.floor(window[0] / 2)), Math.max(1, Math.floor(window[1] / 2))] as [number, number]);
    const windows = occludedImages(m, window, strides, p.perChannel);
    if (windows > OCCLUSION_MAX_WINDOWS) {
      throw new ServiceError(
        'BAD_PARAMETER',
        `${windows} occluded images per instance is more than ${OCCLUSION_MAX_WINDOWS}: use a larger window or strides`,
      );
    }
    const baseline = p.baseline === undefined || typeof p.baseline === 'number' ? (p.baseline ?? 0) : toRows(p.baseline, layoutOf(m), 'parameters.baseline');
    const common = { window, strides, perChannel: p.perChannel };
    return {
      context: { ...common, baseline: typeof baseline === 'number' ? baseline : hashRows(baseline) },
      display: { ...common, baseline: typeof baseline === 'number' ? baseline : 'an image' },
      deadlineMs: p.deadlineMs,
      options: { ...common, baseline },
    };
  },
  explain: (model, rows, options) => occlusion(model, rows, options),
  // Per instance: every occluded image, the instance and the baseline image.
  estimate(m, options, request) {
    const windows = occludedImages(m, options.window!, options.strides!, options.perChannel);
    return { evaluations: request.instances * (windows + 2), terms: `${request.instances} instance(s) x ${windows} occluded images` };
  },
  chunkSize: 8,
  queryKeys: ['window', 'strides', 'baseline', 'perChannel', 'deadlineMs'],
  fromQuery: (q) => {
    const per = q.string('perChannel');
    return {
      window: pairFromQuery(q, 'window'),
      strides: pairFromQuery(q, 'strides'),
      baseline: q.number('baseline'),
      perChannel: per === undefined ? undefined : per === 'true' ? true : per === 'false' ? false : per,
      deadlineMs: q.number('deadlineMs'),
    };
  },
};
