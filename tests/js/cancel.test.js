'use strict';
// Cancellation: task.cancel(), a run's .cancel(), AbortSignal.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { busy, spin, within, waitFor } = require('./helpers/util.js');

const { threader, thread, isMock } = load();

test('cancelling a pending task: it never runs, runners reject with AbortError', async () => {
  const t = threader((x) => x, 1);
  assert.equal(t.cancel(), true);
  assert.equal(t.status, 'cancelled');
  assert.equal(t.error.name, 'AbortError');
  assert.equal(t.error.code, 'ABORT_ERR');
  await assert.rejects(thread.all(t), { name: 'AbortError' });
  assert.equal(t.status, 'cancelled');
});

test('cancel() on a settled task is a no-op', async () => {
  const t = threader((x) => x + 1, 1);
  await thread.all(t);
  assert.equal(t.cancel(), false);
  assert.equal(t.status, 'completed');
  assert.equal(t.result, 2);
});

test('cancelling a started task settles it at once', async () => {
  const t = threader(busy, 20);
  const run = thread.all(t);
  assert.equal(t.cancel(), true);
  assert.equal(t.status, 'cancelled');
  await assert.rejects(run, { name: 'AbortError' });
  assert.equal(t.cancel(), false);
});

test('the reason given to cancel() becomes the cause', async () => {
  const t = threader((x) => x, 1);
  const reason = new Error('user left');
  t.cancel(reason);
  assert.equal(t.error.cause, reason);
});

test('cancelling a running infinite loop terminates it; the workers stay usable', needsRealWorkers(), async () => {
  const workers = threader.config().maxWorkers;
  const loops = Array.from({ length: workers }, () => threader(spin));
  const runs = loops.map((t) => thread.all(t).catch((e) => e));
  // Let them start on every worker.
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const t of loops) t.cancel();
  for (const err of await Promise.all(runs)) assert.equal(err.name, 'AbortError');
  const results = await within(
    thread.all(Array.from({ length: workers * 4 }, (_, i) => threader((x) => x * 2, i))),
    3000, 'tasks after cancelling running loops');
  assert.equal(results.length, workers * 4);
  assert.equal(results[3], 6);
});

test('a run\'s .cancel() stops running loops', needsRealWorkers(), async () => {
  const run = thread.all(threader(spin), threader(spin));
  await new Promise((resolve) => setTimeout(resolve, 50));
  run.cancel();
  await assert.rejects(run, { name: 'AbortError' });
  assert.deepEqual(await within(thread.all(threader((x) => x, 'alive')), 3000, 'next task'), ['alive']);
});

test('an already aborted signal cancels the task at once', async () => {
  const ac = new AbortController();
  ac.abort(new Error('too late'));
  const t = threader((x) => x, 1, { signal: ac.signal });
  assert.equal(t.status, 'cancelled');
  assert.equal(t.error.name, 'AbortError');
  assert.equal(t.error.cause.message, 'too late');
  await assert.rejects(thread.all(t), { name: 'AbortError' });
});

test('aborting the signal cancels a pending task', () => {
  const ac = new AbortController();
  const t = threader((x) => x, 1, { signal: ac.signal });
  ac.abort();
  assert.equal(t.status, 'cancelled');
});

test('aborting the signal cancels a running task', async () => {
  const ac = new AbortController();
  const t = threader(isMock ? busy : spin, 30, { signal: ac.signal });
  const run = thread.all(t);
  setTimeout(() => ac.abort(), isMock ? 0 : 50);
  await assert.rejects(within(run, 3000, 'the aborted run'), { name: 'AbortError' });
  assert.equal(t.status, 'cancelled');
});

test('AbortSignal.timeout works as a signal', needsRealWorkers(), async () => {
  const t0 = Date.now();
  const t = threader(spin, null, { signal: AbortSignal.timeout(50) });
  await assert.rejects(within(thread.all(t), 3000, 'the run'), { name: 'AbortError' });
  assert.ok(Date.now() - t0 >= 40);
});

test('a signal aborted after settlement changes nothing', async () => {
  const ac = new AbortController();
  const t = threader((x) => x, 5, { signal: ac.signal });
  await thread.all(t);
  ac.abort();
  assert.equal(t.status, 'completed');
  assert.equal(t.result, 5);
});

test('ctx.cancelled is false while a task runs normally', async () => {
  const [c] = await thread.all(threader((d, ctx) => ctx.cancelled, null));
  assert.equal(c, false);
});

test('a cooperative loop that watches ctx.cancelled is cancelled', needsRealWorkers(), async () => {
  const t = threader((d, ctx) => {
    let n = 0;
    while (!ctx.cancelled) n++;
    return n;
  });
  const run = thread.all(t);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.cancel();
  await assert.rejects(run, { name: 'AbortError' });
  assert.deepEqual(await within(thread.all(threader((x) => x, 1)), 3000, 'next task'), [1]);
});

test('cancel vs completion races: each task settles once', async () => {
  const tasks = Array.from({ length: 2000 }, (_, i) => threader((x) => x, i));
  let settledCount = 0;
  const runs = tasks.map((t) => thread.all(t).then(() => { settledCount++; }, () => { settledCount++; }));
  for (let i = 0; i < tasks.length; i += 2) {
    if (i % 4 === 0) tasks[i].cancel();
    else setImmediate(() => tasks[i].cancel());
  }
  await Promise.all(runs);
  assert.equal(settledCount, tasks.length);
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i];
    if (i % 4 === 0) assert.equal(t.status, 'cancelled');
    else if (i % 2 === 1) assert.equal(t.status, 'completed');
    else assert.ok(t.status === 'cancelled' || t.status === 'completed');
    if (t.status === 'completed') assert.equal(t.result, i);
  }
  await waitFor(() => threader.stats().tasks.inFlight === 0, 5000, 'native settlement');
});
