import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, setCookie } from 'hono/cookie';
import { GatewayError } from '../errors.js';
import {
  SESSION_COOKIE,
  checkReportsToken,
  csrfTokenFor,
  resolveReportsAccess,
  sessionCookieValue,
  type ReportsAccess,
} from '../middleware/reports-access.js';
import type { AppContext, AppDeps, AppEnv } from './context.js';
import { consolePage, signInPage, type Assets } from './dashboard/pages.js';

const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};
const SESSION_MAX_AGE_S = 12 * 3600;
const DAY_MS = 86_400_000;
const REJECTED = 'That token was not accepted.';

interface Asset {
  body: string;
  type: string;
  etag: string;
}

function loadAsset(file: string, type: string): Asset {
  const body = readFileSync(new URL(`./dashboard/${file}`, import.meta.url), 'utf8');
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` };
}

/** Behind a TLS-terminating proxy the request itself is http: trust its X-Forwarded-Proto too. */
function overHttps(c: AppContext): boolean {
  const forwarded = c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  return forwarded === 'https' || new URL(c.req.url).protocol === 'https:';
}

/**
 * Form posts must come from this origin. The SameSite=Strict cookie already keeps other sites from
 * riding a session; this also stops them from signing a browser in (or out) behind its back.
 */
function sameOrigin(c: AppContext): boolean {
  // Browsers send Sec-Fetch-Site on every request; Origin is "null" under Referrer-Policy: no-referrer.
  const site = c.req.header('sec-fetch-site');
  if (site) return site === 'same-origin' || site === 'none';
  const origin = c.req.header('origin');
  if (!origin || origin === 'null') return true;
  try {
    return new URL(origin).host === c.req.header('host');
  } catch {
    return false;
  }
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const validDay = (s: string | undefined): s is string => {
  const ms = s && /^\d{4}-\d{2}-\d{2}$/.test(s) ? Date.parse(s) : NaN;
  return Number.isFinite(ms) && isoDay(ms) === s;
};

/** The console's client modules (app.js imports the others) and its stylesheet: an allowlist, never the directory. */
export const CONSOLE_SCRIPTS = ['app.js', 'lib.js', 'chart.js', 'usage.js', 'requests.js', 'keys.js', 'workspaces.js', 'threads.js'];

/**
 * `/dashboard`: the console. Sign-in form, session cookie, and one page whose client reads the JSON
 * APIs with the cookie: `/admin/usage…` (finance: the admin or a `reports` key) and, for admin
 * sessions, `/admin/keys`, `/admin/workspaces` and `/admin/workspaces/{ws}/threads…` (changes carry
 * the session's CSRF token).
 */
export function dashboardRoutes(deps: AppDeps) {
  const scripts = new Map(CONSOLE_SCRIPTS.map((file) => [file, loadAsset(file, 'text/javascript; charset=utf-8')]));
  const css = loadAsset('app.css', 'text/css; charset=utf-8');
  // app.js's version covers every module: a change to any of them gives the page a new URL.
  const jsVersion = createHash('sha256')
    .update([...scripts.values()].map((a) => a.etag).join())
    .digest('base64url')
    .slice(0, 8);
  const assets: Assets = { jsVersion, cssVersion: css.etag.slice(1, 9) };
  const dashboard = new Hono<AppEnv>();

  dashboard.use('*', async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(PAGE_HEADERS)) if (!c.res.headers.has(name)) c.header(name, value);
  });

  const signIn = (c: AppContext, status: 200 | 400 | 401 | 403 | 413 | 503, error?: string) => c.html(signInPage(assets, error), status);

  async function describe(access: ReportsAccess): Promise<string> {
    if (access.kind === 'admin') return 'admin';
    const [key, workspace] = await Promise.all([deps.keys.getKey(access.keyId), deps.keys.findWorkspace(access.workspaceId)]);
    return `key “${key?.name ?? access.keyId}” (workspace ${workspace?.name ?? access.workspaceId})`;
  }

  dashboard.get('/', async (c) => {
    let access: ReportsAccess;
    try {
      access = await resolveReportsAccess(c, deps);
    } catch (err) {
      if (err instanceof GatewayError && err.status < 500) return signIn(c, 200);
      deps.logger.warn({ request_id: c.get('requestId'), err }, 'dashboard: cannot check the session');
      return signIn(c, 503, 'The gateway cannot check sign-ins right now; try again shortly.');
    }
    const today = isoDay(deps.now());
    const from = c.req.query('from');
    const to = c.req.query('to');
    const range =
      validDay(from) && validDay(to) && from <= to ? { from, to } : { from: isoDay(Date.parse(today) - 29 * DAY_MS), to: today };
    return c.html(
      consolePage(assets, {
        who: await describe(access),
        role: access.kind,
        csrf: csrfTokenFor(c, deps) ?? '',
        ...range,
        usageEnabled: deps.usage.enabled,
      }),
    );
  });

  dashboard.post('/login', bodyLimit({ maxSize: 8 * 1024, onError: (c) => signIn(c as AppContext, 413, REJECTED) }), async (c) => {
    if (!sameOrigin(c)) return signIn(c, 403, 'Sign in from this page.');
    if (!/^application\/x-www-form-urlencoded\b/i.test(c.req.header('content-type') ?? '')) {
      return signIn(c, 400, 'Send the sign-in form as application/x-www-form-urlencoded.');
    }
    const token = new URLSearchParams(await c.req.text()).get('token')?.trim() ?? '';
    let access: ReportsAccess | null = null;
    try {
      access = token ? await checkReportsToken(token, deps) : null;
    } catch (err) {
      deps.logger.warn({ request_id: c.get('requestId'), err }, 'dashboard: cannot check a sign-in');
      return signIn(c, 503, 'The gateway cannot check sign-ins right now; try again shortly.');
    }
    if (!access) return signIn(c, 401, REJECTED);
    setCookie(c, SESSION_COOKIE, sessionCookieValue(access, deps), {
      path: '/',
      httpOnly: true,
      sameSite: 'Strict',
      secure: overHttps(c),
      maxAge: SESSION_MAX_AGE_S,
    });
    return c.redirect('/dashboard', 303);
  });

  dashboard.post('/logout', (c) => {
    if (!sameOrigin(c)) return signIn(c, 403, 'Sign out from the dashboard page.');
    deleteCookie(c, SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'Strict', secure: overHttps(c) });
    return c.redirect('/dashboard', 303);
  });

  const serveAsset = (asset: Asset) => (c: AppContext) => {
    // Versioned URLs (?v=hash) change with the content; revalidate cheaply with the ETag all the same.
    c.header('Cache-Control', 'no-cache');
    c.header('ETag', asset.etag);
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304);
    c.header('Content-Type', asset.type);
    return c.body(asset.body);
  };
  for (const [file, asset] of scripts) dashboard.get(`/${file}`, serveAsset(asset));
  dashboard.get('/app.css', serveAsset(css));

  return dashboard;
}
