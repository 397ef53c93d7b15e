import { Hono } from 'hono';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { requireAdmin } from '../middleware/admin-access.js';
import { SCOPES, presentKey, presentWorkspace } from '../keys/key-store.js';
import { adminThreadRoutes } from './admin-threads.js';
import type { AppDeps, AppEnv } from './context.js';
import { readJsonObject } from './read-json.js';
import { keySpend } from '../usage/key-spend.js';

const money = z
  .union([z.string(), z.number()])
  .transform((v) => String(v))
  .refine((v) => /^\d{1,10}(\.\d{1,10})?$/.test(v), 'must be a non-negative decimal amount');

const limits = {
  scopes: z.array(z.enum(SCOPES)).min(1).optional(),
  rpm: z.number().int().positive().nullable().optional(),
  tpm: z.number().int().positive().nullable().optional(),
  budget_usd: money.nullable().optional(),
  budget_period: z.enum(['day', 'month']).nullable().optional(),
  expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
};

// strict(): only the documented fields are accepted (no mass assignment of ids, hashes, dates).
export const createKeyBody = z.object({ workspace: z.string().min(1), name: z.string().min(1).max(200), ...limits }).strict();
export const patchKeyBody = z.object({ name: z.string().min(1).max(200).optional(), ...limits }).strict();
export const createWorkspaceBody = z
  .object({ name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 . _ -') })
  .strict();

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    const param = issue.path.join('.') || null;
    const message =
      issue.code === 'unrecognized_keys' ? `Unknown field(s): ${issue.keys.join(', ')}` : `${param ?? 'body'}: ${issue.message}`;
    throw new GatewayError('invalid_value', message, { param: param ?? (issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined) });
  }
  return result.data;
}

const toInput = (b: z.infer<typeof patchKeyBody>) => ({
  name: b.name,
  scopes: b.scopes,
  rpm: b.rpm,
  tpm: b.tpm,
  budgetUsd: b.budget_usd,
  budgetPeriod: b.budget_period,
  expiresAt: b.expires_at === undefined ? undefined : b.expires_at === null ? null : new Date(b.expires_at),
});

/** `/admin/*`: workspaces and keys, behind ADMIN_TOKEN (503 `admin_disabled` while it is unset). */
export function adminRoutes(deps: AppDeps) {
  const admin = new Hono<AppEnv>();

  const adminOnly = requireAdmin(deps);
  admin.use('*', async (c, next) => {
    // Reports have their own access rule (admin token or a `reports` key): see admin-usage.ts.
    if (c.req.path === '/admin/usage' || c.req.path.startsWith('/admin/usage/')) return next();
    return adminOnly(c, next);
  });
  admin.route('/workspaces/:workspace/threads', adminThreadRoutes(deps));

  admin.post('/workspaces', async (c) => {
    const { body } = await readJsonObject(c, 64 * 1024);
    const { name } = parse(createWorkspaceBody, body);
    return c.json(presentWorkspace(await deps.keys.createWorkspace(name)), 201);
  });

  admin.get('/workspaces', async (c) => {
    const rows = await deps.keys.listWorkspaces();
    return c.json({ object: 'list', data: rows.map(presentWorkspace) });
  });

  admin.post('/keys', async (c) => {
    const { body } = await readJsonObject(c, 64 * 1024);
    const input = parse(createKeyBody, body);
    const { row, key, workspace } = await deps.keys.createKey({ workspace: input.workspace, ...toInput(input), name: input.name });
    return c.json({ ...presentKey(row, workspace.name), key }, 201);
  });

  admin.get('/keys', async (c) => {
    const filter = c.req.query('workspace');
    let workspaceId: string | undefined;
    if (filter) {
      const ws = await deps.keys.findWorkspace(filter);
      if (!ws) throw new GatewayError('not_found', `Workspace "${filter}" not found`, { param: 'workspace' });
      workspaceId = ws.id;
    }
    const rows = await deps.keys.listKeys(workspaceId);
    const spend = await keySpend(deps.database.db, rows, deps.now(), deps.usage.spend);
    const data = rows.map((r) => ({ ...presentKey(r, r.workspaceName), ...spend.get(r.id) }));
    return c.json({ object: 'list', data });
  });

  admin.patch('/keys/:id', async (c) => {
    const { body } = await readJsonObject(c, 64 * 1024);
    const patch = parse(patchKeyBody, body);
    const row = await deps.keys.updateKey(c.req.param('id'), toInput(patch));
    if (!row) throw new GatewayError('not_found', 'No such key.');
    await deps.keyEvents.changed(row.id);
    return c.json(presentKey(row));
  });

  admin.post('/keys/:id/revoke', async (c) => {
    const row = await deps.keys.revokeKey(c.req.param('id'), new Date(deps.now()));
    if (!row) throw new GatewayError('not_found', 'No such key.');
    await deps.keyEvents.changed(row.id);
    return c.json(presentKey(row));
  });

  return admin;
}
