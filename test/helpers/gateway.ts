import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createLogger } from '../../src/telemetry/logger.js';
import { createApp } from '../../src/app.js';
import { configWith, type Config } from '../../src/config.js';
import type { Database } from '../../src/db/client.js';
import { openDeps } from '../../src/deps.js';
import type { RequestOutcome } from '../../src/proxy/outcome.js';
import type { AppDeps } from '../../src/routes/context.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestGateway {
  url: string;
  deps: AppDeps;
  outcomes: RequestOutcome[];
  /** Logged lines, as parsed JSON objects. */
  logs: Record<string, unknown>[];
  logText: () => string;
  admin(path: string, init?: { method?: string; body?: unknown }): Promise<Response>;
  /** A fresh workspace and a key in it. */
  createKey(opts?: Record<string, unknown>): Promise<{ key: string; id: string; workspace: string }>;
  close(): Promise<void>;
}

/** A real listening gateway on 127.0.0.1:0 over the given database and upstream. */
export async function startTestGateway(opts: {
  database: Database;
  upstreamUrl: string;
  config?: Partial<Config>;
  /** The upstream client's backoff before a retry (10 ms unless given). */
  backoffMs?: () => number;
}): Promise<TestGateway> {
  const config = configWith({
    openrouterApiKey: 'sk-or-v1-fake',
    openrouterBaseUrl: opts.upstreamUrl,
    adminToken: ADMIN_TOKEN,
    logLevel: 'info',
    dataDir: mkdtempSync(join(tmpdir(), 'cmg-test-')),
    ...opts.config,
  });
  const logs: Record<string, unknown>[] = [];
  const lines: string[] = [];
  // The gateway's own logger (its serializers and redaction), writing into the test's arrays.
  const logger = createLogger('info', {
    write(line: string) {
      lines.push(line);
      logs.push(JSON.parse(line));
    },
  });
  const outcomes: RequestOutcome[] = [];
  const deps = await openDeps(config, {
    logger,
    database: opts.database,
    onOutcome: (o) => outcomes.push(o),
    backoffMs: opts.backoffMs ?? (() => 10),
  });
  const app = createApp(deps);
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const admin = (path: string, init: { method?: string; body?: unknown } = {}) =>
    fetch(url + path, {
      method: init.method ?? (init.body ? 'POST' : 'GET'),
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: init.body ? JSON.stringify(init.body) : undefined,
    });
  return {
    url,
    deps,
    outcomes,
    logs,
    logText: () => lines.join(''),
    admin,
    async createKey(extra = {}) {
      const workspace = `ws-${randomBytes(6).toString('hex')}`;
      const ws = await admin('/admin/workspaces', { body: { name: workspace } });
      if (ws.status !== 201) throw new Error(`workspace: ${ws.status} ${await ws.text()}`);
      const res = await admin('/admin/keys', { body: { workspace, name: 'test', ...extra } });
      const json = await res.json();
      if (res.status !== 201) throw new Error(`key: ${res.status} ${JSON.stringify(json)}`);
      return { key: json.key, id: json.id, workspace };
    },
    async close() {
      (server as any).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await deps.close();
    },
  };
}

/** Waits until `check` passes or the time runs out (bounded polling). */
export async function eventually(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The status a request gets once it stops answering 200, polled for at most `withinMs` (200 if it never changes). */
export async function statusAfterChange(send: () => Promise<Response>, withinMs = 1_000): Promise<number> {
  const t0 = Date.now();
  let status = 200;
  while (status === 200 && Date.now() - t0 < withinMs) {
    const res = await send();
    status = res.status;
    await res.body?.cancel();
    if (status === 200) await new Promise((r) => setTimeout(r, 20));
  }
  return status;
}
