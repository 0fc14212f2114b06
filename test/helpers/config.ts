/**
 * Configs for tests: every app writes its explanation records under one temporary DATA_DIR per test
 * process (removed at exit), never into the repository or the user's state directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../server/config.js';

let dir: string | undefined;

export function testDataDir(): string {
  if (!dir) {
    const made = mkdtempSync(path.join(os.tmpdir(), 'tfjs-explainer-test-'));
    dir = made;
    process.on('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  return dir;
}

export function testConfig(env: NodeJS.ProcessEnv = {}): Config {
  return loadConfig({ DATA_DIR: testDataDir(), ...env });
}
