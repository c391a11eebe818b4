'use strict';
// thread.any(n, ...tasks): the first n successes in completion order, the
// rest cancelled; AggregateError once n cannot be reached.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');
const { busy, spin, within } = require('./helpers/util.js');

const { threader, thread, isMock } = load();

const fail = (x) => { throw new Error(`fail ${x}`); };

test('resolves with the first n successes and cancels the rest', async () => {
  const quick = [1, 2].map((n) => threader((x) => x, n));
  const slow = Array.from({ length: 8 }, () => threader(isMock ? busy : spin, 3, { timeout: 10000 }));
  const results = await within(thread.any(2, ...quick, ...slow), 3000, 'thread.any');
  assert.equal(results.length, 2);
  if (!isMock) {
    assert.deepEqual(results.slice().sort(), [1, 2]);
    for (const t of slow) assert.equal(t.status, 'cancelled');
  } else {
    assert.ok(slow.filter((t) => t.status === 'cancelled').length >= 6);
  }
});

test('skips failures while n can still be reached', async () => {
  const tasks = [
    threader(fail, 1), threader(fail, 2), threader((x) => x, 'a'), threader((x) => x, 'b'),
  ];
  const results = await thread.any(2, tasks);
  assert.deepEqual(results.slice().sort(), ['a', 'b']);
});

test('results come in completion order', { skip: isMock && 'mock binding: needs real parallel workers' }, async () => {
  if (!(threader.config().maxWorkers >= 3)) return;
  const results = await thread.any(3, threader(busy, 300), threader(busy, 150), threader(busy, 0));
  assert.deepEqual(results, [0, 150, 300]);
});

test('rejects with AggregateError once n cannot succeed', async () => {
  const tasks = [threader(fail, 1), threader(fail, 2), threader((x) => x, 'ok')];
  const err = await thread.any(2, tasks).catch((e) => e);
  assert.ok(err instanceof AggregateError, String(err));
  assert.equal(err.errors.length, 2);
  assert.deepEqual(err.errors.map((e) => e.message).sort(), ['fail 1', 'fail 2']);
});

test('rejects as soon as n is out of reach and cancels the rest', async () => {
  const slow = threader(isMock ? busy : spin, 5, { timeout: 10000, priority: 'low' });
  const err = await within(thread.any(2, threader(fail, 1), slow), 3000, 'thread.any').catch((e) => e);
  assert.ok(err instanceof AggregateError);
  assert.ok(slow.status === 'cancelled' || (isMock && slow.status === 'completed'));
});

test('any(0) resolves to [] and runs nothing', async () => {
  const t = threader((x) => x, 1);
  assert.deepEqual(await thread.any(0, t), []);
  assert.equal(t.status, 'pending');
});

test('any(n) with n equal to the number of tasks behaves like all, in completion order', async () => {
  const results = await thread.any(3, [1, 2, 3].map((n) => threader((x) => x, n)));
  assert.deepEqual(results.slice().sort(), [1, 2, 3]);
});

test('bad n is refused synchronously', () => {
  const t = threader((x) => x, 1);
  assert.throws(() => thread.any(-1, t), { name: 'RangeError', message: /"n"/ });
  assert.throws(() => thread.any(1.5, t), RangeError);
  assert.throws(() => thread.any(NaN, t), RangeError);
  assert.throws(() => thread.any(2, t), { name: 'RangeError', message: /number of tasks \(1\)/ });
  assert.throws(() => thread.any('1', t), TypeError);
  assert.throws(() => thread.any(t), TypeError);
  assert.equal(t.status, 'pending');
});

test('.cancel() rejects with AbortError', async () => {
  const tasks = [threader(isMock ? busy : spin, 5, { timeout: 10000 })];
  const run = thread.any(1, tasks);
  run.cancel(new Error('why'));
  const err = await run.catch((e) => e);
  assert.equal(err.name, 'AbortError');
  assert.equal(err.cause.message, 'why');
  assert.equal(tasks[0].status, 'cancelled');
});
