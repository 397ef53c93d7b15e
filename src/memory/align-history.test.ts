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

  it('treats the same last user message sent again as a regenerate', () => {
    expect(align('aAbB', 'b')).toEqual({ mode: 'regenerate', injectUpTo: 2, newFrom: 1, supersedeFrom: 3 });
    expect(align('aAbB', 'aAb')).toEqual({ mode: 'regenerate', injectUpTo: 0, newFrom: 3, supersedeFrom: 3 });
  });

  it('supersedes the stored tail when the client history diverges', () => {
    expect(align('aAbBcC', 'aAdD e'.replace(' ', ''))).toEqual({ mode: 'diverge', injectUpTo: 0, newFrom: 2, supersedeFrom: 2 });
  });

  it('does not mistake a repeated old message for a regenerate', () => {
    // "a" again, but the last stored user turn is "b": a new turn that happens to repeat text.
    expect(align('aAbB', 'a')).toEqual({ mode: 'continue', injectUpTo: 4, newFrom: 0, supersedeFrom: null });
  });
});
