import { serve } from '@hono/node-server';
import { createServer, type AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { loadConfigFromProcess } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { databaseLabel, explainDatabaseError } from './db/explain.js';
import { openDeps } from './deps.js';
import { newLocalAdminToken, readInstanceLock, removeInstanceLock, writeInstanceLock } from './keys/instance-lock.js';
import { createLogger } from './telemetry/logger.js';
import { createStartConsole, listenErrorLine, localUrl, startBanner } from './telemetry/start-console.js';

/** A start that cannot go on: one line on stderr (what failed, what to do), exit 1. */
function stop(line: string): never {
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

/**
 * Whether the address can be listened on, tried before the database opens (migrations may take
 * seconds): a port in use is reported at once. The real listen reports it too (a race is possible).
 */
function tryListen(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  if (port === 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
}

async function main() {
  const loaded = loadConfigFromProcess();
  if (!loaded.ok) {
    for (const line of loaded.errors) process.stderr.write(`config error: ${line}\n`);
    process.exit(1);
  }
  const config = loaded.config;
  const logger = createLogger(config.logLevel);
  // Progress and the banner for whoever watches the start (stderr); the JSON logs go on as before.
  const human = createStartConsole(config.logLevel);
  const embedded = !config.databaseUrl;
  if (embedded) {
    const holder = readInstanceLock(config.dataDir);
    if (holder) stop(`another gateway (pid ${holder.pid}, ${holder.url}) already uses ${config.dataDir}; stop it or set DATA_DIR`);
  }
  const listenError = await tryListen(config.host, config.port);
  const listenLine = listenError && listenErrorLine(listenError, config);
  if (listenLine) stop(listenLine);
  const localAdminToken = embedded ? newLocalAdminToken() : undefined;

  const opened = performance.now();
  human.say(`opening the database: ${databaseLabel(config)} ...`);
  let database: Database;
  try {
    database = await openDatabase(config.databaseUrl ? { url: config.databaseUrl } : { dataDir: config.dataDir }, {
      statementTimeoutMs: config.databaseStatementTimeoutMs,
      connectTimeoutMs: config.databaseConnectTimeoutMs,
      onMigrate: (status) => {
        const pending = status.migrations.filter((m) => !m.applied);
        if (pending.length) human.say(`applying ${pending.length} database migration(s): ${pending.map((m) => m.tag).join(', ')} ...`);
      },
    });
  } catch (err) {
    stop(`cannot start: ${explainDatabaseError(err, config, { connectTimeoutMs: config.databaseConnectTimeoutMs })}`);
  }
  human.say(`database ready in ${((performance.now() - opened) / 1000).toFixed(1)} s`);
  if (config.redisUrl) human.say('connecting to Redis ...');
  const deps = await openDeps(config, { logger, localAdminToken, database });
  const closeAll = async () => {
    await deps.close();
    await database.close();
  };
  let draining = false;
  const app = createApp(deps, { draining: () => draining });

  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info: AddressInfo) => {
    const url = localUrl(info);
    if (embedded) writeInstanceLock(config.dataDir, { pid: process.pid, url, token: localAdminToken! });
    logger.info(
      { port: info.port, host: info.address, database: deps.database.kind, upstream_configured: !!config.openrouterApiKey },
      'gateway listening',
    );
    if (!config.openrouterApiKey) logger.warn('OPENROUTER_API_KEY is unset: proxied requests answer 503 upstream_not_configured');
    for (const line of startBanner(config, { ...info, redisReady: deps.redis?.isReady(), vectors: database.vectors, pid: process.pid }))
      human.say(line);
  });
  // A port in use (or not ours to open): one line, the database closed, exit 1. Errors after the
  // listener is up are the server's own business.
  server.once('error', (err: NodeJS.ErrnoException) => {
    const line = listenErrorLine(err, config) ?? `cannot listen on ${config.host}:${config.port}: ${err.message}`;
    process.stderr.write(`${line}\n`);
    setTimeout(() => process.exit(1), 5_000).unref();
    void closeAll().finally(() => process.exit(1));
  });
  // The upstream may legitimately take minutes; the gateway's own timeouts govern instead.
  server.setTimeout?.(0);
  (server as any).requestTimeout = 0;
  (server as any).keepAliveTimeout = 65_000;

  // Warm the model catalog without holding up the start.
  if (config.openrouterApiKey) deps.catalog.get().catch((err) => logger.warn({ err: err.message }, 'model catalog not loaded yet'));

  let stopping = false;
  /**
   * SIGTERM: readiness turns 503 and the listener closes (no new connections); open streams get
   * SHUTDOWN_GRACE_MS to finish, then each is ended with an error event and recorded as aborted;
   * the usage writer flushes (or spills to DATA_DIR); exit 0.
   */
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    draining = true;
    logger.info({ signal, open_streams: deps.streams.size }, 'shutting down');
    const force = setTimeout(() => process.exit(1), config.shutdownGraceMs + 20_000);
    force.unref();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const finished = await deps.streams.waitIdle(config.shutdownGraceMs);
    if (!finished) {
      logger.warn({ open_streams: deps.streams.size }, 'grace period over: ending open streams');
      deps.streams.terminateAll('The gateway is shutting down; retry the request.');
    }
    // Let the last bytes and outcomes go out, then drop whatever connections remain.
    await new Promise((r) => setTimeout(r, 100));
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    await closed;
    await closeAll();
    if (embedded) removeInstanceLock(config.dataDir);
    logger.info(deps.usage.stats(), 'stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`fatal: ${err?.stack ?? err}\n`);
  process.exit(1);
});
