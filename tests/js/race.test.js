'use strict';
// thread.race: settles like Promise.race and cancels the losers.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');
const { busy, spin, within } = require('./helpers/util.js');

const { threader, thread, isMock } = load();

test('resolves with the first result and cancels the losers', async () => {
  const winner = threader((x) => x, 'fast');
  const losers = Array.from({ length: 8 }, () => threader(isMock ? busy : spin, 1, { timeout: 10000 }));
  const value = await within(thread.race(winner, ...losers), 3000, 'thread.race');
  assert.equal(value, 'fast');
  assert.equal(winner.status, 'completed');
  if (isMock) {
    // The mock ran the first 4 together; those queued behind were cancelled.
    assert.ok(losers.filter((t) => t.status === 'cancelled').length >= 4);
  } else {
    for (const t of losers) assert.equal(t.status, 'cancelled');
  }
});

test('rejects when the first task to settle fails', async () => {
  const bad = threader(() => { throw new SyntaxError('first and bad'); });
  const slow = threader(isMock ? busy : spin, isMock ? 200 : 0, { timeout: 10000, priority: 'low' });
  await assert.rejects(thread.race(bad, slow), { name: 'SyntaxError', message: 'first and bad' });
  if (!isMock) assert.equal(slow.status, 'cancelled');
});

test('an already settled task wins at once', async () => {
  const done = threader((x) => x, 'done');
  await thread.all(done);
  const other = threader(isMock ? busy : spin, 5, { timeout: 10000 });
  assert.equal(await thread.race(done, other), 'done');
  assert.equal(other.status, 'cancelled');
});

test('takes an array', async () => {
  assert.equal(await thread.race([threader((x) => x, 3)]), 3);
});

test('.cancel() rejects with AbortError and cancels every task', async () => {
  const tasks = [threader(isMock ? busy : spin, 5, { timeout: 10000 }), threader(isMock ? busy : spin, 5, { timeout: 10000 })];
  const run = thread.race(tasks);
  run.cancel();
  await assert.rejects(run, { name: 'AbortError' });
  for (const t of tasks) assert.equal(t.status, 'cancelled');
});

test('a cancelled contender makes the race reject with AbortError', async () => {
  const a = threader(isMock ? busy : spin, 5, { timeout: 10000 });
  const b = threader(isMock ? busy : spin, 5, { timeout: 10000 });
  const run = thread.race(a, b);
  a.cancel();
  await assert.rejects(run, { name: 'AbortError' });
  assert.equal(b.status, 'cancelled');
});
