'use strict';
// opts.retries re-runs a task whose worker was lost, never one that threw or
// timed out.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { busy } = require('./helpers/util.js');

const { threader, thread, errors, isMock } = load();

const retried = () => threader.stats().tasks.retried;

test('a task that throws is not retried', async () => {
  const before = retried();
  const t = threader((x, ctx) => {
    throw new Error(`threw, runs before: ${ctx.mockRuns === undefined ? 'n/a' : ctx.mockRuns}`);
  }, 1, { retries: 3 });
  const err = await thread.all(t).catch((e) => e);
  assert.equal(err.message.startsWith('threw'), true);
  assert.equal(retried(), before);
  assert.equal(t.status, 'failed');
});

test('a task that times out is not retried', async () => {
  const before = retried();
  const err = await thread.all(threader(busy, 200, { timeout: 20, retries: 2 })).catch((e) => e);
  assert.equal(err.code, 'ERR_THREADER_TIMEOUT');
  assert.equal(retried(), before);
});

test('a lost worker is retried and the retry can succeed', { skip: !isMock && 'mock only: losing a worker on its first run only' }, async () => {
  const before = retried();
  const t = threader((x, ctx) => {
    if (ctx.mockRuns === 0) throw { mockWorkerLost: true };  // eslint-disable-line no-throw-literal
    return x * 2;
  }, 21, { retries: 1 });
  assert.deepEqual(await thread.all(t), [42]);
  assert.equal(retried(), before + 1);
});

test('retries run out with ERR_THREADER_WORKER', { skip: !isMock && 'mock only: see the heap-limit test for real workers' }, async () => {
  const before = retried();
  const t = threader(() => { throw { mockWorkerLost: true }; }, null, { retries: 2 });  // eslint-disable-line no-throw-literal
  const err = await thread.all(t).catch((e) => e);
  assert.ok(err instanceof errors.ThreaderWorkerError);
  assert.equal(err.code, 'ERR_THREADER_WORKER');
  assert.equal(err.attempts, 3);
  assert.equal(retried(), before + 2);
});

test('without retries, a lost worker fails the task at once', { skip: !isMock && 'mock only' }, async () => {
  const err = await thread.all(threader(() => { throw { mockWorkerLost: true }; })).catch((e) => e);  // eslint-disable-line no-throw-literal
  assert.equal(err.code, 'ERR_THREADER_WORKER');
  assert.equal(err.attempts, 1);
});

test('heap exhaustion fails with ERR_THREADER_WORKER after the retries; others complete', needsRealWorkers('needs heap limits'), async () => {
  threader.config({ maxHeapMB: 64 });
  try {
    const before = retried();
    const hog = threader(() => {
      const keep = [];
      for (;;) keep.push(new Array(100000).fill(1.5));
    }, null, { retries: 1 });
    const others = Array.from({ length: 8 }, (_, i) => threader(busy, 20 + i));
    const [hogErr, results] = await Promise.all([
      thread.all(hog).catch((e) => e),
      thread.all(others),
    ]);
    assert.equal(hogErr.code, 'ERR_THREADER_WORKER', String(hogErr));
    assert.equal(hogErr.attempts, 2);
    assert.equal(retried(), before + 1);
    assert.deepEqual(results, others.map((_, i) => 20 + i));
    // The pool still works.
    assert.deepEqual(await thread.all(threader((x) => x + 1, 1)), [2]);
  } finally {
    threader.config({ maxHeapMB: null });
  }
});
