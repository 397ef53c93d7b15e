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

/** At most this many commands wait on Redis at once; past it a command fails at once. */
const MAX_IN_FLIGHT = 1_000;

/**
 * Redis with bounded waits everywhere: a connect timeout, a per-command deadline, no offline
 * queue (a command while disconnected fails at once instead of waiting), and reconnects with
 * capped backoff in the background. Callers treat a failure as "Redis is away" and fall back.
 *
 * node-redis's own command `timeout` only covers the wait before a command is written: once on
 * the socket it waits for a reply forever, so a Redis that accepts and never answers (hung, or a
 * frozen network path) held every caller. The deadline here is the gateway's own clock, from
 * the call to the reply. A command that missed it still waits on the socket for its reply (RESP
 * replies come in order, so it cannot be dropped from there): those are counted, and past
 * MAX_IN_FLIGHT new commands fail at once rather than pile up.
 */
export async function connectRedis(opts: {
  url: string;
  prefix: string;
  logger: Logger;
  commandTimeoutMs?: number;
}): Promise<RedisConnection> {
  const timeout = opts.commandTimeoutMs ?? 100;
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

  let inFlight = 0;
  const bounded = <T>(work: () => Promise<T>, ms = timeout): Promise<T> => {
    if (inFlight >= MAX_IN_FLIGHT) return Promise.reject(new Error(`redis: ${inFlight} commands already waiting for a reply`));
    inFlight++;
    let pending: Promise<T>;
    try {
      pending = work();
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      () => inFlight--,
      () => inFlight--,
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis did not answer within ${ms} ms`)), ms);
    });
    return Promise.race([pending, deadline]).finally(() => clearTimeout(timer));
  };
  const command = (args: string[]) => bounded(() => client.sendCommand(args));

  return {
    command,
    key: (name) => `${opts.prefix}${name}`,
    isReady: () => client.isReady,
    async ping() {
      await command(['PING']);
    },
    async publish(channel, message) {
      await command(['PUBLISH', `${opts.prefix}${channel}`, message]);
    },
    async subscribe(channel, onMessage) {
      // Not on the request path; a subscription that misses this still completes later.
      await bounded(() => subscriber.subscribe(`${opts.prefix}${channel}`, (message) => onMessage(String(message))), 3_000);
    },
    async close() {
      await Promise.allSettled([client.close(), subscriber.close()]);
    },
  };
}
