/**
 * The streams this process is serving, so a graceful shutdown can wait for them and, past the
 * grace period, end each one properly (an error event, a recorded outcome) instead of cutting
 * sockets.
 */
export function createStreamRegistry() {
  const active = new Set<(reason: string) => void>();
  let idleWaiters: (() => void)[] = [];

  return {
    /** Registers a stream's terminate function; returns the function that unregisters it. */
    add(terminate: (reason: string) => void): () => void {
      active.add(terminate);
      return () => {
        active.delete(terminate);
        if (active.size === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const w of waiters) w();
        }
      };
    },
    get size() {
      return active.size;
    },
    /** Resolves when no stream is open, or after timeoutMs (true if all ended by themselves). */
    waitIdle(timeoutMs: number): Promise<boolean> {
      if (active.size === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        idleWaiters.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
    terminateAll(reason: string): void {
      for (const terminate of [...active]) terminate(reason);
    },
  };
}

export type StreamRegistry = ReturnType<typeof createStreamRegistry>;
