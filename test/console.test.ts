import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './dashboard/browser.js';
import { ADMIN_TOKEN } from './helpers/gateway.js';
import { MODEL, useProxyEnv } from './helpers/proxy-env.js';

/**
 * The console's operator views in headless Chromium: sign in with the admin token, create a key
 * (shown once), edit its budget, revoke it, create a workspace, browse threads with the dry run,
 * filter the request log and follow a request to its thread; a phone-wide window never scrolls
 * sideways; a reports key sees its own workspace's usage and requests and nothing else.
 */
const ARTIFACTS = new URL('./artifacts/', import.meta.url);
const env = useProxyEnv();
let browser: Browser;
let context: BrowserContext;
let page: Page;
let seed: { key: string; id: string; workspace: string };
let other: { key: string; id: string; workspace: string };
let reportsKey: string;
let created: { key: string; name: string };
const foreignRequests: string[] = [];
const pageErrors: string[] = [];
const WS = `console-ws-${Date.now().toString(36)}`;

const chat = async (key: string, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
  const res = await fetch(`${env.gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
};

async function signIn(p: Page, token: string) {
  await p.goto(`${env.gw.url}/dashboard`);
  await p.getByTestId('token').fill(token);
  await Promise.all([p.waitForURL(/\/dashboard(\?.*)?$/), p.getByTestId('sign-in').click()]);
  await p.getByTestId('nav').waitFor();
}

/** Opens a view by its nav link and waits until it has loaded. */
async function open(view: string) {
  // Forget the view's last state first, so the wait below is for this visit's load.
  await page.evaluate((v) => document.getElementById(`view-${v}`)?.removeAttribute('data-state'), view);
  await page.evaluate(() => {
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  });
  await page.getByTestId(`nav-${view}`).click();
  await page.locator(`#view-${view}[data-state="ready"]`).waitFor();
}

const noSidewaysScroll = (p: Page) => p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

describe('the console in headless Chromium', () => {
  beforeAll(async () => {
    seed = await env.gw.createKey({ name: 'seed-app' });
    other = await env.gw.createKey({ name: 'other-app' });
    const res = await env.gw.admin('/admin/keys', { body: { workspace: seed.workspace, name: 'seed-finance', scopes: ['reports'] } });
    reportsKey = (await res.json()).key;
    expect(
      await chat(
        seed.key,
        { model: MODEL, messages: [{ role: 'user', content: 'My order number is 7731.' }] },
        { 'x-thread-id': 'support-42' },
      ),
    ).toBe(200);
    expect(
      await chat(seed.key, { model: MODEL, messages: [{ role: 'user', content: 'Is it shipped yet?' }] }, { 'x-thread-id': 'support-42' }),
    ).toBe(200);
    expect(await chat(seed.key, { model: 'anthropic/claude-3.5-haiku', messages: [{ role: 'user', content: 'no thread here' }] })).toBe(
      200,
    );
    expect(
      await chat(seed.key, { model: MODEL, messages: [{ role: 'user', content: 'fail' }], fake: { mode: 'error', status: 500 } }),
    ).toBeGreaterThanOrEqual(500);
    expect(
      await chat(
        other.key,
        { model: MODEL, messages: [{ role: 'user', content: 'other workspace secret-word-zebra' }] },
        { 'x-thread-id': 'other-thread' },
      ),
    ).toBe(200);
    await env.gw.deps.usage.flush();
    await env.gw.deps.memory.flush();

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    const origin = new URL(env.gw.url).origin;
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreignRequests.push(r.url());
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('signs in once with the admin token: an HttpOnly, SameSite=Strict session; the token is nowhere in the page', async () => {
    await signIn(page, ADMIN_TOKEN);
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: 'cmg_dashboard', httpOnly: true, sameSite: 'Strict' });
    expect(cookies[0].value).not.toContain(ADMIN_TOKEN);
    expect(page.url()).not.toContain(ADMIN_TOKEN);
    const stored = await page.evaluate(() => [
      document.cookie,
      JSON.stringify(localStorage),
      JSON.stringify(sessionStorage),
      document.documentElement.outerHTML,
    ]);
    expect(stored[0]).toBe('');
    for (const s of stored) expect(s).not.toContain(ADMIN_TOKEN);
    expect(await page.getByTestId('nav').locator('a').allInnerTexts()).toEqual(['Usage', 'Requests', 'Keys', 'Workspaces', 'Threads']);
    await page.locator('main[data-state="ready"]').waitFor();
  });

  it('creates a workspace', async () => {
    await open('workspaces');
    await page.getByTestId('workspace-name').fill(WS);
    await page.getByTestId('workspace-submit').click();
    await page.getByTestId('table-workspaces').locator('tr', { hasText: WS }).waitFor();
    const list = await (await env.gw.admin('/admin/workspaces')).json();
    expect(list.data.map((w: { name: string }) => w.name)).toContain(WS);
  });

  it('creates a key and shows it once', async () => {
    await open('keys');
    await page.getByTestId('key-workspace').selectOption({ label: WS });
    created = { name: 'console-made', key: '' };
    await page.getByTestId('key-name').fill(created.name);
    await page.getByTestId('key-rpm').fill('60');
    await page.getByTestId('key-submit').click();
    await page.getByTestId('key-reveal').waitFor();
    created.key = await page.getByTestId('new-key').innerText();
    expect(created.key).toMatch(/^cmg_[A-Za-z0-9_-]{40,}$/);
    // The key works, and the list shows only its prefix.
    expect((await fetch(`${env.gw.url}/v1/models`, { headers: { authorization: `Bearer ${created.key}` } })).status).toBe(200);
    const row = page.getByTestId('table-keys').locator('tr', { hasText: created.name });
    await row.waitFor();
    expect(await row.getByTestId('key-row-rpm').innerText()).toBe('60');
    expect(await page.getByTestId('table-keys').innerText()).not.toContain(created.key);
    await page.getByTestId('key-reveal-done').click();
    expect(await page.getByTestId('key-reveal').isHidden()).toBe(true);
    expect(await page.content()).not.toContain(created.key);
    await page.reload();
    await page.locator('#view-keys[data-state="ready"]').waitFor();
    expect(await page.content()).not.toContain(created.key);
  });

  it('edits the key’s budget, limits and expiry, and shows spend against the budget', async () => {
    expect(await chat(created.key, { model: MODEL, messages: [{ role: 'user', content: 'spend a little' }] })).toBe(200);
    await env.gw.deps.usage.flush();
    await open('keys');
    const row = page.getByTestId('table-keys').locator('tr', { hasText: created.name });
    await row.getByTestId('key-edit-button').click();
    const dialog = page.getByTestId('key-edit');
    await dialog.waitFor();
    expect(await dialog.getByTestId('edit-rpm').inputValue()).toBe('60');
    await dialog.getByTestId('edit-budget').fill('2.5');
    await dialog.getByTestId('edit-period').selectOption('day');
    await dialog.getByTestId('edit-tpm').fill('50000');
    await dialog.getByTestId('edit-expires').fill('2031-06-30T12:00');
    await dialog.getByTestId('edit-scope-reports').check();
    await dialog.getByTestId('edit-save').click();
    await page.getByTestId('keys-notice').filter({ hasText: 'Saved' }).waitFor();
    const key = (await (await env.gw.admin('/admin/keys')).json()).data.find((k: { name: string }) => k.name === created.name);
    expect(Number(key.budget_usd)).toBe(2.5);
    expect(key).toMatchObject({
      budget_period: 'day',
      rpm: 60,
      tpm: 50000,
      expires_at: '2031-06-30T12:00:00.000Z',
      scopes: ['proxy', 'reports'],
    });
    expect(Number(key.spend_usd)).toBeGreaterThan(0);
    const spend = row.getByTestId('key-spend');
    expect(await spend.getAttribute('data-budget')).toBe(key.budget_usd);
    expect(await spend.getAttribute('data-spend')).toBe(key.spend_usd);
    expect(await spend.innerText()).toMatch(/^\$0\.\d+ of \$2\.50 \/ day/);
    expect(await row.getByTestId('key-row-tpm').innerText()).toBe('50,000');
    // Clearing the budget field removes the budget.
    await row.getByTestId('key-edit-button').click();
    await dialog.getByTestId('edit-budget').fill('');
    await dialog.getByTestId('edit-save').click();
    await page.getByTestId('keys-notice').filter({ hasText: 'Saved' }).waitFor();
    await expect
      .poll(
        async () =>
          (await (await env.gw.admin('/admin/keys')).json()).data.find((k: { name: string }) => k.name === created.name).budget_usd,
      )
      .toBeNull();
    await row.getByTestId('key-edit-button').click();
    await dialog.getByTestId('edit-budget').fill('2.5');
    await dialog.getByTestId('edit-save').click();
    await page.getByTestId('keys-notice').filter({ hasText: 'Saved' }).waitFor();
  });

  it('revokes the key after a confirmation: the gateway refuses it at once', async () => {
    const row = page.getByTestId('table-keys').locator('tr', { hasText: created.name });
    await row.getByTestId('key-revoke').click();
    expect((await fetch(`${env.gw.url}/v1/models`, { headers: { authorization: `Bearer ${created.key}` } })).status).toBe(200);
    await row.getByTestId('key-revoke-confirm').click();
    await page.getByTestId('keys-notice').filter({ hasText: 'Revoked' }).waitFor();
    expect((await fetch(`${env.gw.url}/v1/models`, { headers: { authorization: `Bearer ${created.key}` } })).status).toBe(401);
    expect(await page.getByTestId('table-keys').locator('tr', { hasText: created.name }).count()).toBe(0);
    await page.getByTestId('keys-show-revoked').check();
    expect(await page.getByTestId('table-keys').locator('tr', { hasText: created.name }).getByTestId('key-state').innerText()).toBe(
      'revoked',
    );
  });

  it('browses a workspace’s threads, reads the items and shows what the next request would get', async () => {
    await open('threads');
    await page.getByTestId('threads-workspace').selectOption({ label: seed.workspace });
    await page.locator('#view-threads[data-state="ready"]').waitFor();
    const link = page.getByTestId('table-threads').getByRole('link', { name: 'support-42' });
    await link.waitFor();
    expect(await page.getByTestId('table-threads').innerText()).not.toContain('other-thread');
    await link.click();
    await page.getByTestId('thread-detail').waitFor();
    await expect.poll(() => page.getByTestId('table-items').locator('tbody tr').count()).toBe(4);
    const items = await page.getByTestId('table-items').innerText();
    expect(items).toContain('My order number is 7731.');
    expect(items).toContain('Is it shipped yet?');
    expect(await page.getByTestId('dryrun-model').inputValue()).toBe(MODEL);
    await page.getByTestId('dryrun-message').fill('And when will it arrive?');
    await page.getByTestId('dryrun-submit').click();
    await page.getByTestId('dryrun-result').waitFor();
    const messages = page.getByTestId('dryrun-messages').locator('li');
    expect(await messages.count()).toBe(5);
    expect(await messages.evaluateAll((lis) => lis.map((li) => li.getAttribute('data-role')))).toEqual([
      'user',
      'assistant',
      'user',
      'assistant',
      'user',
    ]);
    expect(await messages.first().innerText()).toContain('7731');
    expect(await messages.last().innerText()).toContain('And when will it arrive?');
    expect(await page.getByTestId('dryrun-summary').innerText()).toMatch(
      /5 messages, about \d+ prompt tokens; memory \d+ of a [\d,]+-token budget/,
    );
    // A dry run stores nothing.
    const stored = await (await env.gw.admin(`/admin/workspaces/${seed.workspace}/threads/support-42/items`)).json();
    expect(stored.data).toHaveLength(4);
    await page.screenshot({ path: new URL('console-thread.png', ARTIFACTS).pathname, fullPage: true });
  });

  it('filters the request log by key, model and status, and follows a request to its thread', async () => {
    await open('requests');
    const rows = page.getByTestId('table-requests').locator('tbody tr[data-request]');
    expect(await rows.count()).toBeGreaterThanOrEqual(6);
    await page.getByTestId('requests-key').fill('seed-app');
    await page.getByTestId('requests-apply').click();
    await page.locator('#view-requests[data-state="ready"]').waitFor();
    await expect.poll(() => rows.count()).toBe(4);
    await page.getByTestId('requests-status').selectOption('upstream_error');
    await page.getByTestId('requests-apply').click();
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().innerText()).toMatch(/upstream_error · 5\d\d/);
    await page.getByTestId('requests-status').selectOption('');
    await page.getByTestId('requests-model').fill(MODEL);
    await page.getByTestId('requests-apply').click();
    await expect.poll(() => rows.count()).toBe(3);
    const links = page.getByTestId('table-requests').getByTestId('thread-link');
    expect(await links.count()).toBe(2);
    await links.first().click();
    await page.locator('#view-threads[data-state="ready"]').waitFor();
    await page.getByTestId('thread-detail').waitFor();
    expect(await page.getByTestId('thread-id').innerText()).toBe('support-42');
    expect(page.url()).toContain('#threads/');
  });

  it('deletes a thread after a confirmation', async () => {
    await page.getByTestId('thread-delete').click();
    await page.getByTestId('thread-delete-confirm').click();
    await page.getByTestId('threads-notice').filter({ hasText: 'Deleted thread' }).waitFor();
    expect((await env.gw.admin(`/admin/workspaces/${seed.workspace}/threads/support-42`)).status).toBe(404);
    await page.locator('#view-threads[data-state="ready"]').waitFor();
    expect(await page.getByTestId('table-threads').innerText()).not.toContain('support-42');
  });

  it('fits a 390 px wide phone screen on every view: no sideways scroll of the page', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const view of ['usage', 'requests', 'keys', 'workspaces', 'threads']) {
      await open(view);
      expect(await noSidewaysScroll(page), view).toBe(true);
      await page.screenshot({ path: new URL(`console-390-${view}.png`, ARTIFACTS).pathname, fullPage: true });
    }
    // Wide tables scroll inside their own box instead.
    await open('requests');
    const box = await page.getByTestId('table-requests').evaluate((t) => {
      const wrap = t.parentElement!;
      return { wrap: wrap.clientWidth, table: t.scrollWidth, overflow: getComputedStyle(wrap).overflowX };
    });
    expect(box.wrap).toBeLessThanOrEqual(390);
    expect(box.overflow).toBe('auto');
    // A thread with its items and a dry run, and the key editor, fit too.
    await page.goto(`${env.gw.url}/dashboard#threads/${encodeURIComponent(other.workspace)}/other-thread`);
    await page.getByTestId('thread-detail').waitFor();
    await expect.poll(() => page.getByTestId('table-items').locator('tbody tr').count()).toBe(2);
    await page.getByTestId('dryrun-message').fill('What was the secret word? '.repeat(20));
    await page.getByTestId('dryrun-submit').click();
    await page.getByTestId('dryrun-result').waitFor();
    expect(await noSidewaysScroll(page)).toBe(true);
    await page.screenshot({ path: new URL('console-390-thread.png', ARTIFACTS).pathname, fullPage: true });
    await open('keys');
    await page.getByTestId('table-keys').getByTestId('key-edit-button').first().click();
    await page.getByTestId('key-edit').waitFor();
    expect(await noSidewaysScroll(page)).toBe(true);
    const dialog = await page.getByTestId('key-edit').boundingBox();
    expect(dialog!.x).toBeGreaterThanOrEqual(0);
    expect(dialog!.x + dialog!.width).toBeLessThanOrEqual(390);
    await page.getByTestId('edit-cancel').click();
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('shows a reports key its own workspace’s usage and requests only, and none of the admin views', async () => {
    const jar = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await jar.newPage();
    p.on('pageerror', (e) => pageErrors.push(String(e)));
    await signIn(p, reportsKey);
    expect(await p.getByTestId('nav').locator('a').allInnerTexts()).toEqual(['Usage', 'Requests']);
    for (const view of ['keys', 'workspaces', 'threads']) expect(await p.locator(`#view-${view}`).count()).toBe(0);
    await p.locator('main[data-state="ready"]').waitFor();
    const keyTable = await p.getByTestId('table-by-key').innerText();
    expect(keyTable).toContain('seed-app');
    expect(keyTable).not.toContain('other-app');
    await p.getByTestId('nav-requests').click();
    await p.locator('#view-requests[data-state="ready"]').waitFor();
    const log = await p.getByTestId('table-requests').innerText();
    expect(log).toContain(MODEL);
    expect(await p.getByTestId('table-requests').locator('tbody tr[data-request]').count()).toBe(4);
    expect(await p.getByTestId('table-requests').getByTestId('thread-link').count()).toBe(0);
    // Typing an admin view's address shows usage; the admin APIs refuse the session.
    await p.goto(`${env.gw.url}/dashboard#keys`);
    await p.locator('#view-usage:not([hidden])').waitFor();
    const statuses = await p.evaluate(async (ws) => {
      const csrf = document.querySelector('meta[name="csrf-token"]')!.getAttribute('content')!;
      const post = (path: string, body: unknown) =>
        fetch(path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
          body: JSON.stringify(body),
        }).then((r) => r.status);
      return [
        await fetch('/admin/keys').then((r) => r.status),
        await fetch('/admin/workspaces').then((r) => r.status),
        await fetch(`/admin/workspaces/${ws}/threads`).then((r) => r.status),
        await post('/admin/keys', { workspace: ws, name: 'sneaky' }),
        await post('/admin/workspaces', { name: 'sneaky-ws' }),
      ];
    }, seed.workspace);
    expect(statuses).toEqual([403, 403, 403, 403, 403]);
    await jar.close();
  });

  it('refuses changes from the admin session without its CSRF token', async () => {
    const statuses = await page.evaluate(async () => {
      const csrf = document.querySelector('meta[name="csrf-token"]')!.getAttribute('content')!;
      const post = (headers: Record<string, string>, name: string) =>
        fetch('/admin/workspaces', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ name }),
        }).then((r) => r.status);
      return [await post({}, 'csrf-less'), await post({ 'x-csrf-token': csrf }, 'csrf-ful')];
    });
    expect(statuses).toEqual([403, 201]);
  });

  it('loaded nothing from elsewhere and threw no script errors', () => {
    expect(foreignRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
