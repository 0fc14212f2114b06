/** Writes one model folder of the model repository (models/repository.ts describes its layout). */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseMetadata } from '../../models/metadata.js';
import { loadLayersModel, Matrix, predict, saveLayersModel } from './nn.js';

export function csv(header: string[], rows: (number | string)[][]): string {
  const esc = (v: number | string) => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header, ...rows].map((r) => r.map(esc).join(',')).join('\n') + '\n';
}

export interface FolderSpec {
  dir: string;
  model: tf.LayersModel;
  metadata: Record<string, unknown>;
  /** Header = feature (or pixel) names. */
  header: string[];
  background: Matrix;
  reference: { rows: Matrix; labels: (number | string)[]; labelName: string };
  /** Rows for expected.json (raw inputs, flat). */
  expectedRows: Matrix;
  /** Shape of one example when it is not flat, e.g. [16, 16, 1]. */
  exampleShape?: number[];
  extraFiles?: Record<string, string>;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

/** Pretty JSON object whose array-of-rows values are written one row per line. */
function rowsJson(obj: Record<string, unknown>): string {
  const parts = Object.entries(obj).map(([k, v]) => {
    const body =
      Array.isArray(v) && v.every(Array.isArray) ? `[\n${v.map((r) => `    ${JSON.stringify(r)}`).join(',\n')}\n  ]` : JSON.stringify(v);
    return `  ${JSON.stringify(k)}: ${body}`;
  });
  return `{\n${parts.join(',\n')}\n}\n`;
}

/**
 * Writes model.json, weights.bin, metadata.json (validated), background.csv, reference.csv,
 * expected.json (predictions of the model as reloaded from the written files) and extra files.
 * Returns the reloaded model so callers can check it further.
 */
export async function writeModelFolder(s: FolderSpec): Promise<tf.LayersModel> {
  parseMetadata(s.metadata); // throws a readable error before anything is written
  rmSync(s.dir, { recursive: true, force: true });
  mkdirSync(s.dir, { recursive: true });
  await saveLayersModel(s.model, s.dir);
  writeFileSync(join(s.dir, 'metadata.json'), json(s.metadata));
  writeFileSync(join(s.dir, 'background.csv'), csv(s.header, s.background));
  writeFileSync(
    join(s.dir, 'reference.csv'),
    csv(
      [...s.header, s.reference.labelName],
      s.reference.rows.map((r, i) => [...r, s.reference.labels[i]]),
    ),
  );
  const reloaded = await loadLayersModel(s.dir);
  const predictions = predict(reloaded, s.expectedRows, s.exampleShape);
  const expected: Record<string, unknown> = {};
  if (s.exampleShape) expected.inputShape = s.exampleShape;
  expected.rows = s.expectedRows;
  expected.predictions = predictions;
  writeFileSync(join(s.dir, 'expected.json'), rowsJson(expected));
  for (const [name, text] of Object.entries(s.extraFiles ?? {})) writeFileSync(join(s.dir, name), text);
  return reloaded;
}

/** Path of a data file shipped with the vega-datasets package (its "exports" hide data/). */
export function vegaDataFile(name: string): string {
  const entry = createRequire(import.meta.url).resolve('vega-datasets'); // .../vega-datasets/build/index.js
  const file = join(dirname(dirname(entry)), 'data', name);
  if (!existsSync(file)) throw new Error(`vega-datasets data file not found: ${file}`);
  return file;
}

/** What a sample builder reports about the model folder it wrote. */
export interface SampleSummary {
  name: string;
  metrics: Record<string, number>;
  extra?: Record<string, unknown>;
}
