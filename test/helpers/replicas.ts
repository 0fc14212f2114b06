/**
 * API replicas as real processes on localhost ports: `node --import tsx server/main.ts` (or the
 * compiled `node dist/server/main.js`), each with its own PORT and DATA_DIR and whatever shared
 * environment the test gives (REDIS_URL, MODEL_DIR ...). Stopped by their own pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export interface Replica {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  /** stdout and stderr so far (pino JSON lines). */
  log(): string;
  exited: Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s; resolves when it is gone. */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface ReplicaOptions {
  name: string;
  env: NodeJS.ProcessEnv;
  /** Run the compiled output (dist/) instead of the sources under tsx. */
  compiled?: boolean;
  /** Wait this long for /readyz (default 120 s: the machine is shared). */
  readyMs?: number;
}

export async function startReplica(o: ReplicaOptions): Promise<Replica> {
  const port = await freePort();
  const args = o.compiled ? ['dist/server/main.js'] : ['--import', 'tsx', 'server/main.ts'];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, LOG_LEVEL: 'info', ...o.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const replica: Replica = {
    name: o.name,
    port,
    url,
    child,
    log: () => log,
    exited,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  const end = Date.now() + (o.readyMs ?? 120_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`replica ${o.name} exited (${child.exitCode}) before it was ready:\n${log.slice(-3000)}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) return replica;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) {
      await replica.stop();
      throw new Error(`replica ${o.name} not ready within ${o.readyMs ?? 120_000} ms:\n${log.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The value of a Prometheus series (summed over its label sets) in a /metrics text; 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

export async function metricsOf(r: Replica): Promise<string> {
  return (await fetch(`${r.url}/metrics`)).text();
}

export async function postJson(
  r: Replica,
  path: string,
  body: unknown,
): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${r.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

export async function getJson(r: Replica, path: string): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${r.url}${path}`);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
