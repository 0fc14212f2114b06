/**
 * The model repository (a contract with the people who deploy models): one folder per model under MODEL_DIR with model.json,
 * its weights and an optional metadata.json. A broken folder never stops the others from loading:
 * it becomes an entry in `errors` that says which model and what is wrong.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { FeatureSpace } from '../explainers/types.js';
import { labelValues, readCsvData } from './csv.js';
import { fileSystemHandler, fsReason, ModelFileError, modelFormat, readModelJson } from './fsio.js';
import { parseMetadata, type Metadata } from './metadata.js';
import { TfjsModel, type TfjsModelOptions } from './tfjsModel.js';
import type { Registry, ServedModel } from './served.js';
import { outputKindOf } from './outputKind.js';
import { contentVersion } from './version.js';
import { loadTokenizer, type Tokenizer } from './tokenizer.js';

export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A served model loaded from a tfjs folder. */
export interface LoadedModel extends ServedModel<TfjsModel> {
  format: 'layers' | 'graph';
  /** Text models: the tokenizer of the folder's tokenizer.json (models/tokenizer.ts). */
  tokenizer?: Tokenizer;
}

export type ModelRepository = Registry<LoadedModel>;

/** Loads every model folder of `dir`. Throws only when `dir` itself cannot be read. */
export async function loadModelRepository(dir: string, options: TfjsModelOptions = {}): Promise<ModelRepository> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).sort();
  } catch (e) {
    throw new Error(`model repository ${dir} cannot be read (${e instanceof Error ? e.message : String(e)})`);
  }
  const models = new Map<string, LoadedModel>();
  const errors: ModelRepository['errors'] = [];
  for (const name of entries) {
    if (name.startsWith('.')) continue; // dotfiles (.gitkeep, .DS_Store) are not models
    if (!MODEL_NAME.test(name)) {
      errors.push({
        name,
        message: `"${name}" is not a valid model name (letters, digits, ".", "_", "-"; at most 64; starting with a letter or digit)`,
      });
      continue;
    }
    const folder = path.join(dir, name);
    if (!(await stat(folder).catch(() => null))?.isDirectory()) {
      errors.push({ name, message: `"${name}" is not a folder; each model lives in its own folder` });
      continue;
    }
    try {
      models.set(name, await loadModelFolder(name, folder, options));
    } catch (e) {
      errors.push({ name, message: e instanceof Error ? e.message : String(e) });
    }
  }
  return { models, errors };
}

/** Loads one model folder; throws an Error saying what is wrong with it. */
export async function loadModelFolder(name: string, folder: string, options: TfjsModelOptions = {}): Promise<LoadedModel> {
  const version = await contentVersion(folder);
  const format = modelFormat(await readModelJson(folder));
  const metadata = await readMetadata(folder);
  const tokenizer = await loadTokenizer(folder);

  let tfModel: tf.LayersModel | tf.GraphModel;
  try {
    const handler = fileSystemHandler(folder);
    tfModel = format === 'graph' ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
  } catch (e) {
    // Our own handler's messages already name the file; tfjs's own ones do not.
    if (e instanceof ModelFileError) throw e;
    throw new Error(`model.json: cannot load the ${format} model (${e instanceof Error ? e.message : String(e)})`);
  }
  let model: TfjsModel | undefined;
  try {
    // metadata's inputShape only fills in a shape the model leaves open; a disagreement with a
    // declared shape is reported by featureSpace, naming metadata.json.
    const own = (tfModel.inputs[0]?.shape ?? []).slice(1);
    const open = own.length === 0 || own.some((s) => s == null || s < 0);
    model = await TfjsModel.create(tfModel, { ...options, inputShape: open ? metadata?.inputShape : undefined });
    const space = featureSpace(model, metadata);
    const data = await readData(folder, space, metadata);
    if (tokenizer && tokenizer.maxLength !== model.nFeatures)
      throw new Error(`tokenizer.json: maxLength ${tokenizer.maxLength} but the model takes ${model.nFeatures} token ids`);
    if (metadata?.gradCamLayer !== undefined) checkGradCamLayer(metadata.gradCamLayer, model.layers);
    return makeLoaded({
      name,
      version,
      format,
      model,
      metadata,
      space,
      inputShape: space.inputShape ?? model.inputShape,
      outputKind: outputKindOf(tfModel),
      ...data,
      ...(tokenizer ? { tokenizer } : {}),
    });
  } catch (e) {
    if (model) model.dispose();
    else tfModel.dispose();
    throw e;
  }
}

/** metadata.json's gradCamLayer must name a layer with a [height, width, channels] output. */
function checkGradCamLayer(name: string, layers: { name: string; shape: number[] }[]): void {
  const spatial = layers.filter((l) => l.shape.length === 3).map((l) => l.name);
  const layer = layers.find((l) => l.name === name);
  if (!layer || layer.shape.length !== 3) {
    throw new Error(
      `metadata.json: gradCamLayer "${name}" ${layer ? `outputs [${layer.shape.join(', ')}], not [height, width, channels]` : 'is not a layer of the model'}; ` +
        (spatial.length ? `layers with a spatial output: ${spatial.slice(-8).join(', ')}` : 'the model has no layer with a spatial output'),
    );
  }
}

async function readMetadata(folder: string): Promise<Metadata | undefined> {
  const file = 'metadata.json';
  let text: string;
  try {
    text = await readFile(path.join(folder, file), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code === 'ENOENT') return undefined; // metadata is optional
    throw new Error(`${file} ${fsReason(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return parseMetadata(json); // its messages start with "invalid metadata.json:"
}

/** Names for features and outputs, checked against the model's sizes. */
function featureSpace(model: TfjsModel, m?: Metadata): FeatureSpace {
  const d = model.nFeatures;
  const k = model.nOutputs;
  // The shape people see: metadata's (a model may flatten inside) or else the model's own.
  const shape = m?.inputShape ?? model.inputShape;
  const image = shape.length > 1 ? { inputShape: shape } : {};
  if (!m) return { featureNames: seq('x', d), outputNames: seq('y', k), ...image };

  if (m.inputShape && prod(m.inputShape) !== d)
    throw new Error(`metadata.json: inputShape [${m.inputShape}] has ${prod(m.inputShape)} values but the model takes ${d}`);
  if (m.features && m.features.length !== d)
    throw new Error(`metadata.json: ${m.features.length} features listed but the model takes ${d} input values`);
  if (m.outputs.length !== k) throw new Error(`metadata.json: ${m.outputs.length} outputs listed but the model gives ${k}`);
  const featureNames = m.features ? m.features.map((f) => f.name) : m.inputShape ? pixelNames(m.inputShape) : seq('x', d);
  const groups = [...declaredGroups(m).values()].filter((g) => g.length > 1);
  return {
    featureNames,
    outputNames: m.outputs.map((o) => o.name),
    ...(groups.length ? { groups } : {}),
    ...image,
  };
}

/** Group name -> feature indices, in feature order. */
function declaredGroups(m?: Metadata): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  for (const [i, f] of (m?.features ?? []).entries()) {
    if (f.group !== undefined) groups.set(f.group, [...(groups.get(f.group) ?? []), i]);
  }
  return groups;
}

async function readData(folder: string, space: FeatureSpace, m?: Metadata): Promise<Pick<LoadedModel, 'background' | 'reference'>> {
  const out: Pick<LoadedModel, 'background' | 'reference'> = {};
  if (m?.background) out.background = (await readCsvData(folder, m.background, space.featureNames)).rows;
  if (m?.reference) {
    const label = m.label as string; // required with reference by the metadata schema
    const { rows, labels } = await readCsvData(folder, m.reference, space.featureNames, label);
    out.reference = { rows, labels: labelValues(m.reference, labels ?? [], m.classes), ...(m.classes ? { labelNames: m.classes } : {}) };
  }
  return out;
}

function makeLoaded(l: Omit<LoadedModel, 'describe'>): LoadedModel {
  const m = l.metadata;
  const featureMeta = m?.features;
  const defaultType = m?.inputShape && !featureMeta ? 'pixel' : 'numeric';
  return {
    ...l,
    describe: () => ({
      name: l.name,
      version: l.version,
      format: l.format,
      inputShape: l.inputShape,
      task: m?.task ?? null,
      features: l.space.featureNames.map((name, i) => {
        const f = featureMeta?.[i];
        return {
          name,
          type: f?.type ?? defaultType,
          ...(f?.group !== undefined ? { group: f.group } : {}),
          ...(f?.description !== undefined ? { description: f.description } : {}),
          ...(f?.unit !== undefined ? { unit: f.unit } : {}),
          ...(f?.immutable !== undefined ? { immutable: f.immutable } : {}),
          ...(f?.monotone !== undefined ? { monotone: f.monotone } : {}),
          ...(f?.min !== undefined ? { min: f.min } : {}),
          ...(f?.max !== undefined ? { max: f.max } : {}),
          ...(f?.categories !== undefined ? { categories: f.categories } : {}),
        };
      }),
      outputs: l.space.outputNames.map((name, i) => {
        const description = m?.outputs[i]?.description;
        return description !== undefined ? { name, description } : { name };
      }),
      sensitiveFeatures: m?.sensitiveFeatures ?? [],
      groups: [...declaredGroups(m)].map(([name, idx]) => ({ name, features: idx.map((i) => l.space.featureNames[i]) })),
      hasBackground: l.background !== undefined,
      hasReference: l.reference !== undefined,
      backgroundRows: l.background?.n ?? 0,
      referenceRows: l.reference?.rows.n ?? 0,
      description: m?.description ?? null,
      ...(m?.classes ? { classes: m.classes } : {}),
      ...(m?.link ? { link: m.link } : {}),
      ...(l.tokenizer ? { tokenizer: { maxLength: l.tokenizer.maxLength, vocabularySize: l.tokenizer.vocabulary.length } } : {}),
    }),
  };
}

function seq(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

/** p{row}_{col}_{channel} for [h, w, c] (p{row}_{col} for [h, w]), row-major like the flat rows. */
function pixelNames(shape: number[]): string[] {
  if (shape.length < 2 || shape.length > 3) return seq('x', prod(shape));
  const [h, w, c = 1] = shape;
  const names: string[] = [];
  for (let r = 0; r < h; r++)
    for (let q = 0; q < w; q++) {
      if (shape.length === 2) names.push(`p${r}_${q}`);
      else for (let ch = 0; ch < c; ch++) names.push(`p${r}_${q}_${ch}`);
    }
  return names;
}

function prod(a: number[]): number {
  return a.reduce((x, y) => x * y, 1);
}
