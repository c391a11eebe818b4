'use strict';
// thread.stream: completion order, break cancels the rest.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');
const { busy, spin, within } = require('./helpers/util.js');

const { threader, thread, isMock } = load();

test('is an async iterable with .cancel()', () => {
  const s = thread.stream();
  assert.equal(typeof s[Symbol.asyncIterator], 'function');
  assert.equal(s[Symbol.asyncIterator](), s);
  assert.equal(typeof s.next, 'function');
  assert.equal(typeof s.return, 'function');
  assert.equal(typeof s.cancel, 'function');
});

test('an empty stream ends at once', async () => {
  const seen = [];
  for await (const v of thread.stream()) seen.push(v);
  assert.deepEqual(seen, []);
});

test('yields every result once', async () => {
  const seen = [];
  for await (const v of thread.stream([1, 2, 3, 4, 5, 6, 7].map((n) => threader((x) => x * x, n)))) {
    seen.push(v);
  }
  assert.deepEqual(seen.sort((a, b) => a - b), [1, 4, 9, 16, 25, 36, 49]);
});

test('yields in completion order', { skip: isMock && 'mock binding: needs real parallel workers' }, async () => {
  const workers = threader.config().maxWorkers;
  if (!(workers >= 3)) return;  // needs the three running side by side
  const seen = [];
  for await (const v of thread.stream(threader(busy, 400), threader(busy, 200), threader(busy, 0))) {
    seen.push(v);
  }
  assert.deepEqual(seen, [0, 200, 400]);
});

test('breaking out of for-await cancels the rest', async () => {
  const fast = threader((x) => x, 'first', { priority: 'high' });
  const rest = Array.from({ length: 8 }, () => threader(isMock ? busy : spin, 1, { timeout: 20000 }));
  // On the mock, tasks queued behind the first turn are cancelled.
  const tasks = [fast, ...rest];
  let first;
  await within((async () => {
    for await (const v of thread.stream(tasks)) {
      first = v;
      break;
    }
  })(), 3000, 'the for-await loop');
  assert.ok(first === 'first' || first === 1);
  const cancelled = tasks.filter((t) => t.status === 'cancelled');
  for (const t of tasks) assert.ok(t.status === 'cancelled' || t.status === 'completed', t.status);
  if (isMock) {
    assert.ok(cancelled.length >= 4, `${cancelled.length} cancelled`);
  } else {
    assert.equal(cancelled.length, 8);
    for (const t of rest) assert.equal(t.status, 'cancelled');
  }
});

test('a failure is thrown after the results before it, and cancels the rest', async () => {
  const ok = threader((x) => x, 'ok', { priority: 'high' });
  // Fails after 100 ms, so 'ok' comes first even when both run at once.
  const bad = threader((ms) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      // busy
    }
    throw new TypeError('nope');
  }, 100, { priority: 'high' });
  const rest = Array.from({ length: 8 }, () => threader(isMock ? busy : spin, 1, { timeout: 20000 }));
  const s = thread.stream([ok, bad, ...rest]);
  const seen = [];
  await assert.rejects(within((async () => {
    for await (const v of s) seen.push(v);
  })(), 3000, 'the stream'), { name: 'TypeError', message: 'nope' });
  assert.ok(seen.length <= 1);
  if (!isMock) assert.deepEqual(seen, ['ok']);
  for (const t of rest) assert.ok(t.status === 'cancelled' || t.status === 'completed', t.status);
  if (!isMock) for (const t of rest) assert.equal(t.status, 'cancelled');
  // The stream is over.
  assert.deepEqual(await s.next(), { value: undefined, done: true });
});

test('results buffer until read', async () => {
  const s = thread.stream([1, 2, 3].map((n) => threader((x) => x, n)));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const seen = [];
  for await (const v of s) seen.push(v);
  assert.deepEqual(seen.sort(), [1, 2, 3]);
});

test('.cancel() makes the pending read reject with AbortError', async () => {
  const tasks = Array.from({ length: 3 }, () => threader(isMock ? busy : spin, 50, { timeout: 10000 }));
  const s = thread.stream(tasks);
  const read = s.next();
  assert.equal(s.cancel(), true);
  assert.equal(s.cancel(), false);
  await assert.rejects(read, { name: 'AbortError' });
  assert.deepEqual(await s.next(), { value: undefined, done: true });
  for (const t of tasks) assert.equal(t.status, 'cancelled');
});

test('.cancel() before reading makes the next read reject', async () => {
  const s = thread.stream(threader(isMock ? busy : spin, 50, { timeout: 10000 }));
  s.cancel();
  await assert.rejects(s.next(), { name: 'AbortError' });
  assert.deepEqual(await s.next(), { value: undefined, done: true });
});

test('return() ends the stream and cancels the rest', async () => {
  const tasks = Array.from({ length: 3 }, () => threader(isMock ? busy : spin, 50, { timeout: 10000 }));
  const s = thread.stream(tasks);
  const read = s.next();
  assert.deepEqual(await s.return('bye'), { value: 'bye', done: true });
  assert.deepEqual(await read, { value: undefined, done: true });
  for (const t of tasks) assert.equal(t.status, 'cancelled');
});
