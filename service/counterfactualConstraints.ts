/**
 * metadata.json's per-feature declarations (type, immutable, monotone, min, max, categories, group)
 * turned into the counterfactual explainer's options, so a model folder states its constraints once.
 */
import type { CounterfactualTask, FeatureConstraint } from '../explainers/counterfactuals/types.js';
import type { Metadata } from '../models/metadata.js';

export interface MetadataCounterfactualOptions {
  constraints: Record<string, FeatureConstraint>;
  /** Names of the one-hot groups in FeatureSpace.groups order (groups of 2 or more columns, by first column). */
  groupNames: string[];
  task?: CounterfactualTask;
}

const TYPES: Record<string, FeatureConstraint['type']> = {
  numeric: 'numeric',
  integer: 'integer',
  binary: 'binary',
  categorical: 'categorical',
  pixel: 'numeric',
  // A one-hot column outside any group is a 0/1 indicator.
  'one-hot': 'binary',
};

export function counterfactualOptionsFromMetadata(m: Metadata | undefined): MetadataCounterfactualOptions {
  const constraints: Record<string, FeatureConstraint> = {};
  const members = new Map<string, number>();
  for (const f of m?.features ?? []) if (f.group !== undefined) members.set(f.group, (members.get(f.group) ?? 0) + 1);
  const groupNames: string[] = [];
  for (const f of m?.features ?? []) {
    if (f.group !== undefined && (members.get(f.group) ?? 0) > 1 && !groupNames.includes(f.group)) groupNames.push(f.group);
    const grouped = f.group !== undefined && (members.get(f.group) ?? 0) > 1;
    const c: FeatureConstraint = {};
    if (!grouped && TYPES[f.type]) c.type = TYPES[f.type];
    if (f.immutable) c.immutable = true;
    if (f.monotone && !grouped) c.monotone = f.monotone;
    if (f.min !== undefined) c.min = f.min;
    if (f.max !== undefined) c.max = f.max;
    if (f.categories) c.categories = f.categories.map((k) => ({ value: k.value, label: k.label }));
    if (Object.keys(c).length) constraints[f.name] = c;
  }
  const task = m?.task;
  return { constraints, groupNames, ...(task ? { task } : {}) };
}
