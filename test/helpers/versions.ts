/**
 * Model versions with planted changes, for the versions tests: copies of a sample model folder whose
 * weights or metadata are edited, and the atomic way to drop a folder into a model repository
 * (copy under a dot name, which the repository ignores, then rename).
 */
import { cp, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const SAMPLES = path.resolve('samples/models');

/** The linear sample's weights: 6 kernel values then the bias (weights.bin, float32). */
export async function linearWeights(folder: string): Promise<{ w: number[]; b: number }> {
  const bytes = await readFile(path.join(folder, 'weights.bin'));
  const f = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return { w: Array.from(f.subarray(0, 6)), b: f[6] };
}

/** A copy of the linear sample at `dest` with its weights changed by `edit` (kernel, bias). */
export async function linearVersion(dest: string, edit: (w: number[], b: number) => { w: number[]; b: number }): Promise<{ w: number[]; b: number }> {
  await cp(path.join(SAMPLES, 'linear'), dest, { recursive: true });
  const before = await linearWeights(dest);
  const after = edit([...before.w], before.b);
  await writeFile(path.join(dest, 'weights.bin'), Buffer.from(Float32Array.from([...after.w, after.b]).buffer));
  // Read back: the float32 values the model really has.
  return linearWeights(dest);
}

/** A copy of a sample model with only its description changed: a new content version with the same weights. */
export async function relabelledCopy(sample: string, dest: string, suffix: string): Promise<void> {
  await cp(path.join(SAMPLES, sample), dest, { recursive: true });
  const file = path.join(dest, 'metadata.json');
  const meta = JSON.parse(await readFile(file, 'utf8'));
  meta.description = `${meta.description} (${suffix})`;
  await writeFile(file, JSON.stringify(meta, null, 2));
}

/** Moves a prepared folder into place in one rename (the way to publish a version: never half-copied). */
export async function publish(prepared: string, target: string): Promise<void> {
  await rename(prepared, target);
}

/** f(x) = w.x + b for rows of the linear sample, in float64 (the oracle). */
export function linearPredict(rows: number[][], p: { w: number[]; b: number }): number[] {
  return rows.map((r) => r.reduce((s, x, j) => s + x * p.w[j], p.b));
}

/** A copy of a sample model with every weight multiplied by (1 + scale * u), u uniform in [-1, 1] (seeded). */
export async function perturbedCopy(sample: string, dest: string, scale: number, seed = 1): Promise<void> {
  await cp(path.join(SAMPLES, sample), dest, { recursive: true });
  const file = path.join(dest, 'weights.bin');
  const bytes = await readFile(file);
  const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  let s = seed >>> 0;
  for (let i = 0; i < f.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    f[i] *= 1 + scale * ((s / 2 ** 32) * 2 - 1);
  }
  await writeFile(file, Buffer.from(f.buffer));
}
