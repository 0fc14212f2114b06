/**
 * Models and versions without a restart: rescans MODEL_DIR every `intervalMs` (and whenever `scan()`
 * is called, e.g. on a nudge from another replica), loads new or changed folders in the background,
 * and swaps the registry's `models`, `versions` and `errors` in one synchronous step once they have
 * loaded, so a request sees either the old set or the new one.
 *
 * - A new model folder, or a new `<model>/versions/<label>/`, is served once it loads; the highest
 *   label becomes the default (unpinned requests).
 * - A folder that fails to load is reported in `errors` and never replaces a good version: the
 *   versions that served before keep serving.
 * - A version that leaves (its folder removed, or a folder without versions/ changed in place) is
 *   `draining` for `drainMs`: pinned requests and permalinks still reach it, unpinned ones get the
 *   default. Then it is retired (its links answer 410) and its tensors are freed a grace period later.
 *
 * Every replica polling the same MODEL_DIR converges on the same set: versions are content hashes
 * and the default is chosen by label.
 */
import type { TfjsModelOptions } from './tfjsModel.js';
import { scanRepository, type FolderState, type LoadedModel, type ModelRepository } from './repository.js';
import type { LoadError, ServedVersion } from './served.js';

export interface WatcherOptions {
  /** Between scans; 0: only when scan() is called. */
  intervalMs: number;
  /** How long a version that left is still served to pinned requests and permalinks. */
  drainMs: number;
  /** After retirement, how long before the version's tensors are freed (requests still running on it finish). */
  disposeGraceMs?: number;
  model?: TfjsModelOptions;
  logger?: { info(o: object, msg: string): void; warn(o: object, msg: string): void; error(o: object, msg: string): void };
  /** Called after a scan that changed what is served (e.g. to nudge the other replicas). */
  onChange?(change: WatchChange): void;
}

export interface WatchChange {
  added: { name: string; version: string; label?: string }[];
  draining: { name: string; version: string; label?: string }[];
  retired: { name: string; version: string; label?: string }[];
  defaults: { name: string; version: string }[];
}

/** Retired versions remembered per model (so their links answer 410 rather than 404). */
const RETIRED_REMEMBERED = 1000;

export class ModelWatcher {
  private state = new Map<string, FolderState>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<WatchChange> | undefined;
  private again = false;
  /** Scans done, and when the last one ended. */
  scans = 0;
  lastScanAt = 0;

  /** Watches `dir` into `registry` (start with an empty one: the first scan loads everything). */
  constructor(
    readonly dir: string,
    readonly registry: ModelRepository,
    readonly o: WatcherOptions,
  ) {}

  /** A registry loaded from `dir` by a first scan, and its watcher (not yet polling: call start()). */
  static async load(dir: string, o: WatcherOptions): Promise<ModelWatcher> {
    const w = new ModelWatcher(dir, { models: new Map(), errors: [], versions: new Map(), retired: new Map() }, o);
    await w.scan();
    return w;
  }

  start(): void {
    if (this.timer || this.o.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.scan().catch(() => undefined), this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One scan (a scan asked for while one runs is run once more after it). */
  scan(): Promise<WatchChange> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = (async () => {
      try {
        let change = await this.scanOnce();
        while (this.again) {
          this.again = false;
          const next = await this.scanOnce();
          change = merge(change, next);
        }
        return change;
      } finally {
        this.running = undefined;
      }
    })();
    this.running = run;
    return run;
  }

  private async scanOnce(): Promise<WatchChange> {
    let scan;
    try {
      scan = await scanRepository(this.dir, this.state, this.o.model);
    } catch (e) {
      this.o.logger?.error({ modelDir: this.dir, err: e instanceof Error ? e.message : String(e) }, 'model repository scan failed');
      throw e;
    }
    this.state = scan.state;
    const now = Date.now();
    const registry = this.registry;
    const change: WatchChange = { added: [], draining: [], retired: [], defaults: [] };
    const models = new Map<string, LoadedModel>();
    const versions = new Map<string, ServedVersion<LoadedModel>[]>();
    const retired = new Map(registry.retired ?? []);
    const names = new Set([...scan.found.keys(), ...(registry.versions?.keys() ?? []), ...registry.models.keys()]);
    for (const name of names) {
      const current = registry.versions?.get(name) ?? [];
      const good = scan.found.get(name) ?? [];
      const serving: ServedVersion<LoadedModel>[] = [];
      for (const g of good) {
        if (serving.some((v) => v.version === g.model.version)) continue; // two labels with the same files
        const known = current.find((v) => v.version === g.model.version);
        if (known && known.model !== g.model) dispose(g.model, 0); // a touched folder loaded again: keep the one in use
        serving.push({
          version: g.model.version,
          ...(g.label !== undefined ? { label: g.label } : {}),
          model: known?.model ?? g.model,
          state: 'serving',
          loadedAt: known?.loadedAt ?? now,
        });
        if (!known || known.state === 'draining') change.added.push({ name, version: g.model.version, ...(g.label !== undefined ? { label: g.label } : {}) });
      }
      // A folder that now fails keeps its good versions serving (a broken copy never replaces them).
      const keepServing = scan.failing.has(name);
      const draining: ServedVersion<LoadedModel>[] = [];
      for (const c of current) {
        if (serving.some((v) => v.version === c.version)) continue;
        if (keepServing && c.state === 'serving' && !good.length) {
          serving.push(c);
          continue;
        }
        const retiresAt = c.retiresAt ?? now + this.o.drainMs;
        const ref = { name, version: c.version, ...(c.label !== undefined ? { label: c.label } : {}) };
        if (retiresAt <= now) {
          change.retired.push(ref);
          const set = new Set(retired.get(name) ?? []);
          set.add(c.version);
          while (set.size > RETIRED_REMEMBERED) set.delete(set.values().next().value!);
          retired.set(name, set);
          dispose(c.model, this.o.disposeGraceMs ?? 120_000);
          continue;
        }
        if (c.state === 'serving') change.draining.push(ref);
        draining.push({ ...c, state: 'draining', retiresAt });
      }
      const list = [...serving, ...draining];
      if (serving.length) {
        models.set(name, serving[0].model);
        if (registry.models.get(name)?.version !== serving[0].version) change.defaults.push({ name, version: serving[0].version });
      }
      if (list.length) versions.set(name, list);
      // A version that comes back is served again, no longer retired.
      for (const v of serving) retired.get(name)?.delete(v.version);
    }
    const errors: LoadError[] = scan.errors;
    // The swap: one synchronous step, so a request sees the old set or the new one.
    registry.models = models;
    registry.versions = versions;
    registry.retired = retired;
    registry.errors = errors;
    this.scans++;
    this.lastScanAt = Date.now();
    if (change.added.length || change.draining.length || change.retired.length || change.defaults.length) {
      for (const a of change.added) this.o.logger?.info(a, `model "${a.name}" version ${a.label ?? a.version} loaded`);
      for (const d of change.draining) this.o.logger?.info(d, `model "${d.name}" version ${d.label ?? d.version} draining for ${Math.round(this.o.drainMs / 1000)} s`);
      for (const r of change.retired) this.o.logger?.info(r, `model "${r.name}" version ${r.label ?? r.version} retired`);
      this.o.onChange?.(change);
    }
    return change;
  }
}

function dispose(m: LoadedModel, afterMs: number): void {
  const t = setTimeout(() => m.model.dispose(), afterMs);
  t.unref();
}

function merge(a: WatchChange, b: WatchChange): WatchChange {
  return {
    added: [...a.added, ...b.added],
    draining: [...a.draining, ...b.draining],
    retired: [...a.retired, ...b.retired],
    defaults: [...a.defaults, ...b.defaults],
  };
}
