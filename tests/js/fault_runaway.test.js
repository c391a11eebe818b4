'use strict';
// Fault suite, issue 7 item 1: runaway code.  An infinite loop is stopped by
// its timeout, by config.workerTimeout or by .cancel(), promptly, and the
// worker that ran it takes the next task straight after (its isolate is
// reused, not replaced).  The loops here are the ones that are hard to
// stop: loops that catch, loops in `finally`, Atomics.wait, long builtins,
// catastrophic regular expressions.
//
// Needs real workers (an infinite loop would hang the mock binding).

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { spin, within, delay } = require('./helpers/util.js');

const { threader, thread, errors } = load();
const real = needsRealWorkers('needs real workers to stop infinite loops');

const DEFAULTS = { maxWorkers: null, workerTimeout: 0, maxHeapMB: null };
test.afterEach(() => {
  threader.config(DEFAULTS);
});

const id = (x) => x;

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Waits until nothing is in flight (stats' `running` says that a worker
// thread exists, not that it runs a task), so that a timing starts on an
// idle pool.
async function idle() {
  const end = Date.now() + 5000;
  for (;;) {
    const s = threader.stats();
    if (s.tasks.inFlight === 0 && s.tasks.pending === 0) break;
    if (Date.now() > end) throw new Error('the pool did not become idle');
    await delay(2);
  }
  await delay(5);
}

// ms from submission to rejection of one task, and its error.
async function timeRejection(fn, data, opts) {
  const t0 = performance.now();
  const err = await within(thread.all(threader(fn, data, opts)), 5000, 'the task')
    .then(() => null, (e) => e);
  return { err, ms: performance.now() - t0 };
}

test('timeout: 50 stops an infinite loop within 50 + 50 ms (median of 5, idle pool)', real, async (t) => {
  await thread.all(threader(id, 'warm-up'));
  const times = [];
  for (let i = 0; i < 5; i++) {
    await idle();
    const { err, ms } = await timeRejection(spin, null, { timeout: 50 });
    assert.ok(err instanceof errors.ThreaderTimeoutError, String(err));
    assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
    assert.equal(err.timeout, 50);
    // Never before its deadline (1 ms of clock granularity).
    assert.ok(ms >= 49, `rejected after ${ms.toFixed(1)} ms, before its timeout`);
    times.push(ms);
  }
  const m = median(times);
  t.diagnostic(`submission to rejection: [${times.map((x) => x.toFixed(1))}] ms, median ${m.toFixed(1)} ms`);
  assert.ok(m < 150, `median ${m.toFixed(1)} ms over [${times.map((t) => t.toFixed(1))}]`);
});

test('the worker takes the next task straight after a timeout (one worker)', real, async () => {
  threader.config({ maxWorkers: 1 });
  await thread.all(threader(id, 'warm-up'));
  const before = threader.stats();
  const lags = [];
  for (let i = 0; i < 5; i++) {
    const loop = threader(spin, null, { timeout: 30 });
    const next = threader((x) => x * 2, i);
    // Queued behind the loop on the only worker.
    const loopRun = thread.all(loop).catch((e) => e);
    const nextRun = thread.all(next);
    const err = await loopRun;
    const t0 = performance.now();
    assert.deepEqual(await within(nextRun, 2000, 'the task queued behind the loop'), [i * 2]);
    lags.push(performance.now() - t0);
    assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
  }
  assert.ok(median(lags) < 50, `next task took [${lags.map((t) => t.toFixed(1))}] ms after the timeout`);
  // Terminated, not lost: the isolate is reused.
  const after = threader.stats();
  assert.equal(after.totals.isolatesCreated, before.totals.isolatesCreated,
               'a timeout must not replace the isolate');
});

test('50 timeouts in a row on one worker, then it still works', real, async () => {
  threader.config({ maxWorkers: 1 });
  const tasks = Array.from({ length: 50 }, () => threader(spin, null, { timeout: 5 }));
  const t0 = Date.now();
  const codes = await Promise.all(tasks.map((t) => thread.all(t).then(() => 'ok', (e) => e.code)));
  assert.deepEqual(new Set(codes), new Set(['ERR_THREADER_TIMEOUT']));
  // 50 x 5 ms, serial; a lot of slack for a loaded machine.
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  assert.deepEqual(await within(thread.all(threader((x) => x + 1, 41)), 2000, 'next'), [42]);
});

test('loops that are hard to stop all time out, and the worker is fine', real, async () => {
  threader.config({ maxWorkers: 1 });
  const loops = {
    'catch-all loop': () => {
      for (;;) {
        try {
          for (;;) { /* spin */ }
        } catch (e) { /* swallow */ }
      }
    },
    'loop in finally': () => {
      for (;;) {
        try {
          for (;;) { /* spin */ }
        } finally {
          for (;;) { /* spin again */ }
        }
      }
    },
    'Atomics.wait forever': () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0),
    'sort in a loop': () => {
      const a = Array.from({ length: 200000 }, (_, i) => (i * 7919) % 1000003);
      for (;;) a.sort((x, y) => x - y);
    },
    'JSON in a loop': () => {
      const s = JSON.stringify(Array.from({ length: 20000 }, (_, i) => ({ i })));
      for (;;) JSON.parse(s);
    },
    'catastrophic regexp': () => /(a+)+$/.test(`${'a'.repeat(40)}b`),
    'recursion that catches its overflow': function again(n) {
      try {
        return again(n + 1);
      } catch (e) {
        return again(0);
      }
    },
  };
  for (const [name, fn] of Object.entries(loops)) {
    const { err, ms } = await timeRejection(fn, 0, { timeout: 50 });
    assert.ok(err !== null && err.code === 'ERR_THREADER_TIMEOUT', `${name}: ${err}`);
    // The contract is 100 ms; builtins and regexps check for interrupts
    // less often, so allow more here (but not seconds).
    assert.ok(ms < 1000, `${name}: ${ms.toFixed(0)} ms`);
    assert.deepEqual(await within(thread.all(threader(id, name)), 2000, `the task after ${name}`),
                     [name]);
  }
});

test('config workerTimeout stops an infinite loop that set no timeout, promptly', real, async () => {
  await thread.all(threader(id, 'warm-up'));
  threader.config({ workerTimeout: 50 });
  const times = [];
  for (let i = 0; i < 3; i++) {
    await idle();
    const { err, ms } = await timeRejection(spin, null);
    assert.equal(err && err.code, 'ERR_THREADER_TIMEOUT', String(err));
    assert.equal(err.timeout, 50);
    assert.ok(ms >= 49, `${ms.toFixed(1)} ms`);
    times.push(ms);
  }
  assert.ok(median(times) < 150, `[${times.map((t) => t.toFixed(1))}] ms`);
});

test('workerTimeout applies through every runner', real, async () => {
  threader.config({ workerTimeout: 40 });
  const codes = [];
  codes.push(await thread.race(threader(spin)).catch((e) => e.code));
  codes.push(await thread.any(1, threader(spin)).catch((e) => e.errors && e.errors[0].code));
  const s = thread.stream(threader(spin));
  codes.push(await s.next().catch((e) => e.code));
  const fired = [];
  threader.config({ onError: (e) => fired.push(e.code) });
  try {
    thread.fire(threader(spin));
    await within((async () => { while (fired.length === 0) await delay(5); })(), 3000, 'fire');
  } finally {
    threader.config({ onError: null });
  }
  codes.push(fired[0]);
  assert.deepEqual(codes, Array(4).fill('ERR_THREADER_TIMEOUT'));
});

test('workerTimeout: 0 (none) lets a long task finish', real, async () => {
  threader.config({ workerTimeout: 30 });
  threader.config({ workerTimeout: 0 });
  const busy150 = () => {
    const end = Date.now() + 150;
    while (Date.now() < end) { /* busy */ }
    return 'done';
  };
  assert.deepEqual(await thread.all(threader(busy150)), ['done']);
});

test('.cancel() stops a running infinite loop and frees its worker at once', real, async () => {
  threader.config({ maxWorkers: 1 });
  await thread.all(threader(id, 'warm-up'));
  const before = threader.stats().totals.isolatesCreated;
  const lags = [];
  for (let i = 0; i < 5; i++) {
    const loop = threader(spin);
    const run = thread.all(loop);
    const after = threader((x) => x, i);
    const afterRun = thread.all(after);
    await delay(30);
    assert.equal(loop.status, 'running');
    const t0 = performance.now();
    assert.equal(loop.cancel(), true);
    assert.equal(loop.status, 'cancelled');
    await assert.rejects(run, { name: 'AbortError' });
    assert.deepEqual(await within(afterRun, 2000, 'the task queued behind the loop'), [i]);
    lags.push(performance.now() - t0);
  }
  assert.ok(median(lags) < 100, `[${lags.map((t) => t.toFixed(1))}] ms from cancel to the next result`);
  assert.equal(threader.stats().totals.isolatesCreated, before, 'a cancel must not replace the isolate');
});

test('cancelling loops on every worker, many times over, loses nothing', real, async () => {
  const workers = threader.config().maxWorkers;
  for (let round = 0; round < 10; round++) {
    const loops = Array.from({ length: workers }, () => threader(spin));
    const runs = loops.map((t) => thread.all(t).catch((e) => e.name));
    await delay(5 + (round % 3) * 10);
    for (const t of loops) t.cancel();
    assert.deepEqual(await within(Promise.all(runs), 3000, 'the cancelled loops'),
                     Array(workers).fill('AbortError'));
  }
  const results = await within(thread.all(Array.from({ length: 100 }, (_, i) => threader(id, i))),
                               3000, 'tasks after the cancellations');
  assert.equal(results[99], 99);
  await within((async () => {
    while (threader.stats().tasks.inFlight !== 0) await delay(5);
  })(), 3000, 'native settlement of the cancelled loops');
});

test('an AbortSignal stops a running infinite loop; ctx.cancelled is seen by a cooperative one', real, async () => {
  const ac = new AbortController();
  const loop = threader(spin, null, { signal: ac.signal });
  const run = thread.all(loop);
  await delay(30);
  const t0 = performance.now();
  ac.abort(new Error('enough'));
  await assert.rejects(run, (e) => e.name === 'AbortError' && e.cause && e.cause.message === 'enough');
  assert.ok(performance.now() - t0 < 100);
  assert.deepEqual(await within(thread.all(threader(id, 'next')), 2000, 'next'), ['next']);
});

test('a timeout while the host is busy still stops the loop', real, async () => {
  // The host thread blocks for 300 ms: the timer thread must not need it.
  const loop = thread.all(threader(spin, null, { timeout: 50 })).catch((e) => e);
  const next = thread.all(threader(id, 'after'));
  await delay(0);
  const end = Date.now() + 300;
  while (Date.now() < end) { /* block the host */ }
  const err = await loop;
  assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
  assert.deepEqual(await next, ['after']);
});

test('timeout and cancel racing on the same task settle it once', real, async () => {
  let settledCount = 0;
  const outcomes = [];
  for (let i = 0; i < 40; i++) {
    const t = threader(spin, null, { timeout: 20 });
    const run = thread.all(t).then(() => 'ok', (e) => { settledCount++; return e.name; });
    await delay(15 + (i % 10));
    t.cancel();
    outcomes.push(await run);
    assert.ok(t.status === 'cancelled' || t.status === 'failed', t.status);
  }
  assert.equal(settledCount, 40);
  for (const o of outcomes) assert.ok(o === 'AbortError' || o === 'ThreaderTimeoutError', o);
  await within((async () => {
    while (threader.stats().tasks.inFlight !== 0) await delay(5);
  })(), 3000, 'native settlement');
  assert.deepEqual(await thread.all(threader(id, 1)), [1]);
});

test('a timeout counts running time, not time spent queued (include/threader.h)', real, async () => {
  threader.config({ maxWorkers: 1 });
  const blocker = threader((ms) => {
    const end = Date.now() + ms;
    while (Date.now() < end) { /* busy */ }
    return ms;
  }, 200);
  const blockerRun = thread.all(blocker);
  const queued = Array.from({ length: 5 }, (_, i) => threader((x) => x, i, { timeout: 50 }));
  const out = await Promise.all(queued.map((t) => thread.all(t).then((v) => v[0], (e) => e.code)));
  assert.deepEqual(out, [0, 1, 2, 3, 4]);
  assert.deepEqual(await blockerRun, [200]);
});

test('10,000 armed-then-disarmed deadlines do not delay a later timeout', real, async () => {
  await thread.all(Array.from({ length: 10000 }, (_, i) => threader((x) => x, i, { timeout: 1000 + (i % 977) })));
  const t0 = performance.now();
  const err = await within(thread.all(threader(spin, null, { timeout: 50 })), 3000, 'the timeout').catch((e) => e);
  const ms = performance.now() - t0;
  assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
  assert.ok(ms < 250, `${ms.toFixed(0)} ms`);
});
