/**
 * Grad-CAM as an explain method (Captum's LayerGradCam): a convolutional layer's channels weighted by
 * their mean gradient, upsampled to the input. The layer: `parameters.layer`, else the model's
 * metadata `gradCamLayer`, else the last layer with a spatial [h, w, channels] output. Image models
 * with layer access (tfjs layers models).
 */
import { z } from 'zod';
import { defaultGradCamLayer, gradCam, type GradCamOptions } from '../../explainers/image/index.js';
import { ServiceError } from '../errors.js';
import { deadlineMsSchema, type Limits } from '../schemas/common.js';
import { requirement } from './inputs.js';
import { checkLayer } from './integratedGradients.js';
import type { ExplainMethodSpec, TaskOptions } from './types.js';

export const gradCamParameters = (limits: Limits) =>
  z.strictObject({
    layer: z
      .string()
      .min(1)
      .optional()
      .meta({ description: "A convolutional layer's name; default the metadata's gradCamLayer, else the last layer with a spatial output" }),
    relu: z.boolean().default(true).meta({ description: 'Keep only positive evidence (Grad-CAM)' }),
    deadlineMs: deadlineMsSchema(limits).optional(),
  });

type Options = TaskOptions<Omit<GradCamOptions, 'outputs' | 'deadline'>> & { layer: string };

export const gradCamMethod: ExplainMethodSpec<'grad-cam', ReturnType<typeof gradCamParameters>, Options> = {
  name: 'grad-cam',
  summary: "Grad-CAM: a convolutional layer's activations weighted by their mean gradient, upsampled to the image",
  parameters: gradCamParameters,
  supports: (m) => requirement(m, { inputs: ['image'], layers: true }),
  plan(m, p) {
    const layers = m.model.layers ?? [];
    const layer =
      checkLayer(m, p.layer, 'parameters.layer') ?? checkLayer(m, m.metadata?.gradCamLayer, 'metadata.json gradCamLayer') ?? defaultGradCamLayer(layers);
    if (!layer) {
      throw new ServiceError('BAD_LAYER', `model "${m.name}" has no layer with a spatial [height, width, channels] output; name one with parameters.layer`);
    }
    const shape = layers.find((l) => l.name === layer)!.shape;
    if (shape.length !== 3) {
      const spatial = layers.filter((l) => l.shape.length === 3).map((l) => l.name);
      throw new ServiceError(
        'BAD_LAYER',
        `layer "${layer}" outputs shape [${shape.join(', ')}], not [height, width, channels]: grad-cam needs a convolutional feature map${spatial.length ? `, such as ${spatial.slice(-5).join(', ')}` : ''}`,
        { layers: spatial },
      );
    }
    const common = { layer, relu: p.relu };
    return { context: common, display: common, deadlineMs: p.deadlineMs, options: common };
  },
  explain: (model, rows, options) => gradCam(model, rows, options),
  // Per instance: its prediction and one layer-gradient row per output.
  estimate: (_m, _options, request) => ({
    evaluations: request.instances * (request.outputs + 1),
    terms: `${request.instances} instance(s) x ${request.outputs} output(s)`,
  }),
  chunkSize: 16,
  queryKeys: ['layer', 'relu', 'deadlineMs'],
  fromQuery: (q) => {
    const relu = q.string('relu');
    return { layer: q.string('layer'), relu: relu === undefined ? undefined : relu === 'true' ? true : relu === 'false' ? false : relu, deadlineMs: q.number('deadlineMs') };
  },
};
