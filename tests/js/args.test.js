'use strict';
// Bad arguments: a clear TypeError or RangeError that names what was wrong,
// thrown synchronously, never a crash.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');

const { threader, thread } = load();

const id = (x) => x;

function expectError(call, type, message) {
  assert.throws(call, (err) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${err && err.name}: ${err && err.message}`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('threader(fn): fn must be a function', () => {
  expectError(() => threader(), TypeError, /"fn".*function.*undefined/);
  expectError(() => threader('x => x'), TypeError, /"fn".*string/);
  expectError(() => threader(null), TypeError, /null/);
  expectError(() => threader({}), TypeError, /"fn"/);
  assert.throws(() => threader(42), { code: 'ERR_THREADER_VALIDATION' });
});

test('threader(fn): native, bound and class functions are refused', () => {
  assert.throws(() => threader(Math.max), { code: 'ERR_THREADER_VALIDATION' });
  assert.throws(() => threader(id.bind(null)), { code: 'ERR_THREADER_VALIDATION' });
  assert.throws(() => threader(class A {}), { code: 'ERR_THREADER_VALIDATION' });
});

test('threader(fn, data, opts): option values', () => {
  const cases = [
    [5, TypeError, /"opts"/],
    ['fast', TypeError, /"opts"/],
    [{ timeout: -1 }, RangeError, /opts\.timeout/],
    [{ timeout: NaN }, RangeError, /opts\.timeout/],
    [{ timeout: Infinity }, RangeError, /opts\.timeout/],
    [{ timeout: '10' }, TypeError, /opts\.timeout/],
    [{ priority: 'urgent' }, RangeError, /opts\.priority.*'high', 'normal', 'low'/],
    [{ priority: 0 }, TypeError, /opts\.priority/],
    [{ retries: -1 }, RangeError, /opts\.retries/],
    [{ retries: 1.5 }, RangeError, /opts\.retries/],
    [{ retries: '2' }, TypeError, /opts\.retries/],
    [{ transferMode: 'fast' }, RangeError, /opts\.transferMode/],
    [{ transfer: new ArrayBuffer(1) }, TypeError, /opts\.transfer/],
    [{ transfer: [new Uint8Array(1)] }, TypeError, /opts\.transfer\[0\]/],
    [{ transfer: [new SharedArrayBuffer(1)] }, TypeError, /opts\.transfer\[0\]/],
    [{ signal: {} }, TypeError, /opts\.signal/],
    [{ signal: 'abort' }, TypeError, /opts\.signal/],
    [{ seed: 'x' }, TypeError, /opts\.seed/],
    [{ seed: NaN }, TypeError, /opts\.seed/],
    [{ onProgress: 1 }, TypeError, /opts\.onProgress/],
    [{ with: 5 }, TypeError, /opts\.with/],
    [{ with: { 'a-b': 1 } }, RangeError, /opts\.with\.a-b/],
  ];
  for (const [opts, type, message] of cases) {
    expectError(() => threader(id, 1, opts), type, message);
  }
  const buf = new ArrayBuffer(1);
  expectError(() => threader(id, 1, { transfer: [buf, buf] }), RangeError, /opts\.transfer\[1\]/);
});

test('good options are accepted', () => {
  const ac = new AbortController();
  const t = threader(id, 1, {
    timeout: 0, priority: 'high', retries: 0, transferMode: 'auto', transfer: [],
    signal: ac.signal, seed: 12345, onProgress: () => {}, with: {},
  });
  assert.equal(t.status, 'pending');
  threader(id, 1, { timeout: 2.5, priority: 'low', seed: -1, signal: null, with: null, timeout2: 'ignored' });
  threader(id, 1, null);
  threader(id, 1, undefined);
});

test('runners: every argument must be a Task', () => {
  const t = threader(id, 1);
  for (const name of ['all', 'race', 'stream', 'fire']) {
    expectError(() => thread[name](5), TypeError, /argument 0.*Task/);
    expectError(() => thread[name](t, {}), TypeError, /argument 1.*Task/);
    expectError(() => thread[name]([t, null]), TypeError, /argument 1/);
  }
  assert.equal(t.status, 'pending', 'nothing ran');
});

test('thread.any: n must be an integer in range', () => {
  const t = threader(id, 1);
  expectError(() => thread.any(-1, t), RangeError, /"n"/);
  expectError(() => thread.any(0.5, t), RangeError, /"n"/);
  expectError(() => thread.any(2, t), RangeError, /"n"/);
  expectError(() => thread.any(Infinity, t), RangeError, /"n"/);
  expectError(() => thread.any(), TypeError, /"n"/);
  expectError(() => thread.any(t, t), TypeError, /"n"/);
  expectError(() => thread.any(1, 'x'), TypeError, /Task/);
});

test('threader.config: values', () => {
  expectError(() => threader.config({ maxWorkers: 0 }), RangeError, /maxWorkers/);
  expectError(() => threader.config({ transferMode: 'zero-copy' }), RangeError, /transferMode/);
  expectError(() => threader.config([]), TypeError, /options/);
});

test('a task of another threader instance is refused', () => {
  const { createThreader } = require('../../js/api.js');
  const { MockBinding } = require('./helpers/mock_binding.js');
  const other = createThreader(new MockBinding());
  const foreign = other.threader(id, 1);
  expectError(() => thread.all(foreign), TypeError, /another threader instance/);
});

test('createThreader needs a complete binding', () => {
  const { createThreader } = require('../../js/api.js');
  expectError(() => createThreader(), TypeError, /binding/);
  expectError(() => createThreader({ submit() {} }), TypeError, /binding\.registerFunction/);
});
