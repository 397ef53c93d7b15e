import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpRelay {
  port: number;
  /** Drops every connection and refuses new ones (accepted, then destroyed at once). */
  cut(): void;
  /**
   * A hung dependency, not a refused one: connections stay open and new ones are accepted, but no
   * byte passes either way until `restore()` (then what was held back flows on).
   */
  freeze(): void;
  restore(): void;
  close(): Promise<void>;
}

/** A loopback TCP relay a test can cut, standing in for a network outage to a service. */
export async function startTcpRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  let down = false;
  let frozen = false;
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    if (down) return client.destroy();
    const upstream = createConnection({ port: targetPort, host: targetHost });
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.on('close', () => pairs.delete(pair));
    client.pipe(upstream);
    upstream.pipe(client);
    if (frozen) {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    freeze() {
      frozen = true;
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
      }
    },
    restore() {
      down = false;
      frozen = false;
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
      }
    },
    async close() {
      down = true;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A relay in front of the service a URL names (e.g. a Postgres or Redis URL), and the URL that goes through it. */
export async function startUrlRelay(target: string): Promise<{ relay: TcpRelay; url: string }> {
  const u = new URL(target);
  const relay = await startTcpRelay(Number(u.port || 5432), u.hostname);
  u.port = String(relay.port);
  return { relay, url: u.toString() };
}
