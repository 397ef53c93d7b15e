import type { MiddlewareHandler } from 'hono';
import type { Scope } from '../keys/key-store.js';
import type { KeyVerifier } from '../keys/verify-key.js';
import type { AppEnv } from '../routes/context.js';

/** Requires a gateway key with the given scope; sets `caller`. */
export const requireKey =
  (verifier: KeyVerifier, scope: Scope): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const caller = await verifier.verify(c.req.header('authorization'), scope);
    c.set('caller', caller);
    c.get('logFields').workspace_id = caller.workspaceId;
    c.get('logFields').key_id = caller.keyId;
    await next();
  };
