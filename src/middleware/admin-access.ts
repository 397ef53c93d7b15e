import type { MiddlewareHandler } from 'hono';
import { GatewayError } from '../errors.js';
import { bearerToken } from '../keys/key-material.js';
import type { AppDeps, AppEnv } from '../routes/context.js';
import { isAdminToken, sessionOf } from './reports-access.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * `/admin/*` (but reports, which have their own rule): the admin token as a bearer, or a console
 * session signed in with it. A session that changes something must also send its CSRF token
 * (`x-csrf-token`, which only the console page knows) from this origin: the SameSite=Strict cookie
 * alone keeps other sites out, this keeps them out even where a browser gets SameSite wrong.
 * A `reports` key's session reads usage only: 403 here.
 */
export function requireAdmin(deps: AppDeps): MiddlewareHandler<AppEnv> {
  const disabled = () =>
    new GatewayError(
      'admin_disabled',
      "Admin routes are disabled: set ADMIN_TOKEN (at least 16 characters) in the gateway's environment and restart it to enable them.",
    );
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (header !== undefined) {
      const token = bearerToken(header);
      const valid = !!token && isAdminToken(token, deps);
      // Without ADMIN_TOKEN only the local CLI's one-off token (DATA_DIR/gateway.lock) gets in;
      // everyone else is told the routes are off and how to turn them on, whatever they sent.
      if (!deps.config.adminToken && !valid) throw disabled();
      if (!valid) throw new GatewayError('invalid_api_key', 'A valid admin token is required.');
      return next();
    }
    if (!deps.config.adminToken) throw disabled();
    const session = sessionOf(c, deps);
    if (!session) throw new GatewayError('invalid_api_key', 'A valid admin token is required.');
    if (session.access.kind !== 'admin') {
      throw new GatewayError('permission_denied', 'This needs the admin token; a reports key reads its workspace’s usage only.');
    }
    if (!SAFE_METHODS.has(c.req.method)) {
      const site = c.req.header('sec-fetch-site');
      if ((site && site !== 'same-origin') || !session.csrfOk) {
        throw new GatewayError('permission_denied', 'This change needs the console’s CSRF token (x-csrf-token) from the console page.');
      }
    }
    await next();
  };
}
