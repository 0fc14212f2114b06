/**
 * One-hot groups as one attribution each. A group of one-hot columns (metadata `group`) is one
 * categorical variable: Kernel SHAP plays it as one player and only its value is estimated (the
 * per-column values are that value split equally, a display convention); Integrated Gradients'
 * per-column values are meaningful and add up to the group's. Either way the group's attribution is
 * the sum of its members', and that is what a reader should see: `housing = mortgage: -0.12`, not
 * `housing_rent = 0: -0.04` for an applicant with a mortgage.
 *
 * Each explained output gets `groups`: per group its members (in column order), the active category
 * (the member whose value is 1, named by its metadata category label, else by its column name
 * without the "<group>_" prefix; null when no member is 1), the attribution, and a standard error
 * when every member has one (Kernel SHAP: the members' stderrs are the group's split equally, so they
 * add up to the group's own).
 */
import type { Explanation, FeatureAttribution, GroupAttribution, OutputExplanation } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';

export interface GroupInfo {
  name: string;
  /** Member columns, in column order. */
  columns: number[];
  /** Per member: the category it stands for. */
  categories: string[];
}

const infos = new WeakMap<object, GroupInfo[]>();

/** The model's one-hot groups with the category name of each member (cached per served model). */
export function groupInfo(m: Pick<ServedModel, 'space' | 'metadata'>): GroupInfo[] {
  let g = infos.get(m);
  if (!g) {
    const features = m.metadata?.features;
    const byName = new Map<string, number[]>();
    features?.forEach((f, i) => {
      if (f.group !== undefined) byName.set(f.group, [...(byName.get(f.group) ?? []), i]);
    });
    g = [...byName]
      .filter(([, columns]) => columns.length > 1)
      .map(([name, columns]) => ({
        name,
        columns,
        categories: columns.map((c) => categoryOf(name, m.space.featureNames[c], features?.[c]?.categories)),
      }));
    infos.set(m, g);
  }
  return g;
}

function categoryOf(group: string, column: string, categories?: { value: number; label: string }[]): string {
  const label = categories?.find((k) => k.value === 1)?.label;
  if (label) return label;
  const prefix = `${group}_`;
  return column.startsWith(prefix) && column.length > prefix.length ? column.slice(prefix.length) : column;
}

/** The group attributions of one explained output. */
export function groupAttributions(attributions: FeatureAttribution[], groups: GroupInfo[]): GroupAttribution[] {
  return groups.map((g) => {
    const members = g.columns.map((c) => attributions[c]);
    const activeAt = members.findIndex((a) => a.value === 1);
    const withErr = members.every((a) => a.stderr !== undefined && Number.isFinite(a.stderr));
    return {
      group: g.name,
      members: members.map((a) => a.feature),
      active: activeAt >= 0 ? g.categories[activeAt] : null,
      activeFeature: activeAt >= 0 ? members[activeAt].feature : null,
      attribution: members.reduce((s, a) => s + a.attribution, 0),
      ...(withErr ? { stderr: members.reduce((s, a) => s + a.stderr!, 0) } : {}),
    };
  });
}

/** Adds `groups` to every explained output of a tabular model with one-hot groups (in place). */
export function withGroupAttributions(e: Explanation, m: Pick<ServedModel, 'space' | 'metadata' | 'inputShape'>): Explanation {
  if (m.inputShape.length > 1) return e;
  const groups = groupInfo(m);
  if (groups.length === 0) return e;
  const d = m.space.featureNames.length;
  for (const inst of e.explanations) {
    for (const out of inst.outputs as OutputExplanation[]) {
      if (out.attributions.length === d) out.groups = groupAttributions(out.attributions, groups);
    }
  }
  return e;
}
