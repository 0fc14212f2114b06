/** Predictions for rows as JSON, without HTTP. */
import type { ServedModel } from '../models/served.js';
import { budgetOf, runOptions, type RequestControl } from './bounds.js';
import type { Service } from './context.js';
import { layoutOf, toRows } from './instances.js';

export interface Predictions {
  model: { name: string; version: string };
  outputs: string[];
  predictions: number[][];
}

export async function predict(svc: Service, m: ServedModel, instances: unknown[], ctl: RequestControl = {}): Promise<Predictions> {
  const rows = toRows(instances, layoutOf(m));
  svc.live.record(m, rows);
  const out = await svc.executor.run({ kind: 'predict', model: m.name, version: m.version, rows }, runOptions(budgetOf(svc.config, ctl)));
  const k = m.model.nOutputs;
  const predictions: number[][] = [];
  for (let i = 0; i < rows.n; i++) predictions.push(Array.from(out.subarray(i * k, (i + 1) * k)));
  return { model: { name: m.name, version: m.version }, outputs: m.space.outputNames, predictions };
}
