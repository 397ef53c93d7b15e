import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.js';

// Objects made once per request must not carry their own getters. A per-object getter (an object
// literal's `get x()`, or Object.defineProperty with a new closure) is stored in an accessor pair
// that V8 allocates in old space: once dead, it still held its closure (and so the response and
// everything the request touched) through every young-generation collection until the next full
// GC. All of a request's objects were promoted because of it, and scavenges took several times
// longer. Getters belong on a class's prototype. Checked on the compiled dist/, with V8's natives
// for the object layout (one shared hidden class, fast properties).
const PROBE = `
import { EventEmitter } from 'node:events';
import { signalFromResponse } from './dist/proxy/client-signal.js';
import { outcomeEmitter } from './dist/routes/outcome-emitter.js';

const response = () => Object.assign(new EventEmitter(), { destroyed: false, writableFinished: false });
const s1 = signalFromResponse(response());
const s2 = signalFromResponse(response());
s1.addEventListener('abort', () => {});

const outcomes = [];
const deps = { now: Date.now, onOutcome: (o) => outcomes.push(o), limiter: { settleTokens: async () => {} }, logger: { error() {} } };
const emit = (id, part) => {
  const values = { caller: { workspaceId: 'w', keyId: 'k' }, startedAt: 0, requestId: id };
  outcomeEmitter({ get: (k) => values[k], set: (k, v) => (values[k] = v) }, deps, { route: 'chat.completions', requestedModel: 'm', stream: true, request: null })(part);
};
emit('a', { status: 'ok', httpStatus: 200, lazyContent: () => ({ text: 'one', toolCalls: [] }) });
emit('b', { status: 'ok', httpStatus: 200, lazyContent: () => ({ text: 'two', toolCalls: [] }) });
emit('c', { status: 'ok', httpStatus: 200, text: 'three', toolCalls: [] });
const ownGetters = (o) => Object.entries(Object.getOwnPropertyDescriptors(o)).filter(([, d]) => d.get || d.set).map(([k]) => k);
console.log(JSON.stringify({
  ownGetters: [s1, s2, ...outcomes].flatMap(ownGetters),
  fast: [s1, s2, ...outcomes].every((o) => %HasFastProperties(o)),
  sameMap: %HaveSameMap(s1, s2) && %HaveSameMap(outcomes[0], outcomes[1]) && %HaveSameMap(outcomes[0], outcomes[2]),
  aborted: s1.aborted,
  texts: outcomes.map((o) => o.text),
}));
`;

describe('per-request objects share their hidden class', () => {
  it('client signals and request outcomes (lazy content or not) have no own getters and one map each', () => {
    const run = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', PROBE], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ ownGetters: [], fast: true, sameMap: true, aborted: false, texts: ['one', 'two', 'three'] });
  });
});
