import { mkdirSync, readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './dashboard/browser.js';
import { parseCsv, scaled, sumDecimals } from './dashboard/csv.js';
import { insertUsageBatch } from '../src/usage/ledger-store.js';
import { ADMIN_TOKEN } from './helpers/gateway.js';
import { usageRecord } from './helpers/usage-fixtures.js';
import { useProxyEnv } from './helpers/proxy-env.js';

const MODELS = ['openai/gpt-4o-mini', 'anthropic/claude-3.5-haiku'];
const ARTIFACTS = new URL('./artifacts/', import.meta.url);
const day = (offset = 0) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

const env = useProxyEnv();
let browser: Browser;
let context: BrowserContext;
let page: Page;
let mine: { key: string; id: string; workspace: string };
let reportsKey: { key: string; id: string };
const foreignRequests: string[] = [];
const consoleErrors: string[] = [];

const chat = (key: string, model: string, content: string) =>
  fetch(`${env.gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  });

/** The report API's answer for a range of inclusive days, as the admin (optionally for one workspace). */
async function apiReport(from: string, to: string, opts: { workspace?: string; bearer?: string } = {}) {
  const q = new URLSearchParams({
    from,
    to: addDay(to),
    group_by: 'model',
    format: 'json',
    ...(opts.workspace ? { workspace: opts.workspace } : {}),
  });
  const res = await fetch(`${env.gw.url}/admin/usage?${q}`, { headers: { authorization: `Bearer ${opts.bearer ?? ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);
  return res.json();
}
const addDay = (d: string) => new Date(Date.parse(d) + 86_400_000).toISOString().slice(0, 10);

async function signIn(token: string) {
  await page.goto(`${env.gw.url}/dashboard`);
  await page.getByTestId('token').fill(token);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/dashboard/login')),
    page.getByTestId('sign-in').click(),
  ]);
  await page.waitForLoadState('domcontentloaded');
  return response;
}

async function applyRange(from: string, to: string) {
  await page.getByTestId('from').fill(from);
  await page.getByTestId('to').fill(to);
  await page.getByTestId('apply').click();
  await page.locator(`main[data-state="ready"][data-range="${from}..${to}"]`).waitFor();
}

const text = (testId: string) => page.getByTestId(testId).innerText();
const value = (testId: string) => page.getByTestId(testId).getAttribute('data-value');

describe('finance dashboard in headless Chromium', () => {
  beforeAll(async () => {
    mine = await env.gw.createKey({ name: 'billing-app' });
    const res = await env.gw.admin('/admin/keys', { body: { workspace: mine.workspace, name: 'finance', scopes: ['reports'] } });
    expect(res.status).toBe(201);
    reportsKey = await res.json();
    const other = await env.gw.createKey({ name: 'other-app' });
    for (const [key, model, content] of [
      [mine.key, MODELS[0], 'hello there'],
      [mine.key, MODELS[0], 'a second, somewhat longer question about invoices'],
      [mine.key, MODELS[1], 'and one for the other model'],
      [other.key, MODELS[1], 'another workspace entirely, which a reports key must not see'],
    ]) {
      expect((await chat(key, model, content)).status).toBe(200);
    }
    await env.gw.deps.usage.flush();

    browser = await launchChromium();
    context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    const origin = new URL(env.gw.url).origin;
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreignRequests.push(r.url());
    });
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('serves the sign-in page with strict security headers; the report API needs auth', async () => {
    const res = await fetch(`${env.gw.url}/dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    );
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.text()).toContain('action="/dashboard/login"');
    expect((await fetch(`${env.gw.url}/admin/usage?from=${day(-1)}&to=${day(1)}`)).status).toBe(401);
    const forged = await fetch(`${env.gw.url}/dashboard/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://127.0.0.2:9', 'sec-fetch-site': 'cross-site' },
      body: new URLSearchParams({ token: ADMIN_TOKEN }),
      redirect: 'manual',
    });
    expect(forged.status).toBe(403);
    expect(forged.headers.get('set-cookie')).toBeNull();
    const json = await fetch(`${env.gw.url}/dashboard/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: ADMIN_TOKEN }),
    });
    expect(json.status).toBe(400);
    expect(json.headers.get('set-cookie')).toBeNull();
    for (const [path, type] of [
      ['/dashboard/app.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app.css', 'text/css; charset=utf-8'],
    ]) {
      const asset = await fetch(env.gw.url + path);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toBe(type);
      expect(asset.headers.get('x-content-type-options')).toBe('nosniff');
      const again = await fetch(env.gw.url + path, { headers: { 'if-none-match': asset.headers.get('etag')! } });
      expect(again.status).toBe(304);
    }
  });

  it('tells finance staff when usage recording is off', async () => {
    const page = () => fetch(`${env.gw.url}/dashboard`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.text());
    expect(await page()).not.toContain('data-testid="usage-off"');
    const usage = env.gw.deps.usage as { enabled: boolean };
    usage.enabled = false;
    try {
      expect(await page()).toContain('Usage recording is off');
    } finally {
      usage.enabled = true;
    }
  });

  it('refuses a wrong token with 401 and a generic message', async () => {
    const response = await signIn('cmg_not-a-real-key-at-all-000000000000000000000');
    expect(response.status()).toBe(401);
    await expect(text('login-error')).resolves.toBe('That token was not accepted.');
    expect(await context.cookies()).toEqual([]);
    const proxyOnly = await signIn(mine.key); // a key without the reports scope
    expect(proxyOnly.status()).toBe(401);
    await expect(text('login-error')).resolves.toBe('That token was not accepted.');
  });

  it('signs in with a reports key: HttpOnly, SameSite=Strict session; default range is the last 30 days', async () => {
    const response = await signIn(reportsKey.key);
    expect(response.status()).toBe(303);
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: 'cmg_dashboard', httpOnly: true, sameSite: 'Strict', path: '/', secure: false });
    expect(cookies[0].expires - Date.now() / 1000).toBeGreaterThan(11.9 * 3600);
    expect(await page.evaluate(() => document.cookie)).toBe('');
    await expect(text('who')).resolves.toContain(mine.workspace);
    await page.locator('main[data-state="ready"]').waitFor();
    expect(await page.getByTestId('from').inputValue()).toBe(day(-29));
    expect(await page.getByTestId('to').inputValue()).toBe(day(0));
  });

  it('changes the range, draws both models and shows exactly the API totals for its own workspace', async () => {
    await applyRange(day(-6), day(0));
    expect(page.url()).toContain(`from=${day(-6)}&to=${day(0)}`);
    const api = await apiReport(day(-6), day(0), { workspace: mine.workspace });
    expect(api.totals.requests).toBe(3);
    expect(await apiReport(day(-6), day(0), { bearer: reportsKey.key })).toEqual(api);

    expect(await value('totals-cost')).toBe(api.totals.cost_usd);
    // Under half a cent: two significant digits, not "$0.00"; the exact amount in the tooltip.
    expect(await text('totals-cost')).toMatch(/^\$0\.0+[1-9]\d?$/);
    expect(Number((await text('totals-cost')).slice(1))).toBeCloseTo(Number(api.totals.cost_usd), 6);
    expect(await page.getByTestId('totals-cost').getAttribute('title')).toBe(`$${api.totals.cost_usd}`);
    expect(await text('totals-requests')).toBe('3');
    expect(await value('totals-prompt-tokens')).toBe(String(api.totals.prompt_tokens));
    expect(await value('totals-completion-tokens')).toBe(String(api.totals.completion_tokens));

    const bars = page.locator('[data-testid="chart"] rect.bar');
    const drawn = await bars.evaluateAll((rects) =>
      rects.map((r) => ({ model: r.getAttribute('data-model'), height: Number(r.getAttribute('height')) })),
    );
    expect(new Set(drawn.map((b) => b.model))).toEqual(new Set(MODELS));
    expect(drawn.every((b) => b.height > 0)).toBe(true);
    const chartCost = sumDecimals(await bars.evaluateAll((rects) => rects.map((r) => r.getAttribute('data-cost') ?? '')));
    expect(chartCost).toBe(scaled(api.totals.cost_usd));

    const modelRows = page.getByTestId('table-by-model').locator('tbody tr');
    expect(await modelRows.count()).toBe(2);
    expect((await modelRows.allInnerTexts()).join('\n')).toMatch(/gpt-4o-mini[\s\S]*claude-3\.5-haiku|claude-3\.5-haiku[\s\S]*gpt-4o-mini/);
    const keyTable = await page.getByTestId('table-by-key').innerText();
    expect(keyTable).toContain('billing-app');
    expect(keyTable).not.toContain('other-app');
    expect(await page.getByTestId('table-by-key').locator('tfoot [data-value]').getAttribute('data-value')).toBe(api.totals.cost_usd);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('dashboard.png', ARTIFACTS).pathname, fullPage: true });
  });

  it('downloads the CSV of the selected range, whose rows add up to the totals', async () => {
    const api = await apiReport(day(-6), day(0), { workspace: mine.workspace });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-csv').click()]);
    const csv = parseCsv(readFileSync(await download.path(), 'utf8'));
    // Named for the days the page shows (the API's `to` is exclusive, the page's last day is not).
    expect(download.suggestedFilename()).toBe(`usage_${day(-6)}_${day(0)}.csv`);
    const direct = await fetch(`${env.gw.url}${await page.getByTestId('download-csv').getAttribute('href')}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(direct.headers.get('content-disposition')).toBe(`attachment; filename="usage_${day(-6)}_${day(0)}.csv"`);
    expect(csv.header).toEqual(expect.arrayContaining(['day', 'workspace', 'key', 'model', 'requests', 'errors', 'cost_usd']));
    expect(csv.rows.length).toBeGreaterThanOrEqual(2);
    expect(new Set(csv.rows.map((r) => r.workspace))).toEqual(new Set([mine.workspace]));
    expect(new Set(csv.rows.map((r) => r.model))).toEqual(new Set(MODELS));
    expect(csv.rows.reduce((n, r) => n + Number(r.requests), 0)).toBe(api.totals.requests);
    expect(sumDecimals(csv.rows.map((r) => r.cost_usd))).toBe(scaled(api.totals.cost_usd));
  });

  it('says so when the range is empty', async () => {
    await applyRange('2020-01-01', '2020-01-07');
    await expect(text('notice')).resolves.toBe('No usage recorded from 2020-01-01 to 2020-01-07.');
    expect(await text('totals-requests')).toBe('0');
    expect(await page.locator('[data-testid="chart"] rect.bar').count()).toBe(0);
    await expect(page.getByTestId('table-by-model').locator('tbody').innerText()).resolves.toContain('No usage in this range.');
  });

  it('signs out: the cookie is gone and the report API refuses the browser', async () => {
    await Promise.all([page.waitForURL(/\/dashboard$/), page.getByTestId('sign-out').click()]);
    await page.getByTestId('login-form').waitFor();
    expect(await context.cookies()).toEqual([]);
    const status = await page.evaluate(
      async (url) => (await fetch(url, { credentials: 'same-origin' })).status,
      `/admin/usage?from=${day(-1)}&to=${day(1)}`,
    );
    expect(status).toBe(401);
  });

  it('signs in with the admin token and sees every workspace', async () => {
    expect((await signIn(ADMIN_TOKEN)).status()).toBe(303);
    await expect(text('who')).resolves.toBe('Signed in as admin');
    await applyRange(day(-6), day(0));
    const api = await apiReport(day(-6), day(0));
    expect(api.totals.requests).toBe(4);
    expect(await value('totals-cost')).toBe(api.totals.cost_usd);
    expect(await text('totals-requests')).toBe('4');
    const keyTable = await page.getByTestId('table-by-key').innerText();
    expect(keyTable).toContain('billing-app');
    expect(keyTable).toContain('other-app');
  });

  it('ends a key session once the key is revoked', async () => {
    const jar = await browser.newContext();
    const other = await jar.newPage();
    await other.goto(`${env.gw.url}/dashboard`);
    await other.getByTestId('token').fill(reportsKey.key);
    await Promise.all([other.waitForURL(/\/dashboard$/), other.getByTestId('sign-in').click()]);
    await other.locator('main[data-state="ready"]').waitFor();
    expect((await env.gw.admin(`/admin/keys/${reportsKey.id}/revoke`, { method: 'POST' })).status).toBe(200);
    await other.reload();
    await other.getByTestId('login-form').waitFor();
    await jar.close();
  });

  it('shows unpriced usage: the totals card and the model row count requests that had no price', async () => {
    const { key } = await env.gw.createKey({ name: 'unpriced-app' });
    const res = await fetch(`${env.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake/unpriced', messages: [{ role: 'user', content: 'no price for me' }], fake: { noCost: true } }),
    });
    expect(res.status).toBe(200);
    await res.text();
    await env.gw.deps.usage.flush();
    // Still signed in as the admin (the test before it used its own browser context).
    await applyRange(day(-6), day(0));
    const api = await apiReport(day(-6), day(0));
    expect(api.totals.unpriced_requests).toBe(1);
    expect(await text('totals-unpriced-requests')).toBe('1');
    const row = page.getByTestId('table-by-model').locator('tbody tr', { hasText: 'fake/unpriced' });
    expect(await row.locator('[data-unpriced]').getAttribute('data-unpriced')).toBe('1');
  });

  it('rounds money to the cent for display, exact in data-value, the tooltip, the API and the CSV', async () => {
    const { id, workspace } = await env.gw.createKey({ name: 'big-spender' });
    const ws = (await (await env.gw.admin('/admin/workspaces')).json()).data.find((w: { name: string }) => w.name === workspace);
    await insertUsageBatch(env.database.db, [
      usageRecord({ workspaceId: ws.id, keyId: id, model: 'openai/gpt-4o-mini', costUsd: '10110.1000177' }),
    ]);
    await applyRange(day(-6), day(0));
    const api = await apiReport(day(-6), day(0), { workspace });
    expect(api.totals.cost_usd).toBe('10110.1000177');
    const row = page.getByTestId('table-by-key').locator('tbody tr', { hasText: 'big-spender' });
    const cell = row.locator('td[data-value]');
    expect(await cell.innerText()).toBe('$10,110.10');
    expect(await cell.getAttribute('data-value')).toBe('10110.1000177');
    expect(await cell.getAttribute('title')).toBe('$10110.1000177');
    const all = await apiReport(day(-6), day(0));
    expect(await value('totals-cost')).toBe(all.totals.cost_usd);
    expect(await text('totals-cost')).toBe('$10,110.10');
    const csv = await fetch(`${env.gw.url}${await page.getByTestId('download-csv').getAttribute('href')}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const rows = parseCsv(await csv.text()).rows.filter((r) => r.key_name === 'big-spender');
    expect(rows.map((r) => r.cost_usd)).toEqual(['10110.1000177']);
  });

  it('labels today’s bar, keeps models that only failed out of the legend, and shows latency and errors', async () => {
    const { key } = await env.gw.createKey({ name: 'failing-app' });
    expect((await chat(key, 'broken/model', 'this model does not exist')).status).toBeGreaterThanOrEqual(400);
    await env.gw.deps.usage.flush();
    for (const [from, width] of [
      [day(-29), 1280],
      [day(-29), 390],
      [day(-89), 390],
      [day(-6), 1280],
    ] as const) {
      await page.setViewportSize({ width, height: 900 });
      await applyRange(from, day(0));
      const labels = await page.locator('[data-testid="chart"] text.day').evaluateAll((t) => t.map((n) => n.getAttribute('data-day')));
      expect(labels.at(-1), `${from}, ${width} px`).toBe(day(0));
      expect(labels.length).toBeGreaterThanOrEqual(2);
      // Labels never overlap: their boxes are apart.
      const boxes = await page
        .locator('[data-testid="chart"] text.day')
        .evaluateAll((t) => t.map((n) => (n as SVGGraphicsElement).getBoundingClientRect()));
      for (let i = 1; i < boxes.length; i++) expect(boxes[i].left).toBeGreaterThan(boxes[i - 1].right);
      const chart = await page.getByTestId('chart').boundingBox();
      expect(boxes.at(-1)!.right).toBeLessThanOrEqual(chart!.x + chart!.width + 0.5);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await applyRange(day(-6), day(0));
    const modelRow = page.getByTestId('table-by-model').locator('tbody tr', { hasText: 'broken/model' });
    expect(await modelRow.count()).toBe(1);
    const legend = page.getByTestId('legend').locator('li');
    const entries = await legend.evaluateAll((lis) =>
      lis.map((li) => ({ model: li.getAttribute('data-model'), text: li.textContent ?? '' })),
    );
    expect(entries.map((e) => e.model)).not.toContain('broken/model');
    expect(entries.map((e) => e.model)).not.toContain('fake/unpriced');
    expect(entries.length).toBeGreaterThanOrEqual(2);
    for (const e of entries) expect(e.text).not.toMatch(/\$0\.00(?!\d)/);

    const errors = await page.getByTestId('table-errors').locator('tbody tr').allInnerTexts();
    expect(errors.some((r) => r.includes('upstream_error') && /\b4\d\d\b/.test(r))).toBe(true);
    const latency = page.getByTestId('table-latency').locator('tbody tr', { hasText: MODELS[0] });
    expect(Number(await latency.locator('td[data-ms]').first().getAttribute('data-ms'))).toBeGreaterThan(0);
    expect(await page.getByTestId('table-unpriced').innerText()).toContain('fake/unpriced');
  });

  it('loaded nothing from elsewhere and broke no CSP rule', () => {
    expect(foreignRequests).toEqual([]);
    expect(consoleErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  });
});
