/**
 * GET /v1/models/:name/report: one self-contained HTML page about a model — what it is, what it
 * relies on overall (permutation importance on its reference set), how it decides for a few
 * reference rows (local explanations and a beeswarm summary). Built once per model version.
 */
import { Router } from 'express';
import { LRUCache } from 'lru-cache';
import type { Explanation, Rows } from '../../explainers/types.js';
import {
  renderBeeswarm,
  renderExplanationPlot,
  renderHtmlReport,
  renderImportance,
  renderMeanAbs,
  type Section,
  fairnessSections,
  driftSections,
} from '../../render/index.js';
import { computeFairness, fairnessSchema } from './fairness.js';
import { computeDrift, modelReference } from './drift.js';
import { liveWindow, MIN_LIVE_ROWS } from '../live.js';
import { parseWith } from '../schemas.js';
import type { AppContext } from '../context.js';
import { getModel, type ServedModel } from '../registry.js';

function head(rows: Rows, n: number): Rows {
  const k = Math.min(n, rows.n);
  return { data: rows.data.slice(0, k * rows.d), n: k, d: rows.d };
}

/** The part of the report fixed by the model version (cached per version). */
async function buildSections(ctx: AppContext, m: ServedModel): Promise<Section[]> {
  const meta = m.metadata;
  const isImage = m.inputShape.length > 1;
  const sections: Section[] = [];
  sections.push({
    heading: 'Model',
    text: meta?.description ?? 'No metadata.json: features and outputs have default names.',
    table: {
      columns: ['', ''],
      rows: [
        ['name', m.name],
        ['version', m.version],
        ['task', meta?.task ?? 'unknown'],
        ['input shape', `[${m.inputShape.join(', ')}]`],
        ['outputs', m.space.outputNames.join(', ')],
        ['sensitive features', meta?.sensitiveFeatures.join(', ') || 'none declared'],
        ['background rows', m.background?.n ?? 0],
        ['reference rows', m.reference?.rows.n ?? 0],
      ],
    },
  });
  if (!isImage && meta?.features) {
    sections.push({
      heading: 'Features',
      table: {
        columns: ['feature', 'type', 'group', 'description'],
        rows: meta.features.map((f) => [f.name, f.type, f.group ?? '', f.description ?? '']),
      },
    });
  }
  const deadline = Date.now() + ctx.config.maxDeadlineMs;
  if (m.reference && !isImage) {
    const task = meta?.task;
    const importance = await ctx.executor.run({
      kind: 'importance',
      model: m.name,
      version: m.version,
      options: {
        metric: task === 'regression' ? 'r2' : 'accuracy',
        repeats: 5,
        seed: 0,
        task,
        maxSamples: Math.min(1000, m.reference.rows.n),
      },
    });
    sections.push({
      heading: 'Global importance',
      text: `Permutation importance on ${importance.nSamples} reference rows, ${importance.repeats} repeats: how much ${importance.metric} drops when a feature is shuffled.`,
      svg: renderImportance(importance),
    });
  }
  const sample = m.reference?.rows ?? m.background;
  if (sample) {
    let local: Explanation;
    if (m.background && !isImage) {
      local = await ctx.executor.run({
        kind: 'explain',
        model: m.name,
        version: m.version,
        method: 'kernel-shap',
        rows: head(sample, 40),
        options: { background: m.background, seed: 0, nSamples: 'auto', link: meta?.link ?? 'identity', deadline },
      });
      sections.push({
        heading: 'What drives predictions',
        text: `Kernel SHAP over the first ${local.explanations.length} reference rows: each dot is one row, placed by its attribution and coloured by the feature's value.`,
        svg: renderBeeswarm(local),
      });
      sections.push({ heading: 'Mean |attribution|', svg: renderMeanAbs(local) });
    } else {
      local = await ctx.executor.run({
        kind: 'explain',
        model: m.name,
        version: m.version,
        method: 'integrated-gradients',
        rows: head(sample, 3),
        options: { baseline: 'zeros', steps: 'auto', deadline },
      });
    }
    const shown = Math.min(3, local.explanations.length);
    for (let i = 0; i < shown; i++) {
      sections.push({
        heading: `Reference row ${i}`,
        svg: renderExplanationPlot({ ...local, inputShape: isImage ? m.inputShape : undefined }, undefined, { instance: i }),
      });
    }
  }
  if (m.reference && meta?.sensitiveFeatures.length && !isImage) {
    sections.push(...fairnessSections(await computeFairness(ctx, m, parseWith(fairnessSchema(ctx.config), {}))));
  }
  return sections;
}

/** Drift of the live window against the reference: changes with traffic, so never cached. */
async function liveSections(ctx: AppContext, m: ServedModel): Promise<Section[]> {
  const w = liveWindow(m);
  if (!w || w.rows.n < MIN_LIVE_ROWS || m.inputShape.length > 1 || (!m.reference && !m.background)) {
    return [
      {
        heading: 'Drift',
        text: `Drift of live traffic appears here once ${MIN_LIVE_ROWS} rows have gone through predict or explain (now ${w?.rows.n ?? 0}). POST /v1/models/${m.name}/drift compares any dataset.`,
      },
    ];
  }
  return driftSections(await computeDrift(ctx, m, { reference: modelReference(m).rows, current: w.rows, source: 'live' }));
}

export function reportRoutes(ctx: AppContext): Router {
  const r = Router();
  const reports = new LRUCache<string, Promise<Section[]>>({ max: 64 });
  r.get('/v1/models/:name/report', async (req, res) => {
    const m = getModel(ctx.registry, req.params.name, req);
    const key = `${m.name}@${m.version}`;
    let page = reports.get(key);
    if (!page) {
      page = buildSections(ctx, m);
      reports.set(key, page);
      page.catch(() => reports.delete(key));
    }
    const sections = [...(await page), ...(await liveSections(ctx, m))];
    res.type('html').send(renderHtmlReport({ title: `Model report: ${m.name}`, subtitle: `version ${m.version}`, sections }));
  });
  return r;
}
