import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';
import { databaseLabel } from '../db/explain.js';
import { maskUrl } from './mask-url.js';

/**
 * What `npm start` tells the person at the terminal: progress while the database opens and
 * migrates, then a banner once the gateway listens. Plain lines on stderr, so stdout stays pino's
 * JSON (one object a line, for log collectors and the tests). Shown at LOG_LEVEL info (the
 * default), debug and trace; warn and quieter levels leave only the JSON logs and real errors.
 */
export interface StartConsole {
  enabled: boolean;
  say(line?: string): void;
}

export function createStartConsole(level: string, write: (text: string) => void = (t) => void process.stderr.write(t)): StartConsole {
  const enabled = ['info', 'debug', 'trace'].includes(level);
  return { enabled, say: (line = '') => enabled && write(`${line}\n`) };
}

function version(): string {
  try {
    return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version ?? '';
  } catch {
    return '';
  }
}

export interface ListeningFacts {
  /** The address as the listener reports it (`0.0.0.0`, `::`, `127.0.0.1`). */
  address: string;
  family: string;
  port: number;
  /** Redis is configured and answered at start. */
  redisReady?: boolean;
  /** pgvector is available to vector retrieval. */
  vectors?: boolean;
  pid?: number;
}

/** The URL this machine reaches the gateway at (a wildcard address is shown as loopback). */
export function localUrl(facts: { address: string; family: string; port: number }): string {
  if (facts.address === '0.0.0.0') return `http://127.0.0.1:${facts.port}`;
  if (facts.address === '::') return `http://[::1]:${facts.port}`;
  return facts.family === 'IPv6' ? `http://[${facts.address}]:${facts.port}` : `http://${facts.address}:${facts.port}`;
}

/** The banner's lines: where to point apps and a browser, what the gateway runs on, which switches are on. */
export function startBanner(config: Config, facts: ListeningFacts): string[] {
  const url = localUrl(facts);
  const wildcard = facts.address === '0.0.0.0' || facts.address === '::';
  const row = (name: string, value: string) => `  ${name.padEnd(10)} ${value}`;
  const memory = config.memoryEnabled
    ? [
        'on',
        config.memorySummaryModel ? `summaries by ${config.memorySummaryModel}` : 'no summaries (MEMORY_SUMMARY_MODEL unset)',
        config.memoryEmbeddingModel
          ? `vector retrieval by ${config.memoryEmbeddingModel}${facts.vectors ? ' (pgvector)' : ''}`
          : 'lexical retrieval',
      ].join(', ')
    : 'off (MEMORY_ENABLED=false: requests are forwarded without thread memory)';
  return [
    '',
    `  Context Memory Gateway ${version()} is ready${facts.pid ? ` (pid ${facts.pid})` : ''}`,
    '',
    row('API', `${url}/v1   (the OpenAI base URL for your apps)`),
    row('dashboard', `${url}/dashboard`),
    row(
      'listening',
      `${facts.family === 'IPv6' ? `[${facts.address}]` : facts.address}:${facts.port}${wildcard ? ' (every interface)' : ''}`,
    ),
    row(
      'upstream',
      `${config.openrouterBaseUrl} ${config.openrouterApiKey ? '(OPENROUTER_API_KEY set)' : '(OPENROUTER_API_KEY unset: proxied requests answer 503 upstream_not_configured)'}`,
    ),
    row('database', databaseLabel(config)),
    row(
      'redis',
      config.redisUrl
        ? `${maskUrl(config.redisUrl)}${facts.redisReady === false ? ' (not answering yet: limits are per instance until it does)' : ''}`
        : 'none: limits and caches in this process (REDIS_URL shares them between instances)',
    ),
    row(
      'admin',
      config.adminToken
        ? 'ADMIN_TOKEN set: /admin/* and the dashboard'
        : 'ADMIN_TOKEN unset: /admin/* answers 503 admin_disabled (npm run cli still works)',
    ),
    row('memory', memory),
    row('usage', config.usageEnabled ? 'recording on' : 'recording off (USAGE_ENABLED=false: nothing is recorded, reports say so)'),
    row('logs', `JSON on stdout, level ${config.logLevel}; this banner on stderr (LOG_LEVEL=warn hides it)`),
    '',
  ];
}

/** A listen failure in one line: which port, and what to do. Undefined for errors it does not know. */
export function listenErrorLine(err: NodeJS.ErrnoException, config: Pick<Config, 'host' | 'port'>): string | undefined {
  const at = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${at}: port ${config.port} is already in use (another gateway or program has it); stop that one or set PORT to a free port`;
    case 'EACCES':
      return `cannot listen on ${at}: this user may not open port ${config.port} (ports below 1024 need privileges); set PORT to 1024 or above (the default is 8080)`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${at}: ${config.host} is not an address of this machine; set HOST to one of its addresses, or 0.0.0.0 for all of them`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot listen on ${at}: the host name ${config.host} does not resolve; set HOST to an address of this machine (0.0.0.0 for all of them)`;
  }
  return undefined;
}
