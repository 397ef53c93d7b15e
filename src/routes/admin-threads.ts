import { Hono } from 'hono';
import { GatewayError } from '../errors.js';
import type { AppDeps, AppEnv } from './context.js';
import { threadRoutes } from './threads.js';

/**
 * `/admin/workspaces/{workspace}/threads…`: the thread API (list, items, delete, the context dry
 * run) for operators, on the workspace named in the path (name or id). The very routes a key gets
 * under `/v1/threads`, scoped the same way: the workspace stands in for the caller's.
 */
export function adminThreadRoutes(deps: AppDeps) {
  const threads = new Hono<AppEnv>();
  threads.use('*', async (c, next) => {
    const name = c.req.param('workspace') ?? '';
    const workspace = await deps.keys.findWorkspace(name);
    if (!workspace) throw new GatewayError('not_found', `Workspace "${name}" not found.`, { param: 'workspace' });
    c.set('caller', { keyId: 'admin', workspaceId: workspace.id, scopes: [], rpm: null, tpm: null, budgetUsd: null, budgetPeriod: null });
    await next();
  });
  threads.route('/', threadRoutes(deps));
  return threads;
}
