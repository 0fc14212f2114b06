/**
 * Memory back after load: V8 shrinks its heap after a full collection, and starts one from
 * allocation; an idle server allocates almost nothing, so a heap grown under load (requests held in
 * queues live long enough to be promoted) stays grown, and so does the resident memory. Once no
 * request (health checks and metric scrapes aside) has been in flight for `idleMs`, and the heap has grown by more than `slackMb` since the
 * server became ready, this runs one full collection (V8's gc, exposed in a fresh context), then
 * waits for the next busy period.
 */
import type { Server } from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';

const OPERATIONS = /^\/(healthz|readyz|metrics)(\?|$)/;

export function collectWhenIdle(server: Server, opts: { idleMs?: number; slackMb?: number } = {}): () => void {
  const idleMs = opts.idleMs ?? 3000;
  const slack = (opts.slackMb ?? 32) * 2 ** 20;
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const heap = () => v8.getHeapStatistics().total_heap_size;
  let baseline = heap();
  let inFlight = 0;
  let last = Date.now();
  let dirty = false;
  server.on('request', (req, res) => {
    // Probes and scrapes come every few seconds and allocate little: they do not make a server busy.
    if (req.method === 'GET' && OPERATIONS.test(req.url ?? '')) return;
    inFlight++;
    dirty = true;
    res.once('close', () => {
      inFlight--;
      last = Date.now();
    });
  });
  const timer = setInterval(
    () => {
      if (!dirty || inFlight > 0 || Date.now() - last < idleMs) return;
      dirty = false;
      if (heap() > baseline + slack) gc();
      baseline = Math.min(baseline, heap());
    },
    Math.max(250, idleMs / 2),
  );
  timer.unref();
  return () => clearInterval(timer);
}
