/**
 * Permutation importance against scikit-learn's `permutation_importance`, in one run on the same
 * Dense network and data: the network's weights go to bench/sklearn_importance.py, which runs it in
 * numpy float32 as an sklearn estimator (what a Python user would write). Both sides permute every
 * column on its own (no feature groups) with the same repeats and metric, so they do the same work;
 * the figure is sklearn's seconds over ours. Needs a python3 with scikit-learn (Debian:
 * `apt-get install python3-sklearn`); without one the bench says so and skips.
 */
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { permutationImportance } from '../explainers/permutationImportance.js';
import type { MetricName } from '../explainers/metrics.js';
import type { LoadedModel } from '../models/repository.js';

export interface SklearnImportanceRow {
  model: string;
  metric: MetricName;
  rows: number;
  features: number;
  oursMs: number;
  sklearnMs: number;
  /** Largest |difference| between the two sides' mean importances (different shuffles: sampling noise only). */
  maxMeanDiff: number;
}

/** A python3 that imports sklearn, or null. pyenv's python3 often lacks it where Debian's has it. */
export function findSklearnPython(): { python: string; version: string } | null {
  for (const python of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(python, ['-c', 'import sklearn, numpy; print(sklearn.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { python, version: r.stdout.trim() };
  }
  return null;
}

interface DenseLayerSpec {
  kernel: number[][];
  bias: number[];
  activation: string;
}

/** The Dense layers of a tfjs layers model (Dropout and input layers skipped), or null if it has others. */
function denseLayers(model: tf.LayersModel): DenseLayerSpec[] | null {
  const out: DenseLayerSpec[] = [];
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer' || cls === 'Dropout') continue;
    if (cls !== 'Dense') return null;
    const [kernel, bias] = layer.getWeights();
    const config = layer.getConfig() as { activation?: string; useBias?: boolean };
    const k = kernel.arraySync() as number[][];
    out.push({
      kernel: k,
      bias: bias ? (bias.arraySync() as number[]) : new Array(k[0].length).fill(0),
      activation: config.activation ?? 'linear',
    });
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Ours and sklearn's on the model's reference set; null (with the reason) when the model is not a
 * Dense stack with a reference set, or no python with sklearn is found.
 */
export async function sklearnImportanceBench(
  name: string,
  m: LoadedModel,
  python: string,
  options: { repeats?: number; runs?: number } = {},
): Promise<SklearnImportanceRow | string> {
  const repeats = options.repeats ?? 5;
  const runs = options.runs ?? 3;
  if (!m.reference) return `${name}: no reference set`;
  if (!(m.model.model instanceof tf.LayersModel)) return `${name}: not a layers model`;
  const layers = denseLayers(m.model.model);
  if (!layers) return `${name}: not a Dense stack`;
  const metric: MetricName = m.metadata?.task === 'regression' ? 'r2' : 'accuracy';
  const { rows, labels } = m.reference;
  const X: number[][] = [];
  for (let i = 0; i < rows.n; i++) X.push(Array.from(rows.data.subarray(i * rows.d, (i + 1) * rows.d)));

  // Ours: every column its own feature, as sklearn does.
  const space = { featureNames: m.space.featureNames, outputNames: m.space.outputNames };
  const options_ = { space, metric, repeats, task: m.metadata?.task };
  const ours = await permutationImportance(m.model, rows, labels, { ...options_, seed: 0 }); // warm-up, and the means
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await permutationImportance(m.model, rows, labels, { ...options_, seed: r });
    times.push(performance.now() - t0);
  }

  const spec = JSON.stringify({ layers, X, y: Array.from(labels), scoring: metric, repeats, runs });
  const py = spawnSync(python, ['bench/sklearn_importance.py'], { input: spec, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (py.status !== 0) return `${name}: sklearn run failed: ${py.stderr.trim().split('\n').pop()}`;
  const sk = JSON.parse(py.stdout) as { seconds: number[]; means: number[] };
  const maxMeanDiff = Math.max(...ours.importances.map((f, j) => Math.abs(f.mean - sk.means[j])));
  return {
    model: name,
    metric,
    rows: rows.n,
    features: rows.d,
    oursMs: median(times),
    sklearnMs: median(sk.seconds) * 1000,
    maxMeanDiff,
  };
}
