'use strict';
// Per-task timeout and config's workerTimeout.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { busy, spin, within } = require('./helpers/util.js');

const { threader, thread, errors, isMock } = load();

test.afterEach(() => {
  threader.config({ workerTimeout: 0 });
});

test('a task running past its timeout fails with ERR_THREADER_TIMEOUT', async () => {
  // Finite work, so the mock (which checks after the task) agrees.
  const t = threader(busy, 300, { timeout: 30 });
  const err = await thread.all(t).catch((e) => e);
  assert.ok(err instanceof errors.ThreaderTimeoutError, String(err));
  assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
  assert.equal(err.name, 'ThreaderTimeoutError');
  assert.equal(err.timeout, 30);
  assert.match(err.message, /30 ms/);
  assert.equal(t.status, 'failed');
  assert.equal(t.error, err);
});

test('a task within its timeout completes', async () => {
  assert.deepEqual(await thread.all(threader(busy, 5, { timeout: 2000 })), [5]);
});

test('timeout: 0 means no timeout', async () => {
  assert.deepEqual(await thread.all(threader(busy, 20, { timeout: 0 })), [20]);
});

test('an infinite loop with timeout 50 fails within 50 + 50 ms', needsRealWorkers(), async () => {
  const t0 = Date.now();
  const err = await within(thread.all(threader(spin, null, { timeout: 50 })), 3000, 'the timeout')
    .catch((e) => e);
  const elapsed = Date.now() - t0;
  assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
  assert.ok(elapsed >= 45, `${elapsed} ms`);
  // 100 ms is the contract; leave room for a loaded test machine.
  assert.ok(elapsed < 250, `${elapsed} ms`);
});

test('the worker takes the next task straight after a timeout', needsRealWorkers(), async () => {
  const workers = threader.config().maxWorkers;
  const loops = Array.from({ length: workers }, () => threader(spin, null, { timeout: 50 }));
  const errs = await Promise.all(loops.map((t) => thread.all(t).catch((e) => e)));
  for (const e of errs) assert.equal(e.code, 'ERR_THREADER_TIMEOUT');
  const t0 = Date.now();
  const results = await thread.all(Array.from({ length: workers * 2 }, (_, i) => threader((x) => x, i)));
  assert.equal(results.length, workers * 2);
  assert.ok(Date.now() - t0 < 1000);
});

test('config workerTimeout applies to tasks without their own', async () => {
  threader.config({ workerTimeout: 30 });
  assert.equal(threader.config().workerTimeout, 30);
  const err = await thread.all(threader(isMock ? busy : spin, 300)).catch((e) => e);
  assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
  assert.equal(err.timeout, 30);
});

test('a task\'s own timeout overrides workerTimeout', async () => {
  threader.config({ workerTimeout: 20 });
  assert.deepEqual(await thread.all(threader(busy, 100, { timeout: 5000 })), [100]);
});

test('timeouts in a batch do not disturb the other tasks', async () => {
  const tasks = Array.from({ length: 20 }, (_, i) =>
    i % 5 === 0 ? threader(isMock ? busy : spin, 200, { timeout: 20 }) : threader((x) => x, i));
  const outcomes = await Promise.all(tasks.map((t) => thread.all(t).then((v) => v[0], (e) => e.code)));
  for (let i = 0; i < 20; i++) {
    assert.equal(outcomes[i], i % 5 === 0 ? 'ERR_THREADER_TIMEOUT' : i);
  }
});
