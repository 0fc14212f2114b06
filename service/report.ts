/**
 * The model report as sections (render/html.ts makes the page): what the model is, what it relies on
 * overall (permutation importance on its reference set), how it decides for a few reference rows,
 * fairness, and drift of live traffic. Image models get their explain methods side by side on a
 * reference image; text models the token attributions of their metadata's example texts; with two
 * versions served, the default is compared with the next one. The part fixed by a model version is
 * built once per version.
 */
import type { Explanation, ExplainMethod, Rows } from '../explainers/types.js';
import { servedVersions, type ServedModel } from '../models/served.js';
import { comparisonSections } from '../render/compare.js';
import { driftSections } from '../render/drift.js';
import { fairnessSections } from '../render/fairness.js';
import type { Section } from '../render/html.js';
import { renderImageComparison, renderImageOverlay } from '../render/imageOverlay.js';
import { renderExplanationPlot } from '../render/plots.js';
import { renderBeeswarm, renderMeanAbs } from '../render/beeswarm.js';
import { renderImportance } from '../render/importance.js';
import { budgetOf, runOptions, type RequestControl } from './bounds.js';
import { renderTextTokens } from '../render/textTokens.js';
import type { Service } from './context.js';
import { recourseSections } from '../render/counterfactuals.js';
import { effectsSections } from '../render/effects.js';
import { comparisonPair, versionComparison } from './compare.js';
import { computeRecourse, fromJsonBurden } from './counterfactuals.js';
import { computeDrift, modelReference } from './drift.js';
import { explain } from './explain.js';
import { layoutOf, parseInstances } from './instances.js';
import { computeServedEffects } from './effects.js';
import { knownErrorResponse, ServiceError } from './errors.js';
import { computeFairness } from './fairness.js';
import { referenceImportance } from './importance.js';
import { MIN_LIVE_ROWS } from './live.js';
import { chartContext } from './chartContext.js';
import { isClassifier } from './outputs.js';
import { inputKind } from './methods/inputs.js';
import { EXPLAIN_METHODS, supportedMethods } from './methods/index.js';
import { parseWith } from './schemas/common.js';
import { recourseSettingsSchema } from './schemas/counterfactuals.js';
import { amortisedStatus } from './amortised/status.js';

/**
 * The image methods compared in the report, with settings that keep a small image to seconds.
 * Larger images than REPORT_MAX_IMAGE_VALUES values are not compared (minutes per method).
 */
const COMPARED: Partial<Record<ExplainMethod, Record<string, unknown>>> = {
  'integrated-gradients': {},
  smoothgrad: { samples: 16, seed: 0 },
  'expected-gradients': { samples: 64, seed: 0 },
  'grad-cam': {},
  occlusion: {},
  'partition-shap': {},
  xrai: {},
};
export const REPORT_MAX_IMAGE_VALUES = 65_536;
/** Example texts explained in a text model's report, at most. */
const REPORT_TEXTS = 5;

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The first reference (or background) image explained by every supported image method, for its predicted class. */
async function imageSections(svc: Service, m: ServedModel, sample: Rows | undefined): Promise<Section[]> {
  if (!sample) return [];
  if (m.model.nFeatures > REPORT_MAX_IMAGE_VALUES) {
    return [
      {
        heading: 'Explain methods side by side',
        text: `Images of ${m.model.nFeatures} values take minutes per method, so the report does not compare methods; POST /v1/models/${m.name}/explain with ?plot=overlay shows one.`,
      },
    ];
  }
  const instance = Array.from(sample.data.subarray(0, sample.d));
  const y = await svc.executor.run(
    { kind: 'predict', model: m.name, version: m.version, rows: { data: Float32Array.from(instance), n: 1, d: sample.d } },
    runOptions(budgetOf(svc.config, {}, svc.config.maxDeadlineMs)),
  );
  const cls = argmax(y);
  const items: { label?: string; explanation: Explanation }[] = [];
  const skipped: string[] = [];
  for (const method of supportedMethods(m)) {
    const parameters = COMPARED[method];
    if (!parameters) continue;
    try {
      const { explanation } = await explain(svc, m, { instances: [instance], method, outputs: [cls], parameters });
      items.push({ explanation });
    } catch (e) {
      skipped.push(`${method} (${reason(e)})`);
    }
  }
  if (!items.length) return [];
  const output = m.space.outputNames[cls];
  // The class explained is the predicted one (asked for by index so every method explains the same class).
  const context = chartContext(m, 'predicted-class');
  const sections: Section[] = [
    {
      heading: 'Explain methods side by side',
      text:
        `Reference image 0, predicted “${output}”: each method's attributions for that class laid over the image, each scaled to its own largest value (methods differ in units).` +
        (skipped.length ? ` Not shown: ${skipped.join('; ')}.` : ''),
      svg: renderImageComparison(items, { context }),
    },
  ];
  // The superpixel method once more at full size, with its segment outlines.
  const partition = items.find((i) => i.explanation.method === 'partition-shap');
  if (partition) sections.push({ heading: 'Partition SHAP over superpixels', svg: renderImageOverlay(partition.explanation, { context }) });
  return sections;
}

/** A text model's example texts (metadata exampleTexts), each explained for its predicted class. */
async function textSections(svc: Service, m: ServedModel): Promise<Section[]> {
  const texts = m.metadata?.exampleTexts?.slice(0, REPORT_TEXTS) ?? [];
  if (!texts.length) {
    return [{ heading: 'Token attributions', text: 'List a few exampleTexts in metadata.json and the report explains them here, token by token.' }];
  }
  const methods = supportedMethods(m).filter((k) => k === 'integrated-gradients' || k === 'partition-shap');
  const sections: Section[] = [];
  // Each text's predicted class (asked for by index, so both methods explain the same class).
  const context = chartContext(m, 'predicted-class');
  for (const [i, text] of texts.entries()) {
    const rows = parseInstances([text], layoutOf(m), 'metadata.json exampleTexts').rows;
    const predicted = argmax(
      await svc.executor.run({ kind: 'predict', model: m.name, version: m.version, rows }, runOptions(budgetOf(svc.config, {}, svc.config.maxDeadlineMs))),
    );
    for (const method of methods) {
      const { explanation } = await explain(svc, m, { instances: [text], method, outputs: [predicted], parameters: {} });
      sections.push({
        heading: `Example ${i + 1}, ${method}: “${m.space.outputNames[predicted]}”`,
        svg: renderTextTokens(explanation, { context }),
      });
    }
  }
  return sections;
}

function head(rows: Rows, n: number): Rows {
  const k = Math.min(n, rows.n);
  return { data: rows.data.slice(0, k * rows.d), n: k, d: rows.d };
}

/** The part of the report fixed by the model version. */
async function fixedSections(svc: Service, m: ServedModel): Promise<Section[]> {
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
        ['explain methods', supportedMethods(m).join(', ')],
        ...(m.tokenizer ? [['tokenizer', `${m.tokenizer.vocabulary.length} tokens, texts cut to ${m.tokenizer.maxLength}`] as [string, string]] : []),
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
  const context = chartContext(m, 'all');
  if (m.reference && !isImage) {
    const importance = await referenceImportance(svc, m);
    sections.push({
      heading: 'Global importance',
      text: `Permutation importance on ${importance.nSamples} reference rows, ${importance.repeats} repeats: how much ${importance.metric} drops when a feature is shuffled.`,
      svg: renderImportance(importance),
    });
    const ranked = [...importance.importances].sort((a, b) => b.mean - a.mean).map((f) => f.feature);
    sections.push(...(await effectSections(svc, m, ranked)));
  }
  const kind = inputKind(m);
  const sample = m.reference?.rows ?? m.background;
  // Text rows are token ids: their explanations are the token sections below.
  if (sample && kind !== 'text') {
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
      // Every row explains every output here: one summary per output (a class's own drivers).
      const names = m.space.outputNames;
      names.forEach((name) => {
        const of = names.length > 1 ? `: ${name}` : '';
        sections.push({
          heading: `What drives predictions${of}`,
          text: `Kernel SHAP over the first ${local.explanations.length} reference rows: each dot is one row, placed by its attribution and coloured by the feature's value.`,
          svg: renderBeeswarm(local, { output: name, context }),
        });
        sections.push({ heading: `Mean |attribution|${of}`, svg: renderMeanAbs(local, { output: name, context }) });
      });
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
    const classifier = isClassifier(m) && m.space.outputNames.length > 1;
    for (let i = 0; i < shown; i++) {
      // A classifier's row is charted for the class the model predicts for it (all outputs were explained).
      const outs = local.explanations[i].outputs;
      const output = classifier ? outs.reduce((best, o, k) => (o.instanceOutputValue > outs[best].instanceOutputValue ? k : best), 0) : 0;
      sections.push({
        heading: `Reference row ${i}${classifier ? `: ${outs[output].output} (predicted)` : ''}`,
        svg: renderExplanationPlot({ ...local, inputShape: isImage ? m.inputShape : undefined }, undefined, {
          instance: i,
          output,
          context: classifier ? { ...context, outputSelection: 'predicted-class' } : context,
        }),
      });
    }
  }
  if (kind === 'image') sections.push(...(await imageSections(svc, m, sample)));
  if (kind === 'text') sections.push(...(await textSections(svc, m)));
  if (m.reference && meta?.sensitiveFeatures.length && !isImage) {
    sections.push(...fairnessSections(await computeFairness(svc, m, parseWith(svc.schemas.fairness, {}))));
    if (meta.task === 'binary-classification') sections.push(...(await recourseReportSections(svc, m, meta.sensitiveFeatures)));
  }
  return sections;
}

/** Features whose effects the report charts: the most important ones. */
export const REPORT_EFFECT_FEATURES = 3;

/**
 * The top features' effects: PD with thinned ICE curves behind it, on up to 300 reference rows. A
 * failure (a deadline on a slow model) becomes a note in the report, not a failed report.
 */
async function effectSections(svc: Service, m: ServedModel, byImportance: string[]): Promise<Section[]> {
  const features = byImportance.slice(0, REPORT_EFFECT_FEATURES);
  if (!features.length) return [];
  const heading = 'Feature effects';
  try {
    const { effects } = await computeServedEffects(svc, m, {
      kind: 'ice',
      features,
      outputs: 'all',
      parameters: { maxRows: 300, resolution: 30, deadlineMs: svc.config.maxDeadlineMs },
    });
    return [
      {
        heading,
        text: `How the prediction responds to the ${features.length} most important features across their range: partial dependence (the thick line) over ICE curves of individual reference rows (${effects.rows} rows, 50 drawn). POST /v1/models/${m.name}/effects gives any feature, ALE and SHAP dependence.`,
      },
      ...effectsSections(effects.effects, { context: chartContext(m) }),
    ];
  } catch (e) {
    const known = knownErrorResponse(e);
    if (!known) throw e;
    return [{ heading, text: `The effects could not be computed for this report: ${known.body.error.message}` }];
  }
}

/** Recourse burden by each sensitive feature, beside the fairness metrics (500 reference rows at most). */
async function recourseReportSections(svc: Service, m: ServedModel, features: string[]): Promise<Section[]> {
  try {
    const settings = parseWith(recourseSettingsSchema, { maxRows: 500 });
    const burdens = await computeRecourse(svc, m, features, settings, budgetOf(svc.config, {}, svc.config.maxDeadlineMs));
    return burdens.flatMap((b) => recourseSections(fromJsonBurden(b)));
  } catch (e) {
    const known = knownErrorResponse(e);
    if (!known) throw e;
    return [{ heading: 'Recourse burden', text: `The recourse burden could not be computed for this report: ${known.body.error.message}` }];
  }
}

/** Drift of the live window against the reference: changes with traffic, so never cached. */
async function liveSections(svc: Service, m: ServedModel, ctl: RequestControl): Promise<Section[]> {
  const w = await svc.live.window(m);
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

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
const fix = (v: number) => (Math.abs(v) >= 0.01 ? v.toFixed(4) : v.toExponential(2));

/** The stored amortised explainer of this version: whether it serves and its validated error (changes when trained: never cached). */
export async function amortisedSections(svc: Service, m: ServedModel): Promise<Section[]> {
  if (EXPLAIN_METHODS['amortised-shap'].supports(m) !== undefined) return [];
  await svc.amortisedFetch?.(m);
  const s = amortisedStatus(svc.config, m);
  const heading = 'Amortised SHAP';
  const v = s.explainer?.validation;
  if (!s.explainer || !v) {
    return [
      {
        heading,
        text:
          (s.state === 'stale'
            ? `The amortised explainer was trained for another version of the model (${(s.otherVersions ?? []).join(', ')}); it is not used for this one. `
            : 'No amortised explainer has been trained for this model version. ') +
          `POST /v1/models/${m.name}/amortised trains one (a job of minutes); until then method amortised-shap answers with Kernel SHAP.`,
      },
    ];
  }
  const t = s.explainer.training as { trainingRows?: number; epochs?: number; modelEvaluations?: number; totalMs?: number } | undefined;
  const rows: [string, string | number][] = [
    ['served', s.servable ? 'yes' : `no: ${s.reason ?? ''}`],
    ['trained', `${s.explainer.createdAt} (explainer ${s.explainer.id})`],
    ['validated against', `${v.reference === 'exact' ? 'exact Shapley values' : `Kernel SHAP at ${v.referenceSamples} coalitions`} on ${v.rows} held-out reference rows`],
    ['mean / p95 max-error per row', `${fix(v.amortised.meanAbs)} / ${fix(v.amortised.p95Abs)} (${pct(v.amortised.meanRelative)} / ${pct(v.amortised.p95Relative)} of the row's attribution range)`],
    ['threshold (AMORTISED_THRESHOLD)', pct(s.threshold)],
    ["or at most this multiple of shap's KernelExplainer scheme's error (AMORTISED_MAX_RATIO)", s.maxRatio > 0 ? `${s.maxRatio}x` : 'off'],
  ];
  if (v.referenceStdErr !== undefined) rows.push(["the reference's own mean largest standard error (in every error here)", fix(v.referenceStdErr)]);
  if (v.kernelShap) {
    rows.push([
      `Kernel SHAP at ${v.kernelShap.nSamples} coalitions, same rows`,
      `${fix(v.kernelShap.meanAbs)} (${pct(v.kernelShap.meanRelative)})${v.ratioToKernelShap !== undefined ? `; amortised / Kernel SHAP = ${v.ratioToKernelShap.toFixed(2)}` : ''}`,
    ]);
  }
  if (v.shapKernelExplainer) {
    rows.push([
      `shap's KernelExplainer sampling at ${v.shapKernelExplainer.nSamples} coalitions, same rows`,
      `${fix(v.shapKernelExplainer.meanAbs)} (${pct(v.shapKernelExplainer.meanRelative)})${v.ratioToShapKernelExplainer !== undefined ? `; amortised / shap = ${v.ratioToShapKernelExplainer.toFixed(2)}` : ''}`,
    ]);
  }
  if (t) rows.push(['training', `${t.trainingRows} rows, ${t.epochs} epochs, ${(t.modelEvaluations ?? 0).toLocaleString('en-US')} model rows, ${((t.totalMs ?? 0) / 1000).toFixed(0)} s`]);
  return [
    {
      heading,
      text: `Shapley values of Kernel SHAP's game from one forward pass of an explainer trained for this model version (method amortised-shap). Its error, measured on reference rows it never saw:`,
      table: { columns: ['', ''], rows },
    },
  ];
}

/** When two versions are served: the default against the next one (a cached job, service/compare.ts). */
async function versionSections(svc: Service, m: ServedModel): Promise<Section[]> {
  const served = servedVersions(svc.registry, m.name);
  if (served.length < 2 || served[0].model !== m) return [];
  try {
    const state = await versionComparison(svc, comparisonPair(svc, m.name), { wait: true });
    return state.status === 'done' ? comparisonSections(state.comparison) : [];
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return [{ heading: 'Versions', text: `The served versions cannot be compared: ${e.message}` }];
  }
}

/** Every section of the model's report. */
export async function modelReportSections(svc: Service, m: ServedModel, ctl: RequestControl = {}): Promise<Section[]> {
  const key = `${m.name}@${m.version}`;
  let fixed = svc.reportSections.get(key);
  if (!fixed) {
    fixed = fixedSections(svc, m);
    svc.reportSections.set(key, fixed);
    fixed.catch(() => svc.reportSections.delete(key));
  }
  return [...(await fixed), ...(await amortisedSections(svc, m)), ...(await liveSections(svc, m, ctl)), ...(await versionSections(svc, m))];
}
