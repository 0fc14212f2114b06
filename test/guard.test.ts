/**
 * The guarded model (service/guard.ts) on its own: calls split by bytes, results identical to the
 * unguarded model's, optional capabilities kept, and the stop conditions (hard deadline on a clock
 * the test controls, AbortSignal, cancellation flag) checked before every chunk, counted in model
 * calls, never in wall time.
 */
import { strict as assert } from 'node:assert';
import type { Model, Rows } from '../explainers/types.js';
import { ServiceError } from '../service/errors.js';
import { guardModel } from '../service/guard.js';
import { linearModel } from './helpers/jsModels.js';

/** A linear model that records every call it gets and may advance a virtual clock per call. */
function counting(w: number[], onCall: (rows: number) => void = () => undefined) {
  const inner = linearModel(w, 0.5);
  const calls: number[] = [];
  const model: Model = {
    nFeatures: w.length,
    nOutputs: 1,
    async predict(rows: Rows) {
      calls.push(rows.n);
      onCall(rows.n);
      return inner.predict(rows);
    },
    async inputGradients(rows: Rows, output: number) {
      calls.push(rows.n);
      onCall(rows.n);
      return inner.inputGradients!(rows, output);
    },
  };
  return { model, calls };
}

const rowsOf = (n: number, d: number): Rows => ({ data: Float32Array.from({ length: n * d }, (_, i) => (i * 7) % 13), n, d });

describe('guarded model: bounded chunks and stop checks', () => {
  it('splits a call into chunks of at most maxBytesPerCall of rows, with the same outputs', async () => {
    const { model, calls } = counting([1, -2, 0.5, 3]);
    const rows = rowsOf(1000, 4);
    const plain = await linearModel([1, -2, 0.5, 3], 0.5).predict(rows);
    const { model: guarded, stats } = guardModel(model, { maxBytesPerCall: 16 * 100 }); // 100 rows of 4 floats
    const out = await guarded.predict(rows);
    assert.deepEqual(out, plain);
    assert.ok(
      calls.every((n) => n <= 100),
      `chunks ${calls.join(',')}`,
    );
    assert.equal(
      calls.reduce((a, b) => a + b, 0),
      1000,
    );
    assert.equal(stats.calls, calls.length);
    assert.equal(stats.rows, 1000);
    const grads = await guarded.inputGradients!(rows, 0);
    assert.equal(grads.length, 4000);
    assert.deepEqual(Array.from(grads.subarray(0, 4)), [1, -2, 0.5, 3]);
  });

  it('keeps optional capabilities optional', () => {
    const { model } = counting([1, 2]);
    const blackBox: Model = { nFeatures: 2, nOutputs: 1, predict: (rows) => model.predict(rows) };
    const g = guardModel(blackBox).model;
    for (const capability of ['inputGradients', 'pathBreakpoints', 'logitJacobian', 'layerActivations', 'layerGradients', 'layers']) {
      assert.equal(capability in g, false, capability);
    }
    assert.equal(typeof guardModel(model).model.inputGradients, 'function');
  });

  it('stops at the hard deadline before the next chunk: DEADLINE_EXCEEDED after a bounded number of calls', async () => {
    let now = 0;
    // Every call costs 10 ms of the test's clock; the deadline is at 95 ms: calls 1..10 start before it.
    const { model, calls } = counting([1, 1], () => (now += 10));
    const { model: guarded } = guardModel(model, { deadline: 95, now: () => now, maxBytesPerCall: 8 * 10, sliceMs: 1 });
    await assert.rejects(guarded.predict(rowsOf(1000, 2)), (e: unknown) => e instanceof ServiceError && e.code === 'DEADLINE_EXCEEDED');
    assert.equal(calls.length, 10, `calls ${calls.length}`);
    // Past the deadline nothing starts at all.
    await assert.rejects(guarded.predict(rowsOf(1, 2)), (e: unknown) => e instanceof ServiceError && e.code === 'DEADLINE_EXCEEDED');
    assert.equal(calls.length, 10);
  });

  it('stops when its signal aborts or its cancellation flag is set: CANCELLED, no call after', async () => {
    const controller = new AbortController();
    const { model, calls } = counting([1, 1], () => {
      if (calls.length === 3) controller.abort();
    });
    const { model: guarded } = guardModel(model, { signal: controller.signal, maxBytesPerCall: 8 * 10, sliceMs: 1 });
    await assert.rejects(guarded.predict(rowsOf(1000, 2)), (e: unknown) => e instanceof ServiceError && e.code === 'CANCELLED');
    assert.equal(calls.length, 3);

    const flag = new Int32Array(new SharedArrayBuffer(4));
    const second = counting([1, 1], () => {
      if (second.calls.length === 5) Atomics.store(flag, 0, 1);
    });
    const g2 = guardModel(second.model, { cancelled: () => Atomics.load(flag, 0) === 1, maxBytesPerCall: 8 * 10, sliceMs: 1 }).model;
    await assert.rejects(g2.inputGradients!(rowsOf(1000, 2), 0), (e: unknown) => e instanceof ServiceError && e.code === 'CANCELLED');
    assert.equal(second.calls.length, 5);
  });
});
