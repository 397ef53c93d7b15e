import type { Config } from '../config.js';
import { openDatabase, type Database } from '../db/client.js';
import { databaseIdentity } from '../db/identity.js';
import { GatewayError } from '../errors.js';
import { readInstanceLock } from '../keys/instance-lock.js';
import { KEY_CHANGES_CHANNEL } from '../keys/key-events.js';
import { createKeyStore, presentKey, presentWorkspace, type Scope } from '../keys/key-store.js';
import { toCsv } from '../usage/csv.js';
import { keySpend } from '../usage/key-spend.js';
import { buildReportFilter, parseChoices, parseGroups, RECORD_ROUTES, RECORD_STATUSES, type ReportParams } from '../usage/report-filter.js';
import { reportColumns, usageRecordsPage, usageReport } from '../usage/reports.js';

export interface KeyCreateInput {
  workspace: string;
  name: string;
  scopes?: Scope[];
  rpm?: number;
  tpm?: number;
  budget_usd?: string;
  budget_period?: 'day' | 'month';
  expires_at?: string;
}

type Json = Record<string, any>;

/** What the CLI needs, whether it talks to the database or to a running gateway. */
export interface AdminClient {
  via: string;
  /** The running gateway this client goes through, when it does (its base URL). */
  gatewayUrl?: string;
  createWorkspace(name: string): Promise<Json>;
  listWorkspaces(): Promise<Json[]>;
  createKey(input: KeyCreateInput): Promise<Json>;
  /** Keys with their spend this period (`spend_usd`, `spend_period`, `budget_remaining_usd`). */
  listKeys(workspace?: string): Promise<Json[]>;
  revokeKey(id: string): Promise<Json>;
  /** The usage report as JSON (`{data, totals}`) or CSV text. */
  usage(query: UsageQuery): Promise<Json | string>;
  /** One page of per-request records (`{data, next_cursor}`), newest first. */
  usageRecords(query: RecordsQuery): Promise<Json>;
  close(): Promise<void>;
}

export interface UsageQuery extends ReportParams {
  groupBy?: string;
  csv?: boolean;
}

export interface RecordsQuery extends ReportParams {
  status?: string;
  route?: string;
  limit?: number;
  cursor?: string;
}

/** Which database the CLI works on, for the line every write command prints (credentials masked). */
export function describeTarget(config: Config, client: AdminClient): string {
  const { label } = databaseIdentity(config);
  if (client.gatewayUrl) return `${label} (through the running gateway at ${client.gatewayUrl}, which holds it)`;
  return config.databaseUrl ? `${label} (DATABASE_URL)` : `${label} (DATABASE_URL is not set: DATA_DIR=${config.dataDir})`;
}

/**
 * Embedded PGlite admits one process: when a live gateway holds DATA_DIR, go through its admin
 * API (with the token it left in its lock file); otherwise open the database directly, so keys
 * can be made before the first start.
 */
export async function openAdminClient(config: Config): Promise<AdminClient> {
  if (!config.databaseUrl) {
    const lock = readInstanceLock(config.dataDir);
    if (lock) return httpClient(lock.url, lock.token);
  }
  const database = await openDatabase(config.databaseUrl ? { url: config.databaseUrl } : { dataDir: config.dataDir }, { poolSize: 2 });
  return directClient(database, config);
}

/**
 * Tells running gateways that a key changed (they share Redis): the same pub/sub message the
 * admin API sends, so a revoke from the CLI applies at once there too.
 */
async function announceKeyChange(config: Config, keyId: string): Promise<boolean> {
  if (!config.redisUrl) return false;
  const { createClient } = await import('redis');
  const client = createClient({ url: config.redisUrl, socket: { connectTimeout: 2_000, reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.publish(`${config.redisKeyPrefix}${KEY_CHANGES_CHANNEL}`, keyId);
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => {});
  }
}

function directClient(database: Database, config: Config): AdminClient {
  const store = createKeyStore(database.db);
  return {
    via: database.kind === 'pglite' ? 'the embedded database' : 'Postgres',
    createWorkspace: async (name) => presentWorkspace(await store.createWorkspace(name)),
    listWorkspaces: async () => (await store.listWorkspaces()).map(presentWorkspace),
    async createKey(input) {
      const { row, key, workspace } = await store.createKey({
        workspace: input.workspace,
        name: input.name,
        scopes: input.scopes,
        rpm: input.rpm,
        tpm: input.tpm,
        budgetUsd: input.budget_usd,
        budgetPeriod: input.budget_period,
        expiresAt: input.expires_at ? new Date(input.expires_at) : undefined,
      });
      return { ...presentKey(row, workspace.name), key };
    },
    async listKeys(workspace) {
      let id: string | undefined;
      if (workspace) {
        const ws = await store.findWorkspace(workspace);
        if (!ws) throw new GatewayError('not_found', `Workspace "${workspace}" not found`);
        id = ws.id;
      }
      const rows = await store.listKeys(id);
      const spend = await keySpend(database.db, rows, Date.now());
      return rows.map((r) => ({ ...presentKey(r, r.workspaceName), ...spend.get(r.id) }));
    },
    async revokeKey(id) {
      const row = await store.revokeKey(id, new Date());
      if (!row) throw new GatewayError('not_found', `No key with id ${id}`);
      await announceKeyChange(config, row.id);
      return presentKey(row);
    },
    async usage(query) {
      const groups = parseGroups(query.groupBy);
      const filter = await buildReportFilter(store, query, Date.now());
      const report = await usageReport(database.db, groups, filter);
      return query.csv ? toCsv(reportColumns(groups), report.data) : { from: filter.from, to: filter.to, group_by: groups, ...report };
    },
    async usageRecords(query) {
      const filter = await buildReportFilter(store, query, Date.now());
      const cursor = query.cursor ? (JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')) as [string, string]) : undefined;
      const page = await usageRecordsPage(database.db, {
        ...filter,
        from: `${filter.from}T00:00:00Z`,
        to: `${filter.to}T00:00:00Z`,
        statuses: parseChoices(query.status, 'status', RECORD_STATUSES),
        routes: parseChoices(query.route, 'route', RECORD_ROUTES),
        limit: query.limit ?? 1000,
        cursor: cursor && { createdAt: cursor[0], requestId: cursor[1] },
      });
      const next = page.next ? Buffer.from(JSON.stringify([page.next.createdAt, page.next.requestId])).toString('base64url') : null;
      return { from: filter.from, to: filter.to, data: page.data, next_cursor: next };
    },
    close: () => database.close(),
  };
}

function httpClient(baseUrl: string, token: string): AdminClient {
  async function call(method: string, path: string, body?: unknown, raw = false): Promise<Json> {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (raw && res.ok) return { text: await res.text() };
    const json = (await res.json().catch(() => ({}))) as Json;
    if (!res.ok) throw new Error(json?.error?.message ?? `gateway answered ${res.status}`);
    return json;
  }
  const reportParams = (query: ReportParams & Record<string, unknown>, names: string[]) => {
    const params = new URLSearchParams();
    for (const name of names) {
      const v = query[name];
      if (v !== undefined && v !== '') params.set(name, String(v));
    }
    return params;
  };
  const REPORT = ['from', 'to', 'period', 'workspace', 'key', 'model'];
  return {
    via: `the running gateway at ${baseUrl}`,
    gatewayUrl: baseUrl,
    createWorkspace: (name) => call('POST', '/admin/workspaces', { name }),
    listWorkspaces: async () => (await call('GET', '/admin/workspaces')).data,
    createKey: (input) => call('POST', '/admin/keys', input),
    listKeys: async (workspace) => (await call('GET', `/admin/keys${workspace ? `?workspace=${encodeURIComponent(workspace)}` : ''}`)).data,
    revokeKey: (id) => call('POST', `/admin/keys/${encodeURIComponent(id)}/revoke`),
    async usage(query) {
      const params = reportParams({ ...query }, REPORT);
      params.set('group_by', query.groupBy ?? 'day');
      params.set('format', query.csv ? 'csv' : 'json');
      const result = await call('GET', `/admin/usage?${params}`, undefined, query.csv);
      return query.csv ? (result.text as string) : result;
    },
    async usageRecords(query) {
      const params = reportParams({ ...query }, [...REPORT, 'status', 'route', 'limit', 'cursor']);
      if (!params.has('limit')) params.set('limit', '1000');
      const page = await call('GET', `/admin/usage/requests?${params}`);
      return { ...page, from: query.from, to: query.to };
    },
    close: async () => {},
  };
}
