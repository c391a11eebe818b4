'use strict';
// Fault suite, issue 7 item 7: bad arguments get a clear TypeError or
// RangeError whose message names what was wrong, synchronously, and never
// a crash.  tests/js/args.test.js and config.test.js have the common cases
// (missing/string fn, negative/NaN/Infinity timeout, unknown priority,
// any(-1), maxWorkers: 0, unknown transferMode, ...); these are the rest:
// huge and non-numeric values, odd option containers, getters that throw,
// values at the edges that are valid and must work.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { within } = require('./helpers/util.js');

const { threader, thread, errors } = load();

test.afterEach(() => {
  threader.config({ maxWorkers: null, workerTimeout: 0, maxHeapMB: null, onError: null });
});

const id = (x) => x;

function expectError(call, type, message, what) {
  assert.throws(call, (err) => {
    assert.ok(err instanceof type,
              `${what}: expected ${type.name}, got ${err && err.name}: ${err && err.message}`);
    if (message) assert.match(err.message, message, what);
    return true;
  }, what);
}

test('opts: huge, non-integer and non-numeric values', () => {
  const cases = [
    [{ retries: 1e9 }, RangeError, /opts\.retries/],
    [{ retries: Infinity }, RangeError, /opts\.retries/],
    [{ retries: NaN }, RangeError, /opts\.retries/],
    [{ retries: 2 ** 53 }, RangeError, /opts\.retries/],
    [{ retries: 1n }, TypeError, /opts\.retries/],
    [{ retries: null }, TypeError, /opts\.retries/],
    [{ timeout: 2 ** 31 }, RangeError, /opts\.timeout/],
    [{ timeout: Number.MAX_VALUE }, RangeError, /opts\.timeout/],
    [{ timeout: -Infinity }, RangeError, /opts\.timeout/],
    [{ timeout: -0.5 }, RangeError, /opts\.timeout/],
    [{ timeout: 1n }, TypeError, /opts\.timeout/],
    [{ timeout: true }, TypeError, /opts\.timeout/],
    [{ timeout: {} }, TypeError, /opts\.timeout/],
    [{ priority: null }, TypeError, /opts\.priority/],
    [{ priority: 'HIGH' }, RangeError, /opts\.priority/],
    [{ priority: '' }, RangeError, /opts\.priority/],
    [{ priority: 'constructor' }, RangeError, /opts\.priority/],
    [{ priority: '__proto__' }, RangeError, /opts\.priority/],
    [{ priority: 1 }, TypeError, /opts\.priority/],
    [{ seed: Infinity }, TypeError, /opts\.seed/],
    [{ seed: 1n }, TypeError, /opts\.seed/],
    [{ seed: '1' }, TypeError, /opts\.seed/],
    [{ transferMode: null }, TypeError, /opts\.transferMode/],
    [{ transferMode: 'CLONE' }, RangeError, /opts\.transferMode/],
    [{ transfer: null }, TypeError, /opts\.transfer/],
    [{ transfer: 'buf' }, TypeError, /opts\.transfer/],
    [{ transfer: [null] }, TypeError, /opts\.transfer\[0\]/],
    [{ transfer: [new ArrayBuffer(1), new DataView(new ArrayBuffer(1))] }, TypeError, /opts\.transfer\[1\]/],
    [{ onProgress: null }, TypeError, /opts\.onProgress/],
    [{ onProgress: 'log' }, TypeError, /opts\.onProgress/],
    [{ with: [] }, TypeError, /opts\.with/],
    [{ with: 'Math' }, TypeError, /opts\.with/],
    [{ with: { class: 1 } }, RangeError, /opts\.with\.class/],
    [{ with: { '': 1 } }, RangeError, /opts\.with/],
    [{ signal: new EventTarget() }, TypeError, /opts\.signal/],
    [{ signal: 5 }, TypeError, /opts\.signal/],
  ];
  for (const [opts, type, message] of cases) {
    expectError(() => threader(id, 1, opts), type, message, JSON.stringify(opts, (k, v) =>
      (typeof v === 'bigint' ? `${v}n` : v === Infinity ? 'Infinity' : Number.isNaN(v) ? 'NaN' : v)));
  }
});

test('opts: containers that are not plain objects', () => {
  expectError(() => threader(id, 1, []), TypeError, /"opts"/, 'array');
  expectError(() => threader(id, 1, () => {}), TypeError, /"opts"/, 'function');
  expectError(() => threader(id, 1, 0), TypeError, /"opts"/, 'zero');
  expectError(() => threader(id, 1, false), TypeError, /"opts"/, 'false');
  expectError(() => threader(id, 1, Symbol('o')), TypeError, /"opts"/, 'symbol');
  expectError(() => threader(id, 1, 1n), TypeError, /"opts"/, 'bigint');
  // Objects without Object.prototype, class instances: fine.
  const bare = Object.create(null);
  bare.timeout = 10;
  assert.equal(threader(id, 1, bare).status, 'pending');
  class Options { constructor() { this.priority = 'low'; } }
  assert.equal(threader(id, 1, new Options()).status, 'pending');
});

test('opts: a getter or Proxy trap that throws propagates that error and makes no task', () => {
  const before = threader.stats().tasks.created;
  const boom = new Error('getter exploded');
  assert.throws(() => threader(id, 1, { get timeout() { throw boom; } }), (e) => e === boom);
  assert.throws(() => threader(id, 1, new Proxy({}, { get() { throw boom; } })), (e) => e === boom);
  assert.equal(threader.stats().tasks.created, before);
});

test('fn: every non-function is a TypeError naming "fn"; nothing is made', () => {
  const before = threader.stats().tasks.created;
  for (const bad of [undefined, null, 0, 1n, true, 'x => x', Symbol('f'), [], {}, new Proxy(() => 1, {})]) {
    // A Proxy around a function is typeof 'function': refused by validation.
    assert.throws(() => threader(bad), (e) => {
      assert.ok(e instanceof TypeError || e.code === 'ERR_THREADER_VALIDATION', `${String(e)}`);
      assert.ok(/fn|function|native|proxy/i.test(e.message), e.message);
      return true;
    });
  }
  assert.equal(threader.stats().tasks.created, before);
});

test('fn: async functions, generators and methods of built-ins are refused clearly', () => {
  for (const fn of [async () => 1, function* g() {}, async function* ag() {}, JSON.parse, [].map]) {
    assert.throws(() => threader(fn), { code: 'ERR_THREADER_VALIDATION' }, String(fn));
  }
});

test('runners: bad task lists', () => {
  const t = threader(id, 1);
  for (const name of ['all', 'race', 'stream', 'fire']) {
    for (const bad of [null, undefined, 123, 'ab', [[t]], { then() {} }, Promise.resolve(t)]) {
      expectError(() => thread[name](bad), TypeError, /Task/, `${name}(${String(bad)})`);
    }
  }
  assert.equal(t.status, 'pending', 'a refused run starts nothing');
  expectError(() => new threader.Task({}), TypeError, /Illegal constructor/, 'new Task');
});

test('thread.any: n edge cases', () => {
  const t = () => threader(id, 1);
  expectError(() => thread.any(NaN, t()), RangeError, /"n"/, 'NaN');
  expectError(() => thread.any('1', t()), TypeError, /"n"/, 'string');
  expectError(() => thread.any(1n, t()), TypeError, /"n"/, 'bigint');
  expectError(() => thread.any(null, t()), TypeError, /"n"/, 'null');
  expectError(() => thread.any(1), RangeError, /"n"/, 'no tasks');
  expectError(() => thread.any(-Infinity, t()), RangeError, /"n"/, '-Infinity');
  expectError(() => thread.any(2 ** 32, t()), RangeError, /"n"/, '2**32');
});

test('thread.any(0, ...) resolves [] and runs nothing; -0 counts as 0', async () => {
  const tasks = [threader(id, 1), threader(id, 2)];
  assert.deepEqual(await thread.any(0, ...tasks), []);
  assert.deepEqual(await thread.any(-0), []);
  for (const task of tasks) assert.ok(task.status === 'pending' || task.status === 'cancelled', task.status);
});

test('runners take any iterable of tasks as the single argument', async () => {
  const set = new Set([threader(id, 1), threader(id, 2)]);
  assert.deepEqual(await thread.all(set), [1, 2]);
  function* gen() { yield threader(id, 3); yield threader(id, 4); }
  assert.deepEqual(await thread.all(gen()), [3, 4]);
});

test('config: more bad values, each naming the option; a bad value changes nothing', () => {
  const cases = [
    [{ maxWorkers: 1025 }, RangeError, /maxWorkers/],
    [{ maxWorkers: NaN }, RangeError, /maxWorkers/],
    [{ maxWorkers: Infinity }, RangeError, /maxWorkers/],
    [{ maxWorkers: 1n }, TypeError, /maxWorkers/],
    [{ maxWorkers: true }, TypeError, /maxWorkers/],
    [{ maxHeapMB: -1 }, RangeError, /maxHeapMB/],
    [{ maxHeapMB: NaN }, RangeError, /maxHeapMB/],
    [{ maxHeapMB: Infinity }, RangeError, /maxHeapMB/],
    [{ maxHeapMB: 0.5 }, RangeError, /maxHeapMB/],
    [{ maxHeapMB: '64' }, TypeError, /maxHeapMB/],
    [{ workerTimeout: NaN }, RangeError, /workerTimeout/],
    [{ workerTimeout: 2 ** 40 }, RangeError, /workerTimeout/],
    [{ workerTimeout: '10' }, TypeError, /workerTimeout/],
    [{ enableValidation: 1 }, TypeError, /enableValidation/],
    [{ enableValidation: null }, TypeError, /enableValidation/],
    [{ transferMode: null }, TypeError, /transferMode/],
    [{ onError: {} }, TypeError, /onError/],
    [{ with: [] }, TypeError, /with/],
  ];
  const before = threader.config();
  for (const [options, type, message] of cases) {
    // A valid change next to the bad one must not be applied either.
    expectError(() => threader.config({ workerTimeout: 77, ...options }), type, message,
                JSON.stringify(options, (k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
    assert.deepEqual(threader.config(), before);
  }
  for (const bad of [5, 'x', true, [], () => {}, Symbol('c')]) {
    expectError(() => threader.config(bad), TypeError, /options/, String(typeof bad));
  }
  const boom = new Error('config getter');
  assert.throws(() => threader.config({ get maxWorkers() { throw boom; } }), (e) => e === boom);
  assert.deepEqual(threader.config(), before);
});

test('config: undefined values and null options change nothing', () => {
  const before = threader.config();
  threader.config(null);
  threader.config(undefined);
  threader.config({ maxWorkers: undefined, transferMode: undefined, onError: undefined });
  assert.deepEqual(threader.config(), before);
});

test('stats() and shutdown() ignore stray arguments', async () => {
  assert.ok(Array.isArray(threader.stats(1, 'x')));
  await within(threader.shutdown('now', 5), 5000, 'shutdown');
});

test('valid edge values work: timeout 0.1 (rounded up), -0, the maximum; seed edges; 1000 retries', needsRealWorkers(), async () => {
  const opts = [
    { timeout: 0.1 }, { timeout: -0 }, { timeout: 0x7fffffff }, { seed: -1 }, { seed: 2 ** 53 },
    { seed: 0 }, { seed: -0 }, { seed: 4294967296 }, { retries: 1000 }, { priority: undefined },
    { timeout: null }, { signal: null }, { with: null },
  ];
  for (const o of opts) {
    const out = await within(thread.all(threader((x) => x + 1, 1, o)), 5000, JSON.stringify(o))
      .then((v) => v[0], (e) => e);
    // timeout 0.1 may legitimately time out a trivial task (1 ms); nothing else fails.
    if (o.timeout === 0.1 && out instanceof errors.ThreaderTimeoutError) continue;
    assert.equal(out, 2, `${JSON.stringify(o)}: ${out}`);
  }
});

test('maxWorkers at the edges: 1 and a pool larger than the machine', needsRealWorkers(), async () => {
  threader.config({ maxWorkers: 1 });
  assert.deepEqual(await thread.all(threader(id, 'one')), ['one']);
  threader.config({ maxWorkers: 16 });
  const results = await within(thread.all(Array.from({ length: 64 }, (_, i) => threader(id, i))), 20000, '16 workers');
  assert.equal(results[63], 63);
  threader.config({ maxWorkers: null });
  await within(threader.shutdown(), 10000, 'joining 16 workers');
});

test('maxHeapMB: 1 still makes working isolates, never a crash or a hang; ArrayBuffers keep the 1 MB budget', needsRealWorkers(), async () => {
  // The JS heap gets at least 16 MB (v8c/worker.cc, kMinJsHeapMB): under
  // Node 24 an isolate of a few MB lost its set-up, or aborted the whole
  // process when a background compile ran out of heap.  Each round makes
  // fresh isolates under the limit.
  threader.config({ maxHeapMB: 1 });
  try {
    for (let round = 0; round < 4; round++) {
      await threader.shutdown();
      assert.deepEqual(await within(thread.all(threader(id, round), threader(id, -round)), 20000,
                                    `round ${round} with a 1 MB limit`), [round, -round]);
    }
    const big = await within(thread.all(threader(() => new ArrayBuffer(4 << 20).byteLength)), 20000,
                             'a 4 MB ArrayBuffer under a 1 MB limit').then((v) => v, (e) => e);
    assert.ok(big instanceof Error, `a 4 MB ArrayBuffer under maxHeapMB: 1 was allowed (${big})`);
  } finally {
    threader.config({ maxHeapMB: null });
  }
  // Isolates made under 1 MB keep it until lost: start afresh.
  await threader.shutdown();
  assert.deepEqual(await within(thread.all(threader(id, 'back')), 20000, 'after resetting maxHeapMB'), ['back']);
});

test('task.cancel(reason) takes any reason; cancel twice; cancel of a never-run task', async () => {
  for (const reason of [undefined, null, 0, 'str', Symbol('r'), { a: 1 }, new Error('e')]) {
    const t = threader(id, 1);
    assert.equal(t.cancel(reason), true);
    assert.equal(t.cancel(reason), false);
    assert.equal(t.status, 'cancelled');
    assert.ok(t.error instanceof Error);
    assert.equal(t.error.name, 'AbortError');
    await assert.rejects(thread.all(t), { name: 'AbortError' });
  }
});

test('a run\'s .cancel() and a stream\'s return() after settlement are no-ops', async () => {
  const run = thread.all(threader(id, 1));
  assert.deepEqual(await run, [1]);
  assert.equal(run.cancel(), false);
  const race = thread.race(threader(id, 2));
  assert.equal(await race, 2);
  assert.equal(race.cancel(new Error('late')), false);
  const s = thread.stream(threader(id, 3));
  assert.deepEqual(await s.next(), { value: 3, done: false });
  assert.deepEqual(await s.next(), { value: undefined, done: true });
  assert.deepEqual(await s.return('x'), { value: 'x', done: true });
  assert.deepEqual(await s.next(), { value: undefined, done: true });
});

test('a finished stream\'s .cancel() is a no-op: false, and reads stay done', {}, async () => {
  const s = thread.stream(threader(id, 3));
  const seen = [];
  for await (const v of s) seen.push(v);
  assert.deepEqual(seen, [3]);
  assert.equal(s.cancel(), false);
  assert.deepEqual(await s.next(), { value: undefined, done: true });
});

test('an onError hook that throws does not break fire() or the pool', async () => {
  threader.config({ onError: () => { throw new Error('hook failed'); } });
  const original = console.error;
  const printed = [];
  console.error = (...args) => printed.push(args.join(' '));
  try {
    thread.fire(threader(() => { throw new Error('task failed'); }));
    await within((async () => { while (printed.length === 0) await new Promise((r) => setTimeout(r, 5)); })(),
                 5000, 'the report');
  } finally {
    console.error = original;
  }
  assert.match(printed.join('\n'), /hook failed/);
  assert.deepEqual(await thread.all(threader(id, 'still fine')), ['still fine']);
});

test('errors are real Error subclasses with codes, usable by instanceof', () => {
  try {
    threader(id, 1, { timeout: -1 });
  } catch (e) {
    assert.ok(e instanceof RangeError);
    assert.equal(typeof e.code, 'string');
    assert.ok(e.stack.includes('fault_args.test.js'), 'the stack points at the caller');
  }
  assert.ok(errors.ThreaderCloneError.prototype instanceof errors.ThreaderError);
});
