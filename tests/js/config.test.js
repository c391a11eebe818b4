'use strict';
// threader.config() and threader.stats().

const test = require('node:test');
const assert = require('node:assert/strict');
const { load, needsRealWorkers } = require('./helpers/load.js');
const { busy } = require('./helpers/util.js');

const { threader, thread, isMock, binding, root } = load();

const DEFAULTS = {
  maxWorkers: null, workerTimeout: 0, enableValidation: true, transferMode: 'shared',
  maxHeapMB: null, onError: null, with: null, trace: null,
};

test.afterEach(() => {
  threader.config(DEFAULTS);
});

test('config() returns the current settings, frozen', () => {
  const c = threader.config();
  assert.ok(Object.isFrozen(c));
  assert.equal(c.workerTimeout, 0);
  assert.equal(c.enableValidation, true);
  // 'shared' by default: only opts.transfer is moved (docs/DATA.md).
  assert.equal(c.transferMode, 'shared');
  assert.equal(c.onError, null);
  assert.ok(Number.isInteger(c.maxWorkers) && c.maxWorkers >= 1, String(c.maxWorkers));
});

// The binding counts the CPUs this process may run on (src/pool.c), as
// os.availableParallelism() does: the package no longer loads node:os.
test('the default maxWorkers is os.availableParallelism(), affinity included', { skip: isMock && 'needs the addon' }, () => {
  const os = require('node:os');
  assert.equal(threader.config().maxWorkers, os.availableParallelism());
  const { spawnSync } = require('node:child_process');
  const script = 'const t = require(process.argv[1]); console.log(t.threader.config().maxWorkers, ' +
    "require('node:os').availableParallelism()); t.threader.shutdown();";
  const r = spawnSync('taskset', ['-c', '0', process.execPath, '-e', script, root], { encoding: 'utf8' });
  if (r.error && r.error.code === 'ENOENT') return;  // no taskset here
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '1 1');
});

test('config(options) applies and returns the new settings', () => {
  const onError = () => {};
  const c = threader.config({ workerTimeout: 250, transferMode: 'clone', onError, maxWorkers: 2 });
  assert.equal(c.workerTimeout, 250);
  assert.equal(c.transferMode, 'clone');
  assert.equal(c.onError, onError);
  assert.equal(c.maxWorkers, 2);
  assert.deepEqual(threader.config(), c);
});

test('maxWorkers and maxHeapMB reach the binding', { skip: !isMock && 'mock only: inspects binding.configure' }, () => {
  binding.configureCalls.length = 0;
  threader.config({ maxWorkers: 3, maxHeapMB: 128 });
  assert.deepEqual(binding.configureCalls, [{ maxWorkers: 3, maxHeapMB: 128 }]);
  threader.config({ maxWorkers: null });
  assert.deepEqual(binding.configureCalls[1], { maxWorkers: binding.defaultMaxWorkers });
  threader.config({ workerTimeout: 5 });
  assert.equal(binding.configureCalls.length, 2);
});

test('a bad value throws and changes nothing', () => {
  const before = threader.config();
  assert.throws(() => threader.config({ workerTimeout: 10, maxWorkers: 0 }), RangeError);
  assert.deepEqual(threader.config(), before);
});

test('bad values get TypeError or RangeError naming the option', () => {
  const bad = [
    [{ maxWorkers: 0 }, RangeError, /maxWorkers/],
    [{ maxWorkers: -2 }, RangeError, /maxWorkers/],
    [{ maxWorkers: 1.5 }, RangeError, /maxWorkers/],
    [{ maxWorkers: '4' }, TypeError, /maxWorkers/],
    [{ workerTimeout: -1 }, RangeError, /workerTimeout/],
    [{ workerTimeout: Infinity }, RangeError, /workerTimeout/],
    [{ enableValidation: 'yes' }, TypeError, /enableValidation/],
    [{ transferMode: 'fast' }, RangeError, /transferMode/],
    [{ transferMode: 1 }, TypeError, /transferMode/],
    [{ maxHeapMB: 0 }, RangeError, /maxHeapMB/],
    [{ onError: 'log' }, TypeError, /onError/],
    [{ with: 5 }, TypeError, /with/],
    [{ trace: 5 }, TypeError, /trace/],
  ];
  for (const [options, type, message] of bad) {
    assert.throws(() => threader.config(options), (err) => {
      assert.ok(err instanceof type, `${JSON.stringify(options)}: ${err}`);
      assert.match(err.message, message);
      return true;
    });
  }
  assert.throws(() => threader.config(5), TypeError);
  assert.throws(() => threader.config('x'), TypeError);
});

test('unknown keys are ignored', () => {
  const c = threader.config({ someFutureOption: true });
  assert.equal('someFutureOption' in c, false);
});

test('maxWorkers: null restores the default', () => {
  const def = threader.config().maxWorkers;
  threader.config({ maxWorkers: 1 });
  assert.equal(threader.config().maxWorkers, 1);
  threader.config({ maxWorkers: null });
  assert.equal(threader.config().maxWorkers, def);
});

test('maxWorkers: 1 runs tasks one at a time', needsRealWorkers(), async () => {
  if (!(threader.config().maxWorkers >= 2)) return;
  threader.config({ maxWorkers: 1 });
  // Let extra workers finish their task and leave.
  await thread.all(threader((x) => x, 0));
  const t0 = Date.now();
  await thread.all(threader(busy, 150), threader(busy, 150));
  assert.ok(Date.now() - t0 >= 290, `${Date.now() - t0} ms`);
  threader.config({ maxWorkers: null });
  const t1 = Date.now();
  await thread.all(threader(busy, 150), threader(busy, 150));
  assert.ok(Date.now() - t1 < 290, `${Date.now() - t1} ms`);
});

test('enableValidation: false lets an impure function through to the worker', async () => {
  threader.config({ enableValidation: false });
  const t = threader((x) => x + someGlobalNobodyDefined);  // eslint-disable-line no-undef
  const err = await thread.all(t).catch((e) => e);
  assert.ok(err instanceof ReferenceError, String(err));
  threader.config({ enableValidation: true });
  assert.throws(() => threader((x) => x + someGlobalNobodyDefined), { code: 'ERR_THREADER_VALIDATION' });  // eslint-disable-line no-undef
});

test('validation still refuses native functions when disabled', () => {
  threader.config({ enableValidation: false });
  assert.throws(() => threader(Math.max), { code: 'ERR_THREADER_VALIDATION' });
});

test('transferMode transfer moves top-level buffers; clone copies', async () => {
  threader.config({ transferMode: 'transfer' });
  const moved = new Float64Array([1, 2, 3]);
  const [sum] = await thread.all(threader((a) => a.reduce((x, y) => x + y, 0), moved));
  assert.equal(sum, 6);
  assert.equal(moved.byteLength, 0, 'detached');
  threader.config({ transferMode: 'clone' });
  const kept = new Float64Array([1, 2, 3]);
  const buffer = kept.buffer;
  await thread.all(threader((a) => a.length, kept, { transfer: [buffer] }));
  assert.equal(kept.byteLength, 24, 'clone ignores opts.transfer');
});

test('opts.transfer moves the listed buffers', async () => {
  const data = new Uint8Array([1, 2, 3, 4]);
  const [n] = await thread.all(threader((d) => d.length, data, { transfer: [data.buffer] }));
  assert.equal(n, 4);
  assert.equal(data.byteLength, 0);
});

test('per-task transferMode overrides the config', async () => {
  const data = { a: new Uint8Array(8), b: new ArrayBuffer(4) };
  await thread.all(threader((d) => d.a.length + d.b.byteLength, data, { transferMode: 'transfer' }));
  assert.equal(data.a.byteLength, 0);
  assert.equal(data.b.byteLength, 0);
});

test('stats(): per-worker counters plus totals', async () => {
  await thread.all(Array.from({ length: 20 }, (_, i) => threader((x) => x, i)));
  const s = threader.stats();
  assert.ok(Array.isArray(s));
  assert.ok(s.length >= 1);
  for (const w of s) {
    for (const field of ['tasksRun', 'steals', 'busyMs', 'parks', 'heapUsed']) {
      assert.equal(typeof w[field], 'number', field);
    }
  }
  assert.ok(s.totals.tasksRun >= 20);
  assert.equal(s.totals.workers, s.length);
  assert.ok(s.tasks.completed >= 20);
  assert.equal(typeof s.tasks.inFlight, 'number');
  assert.equal(typeof s.tasks.pending, 'number');
});

test('trace: a function receives records', async () => {
  const records = [];
  threader.config({ trace: (r) => records.push(r) });
  await thread.all(threader((x) => x, 1));
  threader.config({ trace: null });
  assert.ok(records.some((r) => r.event === 'submit'));
  assert.ok(records.some((r) => r.event === 'completed'));
});
