/**
 * A real pretrained image model from a public npm package: the Keras MobileNetV2 (224x224x3, 5
 * classes) that nsfwjs (MIT licence) ships inside its package as JS bundles of model.json and base64
 * weights. `mobileNetFolder()` writes them out as the plain model folder a new user would make
 * (model.json + weight file, no metadata.json) in a temporary directory, so tests and the bench load
 * it through our own loader. Nothing of it is copied into this repository.
 */
import { createRequire } from 'node:module';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The package's class names, in output order (nsfwjs's own NSFW_CLASSES). */
export const MOBILENET_CLASSES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];

let folder: Promise<string> | undefined;

/** A model folder holding the package's MobileNetV2 (created once per process). */
export function mobileNetFolder(): Promise<string> {
  folder ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mobilenet-v2-'));
    // The package exports no deep paths: find its files from its CommonJS entry (dist/cjs/index.js).
    const models = path.join(path.dirname(require.resolve('nsfwjs')), '..', 'models', 'mobilenet_v2');
    const json = require(path.join(models, 'model.min.js')) as {
      modelTopology: unknown;
      weightsManifest: { paths: string[]; weights: unknown[] }[];
    };
    const shard = require(path.join(models, 'group1-shard1of1.min.js')) as string;
    const paths = json.weightsManifest.flatMap((g) => g.paths);
    if (paths.length !== 1) throw new Error(`expected one weight file, the package lists ${paths.join(', ')}`);
    await writeFile(path.join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', ...json }));
    await writeFile(path.join(dir, paths[0]), Buffer.from(shard, 'base64'));
    return dir;
  })();
  return folder;
}
