/**
 * `npm start`: read the config, pick the tfjs backend, load the model repository (and keep watching
 * it for new models and versions), listen.
 */
import http from 'node:http';
import { pino } from 'pino';
import { selectBackend } from '../models/backend.js';
import { describeKernels } from '../models/fusedKernel.js';
import { ModelWatcher } from '../models/watcher.js';
import { createApp } from './app.js';
import { collectWhenIdle } from './idleGc.js';
import { loadConfig } from './config.js';
import { createJobRunner } from '../jobs/runner.js';
import { inlineExecutor, poolExecutor } from '../service/executor.js';

const config = loadConfig();
const logger = pino({ level: config.logLevel });

const backend = await selectBackend(config.backend);
logger.info({ backend }, `tfjs backend: ${backend}`);
logger.info(describeKernels());

const watcher = await ModelWatcher.load(config.modelDir, {
  intervalMs: config.modelPollSeconds * 1000,
  drainMs: config.modelDrainSeconds * 1000,
  // Requests still running on a retired version finish before its tensors go.
  disposeGraceMs: config.maxDeadlineMs + 10_000,
  logger,
});
const repo = watcher.registry;
for (const e of repo.errors)
  logger.error({ model: e.name, version: e.version }, `model "${e.name}"${e.version ? ` version ${e.version}` : ''} not served: ${e.message}`);
logger.info({ modelDir: config.modelDir, models: [...repo.models.keys()] }, `serving ${repo.models.size} model(s)`);
logger.info({ dataDir: config.dataDir }, `explanation records in ${config.dataDir}`);

const executor =
  config.workers > 0
    ? poolExecutor({
        modelDir: config.modelDir,
        backend,
        threads: config.workers,
        maxQueue: config.maxQueue,
        preload: true,
        recycleMb: config.workerRecycleMb,
        nice: config.workerNice,
        busyMessage: `all ${config.workers} explanation workers are busy and ${config.maxQueue} requests are queued; retry shortly`,
      })
    : undefined;
logger.info(
  executor
    ? `explanations run on ${config.workers} worker thread(s), queue of ${config.maxQueue}`
    : 'explanations run on the main thread (WORKERS=0)',
);
if (!config.apiKeys) logger.warn('API_KEYS is not set: every client can use every model; set API_KEYS to require keys');
const jobRunner = await createJobRunner({ executor: executor ?? inlineExecutor(repo), logger });
await jobRunner.start(); // resumes unfinished local jobs; connects to Redis when REDIS_URL is set
const app = createApp({ registry: repo, config, backend, logger, executor, jobRunner });
const shared = app.context.svc.shared;
if (shared) {
  // A replica that sees a change tells the others, which rescan at once instead of at their next poll.
  const channel = shared.key('models');
  watcher.o.onChange = () => void shared.publish(channel, shared.id);
  shared.subscribe(channel, (from) => {
    if (from !== shared.id) watcher.scan().catch(() => undefined);
  });
  logger.info(`shared cache, single flight, records and live windows on Redis (prefix ${config.redisPrefix})`);
}
watcher.start();
if (config.modelPollSeconds > 0) logger.info(`watching ${config.modelDir} for new models and versions every ${config.modelPollSeconds} s`);
// Slow or truncated requests are cut off: the headers within HEADERS_TIMEOUT_MS, the whole request
// (body included) within REQUEST_TIMEOUT_MS (Node answers 408 and closes the connection), checked
// every second.
const server = http.createServer(
  {
    headersTimeout: Math.min(config.headersTimeoutMs, config.requestTimeoutMs || Infinity),
    requestTimeout: config.requestTimeoutMs,
    connectionsCheckingInterval: 1000,
  },
  app,
);
server.listen(config.port, () => {
  logger.info({ port: config.port }, `listening on http://localhost:${config.port}`);
});
// A heap grown under load is collected once the server is idle again (memory back to the OS).
collectWhenIdle(server);

let stopping = false;
function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping: no new connections, finishing in-flight requests');
  server.close(async () => {
    await jobRunner.stop(); // running jobs stop at a chunk boundary and resume on the next start
    watcher.stop();
    await executor?.close();
    await app.context.svc.close();
    logger.info('stopped');
    process.exit(0);
  });
  server.closeIdleConnections();
  // In-flight work gets a bounded grace period.
  setTimeout(() => process.exit(1), Math.max(config.defaultDeadlineMs, 5000) + 5000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
