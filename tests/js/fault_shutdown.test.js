'use strict';
// Fault suite, issue 7 item 6: threader.shutdown() with tasks in flight in
// every state (made in this tick, queued by the thousand, running loops,
// Atomics.wait, a heap hog, between retries, inside stream/race/any/fire):
// every task settles exactly once (cancelled, AbortError) or had completed;
// no worker or timer thread is left (/proc/self/task, counted in a child
// process), no file descriptor leaks, and repeated shutdown/restart cycles
// do not grow threads, fds or memory.  (shutdown.test.js has the basics.)

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { spin, within, delay } = require('./helpers/util.js');

const { threader, thread, root, isMock } = load();
const real = needsRealWorkers();
const hasProc = fs.existsSync('/proc/self/task');

test.afterEach(() => {
  threader.config({ maxHeapMB: null, maxWorkers: null, onError: null });
});

function hog() {
  const keep = [];
  for (;;) keep.push(new Array(100000).fill(1.5));
}

async function nativeIdle() {
  await within((async () => {
    while (threader.stats().tasks.inFlight !== 0 || threader.stats().tasks.pending !== 0) await delay(5);
  })(), 5000, 'native settlement');
}

test('shutdown with tasks in every state: each settles once, as cancelled or completed', real, async () => {
  threader.config({ maxHeapMB: 64 });
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const settledCount = new Map();
  const tasks = [];
  const track = (t, runner) => {
    tasks.push(t);
    settledCount.set(t, 0);
    return runner;
  };
  const count = (t) => () => settledCount.set(t, settledCount.get(t) + 1);
  const runs = [];
  // Running loops, one per worker and more queued behind them.
  for (let i = 0; i < 6; i++) {
    const t = threader(spin, null, { priority: i % 2 ? 'high' : 'low' });
    runs.push(track(t, thread.all(t).then(count(t), count(t))));
  }
  // Atomics.wait forever.
  const waiter = threader(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
  runs.push(track(waiter, thread.all(waiter).then(count(waiter), count(waiter))));
  // A heap hog with retries (may be between attempts).
  const h = threader((c) => {
    Atomics.add(c, 0, 1);
    const keep = [];
    for (;;) keep.push(new Array(100000).fill(1.5));
  }, counter, { retries: 100 });
  runs.push(track(h, thread.all(h).then(count(h), count(h))));
  // 10,000 queued tiny tasks.
  const many = Array.from({ length: 10000 }, (_, i) => threader((x) => x, i));
  for (const t of many) track(t, null);
  runs.push(thread.all(many).catch(() => {}));
  for (const t of many) runs.push(thread.all(t).then(count(t), count(t)));
  // Runners that hold tasks: stream, race, any, fire.
  const st = [threader(spin), threader(spin)];
  const stream = thread.stream(st);
  const streamRead = stream.next().then(() => 'value', (e) => e.name);
  const rc = [threader(spin), threader(spin)];
  const race = thread.race(rc).then(() => 'value', (e) => e.name);
  const an = [threader(spin), threader(spin)];
  const any = thread.any(1, an).then(() => 'value', (e) => e.name);
  const fired = [];
  threader.config({ onError: (e) => fired.push(e) });
  const fi = [threader(spin)];
  thread.fire(fi);
  for (const t of [...st, ...rc, ...an, ...fi]) track(t, null);

  await delay(100);
  // And some made in this very tick, not yet flushed to the binding.
  const lastTick = Array.from({ length: 100 }, (_, i) => threader((x) => x, i));
  for (const t of lastTick) {
    track(t, null);
    runs.push(thread.all(t).then(count(t), count(t)));
  }
  const t0 = Date.now();
  await within(threader.shutdown(), 10000, 'shutdown');
  const took = Date.now() - t0;
  await Promise.all(runs);
  assert.equal(await streamRead, 'AbortError');
  assert.equal(await race, 'AbortError');
  assert.equal(await any, 'AggregateError');
  assert.ok(took < 5000, `shutdown took ${took} ms`);

  let cancelled = 0;
  for (const t of tasks) {
    assert.ok(t.status === 'cancelled' || t.status === 'completed', t.status);
    if (t.status === 'cancelled') {
      cancelled++;
      assert.equal(t.error.name, 'AbortError');
    }
    const n = settledCount.get(t);
    assert.ok(n <= 1, `settled ${n} times`);
  }
  for (const t of [...many, ...lastTick]) assert.equal(settledCount.get(t), 1);
  assert.ok(cancelled >= 14, `${cancelled} cancelled`);
  assert.equal(fired.length, 0, 'cancellations are not reported to onError');
  await nativeIdle();
  // No retry after shutdown.
  const attempts = Atomics.load(counter, 0);
  await delay(300);
  assert.equal(Atomics.load(counter, 0), attempts);
  // Threader keeps working.
  assert.deepEqual(await within(thread.all(threader((x) => x + 1, 1)), 5000, 'after shutdown'), [2]);
});

test('concurrent and nested shutdowns: one promise, nothing hangs', real, async () => {
  const runs = Array.from({ length: 4 }, () => thread.all(threader(spin)).catch((e) => e.name));
  await delay(20);
  const a = threader.shutdown();
  const b = threader.shutdown();
  assert.equal(a, b, 'a second call while draining returns the same promise');
  await within(Promise.all([a, b]), 5000, 'shutdowns');
  assert.deepEqual(await Promise.all(runs), Array(4).fill('AbortError'));
  // shutdown from inside a settlement callback and an onProgress hook.
  const inside = thread.all(threader((x) => x, 1)).then(() => threader.shutdown());
  await within(inside, 5000, 'shutdown in then()');
  const progressed = threader((n, ctx) => {
    ctx.progress(0.5);
    for (;;) { /* spin */ }
  }, 0, { onProgress: () => { threader.shutdown(); } });
  await assert.rejects(within(thread.all(progressed), 5000, 'shutdown in onProgress'), { name: 'AbortError' });
  await nativeIdle();
});

test('work submitted while a shutdown drains runs on the restarted pool', real, async () => {
  for (let i = 0; i < 10; i++) {
    const runs = [threader(spin), ...Array.from({ length: 500 }, (_, k) => threader((x) => x, k))]
      .map((t) => thread.all(t).then(() => 'ok', (e) => e.name));
    await delay(i % 3);
    const down = threader.shutdown();
    const next = thread.all(threader((x) => x * 2, i));
    await within(down, 5000, 'shutdown');
    assert.deepEqual(await within(next, 5000, `work submitted during shutdown #${i}`), [i * 2]);
    for (const o of await Promise.all(runs)) assert.ok(o === 'ok' || o === 'AbortError', o);
  }
  await nativeIdle();
});

// -- threads and file descriptors, in a child process ---------------------------

function child(source, timeout = 60000) {
  const r = spawnSync(process.execPath, ['-e', source], {
    cwd: root, encoding: 'utf8', timeout, killSignal: 'SIGKILL',
    env: { ...process.env, THREADER_ROOT: root },
  });
  assert.equal(r.signal, null, `child killed: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const line = r.stdout.trim().split('\n').pop();
  return JSON.parse(line);
}

const COUNTERS = `
  const fs = require('node:fs');
  const threads = () => fs.readdirSync('/proc/self/task').length;
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const spin = () => { for (;;) {} };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
`;

test('no thread is left after shutdown (workers and the timer thread joined)', { skip: (isMock || !hasProc) && 'needs the addon and /proc' }, (t) => {
  const out = child(`${COUNTERS}
    const before = threads();
    const { threader, thread } = require(process.env.THREADER_ROOT);
    (async () => {
      const loaded = threads();
      threader.config({ maxWorkers: 4, maxHeapMB: 64 });
      // Workers, the timer thread (timeouts), a replaced isolate (heap).
      await thread.all(Array.from({ length: 100 }, (_, i) => threader((x) => x, i)));
      await thread.all(threader(spin, null, { timeout: 10 })).catch(() => {});
      await thread.all(threader(() => { const k = []; for (;;) k.push(new Array(1e5).fill(1)); })).catch(() => {});
      const runs = Array.from({ length: 8 }, () => thread.all(threader(spin)).catch((e) => e.name));
      await sleep(30);
      const busy = threads();
      await threader.shutdown();
      const names = await Promise.all(runs);
      await sleep(50);
      console.log(JSON.stringify({ before, loaded, busy, after: threads(), names }));
    })();
  `);
  t.diagnostic(`threads: before require ${out.before}, loaded ${out.loaded}, busy ${out.busy}, after shutdown ${out.after}`);
  assert.ok(out.busy >= out.loaded + 4, `pool threads while busy: ${JSON.stringify(out)}`);
  // `loaded` includes the worker started at load (js/prestart.js); shutdown
  // joins it too, so what is left is what was there before require.
  assert.equal(out.after, out.before, `threads after shutdown: ${JSON.stringify(out)}`);
  assert.deepEqual(out.names, Array(8).fill('AbortError'));
});

test('20 shutdown/restart cycles under load: threads, fds and RSS stay flat', { skip: (isMock || !hasProc) && 'needs the addon and /proc' }, (t) => {
  const out = child(`${COUNTERS}
    const { threader, thread } = require(process.env.THREADER_ROOT);
    const cycle = async (i) => {
      const runs = [threader(spin), threader(spin), threader(spin, null, { timeout: 5 }),
        ...Array.from({ length: 1000 }, (_, k) => threader((x) => x, k))]
        .map((t) => thread.all(t).then(() => 'ok', (e) => e.name));
      await sleep(5 + (i % 4) * 5);
      await threader.shutdown();
      return Promise.all(runs);
    };
    (async () => {
      for (let i = 0; i < 5; i++) await cycle(i);  // warm-up
      global.gc && global.gc();
      const base = { threads: threads(), fds: fds(), rss: process.memoryUsage().rss };
      let bad = 0;
      // The smallest RSS of the last three cycles: a leak raises all three,
      // a cycle that ends mid-collection raises one.
      let rss = Infinity;
      for (let i = 0; i < 20; i++) {
        for (const o of await cycle(i)) if (o !== 'ok' && o !== 'AbortError' && o !== 'ThreaderTimeoutError') bad++;
        if (i >= 17) rss = Math.min(rss, process.memoryUsage().rss);
      }
      const end = { threads: threads(), fds: fds(), rss };
      console.log(JSON.stringify({ base, end, bad }));
    })();
  `, 120000);
  t.diagnostic(`after 5 warm-up cycles ${JSON.stringify(out.base)}, after 20 more ${JSON.stringify(out.end)}`);
  assert.equal(out.bad, 0);
  assert.equal(out.end.threads, out.base.threads, JSON.stringify(out));
  assert.equal(out.end.fds, out.base.fds, JSON.stringify(out));
  const growth = (out.end.rss - out.base.rss) / 1048576;
  // An isolate per worker per cycle (40 isolates) leaked would be far more.
  assert.ok(growth < 40, `RSS grew by ${growth.toFixed(1)} MB over 20 cycles: ${JSON.stringify(out)}`);
});
