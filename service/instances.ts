/**
 * The edge where JSON becomes the one matrix form the explainers see (Float32Array rows). Every
 * check says which row and which column was wrong, so a client can fix it without guessing.
 */
import type { FeatureSpace, Rows } from '../explainers/types.js';
import type { FeatureInfo } from '../monitoring/features.js';
import type { ServedModel } from '../models/served.js';
import { ServiceError } from './errors.js';

export interface InputLayout {
  nFeatures: number;
  /** [d] for tabular models, [h, w, c] for images. */
  inputShape: number[];
  space: FeatureSpace;
}

const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `the string ${JSON.stringify(v).slice(0, 40)}` : typeof v;

function numberAt(v: unknown, where: string, field: string): number {
  if (typeof v !== 'number') {
    throw new ServiceError('BAD_INSTANCE', `${where}, ${field}: expected a number, got ${describe(v)}`, { field });
  }
  if (!Number.isFinite(v)) {
    throw new ServiceError('BAD_INSTANCE', `${where}, ${field}: ${v} is not a finite number`, { field });
  }
  return v;
}

/** Flattens a nested array of the model's input shape, checking each level's length. */
function flattenNested(v: unknown, shape: number[], out: Float32Array, offset: number, where: string, path: number[]): number {
  if (shape.length === 0) {
    out[offset] = numberAt(v, where, `element [${path.join('][')}]`);
    return offset + 1;
  }
  if (!Array.isArray(v) || v.length !== shape[0]) {
    const got = Array.isArray(v) ? `length ${v.length}` : describe(v);
    const at = path.length ? ` at [${path.join('][')}]` : '';
    throw new ServiceError(
      'BAD_INSTANCE',
      `${where}${at}: expected an array of length ${shape[0]} (input shape [${shape.join(', ')}]), got ${got}`,
    );
  }
  for (let i = 0; i < v.length; i++) offset = flattenNested(v[i], shape.slice(1), out, offset, where, [...path, i]);
  return offset;
}

/**
 * Accepts, per instance: a flat array of nFeatures numbers, a nested array of the input shape, or an
 * object keyed by feature name (tabular models). `label` names the list in messages ("instances",
 * "background" ...).
 */
export function toRows(instances: unknown[], layout: InputLayout, label = 'instances'): Rows {
  const d = layout.nFeatures;
  const data = new Float32Array(instances.length * d);
  const names = layout.space.featureNames;
  let index: Map<string, number> | undefined;
  instances.forEach((inst, r) => {
    const where = `${label}[${r}]`;
    const base = r * d;
    if (Array.isArray(inst)) {
      if (
        inst.length === d &&
        (layout.inputShape.length === 1 || typeof inst[0] === 'number' || inst[0] === null || typeof inst[0] === 'string')
      ) {
        for (let j = 0; j < d; j++) data[base + j] = numberAt(inst[j], where, `column ${j} ("${names[j]}")`);
      } else if (layout.inputShape.length > 1) {
        flattenNested(inst, layout.inputShape, data, base, where, []);
      } else {
        throw new ServiceError(
          'BAD_INSTANCE',
          `${where}: expected ${d} values (one per feature: ${names.slice(0, 6).join(', ')}${d > 6 ? ', ...' : ''}), got ${inst.length}`,
          { expected: d, got: inst.length },
        );
      }
      return;
    }
    if (inst !== null && typeof inst === 'object') {
      index ??= new Map(names.map((n, i) => [n, i]));
      const obj = inst as Record<string, unknown>;
      const unknown = Object.keys(obj).filter((k) => !index!.has(k));
      if (unknown.length) {
        throw new ServiceError(
          'UNKNOWN_FEATURE',
          `${where}: unknown feature${unknown.length > 1 ? 's' : ''} ${unknown
            .slice(0, 5)
            .map((u) => `"${u}"`)
            .join(', ')}; the model's features are ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}`,
          { unknown },
        );
      }
      const missing = names.filter((n) => !(n in obj));
      if (missing.length) {
        throw new ServiceError(
          'MISSING_FEATURE',
          `${where}: missing feature${missing.length > 1 ? 's' : ''} ${missing
            .slice(0, 5)
            .map((m) => `"${m}"`)
            .join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`,
          { missing },
        );
      }
      for (let j = 0; j < d; j++) data[base + j] = numberAt(obj[names[j]], where, `feature "${names[j]}"`);
      return;
    }
    throw new ServiceError(
      'BAD_INSTANCE',
      `${where}: expected an array of numbers or an object keyed by feature name, got ${describe(inst)}`,
    );
  });
  return { data, n: instances.length, d };
}

/** The layout of a served model's rows. */
export function layoutOf(m: ServedModel): InputLayout {
  return { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space };
}

/** Output selectors (index or name) to indices, each through resolveOutput; an output listed twice is refused. */
export function resolveOutputs(outputs: (number | string)[] | undefined, space: FeatureSpace): number[] | undefined {
  if (!outputs) return undefined;
  const seen = new Set<number>();
  return outputs.map((o, i) => {
    const idx = resolveOutput(o, space, `outputs[${i}]:`);
    if (seen.has(idx)) throw new ServiceError('UNKNOWN_OUTPUT', `outputs[${i}]: output ${space.outputNames[idx]} is listed twice`);
    seen.add(idx);
    return idx;
  });
}

/**
 * One output selector (index, name, or a string of digits from a query) to its index: the one
 * resolver every endpoint and job uses. `what` names the parameter in messages.
 */
export function resolveOutput(selector: number | string, space: FeatureSpace, what = 'output'): number {
  const names = space.outputNames;
  const k = names.length;
  const idx =
    typeof selector === 'number'
      ? selector
      : /^\d+$/.test(selector) && !names.includes(selector)
        ? Number(selector)
        : names.indexOf(selector);
  if (!Number.isInteger(idx) || idx < 0 || idx >= k) {
    throw new ServiceError(
      'UNKNOWN_OUTPUT',
      `${what} ${JSON.stringify(selector)} is not an output of this model; outputs are ${names.join(', ')} (or their index 0..${k - 1})`,
      { outputs: names },
    );
  }
  return idx;
}

/** Labels as numbers: class names (metadata.classes) become indices. `what` names the list in messages. */
export function labelsFrom(raw: (number | string)[], m: ServedModel, what = 'labels'): Float32Array {
  const classes = m.metadata?.classes;
  return Float32Array.from(raw, (v, i) => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new ServiceError('BAD_LABELS', `${what}[${i}]: ${v} is not a finite number`);
      return v;
    }
    const idx = classes ? classes.indexOf(v) : -1;
    if (idx < 0) {
      throw new ServiceError(
        'BAD_LABELS',
        `${what}[${i}]: "${v}" is not a class of model "${m.name}"${classes ? `; classes are ${classes.join(', ')}` : ' (it declares no class names; send class indices)'}`,
      );
    }
    return idx;
  });
}

/** A class given by index or by name (metadata.classes) to its index. */
export function classIndex(m: ServedModel, v: number | string, what: string): number {
  if (typeof v === 'number') return v;
  const idx = m.metadata?.classes?.indexOf(v) ?? -1;
  if (idx < 0) throw new ServiceError('BAD_PARAMETER', `${what} "${v}" is not a class of model "${m.name}"`);
  return idx;
}

/** Feature types and one-hot groups from metadata.json (image models: every feature a pixel). */
export function featureInfo(m: ServedModel): FeatureInfo {
  const features = m.metadata?.features;
  if (!features) return m.inputShape.length > 1 ? { types: m.space.featureNames.map(() => 'pixel') } : {};
  const groups = new Map<string, number[]>();
  features.forEach((f, i) => {
    if (f.group !== undefined) groups.set(f.group, [...(groups.get(f.group) ?? []), i]);
  });
  return {
    types: features.map((f) => f.type),
    groups: [...groups].map(([name, columns]) => ({ name, columns })),
    ...(features.some((f) => f.categories) ? { categories: features.map((f) => f.categories) } : {}),
  };
}

export function rowOf(rows: Rows, i: number): Float32Array {
  return rows.data.subarray(i * rows.d, (i + 1) * rows.d);
}
