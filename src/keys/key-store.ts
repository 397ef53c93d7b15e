import { asc, eq, or } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { storableText } from '../db/storable.js';
import { apiKeys, workspaces } from '../db/schema/index.js';
import { GatewayError } from '../errors.js';
import { displayPrefix, generateKey, hashKey, newId } from './key-material.js';

export const SCOPES = ['proxy', 'reports'] as const;
export type Scope = (typeof SCOPES)[number];

export interface Workspace {
  id: string;
  name: string;
  createdAt: Date;
}

export type KeyRow = typeof apiKeys.$inferSelect;

export interface NewKeyInput {
  workspace: string;
  name: string;
  scopes?: Scope[];
  rpm?: number | null;
  tpm?: number | null;
  budgetUsd?: string | null;
  budgetPeriod?: 'day' | 'month' | null;
  expiresAt?: Date | null;
}

export type KeyPatch = Partial<Omit<NewKeyInput, 'workspace'>>;

/** Workspaces and keys in the database. Every query is parameterized by Drizzle. */
export function createKeyStore(db: Db) {
  // Names and ids from callers go through storableText: stored the way Postgres takes them, and
  // looked up the same way (a name given with a NUL finds the workspace created with it).
  async function findWorkspace(nameOrId: string): Promise<Workspace | undefined> {
    nameOrId = storableText(nameOrId);
    const rows = await db
      .select()
      .from(workspaces)
      .where(or(eq(workspaces.id, nameOrId), eq(workspaces.name, nameOrId)))
      .limit(1);
    return rows[0];
  }

  return {
    findWorkspace,

    async createWorkspace(name: string): Promise<Workspace> {
      const existing = await findWorkspace(name);
      if (existing && existing.name === name) throw new GatewayError('conflict', `Workspace "${name}" already exists`, { param: 'name' });
      const [row] = await db
        .insert(workspaces)
        .values({ id: newId('ws'), name: storableText(name) })
        .returning();
      return row;
    },

    listWorkspaces(): Promise<Workspace[]> {
      return db.select().from(workspaces).orderBy(asc(workspaces.createdAt));
    },

    /** Creates a key; the plaintext is returned this once and only its hash is stored. */
    async createKey(input: NewKeyInput): Promise<{ row: KeyRow; key: string; workspace: Workspace }> {
      const workspace = await findWorkspace(input.workspace);
      if (!workspace) throw new GatewayError('not_found', `Workspace "${input.workspace}" not found`, { param: 'workspace' });
      const key = generateKey();
      const [row] = await db
        .insert(apiKeys)
        .values({
          id: newId('key'),
          workspaceId: workspace.id,
          name: storableText(input.name),
          keyHash: hashKey(key),
          prefix: displayPrefix(key),
          scopes: input.scopes ?? ['proxy'],
          rpm: input.rpm ?? null,
          tpm: input.tpm ?? null,
          budgetUsd: input.budgetUsd ?? null,
          budgetPeriod: input.budgetUsd ? (input.budgetPeriod ?? 'month') : null,
          expiresAt: input.expiresAt ?? null,
        })
        .returning();
      return { row, key, workspace };
    },

    async listKeys(workspaceId?: string): Promise<(KeyRow & { workspaceName: string })[]> {
      const rows = await db
        .select({ key: apiKeys, workspaceName: workspaces.name })
        .from(apiKeys)
        .innerJoin(workspaces, eq(workspaces.id, apiKeys.workspaceId))
        .where(workspaceId ? eq(apiKeys.workspaceId, workspaceId) : undefined)
        .orderBy(asc(apiKeys.createdAt));
      return rows.map((r) => ({ ...r.key, workspaceName: r.workspaceName }));
    },

    async getKey(id: string): Promise<KeyRow | undefined> {
      const rows = await db
        .select()
        .from(apiKeys)
        .where(eq(apiKeys.id, storableText(id)))
        .limit(1);
      return rows[0];
    },

    async findKeyByHash(keyHash: string): Promise<KeyRow | undefined> {
      const rows = await db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash)).limit(1);
      return rows[0];
    },

    async updateKey(id: string, patch: KeyPatch): Promise<KeyRow | undefined> {
      const values: Partial<typeof apiKeys.$inferInsert> = {};
      if (patch.name !== undefined) values.name = storableText(patch.name);
      if (patch.scopes !== undefined) values.scopes = patch.scopes;
      if (patch.rpm !== undefined) values.rpm = patch.rpm;
      if (patch.tpm !== undefined) values.tpm = patch.tpm;
      if (patch.budgetUsd !== undefined) values.budgetUsd = patch.budgetUsd;
      if (patch.budgetPeriod !== undefined) values.budgetPeriod = patch.budgetPeriod;
      if (patch.expiresAt !== undefined) values.expiresAt = patch.expiresAt;
      if (Object.keys(values).length === 0) return this.getKey(id);
      const rows = await db
        .update(apiKeys)
        .set(values)
        .where(eq(apiKeys.id, storableText(id)))
        .returning();
      return rows[0];
    },

    async revokeKey(id: string, at: Date): Promise<KeyRow | undefined> {
      const rows = await db
        .update(apiKeys)
        .set({ revokedAt: at })
        .where(eq(apiKeys.id, storableText(id)))
        .returning();
      return rows[0];
    },
  };
}

export type KeyStore = ReturnType<typeof createKeyStore>;

/** The public view of a key: never its hash. */
export function presentKey(row: KeyRow, workspaceName?: string) {
  return {
    id: row.id,
    object: 'api_key',
    workspace: workspaceName ?? row.workspaceId,
    workspace_id: row.workspaceId,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    rpm: row.rpm,
    tpm: row.tpm,
    budget_usd: row.budgetUsd,
    budget_period: row.budgetPeriod,
    expires_at: row.expiresAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}

export function presentWorkspace(w: Workspace) {
  return { id: w.id, object: 'workspace', name: w.name, created_at: w.createdAt.toISOString() };
}
