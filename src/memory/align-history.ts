/**
 * How the messages a client sent line up with what the thread already holds (both as content
 * hashes, oldest first). Clients of the OpenAI API send their whole history, the last N messages of
 * it (a sliding window), or only the new message; thread memory must neither forward nor store
 * history twice, whatever the thread's length, and follows the client where the two differ.
 */
export type Alignment =
  /** stored[0..injectUpTo) is history the client did not send; client[newFrom..] is new. */
  | { mode: 'continue'; injectUpTo: number; newFrom: number; supersedeFrom: null }
  /** The client re-sent its history up to the last user turn: the stored reply after it (stored[supersedeFrom..]) is superseded. */
  | { mode: 'regenerate'; injectUpTo: number; newFrom: number; supersedeFrom: number }
  /** The client's history departs from storage at stored[supersedeFrom] (an edit): the stored branch from there is superseded. */
  | { mode: 'diverge'; injectUpTo: number; newFrom: number; supersedeFrom: number };

export interface AlignInput {
  /** The thread's newest messages (a window: older ones may exist before stored[0]). */
  stored: string[];
  client: string[];
  /** Roles of the stored items (same order). */
  storedRoles: string[];
  /** Role of the client's last message. */
  clientLastRole: string | undefined;
}

/** Client messages looked at for an anchor, and stored occurrences of one message tried (newest first). */
const ANCHOR_CLIENT = 8;
const ANCHOR_OCCURRENCES = 8;

/**
 * Finds the offset d that maps the client's history onto the stored thread (client[i] is
 * stored[i + d]) with the most equal messages, then reads the case from it:
 * - every overlapping message equal, the client going past the stored end: continue (the client's
 *   messages after it are new; stored messages before its first one are injected);
 * - the client ending inside the thread on a user turn: regenerate (the stored rest is superseded);
 * - a message that differs: diverge at the first one: the client's version wins, the stored branch
 *   from there is superseded, the client's messages from there are stored;
 * - no offset with at least two equal messages (a memory-only client, even one repeating an old
 *   message word for word): every client message is new, the stored thread is injected.
 * Client messages mapping before stored[0] are older than the window and taken as stored.
 */
export function alignHistory({ stored, client, clientLastRole }: AlignInput): Alignment {
  const n = stored.length;
  const m = client.length;
  const none = { mode: 'continue' as const, injectUpTo: n, newFrom: 0, supersedeFrom: null };
  if (n === 0 || m < 2) return none;

  const where = new Map<string, number[]>();
  for (let j = n - 1; j >= 0; j--) {
    const list = where.get(stored[j]);
    if (!list) where.set(stored[j], [j]);
    else if (list.length < ANCHOR_OCCURRENCES) list.push(j);
  }
  const candidates = new Set<number>();
  for (let c = 0; c < Math.min(m, ANCHOR_CLIENT); c++) for (const j of where.get(client[c]) ?? []) candidates.add(j - c);
  // A full history longer than the window: the window's first stored message inside the client's.
  for (let i = 0; i < m; i++) if (client[i] === stored[0]) candidates.add(-i);
  // The client's tail before its new message(s): where the thread's last message sits in it.
  for (let i = m - 1; i >= Math.max(0, m - ANCHOR_CLIENT); i--) if (client[i] === stored[n - 1]) candidates.add(n - 1 - i);

  let best: { d: number; equal: number; firstDiff: number } | null = null;
  for (const d of candidates) {
    let equal = 0;
    let firstDiff = -1;
    for (let i = Math.max(0, -d); i < m && i + d < n; i++) {
      if (client[i] === stored[i + d]) equal++;
      else if (firstDiff < 0) firstDiff = i;
    }
    if (equal < 2) continue;
    // Most equal messages; then no difference; then the newest placement.
    if (
      !best ||
      equal > best.equal ||
      (equal === best.equal && (firstDiff < 0 ? 1 : 0) > (best.firstDiff < 0 ? 1 : 0)) ||
      (equal === best.equal && firstDiff < 0 === best.firstDiff < 0 && d > best.d)
    ) {
      best = { d, equal, firstDiff };
    }
  }
  if (!best) return none;
  const { d, firstDiff } = best;
  const injectUpTo = Math.max(0, d);
  if (firstDiff >= 0) return { mode: 'diverge', injectUpTo, newFrom: firstDiff, supersedeFrom: firstDiff + d };
  const end = n - d; // the first client index past the stored thread
  if (end <= m) return { mode: 'continue', injectUpTo, newFrom: Math.max(0, end), supersedeFrom: null };
  // The client's history stops inside the thread.
  if (clientLastRole === 'user') return { mode: 'regenerate', injectUpTo, newFrom: m, supersedeFrom: m + d };
  return { mode: 'diverge', injectUpTo, newFrom: m, supersedeFrom: m + d };
}
