/**
 * A worker thread that holds more than its threshold after a task is replaced: it answers, asks to be
 * replaced, the executor ends it and the pool starts a fresh thread that loads the models again; a
 * task that reaches the thread meanwhile is handed back and runs again (at most twice more). Here the
 * threshold (1 MB) is below the wasm heap every thread has, so every thread is replaced after its
 * second task, and every answer must still be right.
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository } from '../models/repository.js';
import { poolExecutor } from '../service/executor.js';

const SAMPLES = path.resolve('samples/models');

describe('worker threads recycle themselves above their memory threshold', function () {
  this.timeout(180_000);

  it('every task answered right while each thread is replaced after its task', async () => {
    const backend = await selectBackend(process.env.TFJS_BACKEND);
    const repo = await loadModelRepository(SAMPLES);
    const m = repo.models.get('cars')!;
    const pool = poolExecutor({ modelDir: SAMPLES, backend, threads: 1, recycleMb: 1 });
    const recycled: string[] = [];
    pool.observeRecycle = (why) => recycled.push(why);
    try {
      const rows = m.reference!.rows;
      const expected = await m.model.predict(rows);
      const predict = () => pool.run({ kind: 'predict', model: 'cars', version: m.version, rows });
      // One at a time: a thread's first task measures what it holds with its models loaded, its
      // second finds the wasm heap above 1 MB and replaces the thread: 3 recycles in 6 tasks.
      for (let i = 0; i < 6; i++) {
        assert.deepEqual(await predict(), expected);
        await new Promise((r) => setTimeout(r, 200));
      }
      for (let i = 0; i < 100 && recycled.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(recycled, ['memory', 'memory', 'memory']);
      // Back to back: a task that reaches a thread being replaced is run again, and answered right.
      const got = await Promise.all(Array.from({ length: 6 }, predict));
      for (const g of got) assert.deepEqual(g, expected);
    } finally {
      await pool.close();
    }
  });
});
