interface Scope {
  holds: Map<string, { amount: bigint; expiresAt: number }>;
  reserved: bigint;
}

/**
 * In-process holds per scope (a key, or a key's budget period): amounts reserved by requests in
 * flight, each dropped when settled or when it expires. Entries are swept from the oldest: holds
 * are made with one TTL per process, so insertion order is expiry order and a sweep stops at the
 * first live hold (O(expired), not O(in flight)).
 */
export function createHoldTable(now: () => number) {
  const scopes = new Map<string, Scope>();

  function sweep(name: string): Scope | undefined {
    const scope = scopes.get(name);
    if (!scope) return undefined;
    const t = now();
    for (const [id, hold] of scope.holds) {
      if (hold.expiresAt > t) break;
      scope.holds.delete(id);
      scope.reserved -= hold.amount;
    }
    if (scope.holds.size === 0) {
      scopes.delete(name);
      return undefined;
    }
    return scope;
  }

  return {
    /** What the scope's live holds add up to, and how many there are. */
    state(name: string): { reserved: bigint; inFlight: number } {
      const scope = sweep(name);
      return scope ? { reserved: scope.reserved, inFlight: scope.holds.size } : { reserved: 0n, inFlight: 0 };
    },
    add(name: string, id: string, amount: bigint, ttlMs: number): void {
      let scope = scopes.get(name);
      if (!scope) scopes.set(name, (scope = { holds: new Map(), reserved: 0n }));
      if (scope.holds.has(id)) return;
      scope.holds.set(id, { amount, expiresAt: now() + ttlMs });
      scope.reserved += amount;
    },
    has(name: string, id: string): boolean {
      return scopes.get(name)?.holds.has(id) ?? false;
    },
    /** Removes the hold; true if there was one. */
    release(name: string, id: string): boolean {
      const scope = scopes.get(name);
      const hold = scope?.holds.get(id);
      if (!scope || !hold) return false;
      scope.holds.delete(id);
      scope.reserved -= hold.amount;
      if (scope.holds.size === 0) scopes.delete(name);
      return true;
    },
    /** Scopes with live or not yet swept holds (tests: nothing leaks). */
    size: () => scopes.size,
  };
}

export type HoldTable = ReturnType<typeof createHoldTable>;
