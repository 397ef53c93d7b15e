import { describe, expect, it } from 'vitest';
import { alignHistory } from './align-history.js';

const roles = (s: string) => s.split('').map((c) => (c === c.toUpperCase() ? 'assistant' : 'user'));
/** Lowercase letters are user turns, uppercase assistant turns. */
const align = (stored: string, client: string) =>
  alignHistory({ stored: stored.split(''), client: client.split(''), storedRoles: roles(stored), clientLastRole: roles(client).at(-1) });

describe('alignHistory', () => {
  it('skips a re-sent full history on both sides', () => {
    expect(align('aAbB', 'aAbBc')).toEqual({ mode: 'continue', injectUpTo: 0, newFrom: 4, supersedeFrom: null });
  });

  it('injects what the client did not send when it re-sends only the tail', () => {
    expect(align('aAbB', 'bBc')).toEqual({ mode: 'continue', injectUpTo: 2, newFrom: 2, supersedeFrom: null });
  });

  it('injects everything when the client sends only a new message', () => {
    expect(align('aAbB', 'c')).toEqual({ mode: 'continue', injectUpTo: 4, newFrom: 0, supersedeFrom: null });
    expect(align('', 'a')).toEqual({ mode: 'continue', injectUpTo: 0, newFrom: 0, supersedeFrom: null });
  });

  it('treats a history re-sent up to the last user turn as a regenerate, but not a lone message', () => {
    expect(align('aAbB', 'aAb')).toEqual({ mode: 'regenerate', injectUpTo: 0, newFrom: 3, supersedeFrom: 3 });
    expect(align('aAbB', 'Ab')).toEqual({ mode: 'regenerate', injectUpTo: 1, newFrom: 2, supersedeFrom: 3 });
    // Only the history shows a regenerate: a memory-only client sending "b" again asks again.
    expect(align('aAbB', 'b')).toEqual({ mode: 'continue', injectUpTo: 4, newFrom: 0, supersedeFrom: null });
  });

  it('supersedes the stored tail when the client history diverges', () => {
    expect(align('aAbBcC', 'aAdD e'.replace(' ', ''))).toEqual({ mode: 'diverge', injectUpTo: 0, newFrom: 2, supersedeFrom: 2 });
  });

  it('does not mistake a repeated old message for a regenerate', () => {
    // "a" again, but the last stored user turn is "b": a new turn that happens to repeat text.
    expect(align('aAbB', 'a')).toEqual({ mode: 'continue', injectUpTo: 4, newFrom: 0, supersedeFrom: null });
  });

  // Stored windows below are the thread's newest items only (older ones exist before them).
  const seq = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `m${from + i}`);
  const alignSeq = (stored: string[], client: string[], lastRole = 'user') =>
    alignHistory({ stored, client, storedRoles: stored.map(() => 'user'), clientLastRole: lastRole });

  it('a full history longer than the loaded window: the window is skipped, only the new message is new', () => {
    const stored = seq(600, 1000); // the newest 400 of 1,000
    const client = [...seq(0, 1000), 'new'];
    expect(alignSeq(stored, client)).toEqual({ mode: 'continue', injectUpTo: 0, newFrom: 1000, supersedeFrom: null });
  });

  it('a sliding window: the older stored history is injected, nothing twice', () => {
    const stored = seq(600, 1000);
    expect(alignSeq(stored, [...seq(950, 1000), 'new'])).toEqual({ mode: 'continue', injectUpTo: 350, newFrom: 50, supersedeFrom: null });
  });

  it('a sliding window with one old message edited: the client wins from there, nothing is doubled', () => {
    const stored = seq(600, 1000);
    const client = [...seq(950, 1000), 'new'];
    client[3] = 'm953-edited';
    expect(alignSeq(stored, client)).toEqual({ mode: 'diverge', injectUpTo: 350, newFrom: 3, supersedeFrom: 353 });
  });

  it('a full history with its first message edited: the old branch is superseded, none of it injected', () => {
    const stored = seq(0, 10);
    const client = ['m0-edited', ...seq(1, 10), 'new'];
    expect(alignSeq(stored, client)).toEqual({ mode: 'diverge', injectUpTo: 0, newFrom: 0, supersedeFrom: 0 });
  });

  it('repeated identical messages do not mislead the anchor', () => {
    const stored = ['a', 'ok', 'b', 'ok', 'c', 'ok'];
    expect(alignSeq(stored, ['c', 'ok', 'd'])).toEqual({ mode: 'continue', injectUpTo: 4, newFrom: 2, supersedeFrom: null });
    expect(alignSeq(stored, ['ok'])).toEqual({ mode: 'continue', injectUpTo: 6, newFrom: 0, supersedeFrom: null });
  });
});
