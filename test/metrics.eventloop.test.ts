/**
 * The event-loop delay histogram in /metrics (perf_hooks.monitorEventLoopDelay folded into
 * Prometheus buckets): a deliberate 400 ms stall of this thread appears as a sample above the 250 ms
 * bucket, and the histogram's buckets are cumulative and end with the count.
 */
import { strict as assert } from 'node:assert';
import request from 'supertest';
import { createApp } from '../server/app.js';
import { testConfig } from './helpers/config.js';
import { linearModel, served } from './helpers/jsModels.js';

describe('metrics: event-loop delay histogram', () => {
  it('a 400 ms stall is counted above 250 ms; buckets are cumulative', async () => {
    const app = createApp({
      registry: { models: new Map([['a', served('a', linearModel([1]))]]), errors: [] },
      config: testConfig({}),
      backend: 'js',
    });
    const read = async () => {
      const text = (await request(app).get('/metrics')).text;
      const bucket = (le: string) =>
        Number(new RegExp(`^eventloop_delay_seconds_bucket\\{le="${le.replace('+', '\\+')}"\\} (\\S+)`, 'm').exec(text)![1]);
      const les = ['0.001', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'];
      return {
        counts: les.map(bucket),
        count: Number(/^eventloop_delay_seconds_count (\S+)/m.exec(text)![1]),
        over250: (c: number[]) => c[12] - c[6],
      };
    };
    await new Promise((r) => setTimeout(r, 100));
    const before = await read();
    const t0 = Date.now();
    while (Date.now() - t0 < 400); // the stall
    await new Promise((r) => setTimeout(r, 100));
    const after = await read();
    assert.ok(after.over250(after.counts) - before.over250(before.counts) >= 1, JSON.stringify({ before, after }));
    for (let i = 1; i < after.counts.length; i++) assert.ok(after.counts[i] >= after.counts[i - 1]);
    assert.equal(after.counts[after.counts.length - 1], after.count);
  });
});
