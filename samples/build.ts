/**
 * Rebuilds the sample models under samples/models/<name>/ (npm run samples).
 * Deterministic: seeded data, seeded initialisers, seeded shuffling, the wasm backend,
 * so every run writes the same bytes. `npm run samples -- credit cars` rebuilds only those.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { buildCredit } from './credit.js';
import { buildPenguins } from './penguins.js';
import { buildCars } from './cars.js';
import { buildShapes } from './shapes.js';
import { buildLinear } from './linear.js';
import { buildText } from './text.js';

import type { SampleSummary } from './lib/folder.js';

export type { SampleSummary };

const BUILDERS: Record<string, (root: string) => Promise<SampleSummary>> = {
  linear: buildLinear,
  credit: buildCredit,
  penguins: buildPenguins,
  cars: buildCars,
  shapes: buildShapes,
  text: buildText,
};

export const MODELS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'models');

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  for (const w of wanted) if (!(w in BUILDERS)) throw new Error(`unknown sample "${w}"; known: ${Object.keys(BUILDERS).join(', ')}`);
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend could not be initialised');
  await tf.ready();
  console.log(`backend ${tf.getBackend()}, tfjs ${tf.version.tfjs}, writing to ${MODELS_DIR}`);
  const t0 = Date.now();
  for (const name of wanted.length ? wanted : Object.keys(BUILDERS)) {
    const t = Date.now();
    const before = tf.memory().numTensors;
    const s = await BUILDERS[name](MODELS_DIR);
    const leaked = tf.memory().numTensors - before;
    console.log(
      `${name.padEnd(9)} ${((Date.now() - t) / 1000).toFixed(1).padStart(5)} s  ${JSON.stringify(s.metrics)}${leaked > 0 ? `  (${leaked} tensors kept)` : ''}`,
    );
    if (s.extra) console.log(`          ${JSON.stringify(s.extra)}`);
  }
  console.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

try {
  await main();
} catch (e) {
  // Print our own message: the wasm module's global handlers would otherwise dump its whole source.
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
}
