/**
 * The word tokenizer of text models. Contract: a text model's folder holds `tokenizer.json`:
 *
 *   {"type": "word", "lowercase": true, "maxLength": 12,
 *    "pad": "[PAD]", "unk": "[UNK]", "mask": "[MASK]",
 *    "vocabulary": ["[PAD]", "[UNK]", "[MASK]", "the", ...]}
 *
 * A token's id is its index in `vocabulary` (ids are fed to the model as numbers, one per input
 * position). Rules: Unicode NFKC, lower-cased when `lowercase`; tokens are runs of letters, digits
 * and apostrophes, or single other non-space characters; unknown tokens become `unk`; the sequence is
 * cut to `maxLength` (the model's input length) and padded on the right with `pad`. `mask` is what
 * token-masking explainers put in place of a removed token. pad, unk and mask must be in the
 * vocabulary; maxLength must equal the model's input length.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ExplainerInputError, type Rows } from '../explainers/types.js';

export interface Tokenizer {
  type: 'word';
  lowercase: boolean;
  maxLength: number;
  vocabulary: string[];
  padId: number;
  unkId: number;
  maskId: number;
  index: Map<string, number>;
}

export const TOKENIZER_FILE = 'tokenizer.json';
const TOKEN = /[\p{L}\p{N}']+|[^\s\p{L}\p{N}']/gu;

export function parseTokenizer(json: unknown): Tokenizer {
  const fail = (m: string): never => {
    throw new Error(`invalid ${TOKENIZER_FILE}: ${m}`);
  };
  if (!json || typeof json !== 'object') fail('not an object');
  const j = json as Record<string, unknown>;
  if ((j.type ?? 'word') !== 'word') fail(`type must be "word", got ${JSON.stringify(j.type)}`);
  const vocabulary = j.vocabulary;
  if (!Array.isArray(vocabulary) || vocabulary.length < 3 || !vocabulary.every((t) => typeof t === 'string')) fail('vocabulary must list at least 3 token strings');
  const vocab = vocabulary as string[];
  const index = new Map<string, number>();
  vocab.forEach((t, i) => {
    if (index.has(t)) fail(`token ${JSON.stringify(t)} is listed twice`);
    index.set(t, i);
  });
  const maxLength = j.maxLength;
  if (!Number.isInteger(maxLength) || (maxLength as number) < 1) fail('maxLength must be a positive integer');
  const special = (k: 'pad' | 'unk' | 'mask', dflt: string) => {
    const t = (j[k] ?? dflt) as string;
    const id = index.get(t);
    if (id === undefined) fail(`${k} token ${JSON.stringify(t)} is not in the vocabulary`);
    return id as number;
  };
  return {
    type: 'word',
    lowercase: j.lowercase !== false,
    maxLength: maxLength as number,
    vocabulary: vocab,
    padId: special('pad', '[PAD]'),
    unkId: special('unk', '[UNK]'),
    maskId: special('mask', '[MASK]'),
    index,
  };
}

/** The folder's tokenizer, or undefined when it has no tokenizer.json (not a text model). */
export async function loadTokenizer(folder: string): Promise<Tokenizer | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(folder, TOKENIZER_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code === 'ENOENT') return undefined;
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${TOKENIZER_FILE}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return parseTokenizer(json);
}

export interface Encoded {
  /** One row of maxLength ids per text. */
  rows: Rows;
  /** The tokens kept (before padding), per text. */
  tokens: string[][];
  /** Tokens cut off beyond maxLength, per text. */
  truncated: number[];
}

export function splitTokens(tok: Tokenizer, text: string): string[] {
  const norm = text.normalize('NFKC');
  return (tok.lowercase ? norm.toLowerCase() : norm).match(TOKEN) ?? [];
}

/** Texts to id rows. Errors (4xx): a non-string instance, or a text with no token. */
export function encodeTexts(tok: Tokenizer, texts: unknown[]): Encoded {
  if (!Array.isArray(texts) || texts.length === 0) throw new ExplainerInputError('BAD_INSTANCES', 'instances must be a non-empty list of strings');
  const L = tok.maxLength;
  const data = new Float32Array(texts.length * L).fill(tok.padId);
  const tokens: string[][] = [];
  const truncated: number[] = [];
  texts.forEach((t, i) => {
    if (typeof t !== 'string') throw new ExplainerInputError('BAD_INSTANCES', `instance ${i} must be a string (this is a text model), got ${typeof t}`);
    const all = splitTokens(tok, t);
    if (all.length === 0) throw new ExplainerInputError('EMPTY_TEXT', `instance ${i} has no tokens: send a text with at least one word`, { instance: i });
    const kept = all.slice(0, L);
    kept.forEach((w, p) => (data[i * L + p] = tok.index.get(w) ?? tok.unkId));
    tokens.push(kept);
    truncated.push(all.length - kept.length);
  });
  return { rows: { data, n: texts.length, d: L }, tokens, truncated };
}
