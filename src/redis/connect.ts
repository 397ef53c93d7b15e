import { createClient } from 'redis';
import type { Logger } from '../telemetry/logger.js';

export interface RedisConnection {
  /** Sends one command; fails fast (never queued offline) and within the command timeout. */
  command(args: string[]): Promise<unknown>;
  /** Namespaced key. */
  key(name: string): string;
  isReady(): boolean;
  ping(): Promise<void>;
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  close(): Promise<void>;
}

/**
 * Redis with bounded waits everywhere: a connect timeout, a per-command timeout, no offline
 * queue (a command while disconnected fails at once instead of waiting), and reconnects with
 * capped backoff in the background. Callers treat a failure as "Redis is away" and fall back.
 */
export async function connectRedis(opts: { url: string; prefix: string; logger: Logger; commandTimeoutMs?: number }): Promise<RedisConnection> {
  const timeout = opts.commandTimeoutMs ?? 250;
  const common = {
    url: opts.url,
    disableOfflineQueue: true,
    commandOptions: { timeout },
    socket: { connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(2_000, 50 * 2 ** Math.min(retries, 6)) },
  };
  const client = createClient(common);
  let lastError = 0;
  client.on('error', (err) => {
    // The client reconnects by itself; say so now and then, not on every retry.
    if (Date.now() - lastError > 10_000) opts.logger.warn({ err: (err as Error).message }, 'redis connection problem');
    lastError = Date.now();
  });
  // Subscriptions may wait for a reconnect: they are re-established by the client itself.
  const subscriber = createClient({ url: opts.url, socket: common.socket });
  subscriber.on('error', () => {});
  await Promise.race([
    Promise.all([client.connect(), subscriber.connect()]),
    new Promise((_, reject) => setTimeout(() => reject(new Error('redis did not answer in time')), 3_000)),
  ]).catch((err) => {
    // Start anyway: the limiter falls back until Redis answers; the client keeps reconnecting.
    opts.logger.warn({ err: (err as Error).message }, 'redis unavailable at start');
  });

  return {
    command: (args) => client.sendCommand(args),
    key: (name) => `${opts.prefix}${name}`,
    isReady: () => client.isReady,
    async ping() {
      await client.sendCommand(['PING']);
    },
    async publish(channel, message) {
      await client.sendCommand(['PUBLISH', `${opts.prefix}${channel}`, message]);
    },
    async subscribe(channel, onMessage) {
      await subscriber.subscribe(`${opts.prefix}${channel}`, (message) => onMessage(String(message)));
    },
    async close() {
      await Promise.allSettled([client.close(), subscriber.close()]);
    },
  };
}
