'use strict';
// threader.shutdown(): every pending task settles (cancelled); Threader keeps
// working afterwards (the pool restarts lazily).

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');
const { busy, spin, within } = require('./helpers/util.js');

const { threader, thread, isMock } = load();

test('cancels in-flight tasks, resolves once all settled, then keeps working', async () => {
  const tasks = Array.from({ length: 16 }, () => threader(isMock ? busy : spin, 2, { timeout: 20000 }));
  const runs = tasks.map((t) => thread.all(t).catch((e) => e));
  await new Promise((resolve) => setTimeout(resolve, isMock ? 0 : 50));
  await within(threader.shutdown(), 5000, 'shutdown');
  for (const t of tasks) assert.ok(t.status === 'cancelled' || (isMock && t.status === 'completed'), t.status);
  if (!isMock) for (const t of tasks) assert.equal(t.error.name, 'AbortError');
  for (const r of await Promise.all(runs)) {
    assert.ok(r instanceof Error ? r.name === 'AbortError' : isMock);
  }
  assert.equal(threader.stats().tasks.inFlight, 0);
  // Lazily restarted.
  assert.deepEqual(await within(thread.all(threader((x) => x * 2, 21)), 5000, 'a run after shutdown'), [42]);
});

test('shutdown with nothing running resolves', async () => {
  await within(threader.shutdown(), 2000, 'shutdown');
  await within(threader.shutdown(), 2000, 'a second shutdown');
});

test('tasks never run are not touched and can run after shutdown', async () => {
  const t = threader((x) => x, 'later');
  await threader.shutdown();
  assert.equal(t.status, 'pending');
  assert.deepEqual(await thread.all(t), ['later']);
});

test('queued, unsubmitted tasks are cancelled too', async () => {
  const t = threader((x) => x, 1);
  const run = thread.all(t);
  const done = threader.shutdown();
  assert.equal(t.status, 'cancelled');
  await assert.rejects(run, { name: 'AbortError' });
  await done;
});
