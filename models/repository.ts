/**
 * The model repository (a contract with the people who deploy models): one folder per model under MODEL_DIR with model.json,
 * its weights and an optional metadata.json. A broken folder never stops the others from loading:
 * it becomes an entry in `errors` that says which model and what is wrong.
 *
 * A model may instead hold several versions, one folder each: `<model>/versions/<label>/` with the
 * same files. Every version folder is served (requests may pin one); the highest label (numerically:
 * 2 < 10) is the default. models/watcher.ts rescans MODEL_DIR while serving.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { FeatureSpace } from '../explainers/types.js';
import { labelValues, readCsvData } from './csv.js';
import { fileSystemHandler, fsReason, ModelFileError, modelFormat, readModelJson } from './fsio.js';
import { parseMetadata, type Metadata } from './metadata.js';
import { TfjsModel, type TfjsModelOptions } from './tfjsModel.js';
import type { Registry, ServedModel, ServedVersion } from './served.js';
import { outputKindOf } from './outputKind.js';
import { contentVersion, folderSignature } from './version.js';
import { loadTokenizer, type Tokenizer } from './tokenizer.js';

export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A served model loaded from a tfjs folder. */
export interface LoadedModel extends ServedModel<TfjsModel> {
  format: 'layers' | 'graph';
  /** Text models: the tokenizer of the folder's tokenizer.json (models/tokenizer.ts). */
  tokenizer?: Tokenizer;
}

export type ModelRepository = Registry<LoadedModel>;

/** A version folder's name under `<model>/versions/`: the same rule as model names. */
export const VERSION_LABEL = MODEL_NAME;

/** Orders version labels as people number them: 2 before 10, v1.9 before v1.10 (the same on every replica). */
const byLabel = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' }).compare;

/** One folder that holds a model version: `<model>/versions/<label>/`, or `<model>/` itself without `versions/`. */
export interface VersionFolder {
  label?: string;
  folder: string;
}

/**
 * The version folders of one model folder, oldest label first (the last is the default), or the
 * folder itself when it has no `versions/`; with the layout problems found (bad labels, files).
 */
export async function versionFolders(folder: string): Promise<{ folders: VersionFolder[]; problems: { label: string; message: string }[] }> {
  const root = path.join(folder, 'versions');
  if (!(await stat(root).catch(() => null))?.isDirectory()) return { folders: [{ folder }], problems: [] };
  const folders: VersionFolder[] = [];
  const problems: { label: string; message: string }[] = [];
  for (const label of (await readdir(root)).sort(byLabel)) {
    if (label.startsWith('.')) continue; // a version being copied in under a dot name, or .DS_Store
    if (!VERSION_LABEL.test(label)) {
      problems.push({ label, message: `versions/${label}: not a valid version name (letters, digits, ".", "_", "-"; at most 64)` });
      continue;
    }
    const dir = path.join(root, label);
    if (!(await stat(dir).catch(() => null))?.isDirectory()) {
      problems.push({ label, message: `versions/${label} is not a folder; each version lives in its own folder` });
      continue;
    }
    folders.push({ label, folder: dir });
  }
  if (!folders.length && !problems.length) problems.push({ label: '', message: 'versions/ holds no version folder' });
  return { folders, problems };
}

/** What a scan remembers of a folder, so an unchanged folder is not loaded again. */
export interface FolderState {
  signature: string;
  outcome: { model: LoadedModel } | { error: string };
}

export interface RepositoryScan {
  /** Each model's loadable versions, default (highest label) first, then newest first. */
  found: Map<string, { label?: string; model: LoadedModel }[]>;
  errors: ModelRepository['errors'];
  /** Folders that exist but failed, per model (their good version, if any, should keep serving). */
  failing: Set<string>;
  /** Per folder, for the next scan. */
  state: Map<string, FolderState>;
}

/**
 * Reads every model folder of `dir`, loading the folders that are new or changed since `previous`
 * (by a signature of file names, sizes and modification times) and reusing the models of the others.
 * Throws only when `dir` itself cannot be read.
 */
export async function scanRepository(
  dir: string,
  previous: Map<string, FolderState> = new Map(),
  options: TfjsModelOptions = {},
): Promise<RepositoryScan> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).sort();
  } catch (e) {
    throw new Error(`model repository ${dir} cannot be read (${e instanceof Error ? e.message : String(e)})`);
  }
  const found: RepositoryScan['found'] = new Map();
  const errors: ModelRepository['errors'] = [];
  const failing = new Set<string>();
  const state = new Map<string, FolderState>();
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
    const layout = await versionFolders(folder);
    for (const p of layout.problems) errors.push({ name, ...(p.label ? { version: p.label } : {}), message: p.message });
    if (layout.problems.length) failing.add(name);
    const good: { label?: string; model: LoadedModel }[] = [];
    for (const v of layout.folders) {
      let signature: string;
      try {
        signature = await folderSignature(v.folder);
      } catch (e) {
        signature = `unreadable: ${e instanceof Error ? e.message : String(e)}`;
      }
      const before = previous.get(v.folder);
      let outcome: FolderState['outcome'];
      if (before && before.signature === signature) outcome = before.outcome;
      else {
        try {
          outcome = { model: await loadModelFolder(name, v.folder, options, v.label) };
        } catch (e) {
          outcome = { error: e instanceof Error ? e.message : String(e) };
        }
      }
      state.set(v.folder, { signature, outcome });
      if ('model' in outcome) good.push({ ...(v.label !== undefined ? { label: v.label } : {}), model: outcome.model });
      else {
        failing.add(name);
        errors.push({ name, ...(v.label !== undefined ? { version: v.label } : {}), message: outcome.error });
      }
    }
    if (good.length) found.set(name, good.reverse());
  }
  return { found, errors, failing, state };
}

/** Loads every model folder of `dir` (every version of each). Throws only when `dir` itself cannot be read. */
export async function loadModelRepository(dir: string, options: TfjsModelOptions = {}): Promise<ModelRepository> {
  const scan = await scanRepository(dir, new Map(), options);
  const models = new Map<string, LoadedModel>();
  const versions = new Map<string, ServedVersion<LoadedModel>[]>();
  const now = Date.now();
  for (const [name, list] of scan.found) {
    models.set(name, list[0].model);
    versions.set(
      name,
      list.map((v) => ({ version: v.model.version, ...(v.label !== undefined ? { label: v.label } : {}), model: v.model, state: 'serving' as const, loadedAt: now })),
    );
  }
  return { models, errors: scan.errors, versions, retired: new Map() };
}

/** Loads one model folder; throws an Error saying what is wrong with it. */
export async function loadModelFolder(name: string, folder: string, options: TfjsModelOptions = {}, label?: string): Promise<LoadedModel> {
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
      ...(label !== undefined ? { versionLabel: label } : {}),
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
      ...(l.versionLabel !== undefined ? { versionLabel: l.versionLabel } : {}),
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
