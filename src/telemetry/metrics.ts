import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import type { Attributes } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PlainHistogram } from './plain-histogram.js';

/** The content type Prometheus expects from a text exposition endpoint. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** One finished request, as the request log sees it (labels are bounded here, not by callers). */
export interface RequestSample {
  /** Route pattern, e.g. `/v1/chat/completions` (never a raw path). */
  route: string;
  method: string;
  status: number;
  model: string | null;
  /** Outcome status of a proxied request (`ok`, `client_aborted`, ...); absent for other routes. */
  outcome?: string | null;
  durationMs: number;
  /** The upstream's own time to response headers (retries included). */
  upstreamTtfbMs?: number | null;
  /** Total minus the time spent waiting on the upstream. */
  overheadMs?: number | null;
}

export interface UsageSample {
  model: string | null;
  promptTokens: number;
  completionTokens: number;
  /** USD as decimal text (the ledger keeps the exact amount; a float counter is fine here). */
  costUsd: string | null;
}

export interface GaugeSources {
  openStreams?: () => number;
  usageBacklog?: () => number;
  memoryBacklog?: () => number;
  /** The durable writers' counts (`usage`, `memory`), read at each scrape. */
  writers?: () => Record<string, WriterCounts>;
  /** The upstream client's connections, queue and retries (see proxy/upstream-client.ts). */
  upstream?: () => UpstreamCounts;
}

export interface UpstreamCounts {
  connected: number;
  /** Requests being served on a connection now. */
  running: number;
  /** Requests waiting for a connection slot (only with a connection cap). */
  queued: number;
  retries: number;
  retriesDenied: number;
  queueTimeouts: number;
}

/** What the metrics read of a durable batch writer (see usage/ledger-writer.ts). */
export interface WriterCounts {
  spilled: number;
  quarantined: number;
  lost: number;
  diskFailing: boolean;
}

export interface MetricsOptions {
  /** Whether a model id is worth its own label (e.g. it is in the upstream catalog). */
  knownModel?: (id: string) => boolean;
  /** Distinct model labels kept before the rest become `other` (default 100). */
  maxModels?: number;
  gauges?: GaugeSources;
}

export interface Metrics {
  recordRequest(s: RequestSample): void;
  recordUsage(u: UsageSample): void;
  /** A request with tokens but no price (no upstream cost, no catalog price): recorded at $0. */
  recordUnpriced(model: string | null, tokens: number): void;
  /** The rate limiter fell back (e.g. Redis away → in-process); `kind` is a code-defined word. */
  limiterFallback(kind: string): void;
  /** Registers (or replaces) the functions read at each scrape. */
  observeGauges(sources: GaugeSources): void;
  /** The Prometheus text exposition of everything recorded so far. */
  render(): Promise<string>;
  shutdown(): Promise<void>;
}

type Labels = Record<string, string>;

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const OVERHEAD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const MAX_MODEL_LENGTH = 120;
const MAX_KINDS = 20;

/**
 * Gateway metrics on an OpenTelemetry MeterProvider of its own (no global registration), read by
 * a Prometheus exporter that never starts its own server: `render()` answers our `/metrics` route.
 * Every label value is bounded: routes are patterns, statuses are codes, models are capped.
 */
export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  const serializer = new PrometheusSerializer('', false, undefined, true, true);
  const meter = provider.getMeter('context-memory-gateway');

  /**
   * A counter summed in a plain map and handed to the SDK at each scrape (an observable counter):
   * the SDK's per-call attribute hashing was a visible share of a request's CPU. Attribute objects
   * are cached per label combination, so the map is keyed by their identity.
   */
  const plainCounter = (name: string, description: string) => {
    const values = new Map<Attributes, number>();
    meter.createObservableCounter(name, { description }).addCallback((result) => {
      for (const [attrs, value] of values) result.observe(value, attrs);
    });
    return { add: (value: number, attrs: Attributes) => values.set(attrs, (values.get(attrs) ?? 0) + value) };
  };

  const requests = plainCounter('cmg_requests_total', 'HTTP requests by route, method, status, model and proxy outcome.');
  // The three per-request histograms are kept outside the SDK too (see PlainHistogram) and their
  // text is appended to the SDK's exposition at each scrape.
  const duration = new PlainHistogram(
    'cmg_request_duration_seconds',
    'Time from receiving a request to its end (for streams, the end of the stream).',
    DURATION_BUCKETS,
  );
  const ttfb = new PlainHistogram(
    'cmg_upstream_ttfb_seconds',
    "The upstream's time to response headers, retries included.",
    DURATION_BUCKETS,
  );
  const overhead = new PlainHistogram(
    'cmg_gateway_overhead_seconds',
    'Request duration minus the time spent waiting on the upstream.',
    OVERHEAD_BUCKETS,
  );
  const tokens = plainCounter('cmg_tokens_total', 'Tokens reported by the upstream, by type and model.');
  const cost = plainCounter('cmg_cost_usd_total', 'Cost reported by the upstream in USD (the usage ledger is the exact record).');
  const fallbacks = plainCounter('cmg_limiter_fallbacks_total', 'Times the rate limiter fell back, by kind.');

  let gauges: GaugeSources = { ...opts.gauges };
  const gauge = (name: string, description: string, read: () => (() => number) | undefined) =>
    meter.createObservableGauge(name, { description }).addCallback((result) => {
      const fn = read();
      if (!fn) return;
      try {
        result.observe(fn());
      } catch {
        // a failing source must not fail the scrape
      }
    });
  gauge('cmg_open_streams', 'Streams this process is serving now.', () => gauges.openStreams);
  gauge('cmg_usage_writer_backlog', 'Usage records waiting to be written.', () => gauges.usageBacklog);
  gauge('cmg_memory_writer_backlog', 'Thread memory writes waiting to be written.', () => gauges.memoryBacklog);
  const writerAttrs = new Map<string, Attributes>();
  const writerMetric = (name: string, description: string, read: (w: WriterCounts) => number, counter: boolean) => {
    const instrument = counter ? meter.createObservableCounter(name, { description }) : meter.createObservableGauge(name, { description });
    instrument.addCallback((result) => {
      let all: Record<string, WriterCounts> | undefined;
      try {
        all = gauges.writers?.();
      } catch {
        return;
      }
      for (const [writer, counts] of Object.entries(all ?? {})) {
        let a = writerAttrs.get(writer);
        if (!a) writerAttrs.set(writer, (a = { writer }));
        result.observe(read(counts), a);
      }
    });
  };
  writerMetric(
    'cmg_records_spilled_total',
    'Records moved to the spill file because the database was slow or away.',
    (w) => w.spilled,
    true,
  );
  writerMetric(
    'cmg_records_quarantined_total',
    'Records the database refused as data, kept in the dead-letter file instead.',
    (w) => w.quarantined,
    true,
  );
  writerMetric(
    'cmg_records_lost_total',
    'Records kept neither in the database nor on disk (spill directory unwritable or full).',
    (w) => w.lost,
    true,
  );
  writerMetric('cmg_spill_disk_failing', '1 while the spill directory cannot be written.', (w) => (w.diskFailing ? 1 : 0), false);
  const upstreamMetric = (name: string, description: string, read: (u: UpstreamCounts) => number, counter: boolean) => {
    const instrument = counter ? meter.createObservableCounter(name, { description }) : meter.createObservableGauge(name, { description });
    instrument.addCallback((result) => {
      try {
        const counts = gauges.upstream?.();
        if (counts) result.observe(read(counts));
      } catch {
        // a failing source must not fail the scrape
      }
    });
  };
  upstreamMetric('cmg_upstream_connections', 'Connections open to the upstream.', (u) => u.connected, false);
  upstreamMetric(
    'cmg_upstream_requests_active',
    'Requests holding an upstream connection now (streams until they end).',
    (u) => u.running,
    false,
  );
  upstreamMetric(
    'cmg_upstream_requests_queued',
    'Requests waiting for a free upstream connection (only with UPSTREAM_MAX_CONNECTIONS).',
    (u) => u.queued,
    false,
  );
  upstreamMetric(
    'cmg_upstream_queue_timeouts_total',
    'Requests answered 503 because no upstream connection freed up in time.',
    (u) => u.queueTimeouts,
    true,
  );
  upstreamMetric('cmg_upstream_retries_total', 'Upstream attempts the gateway retried.', (u) => u.retries, true);
  upstreamMetric(
    'cmg_upstream_retries_denied_total',
    'Retries the retry budget refused (the error went to the client, marked not to retry).',
    (u) => u.retriesDenied,
    true,
  );
  const unpricedRequests = plainCounter(
    'cmg_unpriced_requests_total',
    'Requests with tokens but no price (no upstream cost, no catalog price), by model.',
  );
  const unpricedTokens = plainCounter('cmg_unpriced_tokens_total', 'Tokens of requests that had no price, by model.');

  // Event-loop delay: what every request waits behind (GC pauses, long synchronous work). Reset at
  // each scrape, so each sample covers the interval since the previous one.
  // The histogram holds whole timer intervals (resolution included): the delay is what exceeds it.
  const RESOLUTION_MS = 10;
  const loopDelay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  loopDelay.enable();
  // Garbage-collection pauses by kind: the usual suspect behind latency spikes.
  const gcPauses = meter.createHistogram('cmg_gc_pause_seconds', {
    description: 'Garbage-collection pauses of this process, by kind (minor, major, incremental, weakcb).',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25] },
  });
  const GC_KINDS: Record<number, Attributes> = {
    1: { kind: 'minor' },
    2: { kind: 'major' },
    4: { kind: 'incremental' },
    8: { kind: 'weakcb' },
  };
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0;
      gcPauses.record(entry.duration / 1000, GC_KINDS[kind] ?? { kind: 'other' });
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const loopQuantiles = [0.5, 0.99, 1].map((q) => ({ q, attrs: { quantile: String(q) } }));
  meter
    .createObservableGauge('cmg_event_loop_delay_seconds', {
      description: 'Event-loop delay since the last scrape, by quantile (1 = max).',
      unit: 's',
    })
    .addCallback((result) => {
      for (const { q, attrs } of loopQuantiles) {
        const ns = q === 1 ? loopDelay.max : loopDelay.percentile(q * 100);
        result.observe(Math.max(0, ns / 1e9 - RESOLUTION_MS / 1e3), attrs);
      }
      loopDelay.reset();
    });

  const modelLabel = createModelLabels(opts.knownModel, opts.maxModels ?? 100);
  const kindLabels = new Map<string, Attributes>();
  // Attribute objects are built once per label combination and reused (the SDK hashes them per call).
  const requestAttrs = new Map<string, { counter: Attributes; histogram: Labels }>();
  const routeModelAttrs = new Map<string, Labels>();
  const routeAttrs = new Map<string, Labels>();
  const usageAttrs = new Map<string, { prompt: Attributes; completion: Attributes; model: Attributes }>();

  return {
    recordRequest(s) {
      const model = modelLabel(s.model);
      const status = statusLabel(s.status);
      const outcome = s.outcome ?? 'none';
      const key = `${s.route} ${s.method} ${status} ${model} ${outcome}`;
      let attrs = requestAttrs.get(key);
      if (!attrs) {
        // The outcome stays off the histogram: it would multiply its bucket series for little.
        attrs = {
          counter: { route: s.route, method: s.method, status, model, outcome },
          histogram: { route: s.route, method: s.method, status, model },
        };
        requestAttrs.set(key, attrs);
      }
      requests.add(1, attrs.counter);
      duration.record(s.durationMs / 1000, attrs.histogram);
      if (s.upstreamTtfbMs != null) {
        const k = `${s.route} ${model}`;
        let a = routeModelAttrs.get(k);
        if (!a) routeModelAttrs.set(k, (a = { route: s.route, model }));
        ttfb.record(s.upstreamTtfbMs / 1000, a);
      }
      if (s.overheadMs != null) {
        let a = routeAttrs.get(s.route);
        if (!a) routeAttrs.set(s.route, (a = { route: s.route }));
        overhead.record(Math.max(0, s.overheadMs) / 1000, a);
      }
    },
    recordUsage(u) {
      const model = modelLabel(u.model);
      let a = usageAttrs.get(model);
      if (!a)
        usageAttrs.set(model, (a = { prompt: { type: 'prompt', model }, completion: { type: 'completion', model }, model: { model } }));
      if (u.promptTokens > 0) tokens.add(u.promptTokens, a.prompt);
      if (u.completionTokens > 0) tokens.add(u.completionTokens, a.completion);
      const usd = u.costUsd ? Number(u.costUsd) : 0;
      if (usd > 0 && Number.isFinite(usd)) cost.add(usd, a.model);
    },
    recordUnpriced(model, n) {
      const label = modelLabel(model);
      let a = usageAttrs.get(label);
      if (!a)
        usageAttrs.set(
          label,
          (a = { prompt: { type: 'prompt', model: label }, completion: { type: 'completion', model: label }, model: { model: label } }),
        );
      unpricedRequests.add(1, a.model);
      if (n > 0) unpricedTokens.add(n, a.model);
    },
    limiterFallback(kind) {
      let a = kindLabels.get(kind);
      if (!a) {
        const label = kindLabels.size < MAX_KINDS && /^[a-z0-9_]{1,40}$/.test(kind) ? kind : 'other';
        a = { kind: label };
        if (label === kind) kindLabels.set(kind, a);
      }
      fallbacks.add(1, a);
    },
    observeGauges(sources) {
      gauges = { ...gauges, ...sources };
    },
    async render() {
      const { resourceMetrics } = await exporter.collect();
      return serializer.serialize(resourceMetrics) + duration.render() + ttfb.render() + overhead.render();
    },
    shutdown: () => {
      loopDelay.disable();
      gcObserver.disconnect();
      return provider.shutdown();
    },
  };
}

function statusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : 'other';
}

/**
 * Model ids come from clients, so they are bounded twice: an id the catalog does not know is
 * `other` (when a predicate is given), and past `max` distinct ids everything new is `other`.
 */
function createModelLabels(known: ((id: string) => boolean) | undefined, max: number) {
  const kept = new Set<string>();
  return (model: string | null): string => {
    if (!model) return 'none';
    if (kept.has(model)) return model;
    if (model.length > MAX_MODEL_LENGTH || kept.size >= max || (known && !known(model))) return 'other';
    kept.add(model);
    return model;
  };
}
