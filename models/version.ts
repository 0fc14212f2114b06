/**
 * A model's version: the content hash of every file in its folder (the model repository), so that any change to weights, topology, metadata or data files yields a new
 * version and cached explanations of the old one are never served for the new one.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fsReason } from './fsio.js';

/** Relative paths (with '/') of the regular files under `dir`; symlinked files count, symlinked folders do not (no cycles). */
export async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (e.isFile() || (e.isSymbolicLink() && (await stat(path.join(dir, rel)).catch(() => null))?.isFile())) out.push(rel);
  }
  return out;
}

/** sha256 over (path, size, bytes) of every file sorted by relative path; first 16 hex chars. */
export async function contentVersion(dir: string): Promise<string> {
  const files = (await listFiles(dir)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash('sha256');
  for (const rel of files) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path.join(dir, rel));
    } catch (e) {
      throw new Error(`${rel} ${fsReason(e)}`);
    }
    // Length-prefixing keeps ("a", "bc") and ("ab", "c") apart.
    hash.update(`${rel}\0${bytes.byteLength}\0`);
    hash.update(bytes);
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * A cheap fingerprint of a folder (relative path, size and modification time of every file), to
 * notice that it changed without reading its bytes; the content version is computed only then.
 */
export async function folderSignature(dir: string): Promise<string> {
  const files = (await listFiles(dir)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash('sha256');
  for (const rel of files) {
    const s = await stat(path.join(dir, rel));
    hash.update(`${rel}\0${s.size}\0${s.mtimeMs}\0`);
  }
  return hash.digest('hex');
}
