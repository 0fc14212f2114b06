/**
 * metadata.json of a model folder (a contract with the people who deploy models: see README, "Configuration").
 * Validated with zod; errors are turned into one readable sentence per problem.
 */
import { z } from 'zod';

export const FeatureSchema = z.object({
  name: z.string().min(1),
  type: z.enum(['numeric', 'integer', 'binary', 'categorical', 'one-hot', 'pixel']).default('numeric'),
  description: z.string().optional(),
  /** Name of the group this column belongs to (one-hot columns of one categorical variable). */
  group: z.string().optional(),
  unit: z.string().optional(),
  /** Counterfactuals never change it (a protected attribute, a date of birth). On a one-hot column: freezes its group. */
  immutable: z.boolean().optional(),
  /** Counterfactuals may only raise it (age, education level) or only lower it. */
  monotone: z.enum(['increasing', 'decreasing']).optional(),
  /** Bounds on the values a counterfactual may propose (also kept within the reference data's range). */
  min: z.number().optional(),
  max: z.number().optional(),
  /**
   * Readable names of coded values (binary, categorical, integer codes: sex 0 -> "male"); on a one-hot
   * column, `[{ "value": 1, "label": "rent" }]` names the category the column stands for.
   */
  categories: z
    .array(z.strictObject({ value: z.number(), label: z.string().min(1) }))
    .min(1)
    .optional(),
});

export const OutputSchema = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
});

export const MetadataSchema = z
  .object({
    description: z.string().optional(),
    task: z.enum(['binary-classification', 'multiclass-classification', 'regression']),
    /** For image models: e.g. [16, 16, 1]. Tabular models may omit it (it is [features.length]). */
    inputShape: z.array(z.number().int().positive()).optional(),
    /** Tabular: one entry per input column, in the model's order. Image models may omit it. */
    features: z.array(FeatureSchema).optional(),
    outputs: z.array(OutputSchema).min(1),
    /** Names of features (or groups) that are protected attributes. */
    sensitiveFeatures: z.array(z.string()).default([]),
    /** CSV file (header = feature names) of background rows for Kernel SHAP and IG's mean baseline. */
    background: z.string().optional(),
    /** CSV file of labelled rows (header = feature names + the label column). */
    reference: z.string().optional(),
    /** Name of the label column in the reference file. */
    label: z.string().optional(),
    /** Classes by index for classifiers whose labels are class names. */
    classes: z.array(z.string()).optional(),
    /** Link for Kernel SHAP by default: logit for probability outputs. */
    link: z.enum(['identity', 'logit']).optional(),
    /**
     * Image models: the convolutional layer Grad-CAM explains by default (a layer name of model.json
     * with a [height, width, channels] output); absent: the last such layer.
     */
    gradCamLayer: z.string().min(1).optional(),
    /** Text models: a few example texts, explained in the model report. */
    exampleTexts: z.array(z.string().min(1)).max(20).optional(),
    /** Free-form facts: data-generating process, training accuracy ... */
    notes: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((m, ctx) => {
    const names = new Set<string>();
    for (const [i, f] of (m.features ?? []).entries()) {
      if (names.has(f.name)) ctx.addIssue({ code: 'custom', path: ['features', i, 'name'], message: `duplicate feature name "${f.name}"` });
      names.add(f.name);
      if (f.min !== undefined && f.max !== undefined && f.min > f.max)
        ctx.addIssue({ code: 'custom', path: ['features', i, 'min'], message: `min ${f.min} is above max ${f.max}` });
      const values = (f.categories ?? []).map((c) => c.value);
      if (new Set(values).size !== values.length)
        ctx.addIssue({ code: 'custom', path: ['features', i, 'categories'], message: 'a value is labelled twice' });
      if (f.monotone && (f.type === 'one-hot' || f.group !== undefined))
        ctx.addIssue({
          code: 'custom',
          path: ['features', i, 'monotone'],
          message: 'a one-hot column cannot be monotone: its group has no order',
        });
    }
    const groupNames = new Set((m.features ?? []).flatMap((f) => (f.group ? [f.group] : [])));
    for (const [i, s] of m.sensitiveFeatures.entries()) {
      if (!names.has(s) && !groupNames.has(s))
        ctx.addIssue({ code: 'custom', path: ['sensitiveFeatures', i], message: `"${s}" is neither a feature nor a group` });
    }
    if (m.reference && !m.label)
      ctx.addIssue({ code: 'custom', path: ['label'], message: 'a reference file needs "label", the name of its label column' });
  });

export type Metadata = z.infer<typeof MetadataSchema>;
export type FeatureMeta = z.infer<typeof FeatureSchema>;

/** Parses metadata, or throws an Error whose message lists every problem as "path: message". */
export function parseMetadata(json: unknown): Metadata {
  const r = MetadataSchema.safeParse(json);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new Error(`invalid metadata.json: ${lines.join('; ')}`);
}
