import { describe, expect, it } from 'vitest';
import type { RedisConnection } from '../redis/connect.js';
import type { Logger } from '../telemetry/logger.js';
import { createKeyEvents, KEY_CHANGES_CHANNEL } from './key-events.js';
import type { KeyVerifier } from './verify-key.js';

function fakes(opts: { subscribeFails?: boolean; publishFails?: boolean } = {}) {
  const invalidated: string[] = [];
  const published: [string, string][] = [];
  const warnings: string[] = [];
  const handlers = new Map<string, (m: string) => void>();
  const redis = {
    async subscribe(channel: string, onMessage: (m: string) => void) {
      if (opts.subscribeFails) throw new Error('subscribe refused');
      handlers.set(channel, onMessage);
    },
    async publish(channel: string, message: string) {
      if (opts.publishFails) throw new Error('publish refused');
      published.push([channel, message]);
    },
  } as unknown as RedisConnection;
  const verifier = { invalidate: (id: string) => void invalidated.push(id) } as unknown as KeyVerifier;
  const logger = { warn: (_o: unknown, msg: string) => void warnings.push(msg) } as unknown as Logger;
  return { redis, verifier, logger, invalidated, published, warnings, handlers };
}

describe('key change events', () => {
  it('drops the key here at once and tells the other instances through Redis', async () => {
    const f = fakes();
    const events = await createKeyEvents({ verifier: f.verifier, redis: f.redis, logger: f.logger });
    await events.changed('key_1');
    expect(f.invalidated).toEqual(['key_1']);
    expect(f.published).toEqual([[KEY_CHANGES_CHANNEL, 'key_1']]);
    expect(KEY_CHANGES_CHANNEL).toBe('keys:changed');
  });

  it('drops a key another instance announces', async () => {
    const f = fakes();
    await createKeyEvents({ verifier: f.verifier, redis: f.redis, logger: f.logger });
    f.handlers.get(KEY_CHANGES_CHANNEL)!('key_2');
    expect(f.invalidated).toEqual(['key_2']);
  });

  it('without Redis, invalidates locally only', async () => {
    const f = fakes();
    const events = await createKeyEvents({ verifier: f.verifier, logger: f.logger });
    await events.changed('key_3');
    expect(f.invalidated).toEqual(['key_3']);
    expect(f.published).toEqual([]);
  });

  it('a failing subscribe or publish is logged, never thrown', async () => {
    const f = fakes({ subscribeFails: true, publishFails: true });
    const events = await createKeyEvents({ verifier: f.verifier, redis: f.redis, logger: f.logger });
    await expect(events.changed('key_4')).resolves.toBeUndefined();
    expect(f.invalidated).toEqual(['key_4']);
    expect(f.warnings).toEqual(['key-change subscription failed; relying on the cache TTL', 'key-change publish failed']);
  });
});
