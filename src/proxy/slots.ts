import type { AbortLike } from './aborter.js';

/**
 * A counting semaphore for upstream connections, used only when UPSTREAM_MAX_CONNECTIONS caps
 * them: the wait for a slot is visible (a metric), bounded on its own, and the whole-request
 * deadline starts only once a slot is held (undici's own queue would hide both).
 */
export interface Slots {
  acquire(timeoutMs: number, signal: AbortLike): Promise<void>;
  release(): void;
  waiting(): number;
  inUse(): number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
  signal: AbortLike;
  onAbort: () => void;
}

export function createSlots(size: number): Slots {
  let used = 0;
  const queue: Waiter[] = [];
  const drop = (w: Waiter) => {
    const i = queue.indexOf(w);
    if (i >= 0) queue.splice(i, 1);
    clearTimeout(w.timer);
    w.signal.removeEventListener('abort', w.onAbort);
  };
  return {
    acquire(timeoutMs, signal) {
      if (signal.aborted) return Promise.reject(signal.reason);
      if (used < size && queue.length === 0) {
        used++;
        return Promise.resolve();
      }
      return new Promise<void>((resolve, reject) => {
        const w: Waiter = {
          resolve,
          reject,
          signal,
          timer: setTimeout(() => {
            drop(w);
            reject(new Error(`no upstream connection slot within ${timeoutMs} ms`));
          }, timeoutMs),
          onAbort: () => {
            drop(w);
            reject(signal.reason);
          },
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
        queue.push(w);
      });
    },
    release() {
      const next = queue.shift();
      if (next) {
        clearTimeout(next.timer);
        next.signal.removeEventListener('abort', next.onAbort);
        next.resolve(); // the slot passes straight to the next waiter
      } else if (used > 0) {
        used--;
      }
    },
    waiting: () => queue.length,
    inUse: () => used,
  };
}
