import { describe, expect, it } from 'vitest';
import { PlainHistogram } from './plain-histogram.js';

describe('PlainHistogram', () => {
  it('renders cumulative, upper-inclusive buckets per label set, with sum and count', () => {
    const h = new PlainHistogram('x_seconds', 'Test.', [0.1, 1]);
    const a = { route: '/a' };
    const b = { route: 'say "hi"\\\n' };
    h.record(0.1, a); // on the bound: counts in le="0.1"
    h.record(0.5, a);
    h.record(7, a);
    h.record(0.01, b);
    const lines = h.render().trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['# HELP x_seconds Test.', '# TYPE x_seconds histogram']);
    expect(lines).toContain('x_seconds_bucket{route="/a",le="0.1"} 1');
    expect(lines).toContain('x_seconds_bucket{route="/a",le="1"} 2');
    expect(lines).toContain('x_seconds_bucket{route="/a",le="+Inf"} 3');
    expect(lines).toContain('x_seconds_sum{route="/a"} 7.6');
    expect(lines).toContain('x_seconds_count{route="/a"} 3');
    expect(lines).toContain('x_seconds_bucket{route="say \\"hi\\"\\\\\\n",le="0.1"} 1');
  });

  it('renders nothing before the first value', () => {
    expect(new PlainHistogram('y', 'Y.', [1]).render()).toBe('');
  });
});
