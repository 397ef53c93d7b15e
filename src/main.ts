import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { loadConfigFromProcess } from './config.js';
import { openDeps } from './deps.js';
import { newLocalAdminToken, readInstanceLock, removeInstanceLock, writeInstanceLock } from './keys/instance-lock.js';
import { createLogger } from './telemetry/logger.js';

async function main() {
  const loaded = loadConfigFromProcess();
  if (!loaded.ok) {
    for (const line of loaded.errors) process.stderr.write(`config error: ${line}\n`);
    process.exit(1);
  }
  const config = loaded.config;
  const logger = createLogger(config.logLevel);
  const embedded = !config.databaseUrl;
  if (embedded) {
    const holder = readInstanceLock(config.dataDir);
    if (holder) {
      process.stderr.write(`another gateway (pid ${holder.pid}) already uses ${config.dataDir}; stop it or set DATA_DIR\n`);
      process.exit(1);
    }
  }
  const localAdminToken = embedded ? newLocalAdminToken() : undefined;
  const deps = await openDeps(config, { logger, localAdminToken });
  let draining = false;
  const app = createApp(deps, { draining: () => draining });

  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info: AddressInfo) => {
    const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
    const localHost = info.address === '0.0.0.0' || info.address === '::' ? '127.0.0.1' : host;
    if (embedded) writeInstanceLock(config.dataDir, { pid: process.pid, url: `http://${localHost}:${info.port}`, token: localAdminToken! });
    logger.info({ port: info.port, host: info.address, database: deps.database.kind, upstream_configured: !!config.openrouterApiKey }, 'gateway listening');
    if (!config.openrouterApiKey) logger.warn('OPENROUTER_API_KEY is unset: proxied requests answer 503 upstream_not_configured');
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
    await deps.close();
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
