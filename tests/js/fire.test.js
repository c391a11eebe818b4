'use strict';
// thread.fire: returns nothing; failures go to config's onError, never to an
// unhandled rejection.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');
const { waitFor } = require('./helpers/util.js');

const { threader, thread } = load();

let unhandled = [];
process.on('unhandledRejection', (reason) => { unhandled.push(reason); });

test.afterEach(() => {
  threader.config({ onError: null });
});

test('returns undefined and runs the tasks', async () => {
  const tasks = [1, 2, 3].map((n) => threader((x) => x * 2, n));
  assert.equal(thread.fire(...tasks), undefined);
  assert.equal(tasks[0].status, 'running');
  await waitFor(() => tasks.every((t) => t.status === 'completed'), 5000, 'the tasks');
  assert.deepEqual(tasks.map((t) => t.result), [2, 4, 6]);
});

test('failures go to onError(error, task)', async () => {
  const calls = [];
  threader.config({ onError: (err, task) => calls.push([err, task]) });
  const bad = threader((x) => { throw new TypeError(`bad ${x}`); }, 1);
  const good = threader((x) => x, 2);
  thread.fire([bad, good]);
  await waitFor(() => calls.length === 1 && good.status === 'completed', 5000, 'onError');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(calls.length, 1);
  assert.ok(calls[0][0] instanceof TypeError);
  assert.equal(calls[0][0].message, 'bad 1');
  assert.equal(calls[0][1], bad);
  assert.equal(bad.status, 'failed');
  assert.deepEqual(unhandled, []);
});

test('cancelled tasks are not reported', async () => {
  const calls = [];
  threader.config({ onError: (err) => calls.push(err) });
  const t = threader((x) => x, 1);
  thread.fire(t);
  t.cancel();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(t.status, 'cancelled');
  assert.deepEqual(calls, []);
});

test('without onError, failures are printed, not thrown', async () => {
  const printed = [];
  const original = console.error;
  console.error = (...args) => printed.push(args.join(' '));
  try {
    const t = threader(() => { throw new Error('printed failure'); });
    thread.fire(t);
    await waitFor(() => t.status === 'failed', 5000, 'the failure');
  } finally {
    console.error = original;
  }
  assert.equal(printed.length, 1);
  assert.match(printed[0], /printed failure/);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(unhandled, []);
});

test('an onError hook that throws does not escape', async () => {
  const printed = [];
  const original = console.error;
  console.error = (...args) => printed.push(args.join(' '));
  threader.config({ onError: () => { throw new Error('hook broke'); } });
  try {
    const t = threader(() => { throw new Error('task broke'); });
    thread.fire(t);
    await waitFor(() => t.status === 'failed', 5000, 'the failure');
  } finally {
    console.error = original;
  }
  assert.match(printed.join('\n'), /hook broke/);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(unhandled, []);
});

test('many fired failures, no unhandled rejection', async () => {
  let count = 0;
  threader.config({ onError: () => { count++; } });
  const tasks = Array.from({ length: 200 }, (_, i) => threader((x) => {
    if (x % 2) throw new Error(String(x));
    return x;
  }, i));
  thread.fire(tasks);
  await waitFor(() => tasks.every((t) => t.status !== 'running'), 10000, 'the tasks');
  assert.equal(count, 100);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(unhandled, []);
  unhandled = [];
});

test('rejects bad arguments synchronously', () => {
  assert.throws(() => thread.fire(42), TypeError);
  assert.throws(() => thread.fire(threader((x) => x), 'x'), TypeError);
});
