/**
 * The test harness itself: `npm test` exits when Chromium is absent (the browser tests skip and
 * leave nothing open), a snapshot missing under CI fails instead of being written, and an error
 * shown as an image survives hostile text (a NUL in the query) as a valid SVG and PNG.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { JSDOM } from 'jsdom';
import request from 'supertest';
import { createApp } from '../server/app.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';
import { linearModel, served } from './helpers/jsModels.js';

/** Runs mocha on `files` in a child process; resolves with its exit code and output, or rejects after `ms`. */
function mocha(files: string[], env: NodeJS.ProcessEnv, ms: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['node_modules/mocha/bin/mocha.js', '--no-config', '--node-option', 'import=tsx', '--timeout', '120000', ...files],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mocha did not exit within ${ms} ms:\n${out.slice(-2000)}`));
    }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const baseEnv = () => {
  const env = { ...process.env };
  delete env.CI;
  delete env.UPDATE_SNAPSHOTS;
  return env;
};

describe('harness', function () {
  this.timeout(240_000);

  it('without Chromium the browser tests skip and mocha exits (nothing left open)', async () => {
    const { code, out } = await mocha(
      ['test/browser.render.test.ts', 'test/server.render.test.ts', 'test/server.embed.test.ts'],
      { ...baseEnv(), CHROMIUM_PATH: '/nonexistent/chromium' },
      200_000,
    );
    assert.equal(code, 0, out.slice(-2000));
    assert.match(out, /skipped: no Chromium at \/nonexistent\/chromium/);
    assert.match(out, /pending/);
  });

  it('a missing snapshot fails under CI=true, and is written (passing) outside CI', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'snapshots-'));
    try {
      const ci = await mocha(['test/render.test.ts'], { ...baseEnv(), CI: 'true', SNAPSHOT_DIR: dir }, 120_000);
      assert.notEqual(ci.code, 0);
      assert.match(ci.out, /missing snapshot waterfall\.svg under CI/);
      assert.deepEqual(await readdir(dir), []);
      const local = await mocha(['test/render.test.ts'], { ...baseEnv(), SNAPSHOT_DIR: dir }, 120_000);
      assert.equal(local.code, 0, local.out.slice(-2000));
      assert.ok((await readdir(dir)).includes('waterfall.svg'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an error on an image URL is a valid SVG or PNG even with a NUL in the query', async () => {
    const bg = { data: new Float32Array([0, 0, 1, 1]), n: 2, d: 2 };
    const app = createApp({
      registry: { models: new Map([['a', served('a', linearModel([1, 2]), { background: bg })]]), errors: [] },
      config: testConfig(),
      backend: 'js',
    });
    const svg = await request(app).get('/v1/models/a/explain.svg?x0=%00bad%01').buffer(true).parse(asText);
    assert.equal(svg.status, 400);
    assert.equal(svg.type, 'image/svg+xml');
    const doc = new new JSDOM('').window.DOMParser().parseFromString(svg.body as string, 'image/svg+xml');
    assert.equal(doc.getElementsByTagName('parsererror').length, 0, String(svg.body).slice(0, 300));
    assert.match(doc.querySelector('desc')?.textContent ?? '', /x0/);
    const png = await request(app).get('/v1/models/a/explain.png?%00=1');
    assert.equal(png.status, 400);
    assert.equal(png.type, 'image/png');
    assert.deepEqual([...png.body.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  });
});
