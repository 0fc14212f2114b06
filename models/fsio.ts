/**
 * A tf.io.IOHandler that reads a tfjs model (layers or graph format) from a folder on disk, without
 * tfjs-node. Every way a folder can be broken gets an Error that names the file and the problem,
 * because these messages end up in the model repository's error list read by operators. Files are
 * named relative to the model folder: the messages reach API clients, who need not see server paths.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

type ModelJSON = tf.io.ModelJSON;
type WeightEntry = tf.io.WeightsManifestEntry;

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, complex64: 8 };
const QUANT_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

/** A problem with the files of a model folder; the message names the file. */
export class ModelFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFileError';
  }
}

/** Why a file could not be read, without the absolute path fs puts in its messages. */
export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return 'is missing';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  if (code === 'EISDIR') return 'is a folder, not a file';
  return `cannot be read (${code ?? errText(e)})`;
}

/** Reads and checks `dir/model.json` (JSON shape only; weights are checked when loaded). */
export async function readModelJson(dir: string): Promise<ModelJSON> {
  const file = 'model.json';
  let text: string;
  try {
    text = await readFile(path.join(dir, file), 'utf8');
  } catch (e) {
    throw new ModelFileError(`${file} ${fsReason(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(`${file}: not valid JSON (${errText(e)})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new ModelFileError(`${file}: not a JSON object`);
  const m = json as Partial<ModelJSON>;
  if (m.modelTopology == null || typeof m.modelTopology !== 'object')
    throw new ModelFileError(`${file}: has no "modelTopology" object; is this a tfjs model.json?`);
  if (m.weightsManifest != null) checkManifest(file, m.weightsManifest);
  return m as ModelJSON;
}

/** 'graph' for tfjs graph models (a GraphDef topology), else 'layers'. */
export function modelFormat(json: ModelJSON): 'layers' | 'graph' {
  const topology = json.modelTopology as { node?: unknown };
  return json.format === 'graph-model' || Array.isArray(topology.node) ? 'graph' : 'layers';
}

/** An IOHandler for tf.loadLayersModel / tf.loadGraphModel reading `dir/model.json` and its weights. */
export function fileSystemHandler(dir: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = await readModelJson(dir);
      return tf.io.getModelArtifactsForJSON(json, (manifest) => readWeights(dir, manifest));
    },
  };
}

/** The weight files of every group, concatenated in manifest order, with their specs. */
async function readWeights(dir: string, manifest: tf.io.WeightsManifestConfig): Promise<[WeightEntry[], ArrayBuffer]> {
  const parts: Uint8Array[] = [];
  for (const [g, group] of manifest.entries()) {
    const files: Uint8Array[] = [];
    for (const rel of group.paths) files.push(await readWeightFile(dir, rel));
    const got = files.reduce((s, f) => s + f.byteLength, 0);
    const hasStrings = group.weights.some((w) => w.dtype === 'string');
    const need = groupBytes(group.weights, hasStrings ? concat(files) : undefined);
    if (got !== need) {
      const names = group.paths.join(', ');
      throw new ModelFileError(
        `model.json: weight file(s) ${names} of weightsManifest[${g}] hold ${got} bytes ` +
          `but its ${group.weights.length} weight(s) need ${need} bytes (truncated or wrong file?)`,
      );
    }
    parts.push(...files);
  }
  const all = concat(parts);
  const specs = manifest.flatMap((group) => group.weights);
  return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer];
}

async function readWeightFile(dir: string, rel: string): Promise<Uint8Array> {
  try {
    return await readFile(path.resolve(dir, rel));
  } catch (e) {
    throw new ModelFileError(`weight file ${rel} named in model.json's weightsManifest ${fsReason(e)}`);
  }
}

/**
 * Bytes the specs occupy. Fixed-size dtypes follow from the shape; string weights are stored as
 * (uint32 length, bytes) per element, so those are measured by walking `data`.
 */
export function groupBytes(weights: WeightEntry[], data?: Uint8Array): number {
  let offset = 0;
  for (const w of weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (w.dtype === 'string') {
      if (!data) throw new Error(`string weight "${w.name}" needs its data to be sized`);
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < n; i++) {
        // Past the end: report what the strings would need at least; the caller compares sizes.
        if (offset + 4 > data.byteLength) return offset + 4 * (n - i);
        offset += 4 + view.getUint32(offset, true);
      }
    } else {
      offset += n * weightElementBytes(w);
    }
  }
  return offset;
}

function weightElementBytes(w: WeightEntry): number {
  if (w.quantization) return QUANT_BYTES[w.quantization.dtype];
  return DTYPE_BYTES[w.dtype];
}

/** Structure and safety of weightsManifest, before any weight file is opened. */
function checkManifest(file: string, manifest: unknown): void {
  if (!Array.isArray(manifest)) throw new ModelFileError(`${file}: "weightsManifest" must be an array`);
  for (const [g, group] of manifest.entries()) {
    const where = `${file}: weightsManifest[${g}]`;
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights))
      throw new ModelFileError(`${where} needs "paths" and "weights" arrays`);
    for (const p of group.paths) {
      if (typeof p !== 'string' || p === '') throw new ModelFileError(`${where}: a weight path is not a non-empty string`);
      if (escapes(p)) throw new ModelFileError(`${where}: weight path "${p}" leaves the model folder (no "..", no absolute paths)`);
    }
    for (const w of group.weights) {
      const name = w?.name ?? '?';
      if (!Array.isArray(w?.shape) || !w.shape.every((s: unknown) => Number.isInteger(s) && (s as number) >= 0))
        throw new ModelFileError(`${where}: weight "${name}" has no valid "shape"`);
      const q = w.quantization?.dtype;
      if (q !== undefined && !(q in QUANT_BYTES))
        throw new ModelFileError(`${where}: weight "${name}" has unknown quantization dtype "${q}" (uint8, uint16, float16)`);
      if (q === undefined && w.dtype !== 'string' && !(w.dtype in DTYPE_BYTES))
        throw new ModelFileError(`${where}: weight "${name}" has unsupported dtype "${w.dtype}"`);
    }
  }
}

/** True for paths that could reach outside the folder: absolute, drive-letter, or with a '..' part. */
export function escapes(rel: string): boolean {
  if (path.isAbsolute(rel) || path.win32.isAbsolute(rel) || rel.includes('\0')) return true;
  return rel.split(/[\\/]/).some((part) => part === '..');
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
