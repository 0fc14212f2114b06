/**
 * The model report as sections (render/html.ts makes the page): what the model is, what it relies on
 * overall (permutation importance on its reference set), how it decides for a few reference rows,
 * fairness, and drift of live traffic. The part fixed by a model version is built once per version.
 */
import type { Explanation, Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { driftSections } from '../render/drift.js';
import { fairnessSections } from '../render/fairness.js';
import type { Section } from '../render/html.js';
import { renderExplanationPlot } from '../render/plots.js';
import { renderBeeswarm, renderMeanAbs } from '../render/beeswarm.js';
import { renderImportance } from '../render/importance.js';
import { budgetOf, runOptions, type RequestControl } from './bounds.js';
import type { Service } from './context.js';
import { computeDrift, modelReference } from './drift.js';
import { computeFairness } from './fairness.js';
import { referenceImportance } from './importance.js';
import { liveWindow, MIN_LIVE_ROWS } from './live.js';
import { parseWith } from './schemas/common.js';

function head(rows: Rows, n: number): Rows {
  const k = Math.min(n, rows.n);
  return { data: rows.data.slice(0, k * rows.d), n: k, d: rows.d };
}

/** The part of the report fixed by the model version. */
async function versionSections(svc: Service, m: ServedModel): Promise<Section[]> {
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
  // Shared by every request for this version: the longest budget, and no request's cancellation.
  const budget = budgetOf(svc.config, {}, svc.config.maxDeadlineMs);
  const deadline = budget.deadline;
  if (m.reference && !isImage) {
    const importance = await referenceImportance(svc, m);
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
      local = await svc.executor.run(
        {
          kind: 'explain',
          model: m.name,
          version: m.version,
          method: 'kernel-shap',
          rows: head(sample, 40),
          options: { background: m.background, seed: 0, nSamples: 'auto', link: meta?.link ?? 'identity', deadline },
        },
        runOptions(budget),
      );
      sections.push({
        heading: 'What drives predictions',
        text: `Kernel SHAP over the first ${local.explanations.length} reference rows: each dot is one row, placed by its attribution and coloured by the feature's value.`,
        svg: renderBeeswarm(local),
      });
      sections.push({ heading: 'Mean |attribution|', svg: renderMeanAbs(local) });
    } else {
      local = await svc.executor.run(
        {
          kind: 'explain',
          model: m.name,
          version: m.version,
          method: 'integrated-gradients',
          rows: head(sample, 3),
          options: { baseline: 'zeros', steps: 'auto', deadline },
        },
        runOptions(budget),
      );
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
    sections.push(...fairnessSections(await computeFairness(svc, m, parseWith(svc.schemas.fairness, {}))));
  }
  return sections;
}

/** Drift of the live window against the reference: changes with traffic, so never cached. */
async function liveSections(svc: Service, m: ServedModel, ctl: RequestControl): Promise<Section[]> {
  const w = liveWindow(m);
  if (!w || w.rows.n < MIN_LIVE_ROWS || m.inputShape.length > 1 || (!m.reference && !m.background)) {
    return [
      {
        heading: 'Drift',
        text: `Drift of live traffic appears here once ${MIN_LIVE_ROWS} rows have gone through predict or explain (now ${w?.rows.n ?? 0}). POST /v1/models/${m.name}/drift compares any dataset.`,
      },
    ];
  }
  const own = modelReference(m);
  return driftSections(await computeDrift(svc, m, { reference: own.rows, referenceName: own.name, current: w.rows, source: 'live' }, ctl));
}

/** Every section of the model's report. */
export async function modelReportSections(svc: Service, m: ServedModel, ctl: RequestControl = {}): Promise<Section[]> {
  const key = `${m.name}@${m.version}`;
  let fixed = svc.reportSections.get(key);
  if (!fixed) {
    fixed = versionSections(svc, m);
    svc.reportSections.set(key, fixed);
    fixed.catch(() => svc.reportSections.delete(key));
  }
  return [...(await fixed), ...(await liveSections(svc, m, ctl))];
}
