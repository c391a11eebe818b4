'use strict';
// Conformance with DESIGN.md's JS API contract, where an outside suite is
// likely to look and the other test files do not: priority order observed
// on one worker, progress values, every status transition with result and
// error, seed determinism (same seed, same sequence on any worker and after
// any earlier task; different seeds differ), no state left behind between
// tasks, .cancel() on every runner's promise.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { busy, spin, within, delay, waitFor } = require('./helpers/util.js');

const { threader, thread, errors } = load();
const real = needsRealWorkers();

test.afterEach(() => {
  threader.config({ maxWorkers: null });
});

// A task that takes a ticket from a shared counter: the order tasks start.
function ticket(d) {
  return [d.tag, Atomics.add(d.counter, 0, 1)];
}

function startOrder(results) {
  return results.slice().sort((a, b) => a[1] - b[1]).map((r) => r[0]);
}

// -- priorities ----------------------------------------------------------------

test('priority: on one busy worker, high runs before normal before low, FIFO within each', real, async () => {
  threader.config({ maxWorkers: 1 });
  await thread.all(threader((x) => x, 0));
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const blocker = thread.all(threader(busy, 100));
  await delay(20);
  const tasks = [];
  for (const p of ['low', 'normal', 'high']) {
    for (let i = 0; i < 4; i++) tasks.push(threader(ticket, { tag: `${p[0]}${i}`, counter }, { priority: p }));
  }
  const results = await thread.all(tasks);
  await blocker;
  assert.deepEqual(startOrder(results), ['h0', 'h1', 'h2', 'h3', 'n0', 'n1', 'n2', 'n3', 'l0', 'l1', 'l2', 'l3']);
});

test('priority: submitted in separate ticks, and with no priority given (normal)', real, async () => {
  threader.config({ maxWorkers: 1 });
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const blocker = thread.all(threader(busy, 100));
  await delay(20);
  const runs = [];
  runs.push(thread.all(threader(ticket, { tag: 'low', counter }, { priority: 'low' })));
  await delay(1);
  runs.push(thread.all(threader(ticket, { tag: 'default', counter })));
  await delay(1);
  runs.push(thread.all(threader(ticket, { tag: 'normal', counter }, { priority: 'normal' })));
  await delay(1);
  runs.push(thread.all(threader(ticket, { tag: 'high', counter }, { priority: 'high' })));
  const results = (await Promise.all(runs)).map((r) => r[0]);
  await blocker;
  assert.deepEqual(startOrder(results), ['high', 'default', 'normal', 'low']);
});

test('priority: a high task overtakes a long queue of low ones', real, async () => {
  threader.config({ maxWorkers: 1 });
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const lowFn = (d) => {
    const end = Date.now() + 2;
    while (Date.now() < end) { /* 2 ms */ }
    return [d.tag, Atomics.add(d.counter, 0, 1)];
  };
  const lows = thread.all(Array.from({ length: 200 }, (_, i) => threader(lowFn, { tag: `l${i}`, counter }, { priority: 'low' })));
  await delay(30);
  const [high] = await thread.all(threader(ticket, { tag: 'high', counter }, { priority: 'high' }));
  const lowResults = await lows;
  const before = lowResults.filter((r) => r[1] < high[1]).length;
  // It waits for the low task running now, not for the 150+ queued.
  assert.ok(before < 100, `${before} low tasks started before the high one`);
});

// -- progress ------------------------------------------------------------------

test('progress: values stay within 0..1 and the last one is kept', real, async () => {
  const cases = [[0, 0], [0.25, 0.25], [1, 1], [2, 1], [-1, 0], [Infinity, 1]];
  for (const [reported, expected] of cases) {
    const t = threader((v, ctx) => { ctx.progress(v); return 'done'; }, reported);
    const out = await thread.all(t).then((v) => v[0], (e) => e);
    // Out-of-range values are clamped, or refused with an error; never
    // stored outside 0..1.
    if (out === 'done') {
      assert.equal(t.progress, expected, `progress(${reported})`);
    } else {
      assert.ok(out instanceof Error, String(out));
      assert.ok(t.progress === undefined || (t.progress >= 0 && t.progress <= 1));
    }
  }
});

test('progress: many reports arrive in order; onProgress sees only numbers in 0..1', real, async () => {
  const seen = [];
  const t = threader((n, ctx) => {
    for (let i = 0; i <= n; i++) {
      ctx.progress(i / n);
      const end = Date.now() + 1;
      while (Date.now() < end) { /* let the host see some */ }
    }
    return n;
  }, 50, { onProgress: (v, task) => { seen.push(v); assert.equal(task, t); } });
  await thread.all(t);
  assert.ok(seen.length >= 2, `${seen.length} reports`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `out of order: ${seen}`);
  for (const v of seen) assert.ok(typeof v === 'number' && v >= 0 && v <= 1, String(v));
  assert.equal(t.progress, 1);
});

test('progress: a cancelled or failed task keeps its last progress; none arrives after settlement', real, async () => {
  const t = threader((d, ctx) => {
    ctx.progress(0.3);
    for (;;) { /* spin */ }
  });
  const run = thread.all(t).catch((e) => e);
  await waitFor(() => t.progress === 0.3, 3000, 'the report');
  t.cancel();
  await run;
  assert.equal(t.status, 'cancelled');
  assert.equal(t.progress, 0.3);
  const f = threader((d, ctx) => {
    ctx.progress(0.6);
    throw new Error('after progress');
  });
  await thread.all(f).catch(() => {});
  assert.equal(f.status, 'failed');
  assert.equal(f.progress, 0.6);
});

// -- status transitions ----------------------------------------------------------

test('status: pending -> running -> failed, with error set and result undefined', async () => {
  const t = threader(() => { throw new URIError('nope'); });
  assert.equal(t.status, 'pending');
  assert.equal(t.error, undefined);
  const run = thread.all(t);
  assert.equal(t.status, 'running');
  const err = await run.catch((e) => e);
  assert.equal(t.status, 'failed');
  assert.equal(t.error, err);
  assert.ok(t.error instanceof URIError);
  assert.equal(t.result, undefined);
  assert.equal(t.cancel(), false);
  assert.equal(t.status, 'failed');
});

test('status: pending -> cancelled and running -> cancelled; result undefined, error AbortError', real, async () => {
  const p = threader((x) => x, 1);
  p.cancel();
  assert.equal(p.status, 'cancelled');
  assert.equal(p.result, undefined);
  assert.ok(p.error instanceof errors.AbortError);
  const r = threader(spin);
  const run = thread.all(r).catch((e) => e);
  await delay(20);
  assert.equal(r.status, 'running');
  r.cancel();
  assert.equal(r.status, 'cancelled');
  assert.equal((await run).name, 'AbortError');
  assert.equal(r.result, undefined);
});

test('status: a timeout is running -> failed with ERR_THREADER_TIMEOUT in t.error', real, async () => {
  const t = threader(spin, null, { timeout: 20 });
  const seen = new Set([t.status]);
  const run = thread.all(t).catch(() => {});
  seen.add(t.status);
  await run;
  seen.add(t.status);
  assert.deepEqual([...seen], ['pending', 'running', 'failed']);
  assert.equal(t.error.code, 'ERR_THREADER_TIMEOUT');
});

test('status: only the five documented values are ever seen', real, async () => {
  const allowed = new Set(['pending', 'running', 'completed', 'failed', 'cancelled']);
  const tasks = [
    threader((x) => x, 1), threader(() => { throw new Error('x'); }), threader(spin, null, { timeout: 10 }),
    threader(spin), threader((x) => x, { f() {} }),
  ];
  const seen = new Set();
  const poll = setInterval(() => { for (const t of tasks) seen.add(t.status); }, 1);
  const runs = tasks.map((t) => thread.all(t).catch(() => {}));
  setTimeout(() => tasks[3].cancel(), 20);
  await Promise.all(runs);
  clearInterval(poll);
  for (const t of tasks) seen.add(t.status);
  for (const s of seen) assert.ok(allowed.has(s), s);
  assert.deepEqual(tasks.map((t) => t.status), ['completed', 'failed', 'failed', 'cancelled', 'failed']);
});

test('result: t.result is the very value the runner resolved with', async () => {
  const t = threader(() => ({ nested: { list: [1, 2, 3] } }));
  const [v] = await thread.all(t);
  assert.equal(t.result, v);
  assert.equal(await thread.race(t), v);
});

// -- seeds ----------------------------------------------------------------------

const draws = (n) => {
  const out = [];
  for (let i = 0; i < n; i++) out.push(Math.random());
  return out;
};

test('seed: the same seed gives the same Math.random sequence, on every worker', real, async () => {
  const workers = threader.config().maxWorkers;
  // Enough copies that every worker runs some.
  const tasks = Array.from({ length: workers * 8 }, () => threader(draws, 20, { seed: 12345 }));
  const results = await thread.all(tasks);
  for (const r of results) assert.deepEqual(r, results[0]);
  for (const x of results[0]) assert.ok(x >= 0 && x < 1);
  assert.ok(new Set(results[0]).size > 15, 'a sequence, not a constant');
});

test('seed: earlier tasks on the same worker do not shift the sequence', real, async () => {
  threader.config({ maxWorkers: 1 });
  const [first] = await thread.all(threader(draws, 5, { seed: 99 }));
  await thread.all(threader(draws, 1000));  // consume a lot, unseeded
  await thread.all(threader(draws, 7, { seed: 3 }));
  const [again] = await thread.all(threader(draws, 5, { seed: 99 }));
  assert.deepEqual(again, first);
});

test('seed: different seeds differ; no seed differs between tasks', real, async () => {
  const seeds = [0, 1, 2, 3, 42, 0xffffffff, 123456789];
  const results = await thread.all(seeds.map((seed) => threader(draws, 4, { seed })));
  const keys = new Set(results.map((r) => r.join(',')));
  assert.equal(keys.size, seeds.length, 'every seed gives its own sequence');
  const unseeded = await thread.all(Array.from({ length: 10 }, () => threader(draws, 4)));
  assert.equal(new Set(unseeded.map((r) => r.join(','))).size, 10);
});

test('seed: helpers injected with opts.with draw from the same seeded sequence', real, async () => {
  const roll = () => Math.floor(Math.random() * 6) + 1;
  const f = (n) => Array.from({ length: n }, () => roll());
  const [a] = await thread.all(threader(f, 10, { seed: 7, with: { roll } }));
  const [b] = await thread.all(threader(f, 10, { seed: 7, with: { roll } }));
  assert.deepEqual(a, b);
  for (const v of a) assert.ok(v >= 1 && v <= 6);
});

// -- no state left behind --------------------------------------------------------

// DESIGN.md says "intrinsics are frozen".  js/lockdown.js (3fcfac6) freezes
// functions and plain intrinsic objects, but only seals prototypes (freezing
// them sends V8 down slow paths) and checks after every task that their
// methods are intact, replacing the isolate if not.  These tests check that
// guarantee: what is frozen, what is sealed, and that nothing leaks.
test('intrinsics: functions and namespaces frozen, prototypes sealed', real, async () => {
  const [report] = await thread.all(threader(() => {
    const notFrozen = [];
    const extensible = [];
    for (const [name, o] of [['Object', Object], ['Array', Array], ['Function', Function], ['Math', Math],
      ['JSON', JSON], ['Reflect', Reflect], ['Promise', Promise], ['Map', Map], ['globalThis', globalThis],
      ['Array.prototype.push', Array.prototype.push], ['Object.prototype.toString', Object.prototype.toString]]) {
      if (!Object.isFrozen(o)) notFrozen.push(name);
    }
    for (const [name, o] of [['Object.prototype', Object.prototype], ['Array.prototype', Array.prototype],
      ['Function.prototype', Function.prototype], ['String.prototype', String.prototype],
      ['Map.prototype', Map.prototype], ['Promise.prototype', Promise.prototype],
      ['Error.prototype', Error.prototype], ['%TypedArray%.prototype', Object.getPrototypeOf(Uint8Array.prototype)]]) {
      if (Object.isExtensible(o)) extensible.push(name);
      for (const key of Reflect.ownKeys(o)) {
        if (Object.getOwnPropertyDescriptor(o, key).configurable) extensible.push(`${name}.${String(key)} configurable`);
      }
    }
    return { notFrozen, extensible };
  }));
  assert.deepEqual(report, { notFrozen: [], extensible: [] });
});

test('a task that replaces a prototype method keeps it to itself (the next task on the worker sees the original)', real, async () => {
  threader.config({ maxWorkers: 1 });
  const [inside] = await thread.all(threader(() => {
    try {
      Array.prototype.push = function push() { return 'hacked'; };  // eslint-disable-line no-extend-native
      Object.prototype.toString = () => 'pwned';  // eslint-disable-line no-extend-native
      Map.prototype.get = () => 'got';
    } catch (e) {
      return `refused: ${e.name}`;
    }
    return [[1].push(2), String({}), new Map().get(1)].join(',');
  }));
  assert.ok(inside === 'hacked,pwned,got' || /^refused/.test(inside), inside);
  for (let i = 0; i < 3; i++) {
    const [after] = await thread.all(threader(() => [[1].push(2), String({}), new Map([[1, 'one']]).get(1)]));
    assert.deepEqual(after, [2, '[object Object]', 'one']);
  }
});

test('a task cannot leave state behind for the next task on the same worker', real, async () => {
  threader.config({ maxWorkers: 1 });
  const [tried] = await thread.all(threader(() => {
    const attempts = {};
    const attempt = (name, f) => {
      try {
        f();
        attempts[name] = 'no error';
      } catch (e) {
        attempts[name] = e.name;
      }
    };
    attempt('global', () => { globalThis.leaked = 1; });
    attempt('proto', () => { Object.prototype.leaked = 1; });
    attempt('array', () => { Array.prototype.push = () => 0; });
    attempt('math', () => { Math.random = () => 0.5; });
    attempt('json', () => { JSON.parse = () => 'hacked'; });
    attempt('define', () => { Object.defineProperty(globalThis, 'leaked2', { value: 1, configurable: true }); });
    return attempts;
  }));
  assert.equal(typeof tried, 'object');
  const [after] = await thread.all(threader(() => ({
    global: typeof globalThis.leaked,
    global2: typeof globalThis.leaked2,
    proto: typeof ({}).leaked,
    push: [1].push(2),
    random: Math.random() !== 0.5,
    json: JSON.parse('1'),
  })));
  assert.deepEqual(after, {
    global: 'undefined', global2: 'undefined', proto: 'undefined', push: 2, random: true, json: 1,
  });
});

// -- .cancel() on every runner's promise ------------------------------------------

test('every runner\'s promise has .cancel(), rejecting with AbortError and cancelling its tasks', real, async () => {
  const make = () => [threader(spin), threader(spin)];
  for (const name of ['all', 'race', 'any']) {
    const tasks = make();
    const run = name === 'any' ? thread.any(1, tasks) : thread[name](tasks);
    assert.equal(typeof run.cancel, 'function', name);
    await delay(10);
    assert.equal(run.cancel(), true, name);
    await assert.rejects(within(run, 3000, name), { name: 'AbortError' });
    for (const t of tasks) assert.equal(t.status, 'cancelled', name);
  }
  await waitFor(() => threader.stats().tasks.inFlight === 0, 5000, 'native settlement');
});
