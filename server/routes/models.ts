import { Router } from 'express';
import { canSee } from '../auth.js';
import { recordLive } from '../live.js';
import type { AppContext } from '../context.js';
import { getModel } from '../registry.js';
import { parseWith } from '../schemas.js';
import { toRows } from '../instances.js';

export function modelRoutes(ctx: AppContext): Router {
  const r = Router();

  r.get('/v1/models', (req, res) => {
    const visible = [...ctx.registry.models.values()].filter((m) => canSee(req, m.name));
    res.json({ models: visible.map((m) => m.describe()), loadErrors: ctx.registry.errors.filter((e) => canSee(req, e.name)) });
  });

  r.get('/v1/models/:name', (req, res) => {
    const m = getModel(ctx.registry, req.params.name, req);
    res.json({ ...m.describe(), metadata: m.metadata ?? null });
  });

  r.post('/v1/models/:name/predict', async (req, res) => {
    const m = getModel(ctx.registry, req.params.name, req);
    const body = parseWith(ctx.schemas.predict, req.body);
    const rows = toRows(body.instances, { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space });
    recordLive(m, rows);
    const out = await ctx.executor.run({ kind: 'predict', model: m.name, version: m.version, rows });
    const k = m.model.nOutputs;
    const predictions: number[][] = [];
    for (let i = 0; i < rows.n; i++) predictions.push(Array.from(out.subarray(i * k, (i + 1) * k)));
    res.json({ model: { name: m.name, version: m.version }, outputs: m.space.outputNames, predictions });
  });

  return r;
}
