import { describe, expect, it } from 'vitest';
import { MODEL, useProxyEnv, user } from './helpers/proxy-env.js';

const env = useProxyEnv();

const send = (key: string) =>
  fetch(`${env.gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [user('count me in please')] }),
  });

describe('rate limits (in-process limiter)', () => {
  it('allows rpm requests per minute with x-ratelimit headers, then 429 rate_limit_exceeded with Retry-After', async () => {
    const { key } = await env.gw.createKey({ rpm: 3 });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await send(key));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
    expect(answers[0].headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(answers[0].headers.get('x-ratelimit-remaining-requests')).toBe('2');
    expect(answers[2].headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(answers[0].headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(ms|s|m\d+s)$/);
    const refused = answers[3];
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    const body = await refused.json();
    expect(body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
    // Refused requests never reached the upstream, and are recorded as rejected.
    expect(env.fake.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(3);
    expect(env.gw.outcomes.filter((o) => o.status === 'rejected')).toHaveLength(2);
  });

  it('counts actual tokens per minute after each response', async () => {
    const { key } = await env.gw.createKey({ tpm: 20 });
    const first = await send(key);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit-tokens')).toBe('20');
    const used = (await first.json()).usage.total_tokens;
    expect(used).toBeGreaterThan(0);
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const res = await send(key);
      statuses.push(res.status);
      await res.text();
    }
    // Each call uses ~15 tokens: the second one is still under 20 before it runs, the third is not.
    expect(statuses).toContain(429);
  });

  it('leaves keys without limits alone (no rate-limit headers)', async () => {
    const { key } = await env.gw.createKey();
    const res = await send(key);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ratelimit-limit-requests')).toBeNull();
  });
});
