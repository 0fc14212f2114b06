/**
 * Which outputs an explanation explains. A request that names outputs gets those; `"all"` gets every
 * output; a request that names none gets, for a classifier with several outputs, each instance's
 * predicted class (Vertex AI's convention: the class the model chose is the one a reader asks about),
 * and every output otherwise (regression, or a classifier with one probability output).
 *
 * A classifier is a model whose metadata says so (task binary- or multiclass-classification), or,
 * without a task in metadata, whose last layer is a softmax or a sigmoid. The predicted class is the
 * output with the largest value (argmax of the probabilities; for a multi-label sigmoid model, the
 * most probable label).
 */
import type { FeatureSpace, Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { resolveOutputs } from './instances.js';

export type OutputSelection =
  | { kind: 'requested'; outputs: number[] }
  | { kind: 'all' }
  /** Each instance's predicted class (argmax of the model's outputs), decided per instance. */
  | { kind: 'predicted-class' };

/** The name the response and the cache context give a selection. */
export type OutputSelectionName = OutputSelection['kind'];

export type OutputsRequest = (number | string)[] | 'all' | undefined;

/** Is the model a classifier: metadata's task, else a softmax/sigmoid output layer. */
export function isClassifier(m: Pick<ServedModel, 'metadata' | 'outputKind'>): boolean {
  const task = m.metadata?.task;
  if (task) return task !== 'regression';
  return m.outputKind === 'softmax' || m.outputKind === 'sigmoid';
}

/** The outputs a request explains (see the file comment). */
export function selectOutputs(requested: OutputsRequest, m: Pick<ServedModel, 'metadata' | 'outputKind' | 'space'>): OutputSelection {
  if (requested === 'all') return { kind: 'all' };
  if (requested) return { kind: 'requested', outputs: resolveOutputs(requested, m.space)! };
  return isClassifier(m) && m.space.outputNames.length > 1 ? { kind: 'predicted-class' } : { kind: 'all' };
}

/** What goes into cache contexts and ids: the selection, with the requested indices. */
export function selectionKey(s: OutputSelection): string | number[] {
  return s.kind === 'requested' ? s.outputs : s.kind;
}

/** The output indices a selection explains for every instance (undefined: all; predicted-class: decided per row). */
export function fixedOutputs(s: OutputSelection): number[] | undefined {
  return s.kind === 'requested' ? s.outputs : undefined;
}

/** Per row, the index of the largest of its k outputs (the first on ties). */
export function argmaxRows(predictions: Float32Array, n: number, k: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (predictions[i * k + c] > predictions[i * k + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** Rows grouped by a per-row key, in order of first appearance: key -> row indices. */
export function groupRows(keys: ArrayLike<number>): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < keys.length; i++) {
    const g = groups.get(keys[i]);
    if (g) g.push(i);
    else groups.set(keys[i], [i]);
  }
  return groups;
}

/** The rows at `indices`, as a new matrix. */
export function pickRowsAt(rows: Rows, indices: number[]): Rows {
  const data = new Float32Array(indices.length * rows.d);
  indices.forEach((src, dst) => data.set(rows.data.subarray(src * rows.d, (src + 1) * rows.d), dst * rows.d));
  return { data, n: indices.length, d: rows.d };
}

/** A readable phrase for messages and charts: "the predicted class", "all outputs", "Adelie, Gentoo". */
export function describeSelection(s: OutputSelection, space: FeatureSpace): string {
  if (s.kind === 'predicted-class') return "each instance's predicted class";
  if (s.kind === 'all') return 'all outputs';
  return s.outputs.map((o) => space.outputNames[o]).join(', ');
}
