'use strict';
// Fault suite, issue 7 items 3 and 4: stack overflow gives the caller a
// RangeError and leaves the worker fine; data or a result that cannot be
// serialised gives ERR_THREADER_CLONE naming the path (`data.items[2].cb`,
// `result.fn`), never a crash, and neither poisons the worker.
// tests/js/errors.test.js has the basic cases (a function, a symbol, a
// WeakMap, a Promise, a Map value, the root); these are the others.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { within } = require('./helpers/util.js');

const { threader, thread, errors, isMock } = load();
const real = needsRealWorkers();

test.afterEach(() => {
  threader.config({ maxWorkers: null });
});

const failure = (fn, data, opts) => within(thread.all(threader(fn, data, opts)), 10000, 'the task')
  .then((v) => assert.fail(`expected a failure, got ${JSON.stringify(v)}`), (e) => e);

function assertClone(err, path, what) {
  assert.ok(err instanceof errors.ThreaderCloneError, `${what}: ${err && err.name}: ${err && err.message}`);
  assert.equal(err.code, 'ERR_THREADER_CLONE', what);
  assert.equal(err.name, 'ThreaderCloneError', what);
  if (path !== undefined) {
    assert.equal(err.path, path, `${what}: ${err.message}`);
    assert.ok(err.message.includes(path), `${what}: message "${err.message}" names ${path}`);
  }
}

// -- stack overflow ----------------------------------------------------------

test('stack overflow in many shapes: a RangeError each time, the same worker goes on', real, async () => {
  threader.config({ maxWorkers: 1 });
  const overflows = {
    direct: function f(n) { return f(n + 1) + 1; },
    mutual: (n) => {
      const even = (k) => (k === 0 ? true : odd(k - 1));
      const odd = (k) => even(k + 2);  // never reaches 0
      return even(n + 1);
    },
    'JSON.stringify of a deep object': () => {
      let o = {};
      for (let i = 0; i < 1e6; i++) o = { o };
      return JSON.stringify(o).length;
    },
    'getter recursion': () => {
      const o = { get x() { return this.x + 1; } };
      return o.x;
    },
    'toString recursion': () => {
      const o = { toString() { return `${this}`; } };
      return String(o);
    },
    'Array.prototype.flat of a deep array': () => {
      let a = [];
      for (let i = 0; i < 1e6; i++) a = [a];
      return a.flat(Infinity).length;
    },
  };
  for (const [name, fn] of Object.entries(overflows)) {
    const err = await failure(fn, 0);
    assert.ok(err instanceof RangeError, `${name}: ${err && err.name}: ${err && err.message}`);
    assert.match(err.message, /call stack/i, name);
    assert.deepEqual(await within(thread.all(threader((x) => x * 2, 21)), 3000, `after ${name}`), [42]);
  }
});

test('stack overflow 100 times in a row on one worker', real, async () => {
  threader.config({ maxWorkers: 1 });
  const before = threader.stats().totals.isolatesCreated;
  const tasks = Array.from({ length: 100 }, () => threader(function r(n) { return r(n + 1) + 1; }, 0));
  const names = await Promise.all(tasks.map((t) => thread.all(t).catch((e) => e.name)));
  assert.deepEqual(new Set(names), new Set(['RangeError']));
  assert.deepEqual(await thread.all(threader((x) => x, 'fine')), ['fine']);
  assert.equal(threader.stats().totals.isolatesCreated, before, 'an overflow must not cost the isolate');
});

test('a stack overflow caught inside the task is the task\'s business', real, async () => {
  const [depth] = await thread.all(threader(() => {
    let n = 0;
    const f = () => { n++; f(); };
    try {
      f();
    } catch (e) {
      return e instanceof RangeError ? n : -1;
    }
    return -2;
  }));
  assert.ok(depth > 1000, String(depth));
});

test('the overflow RangeError carries a stack pointing into the task', real, async () => {
  const err = await failure(function recurseForever(n) { return recurseForever(n + 1) + 1; }, 0);
  assert.ok(err instanceof RangeError);
  assert.match(err.stack, /recurseForever/);
});

// -- data that cannot be cloned -----------------------------------------------

test('data: uncloneable values deep inside are named by path', async () => {
  const fn = function cb() {};
  const cases = [
    [{ items: [0, 1, { cb: fn }] }, 'data.items[2].cb'],
    [{ a: { b: { c: { d: [[[Symbol('deep')]]] } } } }, 'data.a.b.c.d[0][0][0]'],
    [{ set: new Set([1, 2, fn]) }, 'data.set.values()[2]'],
    [{ ws: new WeakSet() }, 'data.ws'],
    [{ wr: new WeakRef({}) }, 'data.wr'],
    [{ g: (function* gen() {})() }, 'data.g'],
    [[0, [1, [2, Promise.reject(new Error('x')).catch(() => {})]]], 'data[1][1][1]'],
    [{ 'key with spaces': fn }, 'data["key with spaces"]'],
    [{ 0: 'a', 1: fn }, 'data[1]'],
    [{ m: new Map([[fn, 1]]) }, 'data.m.keys()[0]'],
    [{ m: new Map([[1, { x: [fn] }]]) }, 'data.m.get(1).x[0]'],
    [Symbol('root'), 'data'],
    [new WeakMap(), 'data'],
  ];
  for (const [data, path] of cases) {
    assertClone(await failure((d) => d, data), path, path);
  }
});

test('data: a Proxy is refused by path (V8 cannot serialise one)', async () => {
  const err = await failure((d) => d, { ok: 1, p: new Proxy({}, {}) });
  assertClone(err, isMock ? undefined : 'data.p', 'proxy');
});

test('data: a class instance with private fields clones its public fields only', async () => {
  class Account {
    #secret = 'hidden';
    constructor() { this.owner = 'ann'; }
    get secret() { return this.#secret; }
  }
  const [out] = await thread.all(threader((d) => ({ keys: Object.keys(d), owner: d.owner, hasSecret: 'secret' in d }),
                                          new Account()));
  // Like structuredClone: a plain object with the own enumerable fields.
  assert.deepEqual(out, { keys: ['owner'], owner: 'ann', hasSecret: false });
  assert.deepEqual(structuredClone(new Account()), { owner: 'ann' });
});

test('data: a getter that throws fails the task with ERR_THREADER_CLONE, not a crash', async () => {
  const data = { ok: 1, get boom() { throw new Error('getter exploded'); } };
  const err = await failure((d) => d, data);
  assert.equal(err.code, 'ERR_THREADER_CLONE', String(err));
  assert.match(err.message, /getter exploded/);
});

test('data: 200,000 levels of nesting fail with ERR_THREADER_CLONE, not a crash', async () => {
  let deep = {};
  let cur = deep;
  for (let i = 0; i < 200000; i++) {
    cur.a = {};
    cur = cur.a;
  }
  const err = await failure((d) => 1, deep);
  assert.equal(err.code, 'ERR_THREADER_CLONE', String(err));
  deep = null;
});

test('data: an uncloneable value in one task fails that task only, in every runner', async () => {
  const bad = () => threader((d) => d, { items: [1, { cb() {} }] });
  const good = () => threader((d) => d, 1);
  const a = await thread.all(bad(), good()).catch((e) => e);
  assertClone(a, 'data.items[1].cb', 'all');
  const r = await thread.race(bad()).catch((e) => e);
  assertClone(r, 'data.items[1].cb', 'race');
  const anyErr = await thread.any(1, bad(), bad()).catch((e) => e);
  assert.ok(anyErr instanceof AggregateError);
  for (const e of anyErr.errors) assertClone(e, 'data.items[1].cb', 'any');
  assert.deepEqual(await thread.any(1, bad(), good()), [1]);
  const s = thread.stream(bad());
  assertClone(await s.next().catch((e) => e), 'data.items[1].cb', 'stream');
  const fired = [];
  threader.config({ onError: (e) => fired.push(e) });
  try {
    thread.fire(bad());
    await within((async () => { while (fired.length === 0) await new Promise((res) => setTimeout(res, 5)); })(),
                 3000, 'fire');
  } finally {
    threader.config({ onError: null });
  }
  assertClone(fired[0], 'data.items[1].cb', 'fire');
});

test('data: 1,000 tasks, every 10th uncloneable: exactly those fail', async () => {
  const tasks = Array.from({ length: 1000 }, (_, i) => threader((d) => d.i, i % 10 === 0 ? { i, f: () => i } : { i }));
  const out = await Promise.all(tasks.map((t) => thread.all(t).then((v) => v[0], (e) => e.path)));
  for (let i = 0; i < 1000; i++) assert.equal(out[i], i % 10 === 0 ? 'data.f' : i);
});

// -- results that cannot be cloned --------------------------------------------

test('result: uncloneable values are named by a result... path', async () => {
  const cases = [
    [() => () => 1, 'result'],
    [() => Symbol('r'), 'result'],
    [() => ({ items: [0, 1, { cb() {} }] }), 'result.items[2].cb'],
    [() => [1, [2, new WeakMap()]], 'result[1][1]'],
    [() => ({ p: Promise.resolve(1) }), 'result.p'],
    [() => ({ s: new Set([Symbol('x')]) }), 'result.s.values()[0]'],
    [() => new Map([['k', { f() {} }]]), 'result.get("k").f'],
    [() => ({ 'odd key': Symbol('y') }), 'result["odd key"]'],
    [() => ({ g: (function* g() {})() }), 'result.g'],
    [() => ({ ag: (async function* g() {})() }), 'result.ag'],
    [() => ({ ws: new WeakSet() }), 'result.ws'],
    [() => ({ so: Object(Symbol('boxed')) }), 'result.so'],
  ];
  for (const [fn, path] of cases) {
    assertClone(await failure(fn), path, path);
  }
});

test('result: a WeakRef is named by path, as it is in data', { ...real }, async () => {
  const err = await failure(() => ({ w: new WeakRef({}) }));
  assertClone(err, 'result.w', 'WeakRef result');
});

test('an Error whose cause cannot be cloned: the path names the cause', real, async () => {
  const dataErr = await failure((d) => d, { e: new Error('x', { cause: () => 1 }) });
  assertClone(dataErr, 'data.e.cause', 'Error.cause in data');
  const resultErr = await failure(() => ({ e: new Error('x', { cause: () => 1 }) }));
  assertClone(resultErr, 'result.e.cause', 'Error.cause in result');
});

test('result: a Proxy, a throwing getter, deep nesting: ERR_THREADER_CLONE, no crash', real, async () => {
  const proxy = await failure(() => ({ p: new Proxy({}, {}) }));
  assertClone(proxy, 'result.p', 'proxy result');
  const getter = await failure(() => ({ get boom() { throw new Error('result getter'); } }));
  // Either the getter's error or a clone error is fine; a crash is not.
  assert.ok(getter.code === 'ERR_THREADER_CLONE' || getter.message === 'result getter', String(getter));
  const deep = await failure(() => {
    let d = {};
    let c = d;
    for (let i = 0; i < 200000; i++) {
      c.a = {};
      c = c.a;
    }
    return d;
  });
  assert.equal(deep.code, 'ERR_THREADER_CLONE', String(deep));
});

test('result: a class instance from the task comes back as a plain object', async () => {
  const [out] = await thread.all(threader(() => {
    class Point {
      #hidden = 1;
      constructor(x) { this.x = x; }
    }
    return new Point(3);
  }));
  assert.deepEqual(out, { x: 3 });
});

test('result clone errors do not poison the worker (one worker, 50 in a row)', real, async () => {
  threader.config({ maxWorkers: 1 });
  const tasks = Array.from({ length: 50 }, (_, i) => threader((n) => (n % 2 ? { f() {} } : n), i));
  const out = await Promise.all(tasks.map((t) => thread.all(t).then((v) => v[0], (e) => e.code)));
  for (let i = 0; i < 50; i++) assert.equal(out[i], i % 2 ? 'ERR_THREADER_CLONE' : i);
});

test('ctx.transfer with bad lists fails cleanly', real, async () => {
  const cases = {
    'not an array': (d, ctx) => ctx.transfer(new ArrayBuffer(4), 'nope'),
    'a view, not a buffer': (d, ctx) => {
      const u = new Uint8Array(4);
      return ctx.transfer(u, [u]);
    },
    'the same buffer twice': (d, ctx) => {
      const b = new ArrayBuffer(4);
      return ctx.transfer(b, [b, b]);
    },
    'a buffer not in the value': (d, ctx) => ctx.transfer(1, [new ArrayBuffer(8)]),
  };
  for (const [name, fn] of Object.entries(cases)) {
    const out = await thread.all(threader(fn)).then((v) => ({ ok: v[0] }), (e) => ({ err: e }));
    // A clean outcome: either a result or an Error with a message.
    if (out.err !== undefined) {
      assert.ok(out.err instanceof Error, `${name}: ${out.err}`);
      assert.ok(out.err.message.length > 0, name);
    }
  }
  assert.deepEqual(await thread.all(threader((x) => x, 'after')), ['after']);
});

test('transfer lists that cannot be honoured: detached, non-detachable, moved twice', real, async () => {
  const detached = new ArrayBuffer(8);
  structuredClone(detached, { transfer: [detached] });
  const e1 = await failure((d) => d.byteLength, detached, { transfer: [detached] });
  assert.equal(e1.code, 'ERR_THREADER_CLONE', String(e1));
  const mem = new WebAssembly.Memory({ initial: 1 });
  const e2 = await failure((d) => d.byteLength, mem.buffer, { transfer: [mem.buffer] });
  assert.equal(e2.code, 'ERR_THREADER_CLONE', String(e2));
  assert.equal(mem.buffer.byteLength, 65536, 'the wasm memory is untouched');
  // The same buffer moved by two tasks of one batch: the first wins.
  const buf = new ArrayBuffer(16);
  const a = threader((d) => d.byteLength, buf, { transfer: [buf] });
  const b = threader((d) => d.byteLength, buf, { transfer: [buf] });
  const out = await Promise.all([a, b].map((t) => thread.all(t).then((v) => v[0], (e) => e.code)));
  assert.deepEqual(out, [16, 'ERR_THREADER_CLONE']);
});
