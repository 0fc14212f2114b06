/** The shapes sample with its object masks: the planted truth the image explainers are held to. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Rows } from '../../explainers/types.js';
import { loadModelFolder, type LoadedModel } from '../../models/repository.js';

export const SHAPES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'samples', 'models', 'shapes');

export interface ShapesCase {
  loaded: LoadedModel;
  /** Reference rows 0..19 (the ones with masks). */
  images: Rows;
  labels: number[];
  /** masks[i][p] = 1 on object pixels (p = row * 16 + col). */
  masks: Uint8Array[];
}

export async function loadShapes(): Promise<ShapesCase> {
  const loaded = await loadModelFolder('shapes', SHAPES_DIR);
  const m = JSON.parse(await readFile(path.join(SHAPES_DIR, 'masks.json'), 'utf8')) as { rows: number[]; labels: number[]; masks: number[][][] };
  const ref = loaded.reference!;
  const d = ref.rows.d;
  const images: Rows = { data: Float32Array.from(ref.rows.data.subarray(0, m.rows.length * d)), n: m.rows.length, d };
  return { loaded, images, labels: m.labels, masks: m.masks.map((mask) => Uint8Array.from(mask.flat())) };
}

/** Share of the positive attribution (summed over channels per pixel) that falls on the mask. */
export function objectShare(attributions: ArrayLike<number>, mask: Uint8Array, channels = 1): number {
  let on = 0;
  let all = 0;
  for (let p = 0; p < mask.length; p++) {
    let v = 0;
    for (let ch = 0; ch < channels; ch++) v += attributions[p * channels + ch];
    if (v <= 0) continue;
    all += v;
    if (mask[p]) on += v;
  }
  return all > 0 ? on / all : 0;
}
