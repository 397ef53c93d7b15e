// A small load generator on raw keep-alive sockets (node:net): prebuilt request bytes, a minimal
// HTTP/1.1 response parser (content-length and chunked), no per-request allocations beyond the
// received buffers. Cheaper per request than undici or autocannon, so it leaves more of the
// shared cores to the processes under test, and it can time the first body byte.
// Two modes: a fixed arrival rate (open loop) and fixed concurrency (closed loop, max throughput).
// Every loop is bounded by a duration and a request cap.

import { connect, type Socket } from 'node:net';

export interface Target {
  port: number;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Responses must contain this (e.g. `[DONE]` for streams) to count as complete. */
  expect?: string;
}

export interface RunResult {
  /** ms from writing the request to the last body byte, one per completed 2xx. */
  latency: number[];
  /** ms from writing the request to the first body byte. */
  ttfb: number[];
  ok: number;
  /** 2xx completed before the duration ended (for throughput: okInWindow / elapsedMs). */
  okInWindow: number;
  non2xx: Map<number, number>;
  errors: Map<string, number>;
  incomplete: number;
  elapsedMs: number;
}

type Done = (status: number, ttfbMs: number, totalMs: number, complete: boolean) => void;

class Conn {
  private sock: Socket;
  private buf: Buffer | null = null;
  private started = 0;
  private firstByteAt = 0;
  private status = 0;
  private headerEnd = -1;
  private bodyLen = -1; // content-length, or -1 for chunked
  private chunkPos = 0; // chunked: offset of the next chunk-size line
  private done: Done | null = null;
  busy = false;
  closed = false;
  private failed = false;

  /** Settles once the TCP connection is up (or has failed). */
  readonly ready: Promise<void>;

  constructor(
    port: number,
    private req: Buffer,
    private expect: Buffer | null,
    private onClose: (c: Conn, err?: Error) => void,
  ) {
    this.sock = connect({ port, host: '127.0.0.1', noDelay: true });
    this.ready = new Promise((resolve) => {
      this.sock.once('connect', resolve);
      this.sock.once('close', resolve);
    });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (err) => this.fail(err));
    this.sock.on('close', () => this.fail(new Error('socket closed')));
  }

  /** `since`: when the request was due, if it had to wait for a free connection. */
  send(done: Done, since?: number): void {
    this.busy = true;
    this.done = done;
    this.buf = null;
    this.headerEnd = -1;
    this.firstByteAt = 0;
    this.started = since ?? performance.now();
    this.sock.write(this.req);
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }

  private fail(err: Error): void {
    if (this.failed || (this.closed && !this.busy)) return;
    this.failed = this.closed = true;
    this.sock.destroy();
    this.onClose(this, this.busy ? err : undefined);
  }

  private onData(d: Buffer): void {
    if (!this.busy) return;
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    const b = this.buf;
    if (this.headerEnd < 0) {
      const end = b.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.headerEnd = end + 4;
      const head = b.toString('latin1', 0, end);
      this.status = Number(head.slice(9, 12));
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      this.bodyLen = cl ? Number(cl[1]) : -1;
      this.chunkPos = this.headerEnd;
      if (b.length > this.headerEnd) this.firstByteAt = performance.now();
    } else if (!this.firstByteAt) this.firstByteAt = performance.now();
    if (this.bodyLen >= 0) {
      if (b.length - this.headerEnd >= this.bodyLen) this.finish(true);
      return;
    }
    // chunked: walk complete chunks; a 0-size chunk followed by CRLF ends the body
    for (;;) {
      const eol = b.indexOf('\r\n', this.chunkPos);
      if (eol < 0) return;
      const size = parseInt(b.toString('latin1', this.chunkPos, eol), 16);
      if (size === 0) {
        if (b.length >= eol + 4) this.finish(true);
        return;
      }
      if (b.length < eol + 2 + size + 2) return;
      this.chunkPos = eol + 2 + size + 2;
    }
  }

  private finish(parsed: boolean): void {
    const now = performance.now();
    const b = this.buf!;
    const complete = parsed && (!this.expect || b.indexOf(this.expect, this.headerEnd) >= 0);
    const done = this.done!;
    this.busy = false;
    this.done = null;
    this.buf = null;
    done(this.status, (this.firstByteAt || now) - this.started, now - this.started, complete);
  }
}

function requestBytes(t: Target): Buffer {
  const body = Buffer.from(t.body);
  const lines = [`POST ${t.path} HTTP/1.1`, `host: 127.0.0.1:${t.port}`, 'connection: keep-alive', `content-length: ${body.length}`];
  for (const [k, v] of Object.entries(t.headers)) lines.push(`${k}: ${v}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), body]);
}

interface Opts {
  durationMs: number;
  /** requests per second (open loop); omit for closed loop */
  rate?: number;
  /** closed loop: connections kept busy; open loop: cap on open connections */
  connections: number;
  /** open loop: connections opened before the clock starts, so no measured request waits for a TCP handshake */
  preconnect?: number;
  /** hard cap on requests issued */
  maxRequests?: number;
  record?: boolean;
}

/** Runs one load phase against a target and returns what it saw. Always ends within ~durationMs + 10 s. */
export function runLoad(t: Target, o: Opts): Promise<RunResult> {
  const req = requestBytes(t);
  const expect = t.expect ? Buffer.from(t.expect) : null;
  const record = o.record !== false;
  const maxRequests = o.maxRequests ?? 2_000_000;
  const r: RunResult = { latency: [], ttfb: [], ok: 0, okInWindow: 0, non2xx: new Map(), errors: new Map(), incomplete: 0, elapsedMs: 0 };
  const idle: Conn[] = [];
  const all = new Set<Conn>();
  const waiting: number[] = []; // due times of requests waiting for a connection (open loop)
  let issued = 0;
  let inflight = 0;
  let stopped = false;
  const bump = (m: Map<any, number>, k: any) => m.set(k, (m.get(k) ?? 0) + 1);
  let t0 = 0;

  return new Promise((resolve) => {
    let finishTimer: NodeJS.Timeout | undefined;
    const maybeEnd = () => {
      if (!stopped || inflight > 0) return;
      clearTimeout(finishTimer);
      for (const c of all) c.close();
      resolve(r);
    };
    const onClose = (c: Conn, err?: Error) => {
      all.delete(c);
      const i = idle.indexOf(c);
      if (i >= 0) idle.splice(i, 1);
      if (err) {
        inflight--;
        if (record) bump(r.errors, err.message);
        if (o.rate === undefined && !stopped) issue(); // keep the concurrency
        maybeEnd();
      }
    };
    const done = (c: Conn) => (status: number, ttfb: number, total: number, complete: boolean) => {
      inflight--;
      if (record) {
        if (status < 200 || status > 299) bump(r.non2xx, status);
        else if (!complete) r.incomplete++;
        else {
          r.ok++;
          if (!stopped) r.okInWindow++;
          r.latency.push(total);
          r.ttfb.push(ttfb);
        }
      }
      if (stopped) return maybeEnd();
      if (o.rate === undefined) send(c);
      else if (waiting.length > 0) send(c, waiting.shift());
      else idle.push(c);
    };
    const send = (c: Conn, since?: number) => {
      if (issued >= maxRequests) return;
      issued++;
      inflight++;
      c.send(done(c), since);
    };
    const newConn = () => {
      const c = new Conn(t.port, req, expect, onClose);
      all.add(c);
      return c;
    };
    const issue = () => {
      const c = idle.pop() ?? (all.size < o.connections ? newConn() : undefined);
      if (c) return send(c);
      // Open loop, every connection busy: the request waits, its latency counted from now.
      if (waiting.length >= 100_000) return record && bump(r.errors, 'request queue full');
      waiting.push(performance.now());
    };

    let ticker: NodeJS.Timeout | undefined;
    let scheduled = 0;
    const start = () => {
      t0 = performance.now();
      if (o.rate === undefined) {
        for (let i = 0; i < o.connections; i++) issue();
      } else {
        const rate = o.rate;
        ticker = setInterval(() => {
          while (waiting.length > 0 && all.size < o.connections) send(newConn(), waiting.shift());
          const due = Math.min(Math.floor(((performance.now() - t0) * rate) / 1000), maxRequests) - scheduled;
          for (let i = 0; i < due; i++, scheduled++) issue();
        }, 1);
      }
      setTimeout(() => {
        stopped = true;
        clearInterval(ticker);
        if (record && waiting.length > 0) r.errors.set('never sent (no free connection)', waiting.length);
        waiting.length = 0;
        r.elapsedMs = performance.now() - t0;
        finishTimer = setTimeout(() => {
          if (record) r.errors.set('still in flight at the end', inflight);
          inflight = 0;
          maybeEnd();
        }, 10_000);
        maybeEnd();
      }, o.durationMs);
    };
    if (o.rate === undefined || !o.preconnect) return start();
    const pre = Array.from({ length: Math.min(o.preconnect, o.connections) }, newConn);
    idle.push(...pre);
    // Bounded: a connection that never comes up is dropped by onClose; the clock starts regardless.
    const giveUp = setTimeout(start, 5_000);
    void Promise.all(pre.map((c) => c.ready)).then(() => {
      if (t0 === 0) {
        clearTimeout(giveUp);
        start();
      }
    });
  });
}
