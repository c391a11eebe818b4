'use strict';
// thread.all: input order, first failure rejects and cancels the rest.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');
const { busy, spin, within } = require('./helpers/util.js');

const { threader, thread, isMock, binding } = load();

test('resolves with results in input order, not completion order', async () => {
  // Longer tasks first: on real workers they finish last.
  const delays = [120, 90, 60, 30, 0];
  const results = await thread.all(...delays.map((ms) => threader(busy, ms)));
  assert.deepEqual(results, delays);
});

test('takes tasks as arguments or as one array', async () => {
  const make = () => [1, 2, 3].map((n) => threader((x) => x * 10, n));
  assert.deepEqual(await thread.all(...make()), [10, 20, 30]);
  assert.deepEqual(await thread.all(make()), [10, 20, 30]);
  assert.deepEqual(await thread.all(threader((x) => x + 1, 1)), [2]);
});

test('an empty run resolves to an empty array', async () => {
  assert.deepEqual(await thread.all(), []);
  assert.deepEqual(await thread.all([]), []);
});

test('task status goes pending -> running -> completed with the result', async () => {
  const t = threader((x) => ({ doubled: x * 2 }), 21);
  assert.equal(t.status, 'pending');
  assert.equal(t.result, undefined);
  const run = thread.all(t);
  assert.equal(t.status, 'running');
  const [r] = await run;
  assert.equal(t.status, 'completed');
  assert.deepEqual(r, { doubled: 42 });
  assert.deepEqual(t.result, { doubled: 42 });
  assert.equal(t.error, undefined);
});

test('nothing runs until a thread.* call', async () => {
  const t = threader((x) => x, 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(t.status, 'pending');
  if (isMock) assert.equal(binding.pending(), 0);
});

test('rejects with the first failure and cancels the rest', async () => {
  // The failing task goes first, so that it runs while the others spin.
  const bad = threader((x) => { throw new RangeError(`bad ${x}`); }, 7, { priority: 'high' });
  const rest = isMock ?
    // The mock runs 4 at a time and cannot stop a running loop: queue
    // cheap tasks behind the failing one instead.
    Array.from({ length: 12 }, () => threader(busy, 1)) :
    Array.from({ length: 8 }, () => threader(spin, null, { timeout: 20000 }));
  const tasks = [bad, ...rest];
  await assert.rejects(within(thread.all(tasks), 3000, 'thread.all'),
                       { name: 'RangeError', message: 'bad 7' });
  assert.equal(bad.status, 'failed');
  assert.ok(bad.error instanceof RangeError);
  for (const t of rest) {
    assert.ok(t.status === 'cancelled' || (isMock && t.status === 'completed'), t.status);
  }
  if (!isMock) {
    for (const t of rest) assert.equal(t.error.name, 'AbortError');
  } else {
    assert.ok(rest.some((t) => t.status === 'cancelled'));
  }
});

test('a task runs once; several runners share its run', async () => {
  const t = threader((x) => x * 3, 5);
  const [a, b] = await Promise.all([thread.all(t, t), thread.all([t])]);
  assert.deepEqual(a, [15, 15]);
  assert.deepEqual(b, [15]);
  // A settled task gives its result to a later runner at once.
  assert.deepEqual(await thread.all(t), [15]);
  assert.equal(await thread.race(t), 15);
});

test('a settled failure fails a later runner with the same error', async () => {
  const t = threader(() => { throw new Error('once'); });
  const first = await thread.all(t).catch((e) => e);
  const second = await thread.all(t).catch((e) => e);
  assert.equal(first.message, 'once');
  assert.equal(second, first);
});

test('structured data round-trips', async () => {
  const data = {
    n: 1.5, s: 'héllo', big: 2n ** 70n, nested: [1, [2, [3]]],
    map: new Map([['a', 1]]), set: new Set([1, 2]), date: new Date(0),
    bytes: new Uint8Array([1, 2, 3]), f64: new Float64Array([0.5, -0]),
    nul: null, undef: undefined, re: /x+/g,
  };
  const [out] = await thread.all(threader((d) => d, data));
  assert.deepEqual(out, data);
});

test('thousands of tiny tasks', async () => {
  const tasks = Array.from({ length: 5000 }, (_, i) => threader((x) => x + 1, i));
  const results = await thread.all(tasks);
  assert.equal(results.length, 5000);
  for (let i = 0; i < 5000; i++) assert.equal(results[i], i + 1);
});

test('tasks started in one tick reach the binding in one batch', { skip: !isMock && 'mock only: counts binding.submit calls' }, async () => {
  const before = binding.submitSizes.length;
  const fnsBefore = binding.fns.length;
  const f = (x) => x - 1;
  const a = thread.all(Array.from({ length: 300 }, (_, i) => threader(f, i)));
  const b = thread.all(Array.from({ length: 200 }, (_, i) => threader(f, i)));
  await Promise.all([a, b]);
  assert.deepEqual(binding.submitSizes.slice(before), [500]);
  // One registration per distinct source.
  assert.equal(binding.fns.length, fnsBefore + 1);
});

test('a tick of more than 2,048 tasks reaches the binding in chunks of 2,048', { skip: !isMock && 'mock only: counts binding.submit calls' }, async () => {
  const before = binding.submitSizes.length;
  const results = await thread.all(Array.from({ length: 5000 }, (_, i) => threader((x) => x * 2, i)));
  assert.deepEqual(binding.submitSizes.slice(before), [2048, 2048, 904]);
  assert.deepEqual(results, Array.from({ length: 5000 }, (_, i) => i * 2));
});

test('in a chunk, data that cannot be cloned fails only its own task', async () => {
  // Bad data at the first, a middle and the last place of the second chunk.
  const bad = new Set([2048, 3000, 4095]);
  const tasks = Array.from({ length: 4096 },
                           (_, i) => threader((x) => x + 1, bad.has(i) ? { f() {} } : i));
  const settled = await Promise.allSettled(tasks.map((t) => thread.all(t)));
  for (let i = 0; i < tasks.length; i++) {
    if (bad.has(i)) {
      assert.equal(settled[i].status, 'rejected', `task ${i}`);
      assert.equal(settled[i].reason.code, 'ERR_THREADER_CLONE', `task ${i}`);
      assert.equal(tasks[i].status, 'failed');
    } else {
      assert.deepEqual(settled[i], { status: 'fulfilled', value: [i + 1] }, `task ${i}`);
    }
  }
});

test('the submitted data is not kept alive once its task settles', async () => {
  require('node:v8').setFlagsFromString('--expose-gc');
  const gc = require('node:vm').runInNewContext('gc');
  // In a function of its own, so that no frame of the test holds the data.
  const submit = () => {
    const data = { payload: new Array(1000).fill(7) };
    const ref = new WeakRef(data);
    return { ref, done: thread.all(threader((d) => d.payload.length, data)) };
  };
  const { ref, done } = submit();
  assert.deepEqual(await done, [1000]);
  for (let i = 0; i < 5 && ref.deref() !== undefined; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  assert.equal(ref.deref(), undefined);
});

test('runs tasks in parallel on real workers', { skip: isMock && 'mock binding: needs real parallel workers' }, async () => {
  const workers = threader.config().maxWorkers;
  if (!(workers >= 2)) return;
  const t0 = Date.now();
  await thread.all(Array.from({ length: workers }, () => threader(busy, 300)));
  const elapsed = Date.now() - t0;
  // Serial would be workers * 300 ms.
  assert.ok(elapsed < 300 * workers * 0.75, `took ${elapsed} ms`);
});

test('.cancel() rejects the run with AbortError and cancels its tasks', async () => {
  const tasks = Array.from({ length: 6 }, () => threader(isMock ? busy : spin, 5, { timeout: 10000 }));
  const run = thread.all(tasks);
  assert.equal(typeof run.cancel, 'function');
  assert.equal(run.cancel(), true);
  assert.equal(run.cancel(), false);
  await assert.rejects(run, { name: 'AbortError' });
  for (const t of tasks) assert.equal(t.status, 'cancelled');
});
