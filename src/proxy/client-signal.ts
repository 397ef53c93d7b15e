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
 *
 * A class, not an object literal with a getter: a literal's getter is a new closure per request,
 * held in an accessor pair that V8 allocates in old space. Until the next full GC that dead pair
 * kept the closure, the response and everything the request touched alive through every
 * young-generation collection (all of a request's objects were being promoted). See
 * test/hidden-classes.test.ts.
 */
class ResponseSignal implements ClientSignal {
  private listeners: Map<() => void, () => void> | null = null;

  constructor(private readonly res: NodeResponseLike) {}

  get aborted(): boolean {
    return this.res.destroyed && !this.res.writableFinished;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    const res = this.res;
    const listeners = (this.listeners ??= new Map());
    const onClose = () => {
      listeners.delete(listener);
      if (!res.writableFinished) listener();
    };
    listeners.set(listener, onClose);
    res.once('close', onClose);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const onClose = this.listeners?.get(listener);
    if (onClose) {
      this.res.removeListener('close', onClose);
      this.listeners!.delete(listener);
    }
  }
}

export function signalFromResponse(res: NodeResponseLike): ClientSignal {
  return new ResponseSignal(res);
}
