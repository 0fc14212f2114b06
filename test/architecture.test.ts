/**
 * The layout holds: every import of every .ts file points down the table in docs/architecture.md,
 * never up, and no module reaches itself through its imports (type-only imports count: they are
 * where cycles start). Imports are read with oxc-parser, a real TypeScript parser;
 * dependency-cruiser and madge parse TypeScript through the `typescript` package's JS API, which
 * TypeScript 7 (native) does not have. Also here: every error code the source throws is in the
 * catalogue, DATA_DIR defaults outside the repository, and @types/jsdom fits jsdom.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSync } from 'oxc-parser';
import { loadServiceConfig } from '../service/config.js';
import { ERROR_STATUS } from '../service/errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Layer -> the layers its files may import (its own always). `types:` = type-only imports of that layer. */
const ALLOWED: Record<string, string[]> = {
  stats: [],
  explainers: ['stats'],
  monitoring: ['explainers', 'stats'],
  models: ['file:explainers/types.ts'],
  render: ['stats', 'types:explainers', 'types:monitoring'],
  service: ['explainers', 'monitoring', 'models', 'render', 'stats'],
  jobs: ['service', 'render', 'models', 'explainers', 'monitoring', 'stats'],
  server: ['service', 'render', 'jobs', 'models', 'explainers', 'monitoring', 'stats'],
  cli: ['jobs', 'service', 'models', 'explainers', 'monitoring', 'stats'],
};
const FREE = new Set(['samples', 'bench', 'test']);

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const d of [...Object.keys(ALLOWED), ...FREE]) walk(d);
  return out.sort();
}

function imports(file: string): Edge[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const { module: mod, errors } = parseSync(file, text);
  assert.equal(errors.length, 0, `${file} does not parse: ${errors.map((e) => e.message).join('; ')}`);
  const specs: { spec: string; typeOnly: boolean }[] = [
    ...mod.staticImports.map((i) => ({ spec: i.moduleRequest.value, typeOnly: i.entries.length > 0 && i.entries.every((e) => e.isType) })),
    ...mod.staticExports.flatMap((e) =>
      e.entries.filter((x) => x.moduleRequest).map((x) => ({ spec: x.moduleRequest!.value, typeOnly: x.isType })),
    ),
    ...mod.dynamicImports.map((d) => ({ spec: text.slice(d.moduleRequest.start + 1, d.moduleRequest.end - 1), typeOnly: false })),
  ];
  return specs
    .filter((s) => s.spec.startsWith('.'))
    .map((s) => ({
      from: file,
      to: path.posix.normalize(path.posix.join(path.posix.dirname(file), s.spec)).replace(/\.js$/, '.ts'),
      typeOnly: s.typeOnly,
    }));
}

const layerOf = (file: string) => file.split('/')[0];

function upwardImports(list: Edge[]): string[] {
  const wrong: string[] = [];
  for (const e of list) {
    const from = layerOf(e.from);
    const to = layerOf(e.to);
    if (FREE.has(from) || from === to) continue;
    const allowed = ALLOWED[from] ?? [];
    const ok = allowed.includes(to) || allowed.includes(`file:${e.to}`) || (e.typeOnly && allowed.includes(`types:${to}`));
    if (!ok) wrong.push(`${e.from} -> ${e.to}${e.typeOnly ? ' (type)' : ''}`);
  }
  return wrong;
}

/** Tarjan's strongly connected components: every component of more than one file, and self-imports. */
function cyclesOf(list: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of list) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const nodes = [...new Set(list.flatMap((e) => [e.from, e.to]))];
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) cycles.push(scc.sort());
    }
  };
  for (const f of nodes) if (!index.has(f)) visit(f);
  return [...cycles, ...list.filter((e) => e.from === e.to).map((e) => [e.from])];
}

const files = sourceFiles();
const edges = files.flatMap(imports);

describe('architecture', () => {
  it('reads every source file and finds its imports', () => {
    assert.ok(files.length > 100, `${files.length} files`);
    assert.ok(edges.length > 300, `${edges.length} imports`);
    for (const e of edges)
      assert.ok(files.includes(e.to) || e.to.startsWith('node_modules'), `${e.from} imports ${e.to}, which does not exist`);
  });

  it('no import points up the layers', () => {
    const wrong = upwardImports(edges);
    assert.deepEqual(wrong, [], `imports against the layering:\n${wrong.join('\n')}`);
  });

  it('no import cycles, type-only imports included', () => {
    const cycles = cyclesOf(edges);
    assert.deepEqual(cycles, [], `import cycles:\n${cycles.map((c) => c.join(' <-> ')).join('\n')}`);
  });

  it('the checks catch a planted upward import, a type import into models, and a cycle', () => {
    const planted: Edge[] = [
      { from: 'models/tfjsModel.ts', to: 'service/errors.ts', typeOnly: false },
      { from: 'models/served.ts', to: 'explainers/kernelShap.ts', typeOnly: true },
      { from: 'render/bar.ts', to: 'explainers/kernelShap.ts', typeOnly: false },
      { from: 'render/bar.ts', to: 'explainers/types.ts', typeOnly: true },
      { from: 'jobs/engine.ts', to: 'server/app.ts', typeOnly: true },
    ];
    assert.deepEqual(upwardImports(planted), [
      'models/tfjsModel.ts -> service/errors.ts',
      'models/served.ts -> explainers/kernelShap.ts (type)',
      'render/bar.ts -> explainers/kernelShap.ts',
      'jobs/engine.ts -> server/app.ts (type)',
    ]);
    const loop: Edge[] = [
      { from: 'a.ts', to: 'b.ts', typeOnly: true },
      { from: 'b.ts', to: 'c.ts', typeOnly: false },
      { from: 'c.ts', to: 'a.ts', typeOnly: false },
      { from: 'c.ts', to: 'd.ts', typeOnly: false },
    ];
    assert.deepEqual(cyclesOf(loop), [['a.ts', 'b.ts', 'c.ts']]);
  });

  it('every error code thrown in the source is in the catalogue', () => {
    const found = new Map<string, string>();
    const visit = (node: unknown, file: string) => {
      if (!node || typeof node !== 'object') return;
      if (Array.isArray(node)) {
        for (const n of node) visit(n, file);
        return;
      }
      const n = node as {
        type?: string;
        callee?: { type: string; name?: string };
        arguments?: unknown[];
        key?: { name?: string };
        value?: unknown;
      };
      const literal = (a: unknown) => {
        const l = a as { type?: string; value?: unknown };
        return (l?.type === 'Literal' || l?.type === 'StringLiteral') && typeof l.value === 'string' && /^[A-Z][A-Z_]{2,}$/.test(l.value)
          ? l.value
          : undefined;
      };
      if ((n.type === 'NewExpression' || n.type === 'CallExpression') && n.callee?.type === 'Identifier') {
        const name = n.callee.name ?? '';
        if (/Error$/.test(name) || name === 'fail' || name === 'checkRows') {
          for (const a of n.arguments ?? []) {
            const code = literal(a);
            if (code) found.set(code, file);
          }
        }
      }
      if (n.type === 'Property' && n.key?.name === 'code') {
        const code = literal(n.value);
        if (code) found.set(code, file);
      }
      for (const v of Object.values(n)) if (v && typeof v === 'object') visit(v, file);
    };
    for (const file of files.filter((f) => !FREE.has(layerOf(f)))) {
      visit(parseSync(file, readFileSync(path.join(ROOT, file), 'utf8')).program, file);
    }
    assert.ok(found.size >= 20, `found ${found.size} codes`);
    const missing = [...found].filter(([code]) => !Object.hasOwn(ERROR_STATUS, code)).map(([c, f]) => `${c} (${f})`);
    assert.deepEqual(missing, [], 'codes thrown but not in service/errors.ts');
  });

  it('DATA_DIR defaults outside the repository', () => {
    for (const env of [{}, { HOME: '/home/someone' }, { XDG_STATE_HOME: '/var/lib/x' }]) {
      const dir = loadServiceConfig(env).dataDir;
      assert.ok(!path.resolve(dir).startsWith(ROOT + path.sep), `${dir} is inside the repository`);
    }
  });

  it('@types/jsdom is for jsdom at most at its major (DefinitelyTyped has no 29: 28 is the newest below)', () => {
    const major = (v: string) => Number(/(\d+)\./.exec(v)![1]);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const jsdom = major(JSON.parse(readFileSync(path.join(ROOT, 'node_modules/jsdom/package.json'), 'utf8')).version);
    const types = major(JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@types/jsdom/package.json'), 'utf8')).version);
    assert.ok(types <= jsdom && types >= jsdom - 1, `@types/jsdom ${types} for jsdom ${jsdom}`);
    assert.match(pkg.devDependencies['@types/jsdom'], /^\^28\./);
  });
});
