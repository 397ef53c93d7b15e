import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

/** The gateway's real logger, writing its lines into an array. */
function capture(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (line: string) => void lines.push(line) });
  return { logger, lines, last: () => JSON.parse(lines.at(-1)!) as Record<string, any> };
}

const KEY = 'cmg_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg';
const UPSTREAM_KEY = 'sk-or-v1-0123456789abcdef0123456789abcdef';

// Nothing should pass these to the logger; the redaction is the second line of defence for when
// someone logs a request, its headers or a config object by mistake. Each case is one redact path.
describe('createLogger redaction', () => {
  it.each([
    ['a bare authorization field', { authorization: `Bearer ${KEY}` }, (l: any) => l.authorization],
    [
      'headers.authorization',
      { headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' } },
      (l: any) => l.headers.authorization,
    ],
    [
      'req.headers.authorization',
      { req: { method: 'POST', headers: { authorization: `Bearer ${KEY}` } } },
      (l: any) => l.req.headers.authorization,
    ],
    ['an apiKey one level down', { config: { apiKey: UPSTREAM_KEY, port: 8080 } }, (l: any) => l.config.apiKey],
    ['a key field', { key: KEY }, (l: any) => l.key],
    ['messages', { messages: [{ role: 'user', content: 'my card is 4111 1111 1111 1111' }] }, (l: any) => l.messages],
    ['a body', { body: { model: 'm', messages: [{ role: 'user', content: 'private words' }] } }, (l: any) => l.body],
  ])('censors %s', (_name, fields, pick) => {
    const { logger, lines, last } = capture();
    logger.info({ request_id: 'req_1', ...fields }, 'request');
    expect(lines).toHaveLength(1);
    expect(pick(last())).toBe('[redacted]');
    expect(last().request_id).toBe('req_1');
    for (const secret of [KEY, UPSTREAM_KEY, '4111 1111', 'private words']) expect(lines[0]).not.toContain(secret);
  });

  it('keeps the fields around a censored one', () => {
    const { logger, last } = capture();
    logger.info(
      { headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, config: { apiKey: UPSTREAM_KEY, port: 8080 } },
      'request',
    );
    expect(last()).toMatchObject({ msg: 'request', headers: { 'content-type': 'application/json' }, config: { port: 8080 } });
  });

  it('writes one JSON line per entry at or above its level, without pid or hostname', () => {
    const { logger, lines, last } = capture('warn');
    logger.info('quiet');
    logger.warn({ n: 1 }, 'loud');
    expect(lines).toHaveLength(1);
    expect(last()).toMatchObject({ level: 40, n: 1, msg: 'loud' });
    expect(last()).not.toHaveProperty('pid');
    expect(last()).not.toHaveProperty('hostname');
  });
});
