import { RAW_CLIENT, type Db, type RawClientAccess } from './client.js';
import { withDeadline } from './deadline.js';

interface RawClient {
  unsafe?: (text: string, params: unknown[], options: { prepare: boolean }) => Promise<Record<string, unknown>[]>;
  query?: (text: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;
}

/**
 * Runs a parameterized statement on the driver under Drizzle (postgres.js or PGlite): no query
 * builder on this hot path. postgres.js prepares it once per connection (its `unsafe` does not by
 * default: that costs a describe round trip and a server-side parse and plan on every batch).
 */
export async function runRaw(db: Db, text: string, values: unknown[]): Promise<Record<string, unknown>[]> {
  const outer = (db as unknown as { $client: RawClient & { [RAW_CLIENT]?: RawClientAccess } }).$client;
  // Under a bounded client: the driver's own query (its parameters are cleared below), with the
  // same deadline the wrapper would apply (a hung insert must fail so the writer retries or spills).
  const raw = outer[RAW_CLIENT];
  const client = (raw?.client ?? outer) as RawClient;
  if (typeof client.unsafe === 'function') {
    const query = client.unsafe(text, values, { prepare: true });
    const rows = raw ? await withDeadline(query, raw.deadlineMs, 'the database') : await query;
    releaseParameters(query);
    return rows;
  }
  if (typeof client.query === 'function') return (await client.query(text, values)).rows;
  throw new Error('unsupported database client');
}

/**
 * Drops the parameters a finished postgres.js query still points at. Something in old space keeps
 * finished query objects reachable through young-generation collections (until a full GC finds
 * them dead), and with them what they reference: every batch's column arrays were promoted that
 * way. Measured at 500 req/s: ~55 KB of the ~110 KB promoted per scavenge; a standalone 30 KB
 * parameter every 50 ms promoted ~300 KB per scavenge, ~8 KB once cleared. Only after success: a
 * failed prepared statement is retried by postgres.js with these same parameters.
 */
function releaseParameters(query: unknown): void {
  const q = query as { args?: unknown; parameters?: unknown };
  if (q && typeof q === 'object' && 'args' in q) {
    q.args = null;
    q.parameters = null;
  }
}
