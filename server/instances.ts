/**
 * The edge where JSON becomes the one matrix form the explainers see (Float32Array rows). Every
 * check says which row and which column was wrong, so a client can fix it without guessing.
 */
import type { FeatureSpace, Rows } from '../explainers/types.js';
import { ApiError } from './errors.js';

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
    throw new ApiError('BAD_INSTANCE', `${where}, ${field}: expected a number, got ${describe(v)}`, { field });
  }
  if (!Number.isFinite(v)) {
    throw new ApiError('BAD_INSTANCE', `${where}, ${field}: ${v} is not a finite number`, { field });
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
    throw new ApiError(
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
        throw new ApiError(
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
        throw new ApiError(
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
        throw new ApiError(
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
    throw new ApiError('BAD_INSTANCE', `${where}: expected an array of numbers or an object keyed by feature name, got ${describe(inst)}`);
  });
  return { data, n: instances.length, d };
}

/** Output selectors (index or name) to indices. */
export function resolveOutputs(outputs: (number | string)[] | undefined, space: FeatureSpace): number[] | undefined {
  if (!outputs) return undefined;
  const k = space.outputNames.length;
  const seen = new Set<number>();
  return outputs.map((o, i) => {
    let idx: number;
    if (typeof o === 'number') {
      if (!Number.isInteger(o) || o < 0 || o >= k) {
        throw new ApiError(
          'UNKNOWN_OUTPUT',
          `outputs[${i}]: ${o} is not an output index; the model has outputs 0..${k - 1} (${space.outputNames.join(', ')})`,
        );
      }
      idx = o;
    } else {
      idx = space.outputNames.indexOf(o);
      if (idx < 0)
        throw new ApiError(
          'UNKNOWN_OUTPUT',
          `outputs[${i}]: unknown output "${o}"; the model's outputs are ${space.outputNames.join(', ')}`,
        );
    }
    if (seen.has(idx)) throw new ApiError('UNKNOWN_OUTPUT', `outputs[${i}]: output ${space.outputNames[idx]} is listed twice`);
    seen.add(idx);
    return idx;
  });
}
