'use strict';
// Exactly-once settlement under a random mix of outcomes and cancellations,
// with an accounting check.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');
const { busy, waitFor, delay } = require('./helpers/util.js');

const { threader, thread } = load();

// Deterministic PRNG (mulberry32) so that a failure can be replayed.
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

function ok(i) { return i; }
function thrower(i) { throw new Error(`task ${i} threw`); }

test(`random mix of ok / throw / timeout / cancel settles each task once (seed ${SEED})`, async () => {
  const random = prng(SEED);
  const N = 1500;
  const before = { ...threader.stats().tasks };
  const plan = [];
  const settledCount = new Array(N).fill(0);
  const runs = [];
  for (let i = 0; i < N; i++) {
    const r = random();
    const kind = r < 0.45 ? 'ok' : r < 0.7 ? 'throw' : r < 0.8 ? 'timeout' : 'cancel';
    let task;
    if (kind === 'throw') task = threader(thrower, i);
    else if (kind === 'timeout') task = threader(busy, 500, { timeout: 5 });
    else task = threader(ok, i);
    plan.push({ kind, task, cancelledAt: null });
    const count = () => { settledCount[i]++; };
    runs.push(thread.all(task).then(count, count));
  }
  // Cancel the 'cancel' tasks at random moments: now, in a microtask, in a
  // later turn, or after a few ms.
  const cancels = [];
  for (const p of plan) {
    if (p.kind !== 'cancel') continue;
    const when = random();
    const doCancel = () => { p.cancelledAt = p.task.status; p.task.cancel(); };
    if (when < 0.25) doCancel();
    else if (when < 0.5) cancels.push(Promise.resolve().then(doCancel));
    else if (when < 0.75) cancels.push(new Promise((resolve) => setImmediate(() => { doCancel(); resolve(); })));
    else cancels.push(delay(Math.floor(random() * 20)).then(doCancel));
  }
  await Promise.all(cancels);
  await Promise.all(runs);
  await delay(20);

  const tally = { completed: 0, failed: 0, cancelled: 0 };
  for (let i = 0; i < N; i++) {
    const { kind, task, cancelledAt } = plan[i];
    assert.equal(settledCount[i], 1, `task ${i} (${kind}) settled ${settledCount[i]} times`);
    tally[task.status]++;
    switch (kind) {
      case 'ok':
        assert.equal(task.status, 'completed');
        assert.equal(task.result, i);
        break;
      case 'throw':
        assert.equal(task.status, 'failed');
        assert.equal(task.error.message, `task ${i} threw`);
        break;
      case 'timeout':
        assert.equal(task.status, 'failed');
        assert.equal(task.error.code, 'ERR_THREADER_TIMEOUT');
        break;
      case 'cancel':
        if (cancelledAt === 'pending' || cancelledAt === 'running') {
          assert.equal(task.status, 'cancelled', `task ${i} was ${cancelledAt} when cancelled`);
          assert.equal(task.error.name, 'AbortError');
        } else {
          assert.equal(task.status, 'completed');
          assert.equal(task.result, i);
        }
        break;
      default:
        assert.fail(kind);
    }
  }
  const after = threader.stats().tasks;
  assert.equal(after.completed - before.completed, tally.completed);
  assert.equal(after.failed - before.failed, tally.failed);
  assert.equal(after.cancelled - before.cancelled, tally.cancelled);
  assert.equal(after.created - before.created, N);
  // Natively, every task is accounted for too.
  await waitFor(() => threader.stats().tasks.inFlight === 0 && threader.stats().tasks.pending === 0,
                10000, 'the binding to settle everything');
});

test('10,000 cancellations race with completions', async () => {
  const N = 10000;
  const tasks = Array.from({ length: N }, (_, i) => threader(ok, i));
  const verdict = new Array(N);
  const runs = tasks.map((t) => thread.all(t).then(() => 'completed', (e) => e.name));
  const waits = [];
  for (let i = 0; i < N; i++) {
    const cancel = () => { verdict[i] = tasks[i].cancel(); };
    switch (i % 4) {
      case 0: cancel(); break;
      case 1: waits.push(Promise.resolve().then(cancel)); break;
      case 2: waits.push(new Promise((resolve) => setImmediate(() => { cancel(); resolve(); }))); break;
      default: waits.push(delay(i % 7).then(cancel));
    }
  }
  await Promise.all(waits);
  const outcomes = await Promise.all(runs);
  for (let i = 0; i < N; i++) {
    if (verdict[i]) {
      assert.equal(tasks[i].status, 'cancelled');
      assert.equal(outcomes[i], 'AbortError');
    } else {
      assert.equal(tasks[i].status, 'completed');
      assert.equal(outcomes[i], 'completed');
      assert.equal(tasks[i].result, i);
    }
  }
  await waitFor(() => threader.stats().tasks.inFlight === 0, 10000, 'native settlement');
  // The pool is fine afterwards.
  assert.deepEqual(await thread.all(threader(ok, 7)), [7]);
});
