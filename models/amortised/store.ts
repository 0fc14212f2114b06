/**
 * An amortised explainer on disk, beside the model version it explains:
 * `<dataDir>/amortised/<model>/<version>/` holds
 * - model.json + weights.bin: the network as a standard tfjs layers model (standardised inputs, i.e.
 *   the row and, when used, its probe values, in; estimates divided by each output's scale out),
 * - explainer.json: the model name and version, the game (players, link, outputs, background), the
 *   standardisation constants and the training summary,
 * - validation.json: the error measured on held-out rows (explainers/amortised/types.ts).
 * A folder is written whole under a temporary name and renamed into place, so a reader sees the old
 * explainer or the new one, never half of one. The loader refuses an explainer recorded for another
 * model version: it explains a different function.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ExplainerInputError } from '../../explainers/types.js';
import type { AmortisedGame } from '../../explainers/amortised/game.js';
import type { AmortisedValidation } from '../../explainers/amortised/types.js';
import { staleError } from '../../explainers/amortised/amortisedShap.js';
import { isLinkName } from '../../explainers/link.js';
import { fileSystemHandler } from '../fsio.js';
import { TfjsAmortisedExplainer, type Standardisation } from './explainer.js';
import { Mlp, weightShapes, type NetworkSpec } from './network.js';
import type { TrainingSummary } from './train.js';

export const EXPLAINER_FORMAT = 'tfjs-explainer/amortised-shap';
export const EXPLAINER_FORMAT_VERSION = 1;

/** Where the explainer of one model version lives. */
export function amortisedDir(dataDir: string, modelName: string, modelVersion: string): string {
  for (const [what, v] of [['model name', modelName], ['model version', modelVersion]] as const) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(v)) throw new ExplainerInputError('BAD_PARAMETER', `${what} "${v}" cannot name a folder`);
  }
  return path.join(dataDir, 'amortised', modelName, modelVersion);
}

export interface ExplainerFile {
  format: string;
  formatVersion: number;
  modelName: string;
  modelVersion: string;
  createdAt: string;
  game: {
    nFeatures: number;
    players: number[][];
    link: string;
    outputs: number[];
    background: { n: number; d: number; data: number[] };
    weights: number[];
  };
  network: NetworkSpec;
  /** True when the network takes each row's probe values besides the row (game.ts, endpointValues). */
  probes: boolean;
  standardisation: { inputMean: number[]; inputScale: number[]; outputScale: number[] };
  training?: TrainingSummary;
}

const layerName = (l: number, spec: NetworkSpec) => (l < spec.hidden.length ? `hidden_${l}` : 'output');

/** The network as a tfjs layers model with the given weights (built for saving only). */
function layersModel(spec: NetworkSpec, weights: Float32Array[]): tf.LayersModel {
  const input = tf.input({ shape: [spec.inputs], name: 'standardised_row' });
  let h: tf.SymbolicTensor = input;
  const layers = spec.hidden.length + 1;
  for (let l = 0; l < layers; l++) {
    const last = l + 1 === layers;
    const units = last ? spec.outputs : spec.hidden[l];
    h = tf.layers.dense({ units, activation: last ? 'linear' : spec.activation, name: layerName(l, spec) }).apply(h) as tf.SymbolicTensor;
  }
  let out = h;
  if (spec.linearSkip) {
    const skip = tf.layers.dense({ units: spec.outputs, useBias: false, name: 'skip' }).apply(input) as tf.SymbolicTensor;
    out = tf.layers.add({ name: 'estimates' }).apply([h, skip]) as tf.SymbolicTensor;
  }
  const model = tf.model({ inputs: input, outputs: out, name: 'amortised_shap' });
  const shapes = weightShapes(spec);
  const tensors = weights.map((w, i) => tf.tensor(w, shapes[i], 'float32'));
  try {
    for (let l = 0; l < layers; l++) model.getLayer(layerName(l, spec)).setWeights([tensors[2 * l], tensors[2 * l + 1]]);
    if (spec.linearSkip) model.getLayer('skip').setWeights([tensors[2 * layers]]);
  } finally {
    tf.dispose(tensors);
  }
  return model;
}

async function writeLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      if (data === undefined || artifacts.weightSpecs === undefined) throw new Error('the network has no weights to save');
      const buffer = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
      const json = {
        format: 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      await writeFile(path.join(dir, 'model.json'), JSON.stringify(json) + '\n');
      await writeFile(path.join(dir, 'weights.bin'), new Uint8Array(buffer));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: buffer.byteLength } };
    }),
  );
}

/** Writes the explainer (and its validation) to `dir`, replacing what was there. */
export async function saveAmortisedExplainer(
  dir: string,
  explainer: TfjsAmortisedExplainer,
  extra: { training?: TrainingSummary; validation: AmortisedValidation },
): Promise<void> {
  const parent = path.dirname(dir);
  await mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const tmp = `${dir}.tmp-${tag}`;
  await mkdir(tmp, { recursive: true });
  try {
    const model = layersModel(explainer.network.spec, await explainer.network.read());
    try {
      await writeLayersModel(model, tmp);
    } finally {
      model.dispose();
    }
    const g = explainer.game;
    const s = explainer.standardisation;
    const file: ExplainerFile = {
      format: EXPLAINER_FORMAT,
      formatVersion: EXPLAINER_FORMAT_VERSION,
      modelName: explainer.modelName,
      modelVersion: explainer.modelVersion,
      createdAt: new Date().toISOString(),
      game: {
        nFeatures: g.nFeatures,
        players: g.players,
        link: g.link,
        outputs: g.outputs,
        background: { n: g.background.n, d: g.background.d, data: Array.from(g.background.data) },
        weights: Array.from(g.weights),
      },
      network: explainer.network.spec,
      probes: explainer.probes,
      standardisation: { inputMean: Array.from(s.inputMean), inputScale: Array.from(s.inputScale), outputScale: Array.from(s.outputScale) },
      training: extra.training,
    };
    await writeFile(path.join(tmp, 'explainer.json'), JSON.stringify(file) + '\n');
    await writeFile(path.join(tmp, 'validation.json'), JSON.stringify(extra.validation, null, 2) + '\n');
    const old = `${dir}.old-${tag}`;
    const existed = await stat(dir).then(
      () => true,
      () => false,
    );
    if (existed) await rename(dir, old);
    await rename(tmp, dir);
    if (existed) await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** explainer.json and validation.json of `dir`, without loading the network (for status pages). */
export async function readAmortisedInfo(dir: string): Promise<{ explainer: ExplainerFile; validation?: AmortisedValidation } | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, 'explainer.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const explainer = JSON.parse(text) as ExplainerFile;
  const validation = await readFile(path.join(dir, 'validation.json'), 'utf8').then(
    (t) => JSON.parse(t) as AmortisedValidation,
    () => undefined,
  );
  return { explainer, validation };
}

/**
 * Loads the explainer of `dir` for the model version being served. Errors (ExplainerInputError):
 * AMORTISED_NOT_FOUND (no explainer there), AMORTISED_STALE (trained on another version),
 * AMORTISED_NOT_VALIDATED (no validation.json); damaged files are a plain Error.
 */
export async function loadAmortisedExplainer(dir: string, current: { modelVersion: string; modelName?: string }): Promise<TfjsAmortisedExplainer> {
  const info = await readAmortisedInfo(dir).catch((e) => {
    throw corrupt(`explainer.json cannot be read (${e instanceof Error ? e.message : String(e)})`);
  });
  if (!info) throw new ExplainerInputError('AMORTISED_NOT_FOUND', 'no amortised explainer has been trained for this model version: train one first (until then use kernel-shap)');
  const f = info.explainer;
  if (f.format !== EXPLAINER_FORMAT || f.formatVersion !== EXPLAINER_FORMAT_VERSION) throw corrupt(`explainer.json is not a ${EXPLAINER_FORMAT} v${EXPLAINER_FORMAT_VERSION} file`);
  if (f.modelVersion !== current.modelVersion) throw staleError(f.modelVersion, current.modelVersion);
  if (current.modelName !== undefined && f.modelName !== current.modelName) {
    throw new ExplainerInputError('AMORTISED_STALE', `the amortised explainer in this folder was trained for model "${f.modelName}", not "${current.modelName}"`);
  }
  if (!info.validation) throw new ExplainerInputError('AMORTISED_NOT_VALIDATED', 'the amortised explainer has no validation.json: validate it before serving');
  if (!isLinkName(f.game.link)) throw corrupt(`explainer.json names an unknown link "${f.game.link}"`);

  const model = await tf.loadLayersModel(fileSystemHandler(dir)).catch((e) => {
    throw corrupt(`the network cannot be loaded (${e instanceof Error ? e.message : String(e)})`);
  });
  const spec = f.network;
  const weights: Float32Array[] = [];
  try {
    const layers = spec.hidden.length + 1;
    const names = Array.from({ length: layers }, (_, l) => layerName(l, spec));
    if (spec.linearSkip) names.push('skip');
    for (const name of names) for (const w of model.getLayer(name).getWeights()) weights.push(Float32Array.from(w.dataSync() as Float32Array));
  } finally {
    model.dispose();
  }
  const game: AmortisedGame = {
    nFeatures: f.game.nFeatures,
    players: f.game.players,
    link: f.game.link,
    outputs: f.game.outputs,
    background: { n: f.game.background.n, d: f.game.background.d, data: Float32Array.from(f.game.background.data) },
    weights: Float64Array.from(f.game.weights),
  };
  const std: Standardisation = {
    inputMean: Float32Array.from(f.standardisation.inputMean),
    inputScale: Float32Array.from(f.standardisation.inputScale),
    outputScale: Float32Array.from(f.standardisation.outputScale),
  };
  const explainer = new TfjsAmortisedExplainer(game, f.modelName, f.modelVersion, new Mlp(spec, weights), std, f.probes === true);
  explainer.validation = info.validation;
  return explainer;
}

/** The service's own files are damaged: not the caller's mistake, so a plain Error (a 5xx). */
function corrupt(message: string): Error {
  return new Error(`the stored amortised explainer is damaged: ${message}; train it again`);
}
