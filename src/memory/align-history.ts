/**
 * How the messages a client sent line up with what the thread already holds (both as content
 * hashes, oldest first). Clients of the OpenAI API usually re-send their whole history; thread
 * memory must neither forward nor store that history twice.
 */
export type Alignment =
  /** stored[0..injectUpTo) is history the client did not send; client[newFrom..] is new. */
  | { mode: 'continue'; injectUpTo: number; newFrom: number; supersedeFrom: null }
  /** The client re-sent the last user turn: the stored reply after it (stored[supersedeFrom..]) is superseded. */
  | { mode: 'regenerate'; injectUpTo: number; newFrom: number; supersedeFrom: number }
  /** The client's history departs from storage at stored[supersedeFrom]: the stored tail is superseded. */
  | { mode: 'diverge'; injectUpTo: number; newFrom: number; supersedeFrom: number };

export interface AlignInput {
  stored: string[];
  client: string[];
  /** Roles of the stored items (same order), to find the last user turn. */
  storedRoles: string[];
  /** Role of the client's last message. */
  clientLastRole: string | undefined;
}

/**
 * 1. continue: the longest stored suffix equal to a client prefix (a re-sent history) is skipped
 *    on both sides; with no overlap at all the client sent only new messages.
 * 2. regenerate: the client's messages end with the stored last user message again (and match the
 *    stored ones before it): the reply stored after it is superseded.
 * 3. diverge: the client re-sent history from the thread's first item but it departs from storage:
 *    the stored tail from the first difference is superseded.
 */
export function alignHistory({ stored, client, storedRoles, clientLastRole }: AlignInput): Alignment {
  const n = stored.length;
  const m = client.length;
  for (let k = Math.min(n, m); k >= 1; k--) {
    if (matches(stored, n - k, client, 0, k)) return { mode: 'continue', injectUpTo: n - k, newFrom: k, supersedeFrom: null };
  }
  if (m > 0 && clientLastRole === 'user') {
    const lastUser = storedRoles.lastIndexOf('user');
    if (lastUser >= 0 && lastUser < n - 1 && m <= lastUser + 1 && matches(stored, lastUser - m + 1, client, 0, m)) {
      return { mode: 'regenerate', injectUpTo: lastUser - m + 1, newFrom: m, supersedeFrom: lastUser + 1 };
    }
  }
  if (m > 1 && n > 0 && stored[0] === client[0]) {
    let q = 1;
    while (q < n && q < m && stored[q] === client[q]) q++;
    // A lone re-sent first message is a new turn that repeats text, not a rewritten history.
    if (q < m) return { mode: 'diverge', injectUpTo: 0, newFrom: q, supersedeFrom: q };
  }
  return { mode: 'continue', injectUpTo: n, newFrom: 0, supersedeFrom: null };
}

function matches(a: string[], aFrom: number, b: string[], bFrom: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aFrom + i] !== b[bFrom + i]) return false;
  return true;
}
