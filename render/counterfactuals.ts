/**
 * Counterfactual charts. `renderCounterfactuals`: a before/after table of one instance, one row per
 * feature that some counterfactual changes (a one-hot group as one row, by category), one column per
 * counterfactual with the new value and an arrow where it changes, and the prediction, distance,
 * features changed and plausibility under it. `renderRecourseBurden`: the cost of the cheapest
 * counterfactual by sensitive group, with bootstrap intervals, for the fairness section.
 */
import * as d3 from 'd3';
import type { RecourseBurden } from '../monitoring/fairness/recourse.js';
import type { Counterfactual, InstanceCounterfactuals } from '../explainers/counterfactuals/types.js';
import { createSvg, docOf, serializeSvg, type RenderOptions } from './document.js';
import { renderGroupComparison } from './groups.js';
import type { Cell, Section } from './html.js';
import { label, textGroup } from './marks/labels.js';
import { fmt, fmtValue, textWidth, truncate } from './text.js';
import { theme } from './theme.js';

export interface CounterfactualChartOptions extends RenderOptions {
  /** Feature names in the model's order (the rows' order). */
  featureNames: string[];
  /** Class names, for classifiers' predictions and desired class. */
  classNames?: string[];
  /** Name of the output a range refers to. */
  outputNames?: string[];
  title?: string;
}

interface Row {
  name: string;
  now: string;
  /** Per counterfactual: text and direction (+1 up, -1 down, 0 category change), or null when unchanged. */
  cells: ({ text: string; dir: number } | null)[];
}

/** The instance's own row: a counterfactual's values with its changed columns put back. */
function instanceValues(c: Counterfactual, names: string[]): number[] {
  const x = c.values.slice();
  for (const ch of c.changes) x[names.indexOf(ch.feature)] = ch.from;
  return x;
}

/** A one-hot column's category: the part of its name after the group name ("housing_rent" -> "rent"). */
function categoryOf(column: string, group: string): string {
  return column.startsWith(group) ? column.slice(group.length).replace(/^[_\-.=: ]+/, '') || column : column;
}

function desiredText(r: InstanceCounterfactuals, o: CounterfactualChartOptions): string {
  const d = r.desired;
  if ('class' in d) return `class ${o.classNames?.[d.class] ?? d.class}`;
  const name = o.outputNames?.[d.output] ?? `output ${d.output}`;
  const [lo, hi] = d.range;
  if (lo === -Infinity) return `${name} ≤ ${fmt(hi)}`;
  if (hi === Infinity) return `${name} ≥ ${fmt(lo)}`;
  return `${name} in [${fmt(lo)}, ${fmt(hi)}]`;
}

function predictionText(p: number[], r: InstanceCounterfactuals, o: CounterfactualChartOptions): string {
  const d = r.desired;
  if ('range' in d) return fmt(p[d.output]);
  if (p.length === 1) return fmt(p[0]);
  let best = 0;
  for (let j = 1; j < p.length; j++) if (p[j] > p[best]) best = j;
  return `${o.classNames?.[best] ?? `class ${best}`} (${fmt(p[best])})`;
}

const four = d3.format(',.4~r');

/**
 * A new value to 4 significant digits, rounded away from the instance's value: the counterfactual sits
 * on the decision boundary, so a value rounded back towards the instance could fall short of it.
 */
export function fmtTarget(v: number, dir: number): string {
  if (Number.isInteger(v) || v === 0 || !Number.isFinite(v)) return fmtValue(v);
  const step = 10 ** (Math.floor(Math.log10(Math.abs(v))) - 3);
  const r = (dir > 0 ? Math.ceil(v / step) : Math.floor(v / step)) * step;
  return four(Number(r.toPrecision(4))).replace('-', '−');
}

function rowsOf(r: InstanceCounterfactuals, names: string[]): Row[] {
  const cfs = r.counterfactuals;
  const x = instanceValues(cfs[0], names);
  // Changed features in model order; a group's columns make one row.
  const keys: string[] = [];
  const groupOf = new Map<string, string>();
  for (const c of cfs) for (const ch of c.changes) if (ch.group) groupOf.set(ch.feature, ch.group);
  for (let j = 0; j < names.length; j++) {
    const key = groupOf.get(names[j]) ?? names[j];
    if (!keys.includes(key) && cfs.some((c) => c.changes.some((ch) => (ch.group ?? ch.feature) === key))) keys.push(key);
  }
  return keys.map((key) => {
    const isGroup = [...groupOf.values()].includes(key);
    if (isGroup) {
      // The instance's category column changes whenever the group does, so it is among the changed columns.
      const members = names.filter((n) => groupOf.get(n) === key);
      const nowCol = members.find((n) => x[names.indexOf(n)] >= 0.5);
      return {
        name: key,
        now: nowCol ? categoryOf(nowCol, key) : '–',
        cells: cfs.map((c) => {
          if (!c.changes.some((ch) => ch.group === key)) return null;
          const to = c.changes.find((ch) => ch.group === key && ch.to === 1)?.feature;
          return { text: `→ ${to ? categoryOf(to, key) : '–'}`, dir: 0 };
        }),
      };
    }
    const j = names.indexOf(key);
    const fromLabel = cfs
      .flatMap((c) => c.changes.filter((ch) => ch.feature === key && ch.fromLabel !== undefined))
      .map((ch) => ch.fromLabel)[0];
    return {
      name: key,
      now: fromLabel ?? fmtValue(x[j]),
      cells: cfs.map((c) => {
        const ch = c.changes.find((q) => q.feature === key);
        if (!ch) return null;
        if (ch.toLabel !== undefined) return { text: `→ ${ch.toLabel}`, dir: 0 };
        const dir = Math.sign(ch.to - ch.from);
        return { text: `${dir > 0 ? '↑' : '↓'} ${fmtTarget(ch.to, dir)}`, dir };
      }),
    };
  });
}

export function renderCounterfactuals(result: InstanceCounterfactuals, options: CounterfactualChartOptions): string {
  const names = options.featureNames;
  const cfs = result.counterfactuals;
  const width0 = options.width ?? theme.width;
  const m = theme.margin;
  const size = theme.fontSize;
  const found = cfs.length > 0 && result.status !== 'already-desired';
  const title =
    options.title ??
    (result.status === 'already-desired'
      ? `The instance already has the desired outcome (${desiredText(result, options)})`
      : found
        ? `What would change the outcome to ${desiredText(result, options)}: ${cfs.length} counterfactual${cfs.length > 1 ? 's' : ''}`
        : `No counterfactual reaching ${desiredText(result, options)} was found (${result.stopReason === 'complete' ? 'search complete' : `stopped at the ${result.stopReason}`})`);

  if (!found) {
    const height = m.top + 40;
    const svg = createSvg(docOf(options), { width: width0, height, title, desc: `${title}.` });
    label(svg.append('g'), m.left, m.top + 12, truncate(title, width0 - m.left - m.right, theme.titleFontSize, true), {
      bold: true,
      size: theme.titleFontSize,
    });
    return serializeSvg(svg);
  }

  const rows = rowsOf(result, names);
  const footer: Row[] = [
    {
      name: 'prediction',
      now: predictionText(result.prediction, result, options),
      cells: cfs.map((c) => ({ text: predictionText(c.prediction, result, options), dir: 0 })),
    },
    { name: 'distance', now: '0', cells: cfs.map((c) => ({ text: fmt(c.distance), dir: 0 })) },
    { name: 'features changed', now: '0', cells: cfs.map((c) => ({ text: String(c.sparsity), dir: 0 })) },
    { name: 'plausibility', now: '', cells: cfs.map((c) => ({ text: fmt(c.plausibility), dir: 0 })) },
  ];
  const all = [...rows, ...footer];
  const headers = ['now', ...cfs.map((_, i) => `option ${i + 1}`)];
  const labelW = Math.min(Math.max(...all.map((r) => textWidth(r.name, size))), theme.maxLabelWidth);
  const colW = headers.map((h, c) =>
    Math.max(64, textWidth(h, size, true) + 16, ...all.map((r) => textWidth(c === 0 ? r.now : (r.cells[c - 1]?.text ?? ''), size) + 16)),
  );
  const rowH = theme.rowHeight;
  const top = m.top + 24 + rowH;
  const left = m.left + labelW + 12;
  const width = Math.max(width0, left + colW.reduce((a, b) => a + b, 0) + m.right);
  const height = top + (rows.length + footer.length) * rowH + 10 + m.top;

  const svg = createSvg(docOf(options), { width, height, title, desc: describe(result, rows, title) });
  const g = svg.append('g');
  label(g, m.left, m.top + 6, truncate(title, width - m.left - m.right, theme.titleFontSize, true), {
    bold: true,
    size: theme.titleFontSize,
  });
  const colX = colW.map((_, c) => left + colW.slice(0, c).reduce((a, b) => a + b, 0));

  const [head, headStyle] = textGroup(g, { bold: true, anchor: 'middle' }, 'header');
  headers.forEach((h, c) => label(head, colX[c] + colW[c] / 2, top - rowH / 2, h, {}, headStyle));
  g.append('path')
    .attr('d', `M${m.left},${top}H${width - m.right}`)
    .attr('stroke', theme.rule)
    .attr('fill', 'none');

  const drawRow = (r: Row, i: number, y: number, muted: boolean) => {
    const rg = g
      .append('g')
      .attr('class', muted ? 'summary' : 'feature')
      .attr('data-feature', r.name);
    if (!muted && i % 2 === 1)
      rg.append('rect')
        .attr('x', m.left)
        .attr('y', y)
        .attr('width', width - m.left - m.right)
        .attr('height', rowH)
        .attr('fill', '#F7F7F7');
    const full = r.name;
    const shown = truncate(full, labelW, size);
    const t = label(rg, m.left + labelW, y + rowH / 2, shown, { anchor: 'end', fill: muted ? theme.mutedText : theme.text });
    if (shown !== full) t.append('title').text(full);
    label(rg, colX[0] + colW[0] / 2, y + rowH / 2, r.now, { anchor: 'middle', fill: theme.mutedText });
    r.cells.forEach((cell, q) => {
      const cx = colX[q + 1] + colW[q + 1] / 2;
      if (!cell) {
        label(rg, cx, y + rowH / 2, '·', { anchor: 'middle', fill: theme.neutral });
        return;
      }
      if (!muted) {
        const fill = cell.dir > 0 ? theme.positiveLight : cell.dir < 0 ? theme.negativeLight : theme.neutralLight;
        rg.append('rect')
          .attr('x', colX[q + 1] + 4)
          .attr('y', y + 3)
          .attr('width', colW[q + 1] - 8)
          .attr('height', rowH - 6)
          .attr('rx', 3)
          .attr('fill', fill)
          .attr('fill-opacity', 0.45);
      }
      const fill = muted ? theme.mutedText : cell.dir > 0 ? theme.positiveText : cell.dir < 0 ? theme.negativeText : theme.text;
      label(rg, cx, y + rowH / 2, cell.text, { anchor: 'middle', fill, bold: !muted });
    });
  };
  rows.forEach((r, i) => drawRow(r, i, top + i * rowH, false));
  const ft = top + rows.length * rowH + 6;
  g.append('path')
    .attr('d', `M${m.left},${ft - 3}H${width - m.right}`)
    .attr('stroke', theme.grid)
    .attr('fill', 'none');
  footer.forEach((r, i) => drawRow(r, i, ft + i * rowH, true));
  return serializeSvg(svg);
}

function describe(r: InstanceCounterfactuals, rows: Row[], title: string): string {
  const parts = [title];
  r.counterfactuals.forEach((c, i) => {
    const changes = rows.flatMap((row) => (row.cells[i] ? [`${row.name} ${row.now} ${row.cells[i]!.text}`] : []));
    parts.push(`option ${i + 1} (distance ${fmt(c.distance)}): ${changes.join(', ')}`);
  });
  return parts.join('; ') + '.';
}

export interface RecourseChartOptions extends RenderOptions {
  title?: string;
}

/** Mean and median cost of the cheapest counterfactual per group, with bootstrap intervals. */
export function renderRecourseBurden(burden: RecourseBurden, options: RecourseChartOptions = {}): string {
  const groups = burden.groups
    .filter((g) => g.withRecourse > 0)
    .map((g) => ({
      group: `${g.label} (${g.unfavourable} unfavourable)`,
      values: [
        { label: 'mean cost', value: g.meanCost.value as number, ...interval(g.meanCost) },
        { label: 'median cost', value: g.medianCost.value as number, ...interval(g.medianCost) },
      ],
    }));
  return renderGroupComparison(groups, {
    document: options.document,
    width: options.width,
    valueLabel: 'Cost of the cheapest counterfactual (MAD units)',
    title: options.title ?? `Recourse burden by ${burden.feature}: how far rows with the unfavourable outcome must move`,
  });
}

function interval(e: { lo: number | null; hi: number | null }): { lo?: number; hi?: number } {
  return e.lo !== null && e.hi !== null ? { lo: e.lo, hi: e.hi } : {};
}

function est(e: { value: number | null; lo: number | null; hi: number | null }): string | null {
  if (e.value === null) return null;
  return e.lo !== null && e.hi !== null ? `${fmt(e.value)} [${fmt(e.lo)}, ${fmt(e.hi)}]` : fmt(e.value);
}

/** The report section for the fairness part of the model report: the chart and every number in a table. */
export function recourseSections(burden: RecourseBurden, options: RecourseChartOptions = {}): Section[] {
  const conf = `${Math.round(burden.bootstrap.confidence * 100)}%`;
  const rows: Cell[][] = burden.groups.map((g) => [
    g.label,
    g.rows,
    g.unfavourable,
    g.withRecourse,
    est(g.meanCost),
    est(g.medianCost),
    est(g.noRecourseRate),
    g.meanSparsity,
  ]);
  const incomplete = burden.incomplete.deadline + burden.incomplete.budget;
  return [
    {
      heading: `Recourse burden by ${burden.feature}`,
      text:
        'For every row the model gives the unfavourable outcome, the distance (sum of |change| / MAD over numeric features, plus 1 per changed category) ' +
        `of the cheapest valid counterfactual, with ${burden.feature} held fixed. A group that must change more to reach the favourable outcome is treated worse ` +
        `even at equal selection rates. Highest minus lowest group mean: ${est(burden.meanCostDifference) ?? '–'}; ratio ${est(burden.meanCostRatio) ?? '–'} ` +
        `(${conf} intervals from ${burden.bootstrap.n} bootstrap replicates, seed ${burden.bootstrap.seed}).` +
        (incomplete ? ` ${incomplete} row(s) stopped at the deadline or the budget: their costs may be overestimated.` : ''),
      svg: renderRecourseBurden(burden, options),
      table: {
        caption: `Per group, with ${conf} bootstrap intervals`,
        columns: [
          'group',
          'rows',
          'unfavourable',
          'with recourse',
          'mean cost',
          'median cost',
          'no-recourse rate',
          'mean features changed',
        ],
        rows,
      },
    },
  ];
}

/** Report sections: one before/after chart per instance, with its status and every counterfactual's figures. */
export function counterfactualSections(results: InstanceCounterfactuals[], options: CounterfactualChartOptions): Section[] {
  return results.map((r, i) => ({
    heading: `Instance ${i}`,
    text:
      (r.status === 'already-desired'
        ? 'The instance already has the desired outcome.'
        : r.found
          ? `${r.counterfactuals.filter((c) => c.valid).length} valid counterfactual(s), cheapest first.`
          : 'No valid counterfactual was found within the budget and the constraints.') +
      ` Search ${r.stopReason === 'complete' ? 'complete' : `stopped at the ${r.stopReason}`}; ${r.modelEvaluations.toLocaleString('en-US')} model evaluations.`,
    svg: renderCounterfactuals(r, options),
    ...(r.counterfactuals.length
      ? {
          table: {
            columns: ['option', 'valid', 'distance', 'features changed', 'plausibility', 'changes'],
            rows: r.counterfactuals.map((c, q): Cell[] => [
              q + 1,
              c.valid,
              c.distance,
              c.sparsity,
              c.plausibility,
              c.changes.map((ch) => `${ch.feature}: ${ch.fromLabel ?? fmtValue(ch.from)} → ${ch.toLabel ?? fmtValue(ch.to)}`).join('; '),
            ]),
          },
        }
      : {}),
  }));
}
