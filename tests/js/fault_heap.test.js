'use strict';
// Fault suite, issue 7 item 2: heap exhaustion.  With maxHeapMB set, a task
// that allocates until out of memory fails with ERR_THREADER_WORKER; its
// isolate is replaced from the snapshot; the process survives; the other
// tasks in flight complete; `retries: n` re-runs a task whose worker was
// lost (n more attempts), never one that threw or timed out.  Attempts are
// counted by the tasks themselves, through a SharedArrayBuffer in data.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { busy, spin, within, delay } = require('./helpers/util.js');

const { threader, thread, errors } = load();
const real = needsRealWorkers('needs real isolates with heap limits');

// maxHeapMB reaches only isolates made after it is set (see the todo test
// at the end), so every test starts on a fresh pool made under 64 MB.
test.beforeEach(async () => {
  threader.config({ maxHeapMB: 64 });
  await threader.shutdown();
});
test.afterEach(() => {
  threader.config({ maxHeapMB: null, maxWorkers: null, workerTimeout: 0 });
});

// Counts its run in counter[0], then allocates until the heap is gone.
function hog(counter) {
  Atomics.add(counter, 0, 1);
  const keep = [];
  for (;;) keep.push(new Array(100000).fill(1.5));
}

function newCounter() {
  return new Int32Array(new SharedArrayBuffer(4));
}

async function settledNatively() {
  await within((async () => {
    while (threader.stats().tasks.inFlight !== 0) await delay(5);
  })(), 5000, 'native settlement');
}

test('a task that exhausts its heap fails with ERR_THREADER_WORKER; the process survives', real, async () => {
  const before = threader.stats();
  const counter = newCounter();
  const t = threader(hog, counter);
  const err = await within(thread.all(t), 20000, 'the heap hog').catch((e) => e);
  assert.ok(err instanceof errors.ThreaderWorkerError, String(err));
  assert.equal(err.code, 'ERR_THREADER_WORKER');
  assert.equal(err.name, 'ThreaderWorkerError');
  assert.match(err.message, /heap/i);
  assert.equal(err.attempts, 1);
  assert.equal(counter[0], 1, 'ran once');
  assert.equal(t.status, 'failed');
  assert.equal(t.error, err);
  const after = threader.stats();
  assert.equal(after.tasks.retried, before.tasks.retried);
  assert.ok(after.totals.tasksFailed > before.totals.tasksFailed);
  assert.deepEqual(await thread.all(threader((x) => x * 2, 21)), [42]);
});

test('the lost isolate is replaced: stats count a new isolate', real, async () => {
  // One worker, so the replacement must happen on the worker that lost it.
  threader.config({ maxWorkers: 1 });
  await thread.all(threader((x) => x, 0));
  const before = threader.stats().totals.isolatesCreated;
  for (let i = 0; i < 3; i++) {
    const err = await thread.all(threader(hog, newCounter())).catch((e) => e);
    assert.equal(err.code, 'ERR_THREADER_WORKER');
  }
  assert.deepEqual(await thread.all(threader((x) => x + 1, 1)), [2]);
  const after = threader.stats().totals.isolatesCreated;
  assert.ok(after >= before + 3,
            `isolatesCreated went from ${before} to ${after} after 3 heap losses`);
});

test('the replacement isolate is a clean sandbox from the snapshot', real, async () => {
  threader.config({ maxWorkers: 1 });
  await thread.all(threader(hog, newCounter())).catch(() => {});
  const [probe] = await thread.all(threader(() => ({
    console: typeof globalThis.console, require: typeof globalThis.require,
    process: typeof globalThis.process,
    // Hardened as any fresh worker (fault_contract.test.js has the detail).
    frozen: Object.isFrozen(Math) && Object.isFrozen(JSON) &&
      !Object.isExtensible(Array.prototype) && !Object.isExtensible(Object.prototype),
    json: JSON.stringify({ a: [1, 2] }),
  })));
  assert.deepEqual(probe, {
    console: 'undefined', require: 'undefined', process: 'undefined',
    frozen: true, json: '{"a":[1,2]}',
  });
  // The seeded Math.random works in the new isolate as in any other.
  const draw = () => threader(() => [Math.random(), Math.random()], null, { seed: 7 });
  const [a] = await thread.all(draw());
  const [b] = await thread.all(draw());
  assert.deepEqual(a, b);
});

test('other tasks in flight complete while one exhausts its heap', real, async () => {
  const counter = newCounter();
  const others = Array.from({ length: 40 }, (_, i) => threader(busy, 5 + (i % 10)));
  const quick = Array.from({ length: 1000 }, (_, i) => threader((x) => x * 3, i));
  const [hogErr, slow, fast] = await within(Promise.all([
    thread.all(threader(hog, counter)).catch((e) => e),
    thread.all(others),
    thread.all(quick),
  ]), 30000, 'the batch');
  assert.equal(hogErr.code, 'ERR_THREADER_WORKER', String(hogErr));
  assert.deepEqual(slow, others.map((_, i) => 5 + (i % 10)));
  assert.equal(fast.length, 1000);
  assert.equal(fast[999], 2997);
});

test('every worker exhausting its heap at once: all fail cleanly, the pool recovers', real, async () => {
  const workers = threader.config().maxWorkers;
  const counters = Array.from({ length: workers * 2 }, newCounter);
  const errs = await within(Promise.all(counters.map((c) => thread.all(threader(hog, c)).catch((e) => e))),
                            60000, 'the hogs');
  for (const e of errs) assert.equal(e.code, 'ERR_THREADER_WORKER', String(e));
  for (const c of counters) assert.equal(c[0], 1);
  const results = await within(thread.all(Array.from({ length: 50 }, (_, i) => threader((x) => x, i))),
                               5000, 'work after');
  assert.equal(results.length, 50);
  await settledNatively();
});

test('other ways of running out of heap: strings, maps, nested objects', real, async () => {
  threader.config({ maxWorkers: 1 });
  const hogs = {
    strings: () => {
      const keep = [];
      let s = 'x';
      for (;;) {
        s += s.length;
        keep.push(s + keep.length);
      }
    },
    map: () => {
      const m = new Map();
      for (let i = 0; ; i++) m.set(i, { i, s: `v${i}` });
    },
    tree: () => {
      let root = null;
      for (;;) root = { left: root, right: [root, root], pad: new Array(64).fill(0) };
    },
  };
  for (const [name, fn] of Object.entries(hogs)) {
    const err = await within(thread.all(threader(fn)), 30000, name).catch((e) => e);
    // A RangeError ("Invalid string length", "Map maximum size exceeded")
    // is an acceptable way for V8 to refuse before the heap limit.
    assert.ok(err.code === 'ERR_THREADER_WORKER' || err instanceof RangeError,
              `${name}: ${err && err.name}: ${err && err.message}`);
    assert.deepEqual(await within(thread.all(threader((x) => x, name)), 5000, `after ${name}`), [name]);
  }
});

test('retries: n re-runs a task whose worker was lost, n more times', real, async () => {
  for (const n of [1, 2]) {
    const before = threader.stats().tasks.retried;
    const counter = newCounter();
    const err = await within(thread.all(threader(hog, counter, { retries: n })), 60000, 'retries')
      .catch((e) => e);
    assert.equal(err.code, 'ERR_THREADER_WORKER', String(err));
    assert.equal(counter[0], n + 1, `retries: ${n} ran ${counter[0]} times`);
    assert.equal(err.attempts, n + 1);
    assert.match(err.message, new RegExp(`after ${n + 1} attempts`));
    assert.equal(threader.stats().tasks.retried, before + n);
  }
});

test('a retry that succeeds resolves with its result', real, async () => {
  const counter = newCounter();
  const flaky = (c) => {
    if (Atomics.add(c, 0, 1) === 0) {
      const keep = [];
      for (;;) keep.push(new Array(100000).fill(2.5));
    }
    return 'second time lucky';
  };
  const t = threader(flaky, counter, { retries: 3 });
  assert.deepEqual(await within(thread.all(t), 20000, 'the flaky task'), ['second time lucky']);
  assert.equal(counter[0], 2);
  assert.equal(t.status, 'completed');
});

test('a task that throws is not retried, whatever retries says', real, async () => {
  const counter = newCounter();
  const err = await thread.all(threader((c) => {
    Atomics.add(c, 0, 1);
    throw new TypeError('deterministic failure');
  }, counter, { retries: 5 })).catch((e) => e);
  assert.ok(err instanceof TypeError);
  assert.equal(counter[0], 1);
  // A thrown RangeError from a stack overflow is a throw too.
  const c2 = newCounter();
  const so = await thread.all(threader(function deep(c) {
    if (Atomics.load(c, 0) === 0) Atomics.add(c, 0, 1);
    return deep(c) + 1;
  }, c2, { retries: 3 })).catch((e) => e);
  assert.ok(so instanceof RangeError, String(so));
  assert.equal(c2[0], 1);
});

test('a task that times out or is cancelled is not retried', real, async () => {
  const c1 = newCounter();
  const err = await thread.all(threader((c) => {
    Atomics.add(c, 0, 1);
    for (;;) { /* spin */ }
  }, c1, { retries: 3, timeout: 30 })).catch((e) => e);
  assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
  assert.equal(c1[0], 1);
  const c2 = newCounter();
  const t = threader((c) => {
    Atomics.add(c, 0, 1);
    for (;;) { /* spin */ }
  }, c2, { retries: 3 });
  const run = thread.all(t).catch((e) => e);
  await within((async () => { while (Atomics.load(c2, 0) === 0) await delay(2); })(), 3000, 'start');
  t.cancel();
  assert.equal((await run).name, 'AbortError');
  await delay(50);
  assert.equal(c2[0], 1);
  await settledNatively();
});

test('a result or data clone error is not retried', real, async () => {
  const counter = newCounter();
  const err = await thread.all(threader((c) => {
    Atomics.add(c, 0, 1);
    return { f() {} };
  }, counter, { retries: 3 })).catch((e) => e);
  assert.equal(err.code, 'ERR_THREADER_CLONE');
  assert.equal(counter[0], 1);
});

test('cancelling a task between its retries stops it', real, async () => {
  const counter = newCounter();
  const t = threader(hog, counter, { retries: 50 });
  const run = thread.all(t).catch((e) => e);
  await within((async () => { while (Atomics.load(counter, 0) < 2) await delay(2); })(), 30000, 'a retry');
  t.cancel();
  const err = await run;
  assert.equal(err.name, 'AbortError');
  await settledNatively();
  const ran = Atomics.load(counter, 0);
  await delay(300);
  assert.equal(Atomics.load(counter, 0), ran, 'no attempt after cancel');
  assert.ok(ran < 51);
});

test('timeout and heap limit together: whichever comes first, one settlement', real, async () => {
  const counter = newCounter();
  const err = await within(thread.all(threader(hog, counter, { timeout: 5000, retries: 1 })),
                           30000, 'hog with timeout').catch((e) => e);
  assert.ok(err.code === 'ERR_THREADER_WORKER' || err.code === 'ERR_THREADER_TIMEOUT', String(err));
  await settledNatively();
  assert.deepEqual(await thread.all(threader((x) => x, 'ok')), ['ok']);
});

test('shrinking maxHeapMB applies to isolates made afterwards; null restores the default', real, async () => {
  // With the default limit (hundreds of MB or more), 100 MB of live data
  // fits; at 64 MB (beforeEach) it must not.
  const big = () => {
    const keep = [];
    for (let i = 0; i < 130; i++) keep.push(new Array(100000).fill(i + 0.5));  // ~104 MB
    return keep.length;
  };
  const small = await within(thread.all(threader(big)), 30000, 'big at 64 MB').catch((e) => e);
  assert.equal(small.code, 'ERR_THREADER_WORKER', String(small));
  threader.config({ maxHeapMB: null });
  // Force fresh isolates: lose each worker's isolate once more is not
  // possible without a limit, so restart the pool.
  await threader.shutdown();
  assert.deepEqual(await within(thread.all(threader(big)), 30000, 'big at the default'), [130]);
});

test('a spin after a heap loss on the same worker still times out (timer works on the new isolate)', real, async () => {
  threader.config({ maxWorkers: 1 });
  await thread.all(threader(hog, newCounter())).catch(() => {});
  const t0 = Date.now();
  const err = await within(thread.all(threader(spin, null, { timeout: 40 })), 3000, 'spin').catch((e) => e);
  assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
  assert.ok(Date.now() - t0 < 1000);
  const loop = threader(spin);
  const run = thread.all(loop).catch((e) => e.name);
  await delay(20);
  loop.cancel();
  assert.equal(await within(run, 3000, 'cancel on the new isolate'), 'AbortError');
});

test('maxHeapMB also bounds ArrayBuffer memory: 1 GB of buffers under a 64 MB limit fails cleanly', { ...real }, async () => {
  const out = await within(thread.all(threader(() => {
    const keep = [];
    for (let i = 0; i < 16; i++) keep.push(new ArrayBuffer(64 * 1024 * 1024));  // lazily zeroed: no RSS
    return keep.length;
  })), 20000, 'the buffers').then((v) => v[0], (e) => e);
  assert.ok(out instanceof Error, `1 GB of ArrayBuffers under maxHeapMB: 64 was allowed (${out})`);
  assert.ok(out.code === 'ERR_THREADER_WORKER' || out instanceof RangeError, String(out));
});

test('maxHeapMB set after the pool started applies to the next tasks', { ...real }, async () => {
  threader.config({ maxHeapMB: null });
  await threader.shutdown();
  await thread.all(Array.from({ length: 8 }, (_, i) => threader((x) => x, i)));  // the pool is warm
  threader.config({ maxHeapMB: 64 });
  const big = () => {
    const keep = [];
    for (let i = 0; i < 130; i++) keep.push(new Array(100000).fill(i + 0.5));  // ~104 MB
    return keep.length;
  };
  const out = [];
  for (let i = 0; i < 4; i++) out.push(await within(thread.all(threader(big)), 30000, 'big').then((v) => v[0], (e) => e.code));
  assert.deepEqual(out, Array(4).fill('ERR_THREADER_WORKER'));
});
