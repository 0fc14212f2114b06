import { Router } from 'express';
import type { Rows } from '../../explainers/types.js';
import type { AppContext } from '../context.js';
import { ApiError } from '../errors.js';
import { toRows } from '../instances.js';
import { getModel, type ServedModel } from '../registry.js';
import { parseWith } from '../schemas.js';
import { chooseFormat, queryInt, sendVisual } from '../negotiate.js';
import { renderImportance, renderImportanceReport } from '../../render/index.js';

function labelsFrom(raw: (number | string)[], m: ServedModel): Float32Array {
  const classes = m.metadata?.classes;
  const out = new Float32Array(raw.length);
  raw.forEach((v, i) => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new ApiError('BAD_LABELS', `labels[${i}]: ${v} is not a finite number`);
      out[i] = v;
      return;
    }
    const idx = classes ? classes.indexOf(v) : -1;
    if (idx < 0) {
      throw new ApiError(
        'BAD_LABELS',
        `labels[${i}]: "${v}" is not a class of model "${m.name}"${classes ? `; classes are ${classes.join(', ')}` : ' (it declares no class names; send class indices)'}`,
      );
    }
    out[i] = idx;
  });
  return out;
}

export function importanceRoutes(ctx: AppContext): Router {
  const r = Router();

  r.post('/v1/models/:name/importance', async (req, res) => {
    const m = getModel(ctx.registry, req.params.name, req);
    const format = chooseFormat(req);
    const topK = queryInt(req, 'topK', 1, 1000);
    const p = parseWith(ctx.schemas.importance, req.body ?? {});
    let data: Rows | undefined;
    let labels: Float32Array | undefined;
    if (p.data) {
      if (!p.labels) throw new ApiError('BAD_LABELS', 'data needs labels: one label per row');
      data = toRows(p.data, { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space }, 'data');
      if (p.labels.length !== data.n) throw new ApiError('BAD_LABELS', `labels has ${p.labels.length} entries but data has ${data.n} rows`);
      labels = labelsFrom(p.labels, m);
    } else {
      if (p.labels)
        throw new ApiError('BAD_LABELS', "labels were given without data; send both, or neither to use the model's reference set");
      if (!m.reference) {
        throw new ApiError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata; send data and labels`);
      }
    }
    const nRows = data?.n ?? m.reference!.rows.n;
    if (p.sampleWeights && p.sampleWeights.length !== nRows) {
      throw new ApiError('BAD_PARAMETER', `sampleWeights has ${p.sampleWeights.length} entries but there are ${nRows} rows`);
    }
    const task = m.metadata?.task;
    const metric = p.metric ?? (task === 'regression' ? 'r2' : 'accuracy');
    let output: number | undefined;
    if (p.output !== undefined) {
      output = typeof p.output === 'number' ? p.output : m.space.outputNames.indexOf(p.output);
      if (!Number.isInteger(output) || output < 0 || output >= m.model.nOutputs) {
        throw new ApiError('UNKNOWN_OUTPUT', `output ${JSON.stringify(p.output)} is not one of ${m.space.outputNames.join(', ')}`);
      }
    }
    const result = await ctx.executor.run({
      kind: 'importance',
      model: m.name,
      version: m.version,
      data,
      labels,
      options: {
        metric,
        metrics: p.metrics,
        repeats: p.repeats,
        seed: p.seed,
        maxSamples: p.maxSamples,
        sampleWeights: p.sampleWeights ? Float32Array.from(p.sampleWeights) : undefined,
        task,
        output,
      },
    });
    if (format === 'json') {
      res.json({ model: { name: m.name, version: m.version }, dataset: p.data ? 'request' : 'reference', ...result });
      return;
    }
    sendVisual(res, format, {
      svg: () => renderImportance(result, { topK }),
      html: () => renderImportanceReport(result, { name: m.name, version: m.version, description: m.metadata?.description }, { topK }),
    });
  });

  return r;
}
