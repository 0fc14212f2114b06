/**
 * What the explain methods share about a model's kind of input: tabular rows, images ([h, w, c]
 * with h, w > 1) or text (a folder with tokenizer.json), what a method needs of the model (input
 * gradients, layer access), and, for text, the tokens of id rows.
 */
import { ExplainerInputError, type Rows } from '../../explainers/types.js';
import type { ServedModel } from '../../models/served.js';
import type { Tokenizer } from '../../models/tokenizer.js';
import { ServiceError } from '../errors.js';

export type InputKind = 'tabular' | 'image' | 'text';

const KIND_NAMES: Record<InputKind, string> = { tabular: 'tabular', image: 'image', text: 'text' };

/** Text when the folder has a tokenizer, an image when the input shape is [h, w] or [h, w, c] with h, w > 1. */
export function inputKind(m: Pick<ServedModel, 'tokenizer' | 'inputShape'>): InputKind {
  if (m.tokenizer) return 'text';
  const s = m.inputShape;
  return (s.length === 2 || s.length === 3) && s[0] > 1 && s[1] > 1 ? 'image' : 'tabular';
}

export const hasGradients = (m: ServedModel): boolean => typeof m.model.inputGradients === 'function';

/** Layer activations and gradients (tfjs layers models): Grad-CAM, Integrated Gradients on an embedding. */
export const hasLayers = (m: ServedModel): boolean =>
  typeof m.model.layerGradients === 'function' && typeof m.model.layerActivations === 'function' && (m.model.layers?.length ?? 0) > 0;

/** The reason a method with these needs cannot explain `m`, or undefined. */
export function requirement(
  m: ServedModel,
  needs: { inputs: readonly InputKind[]; gradients?: boolean; layers?: boolean },
): string | undefined {
  const kind = inputKind(m);
  if (!needs.inputs.includes(kind)) {
    return `explains ${needs.inputs.map((k) => KIND_NAMES[k]).join(' and ')} models, and "${m.name}" is a ${KIND_NAMES[kind]} model`;
  }
  if (needs.gradients && !hasGradients(m)) return `needs input gradients, which model "${m.name}" does not provide`;
  if (needs.layers && !hasLayers(m)) {
    return `needs layer activations and gradients (tfjs layers models have them), which model "${m.name}" does not provide`;
  }
  return undefined;
}

/** Refuses parameters that mean nothing for this kind of input (rather than ignoring them silently). */
export function onlyFor(kind: InputKind, allowed: readonly InputKind[], given: Record<string, unknown>, names: readonly string[]): void {
  if (allowed.includes(kind)) return;
  const bad = names.filter((n) => given[n] !== undefined);
  if (bad.length) {
    throw new ServiceError(
      'BAD_PARAMETER',
      `parameters.${bad[0]} applies to ${allowed.map((k) => KIND_NAMES[k]).join(' and ')} models; this is a ${KIND_NAMES[kind]} model`,
      { parameters: bad },
    );
  }
}

/**
 * The tokens of text id rows as the tokenizer names them: positions up to the last non-pad id (the
 * tokenizer pads on the right). The service renames them to the words as sent when it has them.
 */
export function textTokens(tok: Tokenizer | undefined, rows: Rows): string[][] {
  if (!tok) throw new ExplainerInputError('METHOD_NOT_SUPPORTED', 'this model has no tokenizer.json: it is not a text model');
  const out: string[][] = [];
  for (let i = 0; i < rows.n; i++) {
    const ids = rows.data.subarray(i * rows.d, (i + 1) * rows.d);
    let k = ids.length;
    while (k > 0 && ids[k - 1] === tok.padId) k--;
    if (k === 0) throw new ExplainerInputError('EMPTY_TEXT', `instance ${i} holds only padding: send a text with at least one word`, { instance: i });
    out.push(Array.from(ids.subarray(0, k), (id) => tok.vocabulary[id] ?? String(id)));
  }
  return out;
}
