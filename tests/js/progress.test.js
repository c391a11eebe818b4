'use strict';
// ctx.progress(fraction) -> task.progress and opts.onProgress.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { waitFor } = require('./helpers/util.js');

const { threader, thread } = load();

function steps(n, ctx) {
  for (let i = 1; i <= n; i++) ctx.progress(i / n);
  return n;
}

test('progress is undefined until reported', () => {
  const t = threader(steps, 4);
  assert.equal(t.progress, undefined);
});

test('the last reported value is kept', async () => {
  const t = threader(steps, 4);
  await thread.all(t);
  assert.equal(t.progress, 1);
});

test('onProgress sees the values in order, with the task', async () => {
  const seen = [];
  const t = threader(steps, 4, { onProgress: (value, task) => seen.push([value, task]) });
  await thread.all(t);
  assert.ok(seen.length >= 1, 'at least one report');
  for (const [, task] of seen) assert.equal(task, t);
  const values = seen.map(([v]) => v);
  for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1]);
  assert.equal(values[values.length - 1], 1);
});

test('progress arrives while the task is still running', needsRealWorkers(), async () => {
  const t = threader((ms, ctx) => {
    ctx.progress(0.25);
    const end = Date.now() + ms;
    while (Date.now() < end) {
      // Busy: the host must see the report before the end.
    }
    ctx.progress(1);
    return 'done';
  }, 400);
  const run = thread.all(t);
  await waitFor(() => t.progress === 0.25, 3000, 'the first report');
  assert.equal(t.status, 'running');
  assert.deepEqual(await run, ['done']);
  assert.equal(t.progress, 1);
});

test('an onProgress that throws goes to onError and the task still completes', async () => {
  const hooked = [];
  threader.config({ onError: (err) => hooked.push(err) });
  try {
    const t = threader(steps, 2, { onProgress: () => { throw new Error('bad hook'); } });
    assert.deepEqual(await thread.all(t), [2]);
    assert.ok(hooked.length >= 1);
    assert.equal(hooked[0].message, 'bad hook');
  } finally {
    threader.config({ onError: null });
  }
});

test('progress with thread.stream', async () => {
  const tasks = [3, 5, 7].map((n) => threader(steps, n));
  const total = [];
  for await (const v of thread.stream(tasks)) total.push(v);
  assert.deepEqual(total.sort(), [3, 5, 7]);
  for (const t of tasks) assert.equal(t.progress, 1);
});

test('frequent progress reports are cheap', async () => {
  const t0 = Date.now();
  const t = threader((n, ctx) => {
    for (let i = 0; i < n; i++) ctx.progress(i / n);
    return n;
  }, 100000);
  assert.deepEqual(await thread.all(t), [100000]);
  assert.ok(Date.now() - t0 < 5000);
});
