/**
 * The edge where JSON becomes the one matrix form the explainers see (Float32Array rows). Every
 * check says which row and which column was wrong, so a client can fix it without guessing.
 */
import { ExplainerInputError, type FeatureSpace, type InstanceExplanation, type Rows } from '../explainers/types.js';
import type { FeatureInfo } from '../monitoring/features.js';
import type { ServedModel } from '../models/served.js';
import { encodeTexts, type Tokenizer } from '../models/tokenizer.js';
import { ServiceError } from './errors.js';

export interface InputLayout {
  nFeatures: number;
  /** [d] for tabular models, [h, w, c] for images. */
  inputShape: number[];
  space: FeatureSpace;
  /** Text models: instances may be strings, tokenized by it; id rows are checked against its vocabulary. */
  tokenizer?: Tokenizer;
}

/** Rows, and for the instances sent as text their tokens (as written, before ids) and how many were cut off. */
export interface ParsedInstances {
  rows: Rows;
  /** Per instance: its kept tokens when it was a string, else undefined. Absent when no instance was a string. */
  tokens?: (string[] | undefined)[];
  truncated?: number[];
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
  return parseInstances(instances, layout, label).rows;
}

/** One text to its token ids (written into `out`), through the model's tokenizer. */
function encodeText(tok: Tokenizer, text: string, out: Float32Array, where: string): { tokens: string[]; truncated: number } {
  let e: ReturnType<typeof encodeTexts>;
  try {
    e = encodeTexts(tok, [text]);
  } catch (err) {
    if (err instanceof ExplainerInputError && err.code === 'EMPTY_TEXT') {
      throw new ServiceError('EMPTY_TEXT', `${where}: the text has no tokens (no word, number or punctuation); send a text with at least one word`);
    }
    throw err;
  }
  out.set(e.rows.data);
  return { tokens: e.tokens[0], truncated: e.truncated[0] };
}

/** Token id rows of a text model: integers within the vocabulary (an id outside it has no embedding). */
function checkIds(tok: Tokenizer, row: Float32Array, where: string): void {
  const v = tok.vocabulary.length;
  for (let j = 0; j < row.length; j++) {
    const id = row[j];
    if (!Number.isInteger(id) || id < 0 || id >= v) {
      throw new ServiceError(
        'BAD_INSTANCE',
        `${where}, position ${j}: ${id} is not a token id of this text model (integers 0..${v - 1}); send the text as a string instead`,
      );
    }
  }
}

/**
 * toRows, keeping what text instances were: their tokens (the words as written, lower-cased when the
 * tokenizer does) and the count cut off beyond the model's input length.
 */
export function parseInstances(instances: unknown[], layout: InputLayout, label = 'instances'): ParsedInstances {
  const d = layout.nFeatures;
  const data = new Float32Array(instances.length * d);
  const names = layout.space.featureNames;
  const tok = layout.tokenizer;
  let tokens: (string[] | undefined)[] | undefined;
  let truncated: number[] | undefined;
  let index: Map<string, number> | undefined;
  instances.forEach((inst, r) => {
    const where = `${label}[${r}]`;
    const base = r * d;
    if (typeof inst === 'string') {
      if (!tok) {
        throw new ServiceError(
          'BAD_INSTANCE',
          `${where}: got ${describe(inst)}, but this model takes numbers; only text models (a model folder with tokenizer.json) take strings`,
        );
      }
      tokens ??= new Array<string[] | undefined>(instances.length).fill(undefined);
      truncated ??= new Array<number>(instances.length).fill(0);
      const e = encodeText(tok, inst, data.subarray(base, base + d), where);
      tokens[r] = e.tokens;
      truncated[r] = e.truncated;
      return;
    }
    if (tok && Array.isArray(inst)) {
      // A text model's row of token ids.
      if (inst.length !== d) {
        throw new ServiceError('BAD_INSTANCE', `${where}: expected a string, or ${d} token ids, got an array of length ${inst.length}`, { expected: d, got: inst.length });
      }
      for (let j = 0; j < d; j++) data[base + j] = numberAt(inst[j], where, `position ${j}`);
      checkIds(tok, data.subarray(base, base + d), where);
      return;
    }
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
      if (tok) checkIds(tok, data.subarray(base, base + d), where);
      return;
    }
    throw new ServiceError(
      'BAD_INSTANCE',
      `${where}: expected ${tok ? 'a string (the text)' : 'an array of numbers or an object keyed by feature name'}, got ${describe(inst)}`,
    );
  });
  return { rows: { data, n: instances.length, d }, ...(tokens ? { tokens, truncated } : {}) };
}

/**
 * A text sent as a string: its attributions named by its words as written, where the explainer named
 * them by the tokenizer's vocabulary ("[UNK]" for a word it does not know). New objects: a cached
 * explanation stays as it was.
 */
export function withWords(e: InstanceExplanation, words: string[] | undefined): InstanceExplanation {
  if (!words) return e;
  return {
    ...e,
    outputs: e.outputs.map((o) => ({ ...o, attributions: o.attributions.map((a, p) => ({ ...a, feature: words[a.position ?? p] ?? a.feature })) })),
  };
}

/** The layout of a served model's rows. */
export function layoutOf(m: ServedModel): InputLayout {
  return { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space, ...(m.tokenizer ? { tokenizer: m.tokenizer } : {}) };
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
