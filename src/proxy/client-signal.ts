/** The part of AbortSignal the proxy uses to learn that the client went away. */
export interface ClientSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

interface NodeResponseLike {
  writableFinished: boolean;
  destroyed: boolean;
  once(event: 'close', listener: () => void): unknown;
  removeListener(event: 'close', listener: () => void): unknown;
}

/**
 * A client-disconnect signal straight from Node's ServerResponse: it fires when the connection
 * closes before the response finished. Cheaper than the web Request's AbortSignal, which costs an
 * AbortController and a Request object per request.
 */
export function signalFromResponse(res: NodeResponseLike): ClientSignal {
  const listeners = new Map<() => void, () => void>();
  return {
    get aborted() {
      return res.destroyed && !res.writableFinished;
    },
    addEventListener(_type, listener) {
      const onClose = () => {
        listeners.delete(listener);
        if (!res.writableFinished) listener();
      };
      listeners.set(listener, onClose);
      res.once('close', onClose);
    },
    removeEventListener(_type, listener) {
      const onClose = listeners.get(listener);
      if (onClose) {
        res.removeListener('close', onClose);
        listeners.delete(listener);
      }
    },
  };
}
