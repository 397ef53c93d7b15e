import { describe, expect, it } from 'vitest';
import { redactDeep, redactSecrets } from './redact.js';

// Fixtures are assembled at runtime so secret scanners do not flag this file.
const alnum = (n: number, seed = 'aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0z') => seed.repeat(Math.ceil(n / seed.length)).slice(0, n);
const OPENAI = 'sk-' + alnum(48);
const OPENAI_PROJ = 'sk-proj-' + alnum(40) + '_-' + alnum(20);
const OPENAI_SVC = 'sk-svcacct-' + alnum(40);
const OPENROUTER = 'sk-or-v1-' + 'a1b2c3d4e5f6'.repeat(5) + 'abcd';
const ANTHROPIC = 'sk-ant-api03-' + alnum(60) + '-' + alnum(10);
const GHP = 'ghp_' + alnum(36);
const GH_PAT = 'github_pat_' + alnum(22) + '_' + alnum(59);
const AWS = 'AKIA' + 'IOSFODNN7EXAMPLE';
const CMG = 'cmg_' + alnum(41) + '_-';
const JWT = 'eyJhbGciOiJIUzI1NiJ9' + '.' + 'eyJzdWIiOiIxMjM0NTY3ODkwIn0' + '.' + alnum(43);
const SLACK = 'xoxb-' + '123456789012-1234567890123-' + alnum(24);
const PEM = ['-----BEGIN RSA PRIVATE KEY-----', 'MIIEpAIBAAKCAQEA' + alnum(48), alnum(64), '-----END RSA PRIVATE KEY-----'].join('\n');

const redacted = (text: string, emails = false) => redactSecrets(text, { emails }).text;

describe('redactSecrets: hits', () => {
  it.each([
    ['openai_key', OPENAI],
    ['openai_key', OPENAI_PROJ],
    ['openai_key', OPENAI_SVC],
    ['openrouter_key', OPENROUTER],
    ['anthropic_key', ANTHROPIC],
    ['github_token', GHP],
    ['github_token', 'gho_' + alnum(36)],
    ['github_token', 'ghu_' + alnum(36)],
    ['github_token', 'ghs_' + alnum(36)],
    ['github_token', 'ghr_' + alnum(36)],
    ['github_token', GH_PAT],
    ['aws_access_key', AWS],
    ['aws_access_key', 'ASIA' + 'Y34FZKBOKMUTVV7A'],
    ['cmg_key', CMG],
    ['jwt', JWT],
    ['slack_token', SLACK],
  ])('redacts a %s inside prose', (kind, secret) => {
    const r = redactSecrets(`use ${secret} for this, ok?`);
    expect(r).toEqual({ text: `use [REDACTED:${kind}] for this, ok?`, count: 1, kinds: [kind] });
  });

  it('redacts keys in env-file, JSON and quoted contexts', () => {
    expect(redacted(`OPENAI_API_KEY=${OPENAI}\n`)).toBe('OPENAI_API_KEY=[REDACTED:openai_key]\n');
    expect(redacted(`{"key":"${GHP}"}`)).toBe('{"key":"[REDACTED:github_token]"}');
    expect(redacted(`'${AWS}'`)).toBe("'[REDACTED:aws_access_key]'");
    expect(redacted(`(${CMG})`)).toBe('([REDACTED:cmg_key])');
  });

  it('keeps the word Bearer and redacts an opaque token, case-insensitively', () => {
    const token = 'abc123DEF456ghi789._~+/=-xyz';
    expect(redacted(`Authorization: Bearer ${token}`)).toBe('Authorization: Bearer [REDACTED:bearer_token]');
    expect(redacted(`authorization: bearer  ${token}`)).toBe('authorization: bearer  [REDACTED:bearer_token]');
    expect(redactSecrets(`BEARER ${token}`).kinds).toEqual(['bearer_token']);
  });

  it('reports a known key format rather than bearer_token when a key follows Bearer', () => {
    expect(redactSecrets(`Authorization: Bearer ${CMG}`)).toEqual({
      text: 'Authorization: Bearer [REDACTED:cmg_key]',
      count: 1,
      kinds: ['cmg_key'],
    });
    expect(redacted(`Bearer ${OPENROUTER}`)).toBe('Bearer [REDACTED:openrouter_key]');
    expect(redacted(`Bearer ${JWT}`)).toBe('Bearer [REDACTED:jwt]');
  });

  it.each([
    ['4111111111111111', 'Visa'],
    ['4111 1111 1111 1111', 'Visa, spaced'],
    ['4111-1111-1111-1111', 'Visa, dashed'],
    ['5555555555554444', 'Mastercard'],
    ['2223003122003222', 'Mastercard 2-series'],
    ['378282246310005', 'Amex'],
    ['3782 822463 10005', 'Amex, 4-6-5'],
    ['6011111111111117', 'Discover'],
    ['4123456789012345677', '19 digits'],
  ])('redacts the Luhn-valid card %s (%s), separators included', (card) => {
    expect(redactSecrets(`card: ${card}, exp 12/27.`)).toEqual({ text: 'card: [REDACTED:card], exp 12/27.', count: 1, kinds: ['card'] });
  });

  it('redacts a card at the very start or end of the text and before a full stop', () => {
    expect(redacted('4111111111111111')).toBe('[REDACTED:card]');
    expect(redacted('my card is 5555 5555 5555 4444.')).toBe('my card is [REDACTED:card].');
  });

  it('replaces a whole PEM private key block with one placeholder', () => {
    const r = redactSecrets(`here:\n${PEM}\nthanks`);
    expect(r).toEqual({ text: 'here:\n[REDACTED:private_key]\nthanks', count: 1, kinds: ['private_key'] });
    const ec = PEM.replaceAll('RSA ', 'EC ');
    expect(redacted(ec)).toBe('[REDACTED:private_key]');
    const plain = PEM.replaceAll('RSA ', '');
    expect(redacted(`${plain}\n---\n${plain}`)).toBe('[REDACTED:private_key]\n---\n[REDACTED:private_key]');
  });

  it('redacts a PEM block written with escaped newlines (inside a JSON string)', () => {
    const json = JSON.stringify({ key: PEM });
    expect(JSON.parse(redacted(json))).toEqual({ key: '[REDACTED:private_key]' });
  });

  it('redacts an unterminated private key block to the end of the text', () => {
    const truncated = PEM.split('\n').slice(0, 3).join('\n');
    expect(redacted(`start\n${truncated}`)).toBe('start\n[REDACTED:private_key]');
  });

  it('redacts e-mail addresses only when configured', () => {
    const text = 'Mail jane.doe+work@mail.example.co.uk or ops@example.com.';
    expect(redactSecrets(text)).toEqual({ text, count: 0, kinds: [] });
    expect(redactSecrets(text, { emails: true })).toEqual({
      text: 'Mail [REDACTED:email] or [REDACTED:email].',
      count: 2,
      kinds: ['email'],
    });
  });

  it('counts every hit and lists distinct kinds in rule order', () => {
    const text = `a ${OPENAI} b 4111111111111111 c ${OPENAI_PROJ} d ${GHP}`;
    expect(redactSecrets(text)).toEqual({
      text: 'a [REDACTED:openai_key] b [REDACTED:card] c [REDACTED:openai_key] d [REDACTED:github_token]',
      count: 4,
      kinds: ['openai_key', 'github_token', 'card'],
    });
  });

  it('is idempotent: redacted output is not redacted again', () => {
    const once = redactSecrets(`Bearer ${OPENAI} ${PEM} 4111111111111111 x@example.com`, { emails: true });
    expect(once.count).toBe(4);
    expect(redactSecrets(once.text, { emails: true })).toEqual({ text: once.text, count: 0, kinds: [] });
  });
});

describe('redactSecrets: near-misses stay untouched', () => {
  it.each([
    ['sk- in prose', 'a task-based plan: ask-me-anything sessions are risk-free-ish and disk-backed-storage-friendly'],
    ['a short sk- value', 'set it to sk-short or sk-1234567890 for the demo'],
    ['sk- glued to a word', 'tasksk-' + alnum(30)],
    ['a 16-digit number failing Luhn', 'ref 4111111111111112 and 4111 1111 1111 1112'],
    ['phone numbers', 'call +1 415 555 0100 or +44 20 7946 0958 or (415) 555-0100'],
    ['a Luhn-valid number after +', 'mobile +4915123456787'],
    ['an ISBN', 'ISBN 978-0-306-40615-7 and 9780306406157'],
    ['version strings', 'node v20.11.1, semver 1.22.333.4444-rc.1, build 2024.01.15.1234'],
    ['a UUID', 'id 123e4567-e89b-12d3-a456-426614174000 and 12345678-1234-1234-1234-123456789012'],
    ['a git SHA', 'commit 4111111111111111a9f3c2d1e0b4a5968776655443322110 and 9fceb02d0ae598e95dc970b74767f19372d61af8'],
    ['Bearer followed by a short word', 'Send a Bearer token in the header; the bearer credential is checked.'],
    ['Bearer followed by a prose compound', 'the bearer token-based-authentication-scheme'],
    ['AKIA in lowercase text', 'akiaiosfodnn7example and Akia' + 'IOSFODNN7EXAMPLE'],
    ['AKIA inside a longer upper-case word', 'XAKIAIOSFODNN7EXAMPLE1'],
    ['cmg_ with too few characters', 'cookie cmg_dashboard, key cmg_' + alnum(20) + ', Bearer cmg_...'],
    ['e-mail by default', 'write to jane@example.com'],
    ['a millisecond timestamp (Luhn-valid, leading 1)', 'ts=1700000000004'],
    ['a compact timestamp (Luhn-valid, leading 20)', 'at 2024011510300010 UTC'],
    ['an order id (Luhn-valid, leading 1)', 'order 1000234567891232 shipped'],
    ['a digit run inside an alphanumeric id', 'ORD4111111111111111X and x4111111111111111 and 4111111111111111abc'],
    ['a digit run that is too long', '41111111111111111111111 and 4111 1111 1111 1111 1111 1111'],
    ['a decimal', 'pi = 3.4111111111111111 and 4111111111111111.5'],
    ['a dash-joined run', 'ORD-4111111111111111 and 2024-4111111111111111'],
    ['a GitHub prefix with too few characters', 'ghp_short and github_pat_tooShort and gho_' + alnum(20)],
    ['a short eyJ', 'eyJhbGciOi is a JSON prefix'],
    ['a PEM public key', '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----'],
  ])('leaves %s alone', (_label, text) => {
    expect(redactSecrets(text)).toEqual({ text, count: 0, kinds: [] });
  });

  it('returns empty text unchanged', () => {
    expect(redactSecrets('')).toEqual({ text: '', count: 0, kinds: [] });
  });

  it('handles 100 KB of prose (fast path) and 100 KB of near-miss noise without mangling it', () => {
    const prose = 'The quick brown fox asks a risk-free question. '.repeat(2200);
    expect(prose.length).toBeGreaterThan(100_000);
    const r = redactSecrets(prose);
    expect(r.text).toBe(prose);
    expect(r.count).toBe(0);

    // Inputs shaped to provoke backtracking: long digit runs, separator chains, bearer/sk- prefixes, '@' runs.
    const noise = [
      '1'.repeat(5000),
      '1 '.repeat(5000),
      '1234-'.repeat(2000),
      'ask-'.repeat(3000),
      'Bearer '.repeat(2000),
      'a@'.repeat(5000),
    ].join(' ');
    const n = redactSecrets(noise, { emails: true });
    expect(n.count).toBe(0);
    expect(n.text).toBe(noise);

    const withSecret = prose + OPENAI + ' ' + prose;
    expect(redactSecrets(withSecret).text).toBe(prose + '[REDACTED:openai_key] ' + prose);
  });
});

describe('redactDeep', () => {
  it('redacts strings in content parts and tool call arguments, returning a new value', () => {
    const message = {
      role: 'assistant',
      content: [
        { type: 'text', text: `key ${OPENAI}` },
        { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
      ],
      tool_calls: [
        {
          id: 'call_1',
          type: 'function',
          function: { name: 'login', arguments: JSON.stringify({ token: GHP, card: '4111111111111111' }) },
        },
      ],
      n: 3,
      ok: true,
      none: null,
    };
    const snapshot = structuredClone(message);
    const { value, count } = redactDeep(message);

    expect(count).toBe(3);
    expect(value.content[0]).toEqual({ type: 'text', text: 'key [REDACTED:openai_key]' });
    expect(value.content[1]).toEqual(message.content[1]);
    // Placeholders contain no quotes or backslashes, so redacted JSON arguments still parse.
    expect(JSON.parse(value.tool_calls[0].function.arguments)).toEqual({ token: '[REDACTED:github_token]', card: '[REDACTED:card]' });
    expect(value).toMatchObject({ role: 'assistant', n: 3, ok: true, none: null });
    expect(message).toEqual(snapshot);
    expect(value).not.toBe(message);
    expect(value.content).not.toBe(message.content);
  });

  it('redacts a bare string and passes options through', () => {
    expect(redactDeep(`mail a@example.com ${AWS}`, { emails: true })).toEqual({
      value: 'mail [REDACTED:email] [REDACTED:aws_access_key]',
      count: 2,
    });
    expect(redactDeep(['a@example.com']).count).toBe(0);
  });

  it('leaves object keys, non-strings and non-plain objects as they are', () => {
    const date = new Date(0);
    const input = { [OPENAI]: 1, when: date, nested: [[42, undefined, 'fine']] };
    const { value, count } = redactDeep(input);
    expect(count).toBe(0);
    expect(Object.keys(value)[0]).toBe(OPENAI);
    expect(value.when).toBe(date);
    expect(value.nested).toEqual([[42, undefined, 'fine']]);
  });
});
