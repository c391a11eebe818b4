'use strict';
// Fault suite, issue 7 item 5: load.
// - tests/load/million.js with N = 1,000,000 (THREADER_LOAD_N overrides):
//   thread.all in batches of 10,000 and thread.stream, RSS flat within
//   +-25% after warm-up.  It takes about 10 s on a 2-core machine, so it
//   runs here rather than only in tests/load/.
// - A random mix that settle.test.js does not cover: every priority, real
//   infinite loops stopped by timeouts, AbortSignals (aborted before and
//   during the run), run.cancel(), clone errors on data and results,
//   stack overflows, heap losses with retries, all runners at once; then an
//   accounting check: every task settled exactly once with the right
//   status, and the stats counters agree.
// - 10,000 cancellations by AbortSignal and by run.cancel() racing
//   completions at every priority (settle.test.js does task.cancel()).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { spin, within, delay } = require('./helpers/util.js');

const { threader, thread, root, isMock } = load();
const real = needsRealWorkers();

test.afterEach(() => {
  threader.config({ maxHeapMB: null, onError: null, workerTimeout: 0 });
});

function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.THREADER_TEST_SEED || Date.now() % 100000);

test('1,000,000 tiny tasks through thread.all and thread.stream: RSS flat within +-25%', { skip: isMock && 'needs the addon' }, (t) => {
  const n = process.env.THREADER_LOAD_N || '1000000';
  const r = spawnSync(process.execPath, [path.join(root, 'tests', 'load', 'million.js'), n, '--json'], {
    cwd: root, encoding: 'utf8', timeout: 240000, killSignal: 'SIGKILL', env: process.env,
  });
  assert.equal(r.signal, null, `killed (timeout?): ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop();
  let report;
  try {
    report = JSON.parse(line);
  } catch {
    assert.fail(`no report: ${r.stdout}\n${r.stderr}`);
  }
  t.diagnostic(`thread.all ${report.allTasksPerSec} tasks/s, thread.stream ${report.streamTasksPerSec} tasks/s`);
  t.diagnostic(`RSS base ${report.baseRssMB} MB, moving median ${report.minRssMB}..${report.maxRssMB} MB, raw max ${report.rawMaxRssMB} MB`);
  assert.deepEqual(report.failures, []);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(report.inFlight, 0);
});

test(`random mix with priorities, loops, signals, run.cancel, clone errors, overflows, heap losses (seed ${SEED})`, real, async () => {
  threader.config({ maxHeapMB: 64 });
  await threader.shutdown();  // fresh isolates with the heap limit
  const random = prng(SEED);
  const N = 1200;
  const PRIORITIES = ['high', 'normal', 'low'];
  const before = { ...threader.stats().tasks };
  const plan = [];
  const settledCount = new Array(N).fill(0);
  const watchers = [];
  const later = [];  // cancellations to do after submission
  const runCancels = [];
  let hogs = 0;
  for (let i = 0; i < N; i++) {
    const r = random();
    const priority = PRIORITIES[Math.floor(random() * 3)];
    let kind;
    if (r < 0.40) kind = 'ok';
    else if (r < 0.52) kind = 'throw';
    else if (r < 0.58) kind = 'timeout';
    else if (r < 0.66) kind = 'signal-before';
    else if (r < 0.74) kind = 'signal-during';
    else if (r < 0.80) kind = 'cancel';
    else if (r < 0.85) kind = 'data-clone';
    else if (r < 0.90) kind = 'result-clone';
    else if (r < 0.95) kind = 'overflow';
    else if (r < 0.97 && hogs < 4) kind = 'heap';
    else kind = 'ok';
    let task;
    let signal;
    const base = { priority };
    switch (kind) {
      case 'ok': task = threader((x) => x * 2, i, base); break;
      case 'throw': task = threader((x) => { throw new SyntaxError(`bad ${x}`); }, i, base); break;
      case 'timeout': task = threader(spin, i, { ...base, timeout: 5 + Math.floor(random() * 20) }); break;
      case 'signal-before': {
        const ac = new AbortController();
        ac.abort(new Error(`pre ${i}`));
        signal = ac.signal;
        task = threader((x) => x, i, { ...base, signal });
        break;
      }
      case 'signal-during': {
        const ac = new AbortController();
        task = threader(spin, i, { ...base, signal: ac.signal });
        later.push(() => ac.abort(new Error(`during ${i}`)));
        break;
      }
      case 'cancel': task = threader(spin, i, base); later.push(() => task.cancel()); break;
      case 'data-clone': task = threader((x) => x, { i, f: () => i }, base); break;
      case 'result-clone': task = threader((x) => ({ x, f() {} }), i, base); break;
      case 'overflow': task = threader(function deep(n) { return deep(n + 1) + 1; }, 0, base); break;
      case 'heap':
        hogs++;
        task = threader(() => {
          const keep = [];
          for (;;) keep.push(new Array(100000).fill(1.5));
        }, i, { ...base, retries: 1 });
        break;
      default: assert.fail(kind);
    }
    plan.push({ kind, task });
    const count = () => { settledCount[i]++; };
    // Each task is watched by its own run and, now and then, shares a run
    // with its neighbours (runners share one execution).
    watchers.push(thread.all(task).then(count, count));
  }
  // Group runs through every runner; some get .cancel()led.
  const groups = [];
  for (let i = 0; i + 4 <= N; i += 40) {
    const g = plan.slice(i, i + 4).map((p) => p.task);
    const which = Math.floor(random() * 4);
    const run = which === 0 ? thread.race(g) : which === 1 ? thread.any(1, g) : which === 2 ? thread.all(g) : null;
    if (run !== null) {
      groups.push(run.catch(() => {}));
      if (random() < 0.2) runCancels.push(run);
    } else {
      const s = thread.stream(g);
      groups.push((async () => {
        try {
          for await (const v of s) void v;
        } catch { /* a failure in the group */ }
      })());
    }
  }
  threader.config({ onError: () => {} });
  await delay(10);
  for (const f of later) f();
  for (const run of runCancels) run.cancel();
  await within(Promise.all(watchers), 60000, 'every task');
  await within(Promise.all(groups), 10000, 'every group');

  const tally = { completed: 0, failed: 0, cancelled: 0 };
  for (let i = 0; i < N; i++) {
    const { kind, task } = plan[i];
    assert.equal(settledCount[i], 1, `task ${i} (${kind}) settled ${settledCount[i]} times`);
    tally[task.status]++;
    const where = `task ${i} (${kind}): ${task.status} ${task.error && task.error.message}`;
    // A group's run.cancel(), or a race/any/all/stream that settled early,
    // may cancel any task of its group: 'cancelled' is always possible.
    if (task.status === 'cancelled') {
      assert.equal(task.error.name, 'AbortError', where);
      continue;
    }
    switch (kind) {
      case 'ok':
        assert.equal(task.status, 'completed', where);
        assert.equal(task.result, i * 2, where);
        break;
      case 'throw':
        assert.ok(task.error instanceof SyntaxError, where);
        assert.equal(task.error.message, `bad ${i}`);
        break;
      case 'timeout': assert.equal(task.error.code, 'ERR_THREADER_TIMEOUT', where); break;
      case 'signal-before': assert.fail(`${where}: an aborted signal must cancel`); break;
      case 'signal-during': assert.fail(`${where}: the signal was aborted while it looped`); break;
      case 'cancel': assert.fail(`${where}: cancelled while it looped`); break;
      case 'data-clone':
        assert.equal(task.error.code, 'ERR_THREADER_CLONE', where);
        assert.equal(task.error.path, 'data.f', where);
        break;
      case 'result-clone':
        assert.equal(task.error.code, 'ERR_THREADER_CLONE', where);
        assert.equal(task.error.path, 'result.f', where);
        break;
      case 'overflow': assert.ok(task.error instanceof RangeError, where); break;
      case 'heap':
        assert.equal(task.error.code, 'ERR_THREADER_WORKER', where);
        assert.equal(task.error.attempts, 2, where);
        break;
      default: assert.fail(kind);
    }
  }
  const after = threader.stats().tasks;
  assert.equal(after.created - before.created, N);
  assert.equal(after.completed - before.completed, tally.completed);
  assert.equal(after.failed - before.failed, tally.failed);
  assert.equal(after.cancelled - before.cancelled, tally.cancelled);
  await within((async () => {
    while (threader.stats().tasks.inFlight !== 0) await delay(5);
  })(), 10000, 'native settlement');
  assert.deepEqual(await thread.all(threader((x) => x, 'alive')), ['alive']);
});

test('10,000 cancellations by AbortSignal and run.cancel() race completions at every priority', async () => {
  const N = 10000;
  const PRIORITIES = ['high', 'normal', 'low'];
  const controllers = [];
  const tasks = [];
  for (let i = 0; i < N; i++) {
    const ac = new AbortController();
    controllers.push(ac);
    tasks.push(threader((x) => x, i, { priority: PRIORITIES[i % 3], signal: ac.signal }));
  }
  const outcome = new Array(N);
  const watchers = tasks.map((t, i) => thread.all(t).then(() => { outcome[i] = 'completed'; },
                                                        (e) => { outcome[i] = e.name; }));
  // Runs of 10 tasks; every third run is cancelled at some moment.
  const runs = [];
  for (let i = 0; i < N; i += 10) runs.push(thread.all(tasks.slice(i, i + 10)).catch(() => {}));
  const waits = [];
  for (let i = 0; i < N; i++) {
    if (i % 2 === 1) continue;
    const abort = () => controllers[i].abort();
    switch (i % 8) {
      case 0: abort(); break;
      case 2: waits.push(Promise.resolve().then(abort)); break;
      case 4: waits.push(new Promise((r) => setImmediate(() => { abort(); r(); }))); break;
      default: waits.push(delay(i % 5).then(abort));
    }
  }
  const runPromises = [];
  for (let k = 0; k < N / 10; k += 3) {
    const i = k * 10;
    const run = thread.race(tasks.slice(i, i + 10));
    runPromises.push(run.catch(() => {}));
    waits.push(delay(k % 4).then(() => run.cancel()));
  }
  await within(Promise.all(waits), 20000, 'the cancellations');
  await within(Promise.all(watchers), 20000, 'every task');
  await Promise.all([...runs, ...runPromises]);
  for (let i = 0; i < N; i++) {
    const t = tasks[i];
    assert.ok(outcome[i] === 'completed' || outcome[i] === 'AbortError', `${i}: ${outcome[i]}`);
    assert.equal(t.status, outcome[i] === 'completed' ? 'completed' : 'cancelled', `task ${i}`);
    if (outcome[i] === 'completed') assert.equal(t.result, i);
  }
  // Aborting after settlement changes nothing.
  for (const ac of controllers) ac.abort();
  for (let i = 0; i < N; i++) {
    assert.equal(tasks[i].status, outcome[i] === 'completed' ? 'completed' : 'cancelled');
  }
  await within((async () => {
    while (threader.stats().tasks.inFlight !== 0) await delay(5);
  })(), 10000, 'native settlement');
});

test('one thread.stream over 50,000 tasks: reading the buffered results is linear', { ...needsRealWorkers() }, async (t) => {
  const N = 50000;
  const tasks = Array.from({ length: N }, (_, i) => threader((x) => x + 1, i));
  const s = thread.stream(tasks);
  // Let every result arrive and wait in the stream's buffer.
  await within(thread.all(tasks), 60000, 'the tasks');
  const t0 = performance.now();
  let n = 0;
  let sum = 0;
  await within((async () => {
    for await (const v of s) {
      n++;
      sum += v;
    }
  })(), 60000, 'reading the stream');
  const ms = performance.now() - t0;
  t.diagnostic(`read ${n} buffered results in ${ms.toFixed(0)} ms`);
  assert.equal(n, N);
  assert.equal(sum, (N * (N + 1)) / 2);
  assert.ok(ms < 500, `reading ${N} buffered results took ${ms.toFixed(0)} ms`);
});
