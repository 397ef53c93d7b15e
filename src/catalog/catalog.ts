import type { UpstreamClient } from '../proxy/upstream-client.js';

export interface ModelInfo {
  id: string;
  contextLength: number | null;
  maxCompletionTokens: number | null;
  /** USD per token, as the upstream's decimal text. */
  promptPrice: string | null;
  completionPrice: string | null;
}

export interface CatalogSnapshot {
  /** The upstream list in OpenAI's shape, OpenRouter's extra fields kept. */
  list: { object: 'list'; data: Record<string, unknown>[] };
  byId: Map<string, ModelInfo>;
  fetchedAt: number;
}

/**
 * The upstream model catalog, fetched on first use, cached and refreshed hourly (a failed refresh
 * keeps the last good copy). Concurrent callers share one fetch.
 */
export interface SharedCatalogStore {
  /** The catalog JSON another instance stored, if still fresh. */
  get(): Promise<string | null>;
  set(json: string, ttlMs: number): Promise<void>;
  /** True for the one instance that should fetch now (a short lock). */
  claim(): Promise<boolean>;
}

export function createCatalog(opts: {
  upstream: UpstreamClient;
  now: () => number;
  ttlMs?: number;
  timeoutMs?: number;
  shared?: SharedCatalogStore;
  /** Called after each successful load or refresh (e.g. to warn about models without a price). */
  onLoaded?: (snapshot: CatalogSnapshot) => void;
}) {
  const ttl = opts.ttlMs ?? 3_600_000;
  let snapshot: CatalogSnapshot | null = null;
  let inflight: Promise<CatalogSnapshot> | null = null;

  async function fetchUpstream(): Promise<{ data?: unknown[] }> {
    const res = await opts.upstream.send({
      path: '/models',
      method: 'GET',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    });
    return (await res.body.json()) as { data?: unknown[] };
  }

  /**
   * With several instances the catalog is fetched once and shared through Redis: one instance
   * claims the fetch, the others wait briefly for its copy (and fetch themselves if it never comes).
   */
  async function fetchShared(): Promise<{ data?: unknown[] }> {
    const shared = opts.shared;
    if (!shared) return fetchUpstream();
    try {
      const cached = await shared.get();
      if (cached) return JSON.parse(cached);
      if (!(await shared.claim())) {
        for (let i = 0; i < 50; i++) {
          await new Promise((r) => setTimeout(r, 100));
          const later = await shared.get();
          if (later) return JSON.parse(later);
        }
      }
    } catch {
      // Redis away: fetch directly
    }
    const json = await fetchUpstream();
    shared.set(JSON.stringify(json), ttl).catch(() => {});
    return json;
  }

  async function fetchCatalog(): Promise<CatalogSnapshot> {
    const json = await fetchShared();
    const data = Array.isArray(json?.data) ? (json.data as Record<string, any>[]) : [];
    const byId = new Map<string, ModelInfo>();
    const list = data
      .filter((m) => m && typeof m.id === 'string')
      .map((m) => {
        byId.set(m.id, {
          id: m.id,
          contextLength: numberOrNull(m.context_length ?? m.top_provider?.context_length),
          maxCompletionTokens: numberOrNull(m.top_provider?.max_completion_tokens),
          promptPrice: priceOrNull(m.pricing?.prompt),
          completionPrice: priceOrNull(m.pricing?.completion),
        });
        return { ...m, id: m.id, object: 'model', created: m.created ?? 0, owned_by: m.owned_by ?? m.id.split('/')[0] };
      });
    return { list: { object: 'list', data: list }, byId, fetchedAt: opts.now() };
  }

  function refresh(): Promise<CatalogSnapshot> {
    inflight ??= fetchCatalog()
      .then((s) => {
        snapshot = s;
        try {
          opts.onLoaded?.(s);
        } catch {
          // a listener's failure is its own; the catalog is loaded
        }
        return s;
      })
      .finally(() => {
        inflight = null;
      });
    return inflight;
  }

  return {
    /** The current catalog; fetches when missing, refreshes in the background when stale. */
    async get(): Promise<CatalogSnapshot> {
      if (!snapshot) return refresh();
      if (opts.now() - snapshot.fetchedAt > ttl) refresh().catch(() => {});
      return snapshot;
    },
    /** The cached entry for a model, without waiting on the network. */
    peek(modelId: string): ModelInfo | undefined {
      return snapshot?.byId.get(modelId);
    },
    isLoaded: () => snapshot !== null,
    refresh,
  };
}

export type Catalog = ReturnType<typeof createCatalog>;

function numberOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function priceOrNull(v: unknown): string | null {
  if (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v)) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}
