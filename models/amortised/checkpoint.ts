/**
 * Training checkpoints: everything the network's training needs to continue exactly where it stopped,
 * written after every epoch. Random state needs no saving: each epoch's row order is derived from
 * (seed, epoch) by the caller.
 * checkpoint.json names an epoch-tagged checkpoint-<epoch>.bin holding the arrays; the .bin is
 * renamed into place before the .json, so a crash between the two leaves the previous pair valid.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  validationLoss: number;
  learningRate: number;
}

export interface CheckpointState {
  /** Hash of everything that determines the run (options, rows, model version): resuming needs the same. */
  fingerprint: string;
  epochsDone: number;
  learningRate: number;
  bestLoss: number;
  bestEpoch: number;
  plateauBest: number;
  plateauBad: number;
  adamStep: number;
  trainMs: number;
  history: EpochRecord[];
  stopped: boolean;
  /** 1: only the linear part trains; 2: the whole network (train.ts). And the epoch the stage began after. */
  stage: 1 | 2;
  stageStart: number;
  /** The linear stage's best loss by its own threshold, and when (train.ts). */
  stageBest: number;
  stageBestEpoch: number;
  /** The caller's own facts about the run, kept with it (JSON). */
  extra: Record<string, unknown>;
  /** Current weights, best weights, Adam first and second moments: one array per variable each. */
  weights: Float32Array[];
  best: Float32Array[];
  m: Float32Array[];
  v: Float32Array[];
}

type Meta = Omit<CheckpointState, 'weights' | 'best' | 'm' | 'v'> & { file: string; sizes: number[]; format: 2 };

const JSON_FILE = 'checkpoint.json';

export async function saveCheckpoint(dir: string, state: CheckpointState): Promise<void> {
  await mkdir(dir, { recursive: true });
  const arrays = [...state.weights, ...state.best, ...state.m, ...state.v];
  const total = arrays.reduce((a, x) => a + x.length, 0);
  const bytes = new Float32Array(total);
  let at = 0;
  for (const a of arrays) {
    bytes.set(a, at);
    at += a.length;
  }
  const file = `checkpoint-${state.epochsDone}.bin`;
  const { weights: _w, best: _b, m: _m, v: _v, ...rest } = state;
  const meta: Meta = { ...rest, file, sizes: state.weights.map((w) => w.length), format: 2 };
  await writeFile(path.join(dir, `${file}.tmp`), new Uint8Array(bytes.buffer));
  await rename(path.join(dir, `${file}.tmp`), path.join(dir, file));
  await writeFile(path.join(dir, `${JSON_FILE}.tmp`), JSON.stringify(meta));
  await rename(path.join(dir, `${JSON_FILE}.tmp`), path.join(dir, JSON_FILE));
  for (const f of await readdir(dir)) if (/^checkpoint-\d+\.bin$/.test(f) && f !== file) await rm(path.join(dir, f), { force: true });
}

/** The saved state, or undefined when `dir` holds no checkpoint. */
export async function loadCheckpoint(dir: string): Promise<CheckpointState | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, JSON_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const meta = JSON.parse(text) as Meta;
  if (meta.format !== 2) return undefined;
  const buf = await readFile(path.join(dir, meta.file));
  const copy = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const per = meta.sizes.reduce((a, b) => a + b, 0);
  if (copy.byteLength !== 16 * per) throw new Error(`checkpoint ${meta.file} has ${copy.byteLength} bytes, expected ${16 * per}`);
  const all = new Float32Array(copy);
  let at = 0;
  const take = () =>
    meta.sizes.map((s) => {
      const a = all.slice(at, at + s);
      at += s;
      return a;
    });
  const { file: _f, sizes: _s, format: _v, ...rest } = meta;
  return { ...rest, weights: take(), best: take(), m: take(), v: take() };
}
