/**
 * The amortised explainer's network on disk as a standard tfjs layers model (model.json +
 * weights.bin: Dense layers named hidden_<l> and output, and a bias-free `skip` Dense added to the
 * output when the network has a linear skip), so any tfjs tool can open it. What surrounds it in the
 * folder (the game, the standardisation, the validation) is the service's (service/amortised/store.ts).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fileSystemHandler } from '../fsio.js';
import { AmortisedNetwork, type Standardisation } from './estimator.js';
import { weightShapes, type NetworkSpec, type WeightArrays } from './network.js';

const layerName = (l: number, spec: NetworkSpec) => (l < spec.hidden.length ? `hidden_${l}` : 'output');

/** The network as a tfjs layers model with the given weights (built for saving only). */
function layersModel(spec: NetworkSpec, weights: WeightArrays): tf.LayersModel {
  const input = tf.input({ shape: [spec.inputs], name: 'standardised_inputs' });
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

/** Writes model.json and weights.bin of the network into `dir` (which must exist). */
export async function writeNetwork(dir: string, network: AmortisedNetwork): Promise<void> {
  const model = layersModel(network.spec, await network.read());
  try {
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
  } finally {
    model.dispose();
  }
}

/** Reads the network of `dir` back (its spec and standardisation are the caller's, from its own files). */
export async function readNetwork(dir: string, spec: NetworkSpec, standardisation: Standardisation): Promise<AmortisedNetwork> {
  const model = await tf.loadLayersModel(fileSystemHandler(dir));
  const weights: WeightArrays = [];
  try {
    const layers = spec.hidden.length + 1;
    const names = Array.from({ length: layers }, (_, l) => layerName(l, spec));
    if (spec.linearSkip) names.push('skip');
    for (const name of names) for (const w of model.getLayer(name).getWeights()) weights.push(Float32Array.from(w.dataSync() as Float32Array));
  } finally {
    model.dispose();
  }
  return new AmortisedNetwork(spec, weights, standardisation);
}
