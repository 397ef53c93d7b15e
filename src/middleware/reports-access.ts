import { createHash, createHmac, randomBytes } from 'node:crypto';
import { getCookie } from 'hono/cookie';
import { GatewayError } from '../errors.js';
import { bearerToken, matchesAnyToken, safeEqual } from '../keys/key-material.js';
import type { AppContext, AppDeps } from '../routes/context.js';

export type ReportsAccess = { kind: 'admin' } | { kind: 'key'; keyId: string; workspaceId: string };

export const SESSION_COOKIE = 'cmg_dashboard';
const SESSION_TTL_MS = 12 * 3_600_000;

// Sessions are signed, not stored, so any instance can check them. With ADMIN_TOKEN set the
// signing key derives from it (shared by every instance; rotating the token ends all sessions).
const processSecret = randomBytes(32);
function signingKey(deps: AppDeps): Buffer {
  return deps.config.adminToken ? createHash('sha256').update(`cmg-dashboard-session:${deps.config.adminToken}`).digest() : processSecret;
}

function sign(payload: string, deps: AppDeps): string {
  return createHmac('sha256', signingKey(deps)).update(payload).digest('base64url');
}

/** The cookie value for a dashboard session: payload.signature, expiring in 12 hours. */
export function sessionCookieValue(access: ReportsAccess, deps: AppDeps): string {
  const payload = Buffer.from(JSON.stringify({ ...access, exp: deps.now() + SESSION_TTL_MS })).toString('base64url');
  return `${payload}.${sign(payload, deps)}`;
}

/**
 * The console's CSRF token for a session: an HMAC of the session's own cookie payload, so it is
 * different for every sign-in, dies with the session, and can be checked without any state.
 */
function csrfOf(payload: string, deps: AppDeps): string {
  return sign(`csrf:${payload}`, deps);
}

/** The CSRF token of the request's session cookie (for the console page), or null without a valid session. */
export function csrfTokenFor(c: AppContext, deps: AppDeps): string | null {
  const cookie = getCookie(c, SESSION_COOKIE);
  if (!cookie || !readSession(cookie, deps)) return null;
  return csrfOf(cookie.split('.')[0], deps);
}

/**
 * The session cookie of a request, checked (signature, expiry) but not re-verified against the key
 * store; `csrfOk` says whether the request carries the session's CSRF token in `x-csrf-token`.
 */
export function sessionOf(c: AppContext, deps: AppDeps): { access: ReportsAccess; csrfOk: boolean } | null {
  const cookie = getCookie(c, SESSION_COOKIE);
  const access = cookie ? readSession(cookie, deps) : null;
  if (!cookie || !access) return null;
  const sent = c.req.header('x-csrf-token');
  return { access, csrfOk: !!sent && safeEqual(sent, csrfOf(cookie.split('.')[0], deps)) };
}

function readSession(value: string, deps: AppDeps): ReportsAccess | null {
  const [payload, signature] = value.split('.');
  if (!payload || !signature || !safeEqual(signature, sign(payload, deps))) return null;
  try {
    const data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    if (typeof data.exp !== 'number' || data.exp <= deps.now()) return null;
    if (data.kind === 'admin') return { kind: 'admin' };
    if (data.kind === 'key' && typeof data.keyId === 'string' && typeof data.workspaceId === 'string') {
      return { kind: 'key', keyId: data.keyId, workspaceId: data.workspaceId };
    }
  } catch {
    // malformed: no session
  }
  return null;
}

/** The admin token, or the local CLI's one-off token (see keys/instance-lock.ts). */
export function isAdminToken(token: string, deps: AppDeps): boolean {
  return matchesAnyToken(token, [deps.config.adminToken, deps.localAdminToken]);
}

/** Checks a raw token (admin token, or a key with the `reports` scope). */
export async function checkReportsToken(token: string, deps: AppDeps): Promise<ReportsAccess | null> {
  if (isAdminToken(token, deps)) return { kind: 'admin' };
  try {
    const caller = await deps.verifier.verify(`Bearer ${token}`, 'reports');
    return { kind: 'key', keyId: caller.keyId, workspaceId: caller.workspaceId };
  } catch (err) {
    if (err instanceof GatewayError && err.status >= 500) throw err;
    return null;
  }
}

/**
 * Who may read reports: the admin token, a key with the `reports` scope (its own workspace only),
 * or a dashboard session cookie. A key session is re-checked each time, so a revoke ends it.
 */
export async function resolveReportsAccess(c: AppContext, deps: AppDeps): Promise<ReportsAccess> {
  const header = c.req.header('authorization');
  if (header) {
    const token = bearerToken(header);
    if (token && isAdminToken(token, deps)) return { kind: 'admin' };
    const caller = await deps.verifier.verify(header, 'reports');
    return { kind: 'key', keyId: caller.keyId, workspaceId: caller.workspaceId };
  }
  const cookie = getCookie(c, SESSION_COOKIE);
  const session = cookie ? readSession(cookie, deps) : null;
  if (session?.kind === 'key') {
    const row = await deps.keys.getKey(session.keyId);
    if (!row || row.revokedAt || (row.expiresAt && row.expiresAt.getTime() <= deps.now()) || !row.scopes.includes('reports')) {
      throw new GatewayError('invalid_api_key', 'The session has ended; sign in again.');
    }
  }
  if (session) return session;
  throw new GatewayError('invalid_api_key', 'Reports need the admin token or a key with the "reports" scope.');
}
