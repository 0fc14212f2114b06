/**
 * What the charts are told about a served model (render/select.ts ChartContext): feature types, units
 * and category labels from metadata.json (integers print without thousands separators, coded values
 * by their names), whether it is a classifier (values read as p = ...), and which outputs the
 * explanation's instances explain.
 */
import type { ServedModel } from '../models/served.js';
import type { ChartContext, FeatureFacts } from '../render/select.js';
import { isClassifier, type OutputSelectionName } from './outputs.js';

const facts = new WeakMap<object, Record<string, FeatureFacts>>();

/** Per feature name, its metadata facts (cached per served model). */
export function featureFacts(m: Pick<ServedModel, 'metadata'>): Record<string, FeatureFacts> {
  let f = facts.get(m);
  if (!f) {
    f = Object.fromEntries(
      (m.metadata?.features ?? []).map((x) => [
        x.name,
        {
          type: x.type,
          ...(x.unit !== undefined ? { unit: x.unit } : {}),
          ...(x.categories ? { categories: x.categories } : {}),
        },
      ]),
    );
    facts.set(m, f);
  }
  return f;
}

export function chartContext(m: Pick<ServedModel, 'metadata' | 'outputKind'>, outputSelection?: OutputSelectionName): ChartContext {
  return { features: featureFacts(m), classifier: isClassifier(m), ...(outputSelection ? { outputSelection } : {}) };
}
