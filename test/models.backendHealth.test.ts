/**
 * A wasm abort must not poison a worker silently: the call that hits it rejects with a
 * BackendFailure (fatal), the process remembers it, and every later call refuses at once, so the
 * worker layer can recycle the process. Run in a child process: the abort really breaks the module.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

describe('models: a wasm abort becomes a fatal, remembered BackendFailure', function () {
  this.timeout(120_000);
  it('the failing call, and every call after it, reject with BackendFailure', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/fixtures/wasmAbort.ts'], { encoding: 'utf8', timeout: 110_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    const report = JSON.parse(line) as { first: { name: string; fatal: boolean }; remembered: string; second: { name: string } };
    assert.equal(report.first.name, 'BackendFailure');
    assert.equal(report.first.fatal, true);
    assert.equal(report.remembered, 'BackendFailure');
    assert.equal(report.second.name, 'BackendFailure');
  });
});
