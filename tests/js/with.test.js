'use strict';
// opts.with and config's with: helpers and constants injected by name.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');

const { threader, thread, errors } = load();

test.afterEach(() => {
  threader.config({ with: null });
});

const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
function scale(x) {
  return clamp(x * FACTOR, 0, LIMIT);  // eslint-disable-line no-undef
}

test('helpers and constants are bound by name', async () => {
  const FACTOR = 3;
  const LIMIT = 10;
  const t = threader((xs) => xs.map(scale), [1, 2, 5], { with: { clamp, scale, FACTOR, LIMIT } });
  assert.deepEqual(await thread.all(t), [[3, 6, 10]]);
});

test('constants: nested data, typed arrays and special numbers', async () => {
  const TABLE = { list: [1, 'two', null, true], nested: { deep: [NaN, -0, Infinity] } };
  const LUT = new Float32Array([0.5, 1.5]);
  const BIG = 2n ** 64n;
  const [out] = await thread.all(threader(() => [TABLE, LUT, BIG], null, { with: { TABLE, LUT, BIG } }));
  assert.deepEqual(out, [TABLE, LUT, BIG]);
  assert.ok(Object.is(out[0].nested.deep[1], -0));
});

test('config-level with applies to every task; a task can override it', async () => {
  threader.config({ with: { GREETING: 'hello', shout: (s) => s.toUpperCase() } });
  assert.deepEqual(await thread.all(threader((n) => `${shout(GREETING)} ${n}`, 1)), ['HELLO 1']);  // eslint-disable-line no-undef
  const t = threader((n) => `${GREETING} ${n}`, 2, { with: { GREETING: 'hi' } });  // eslint-disable-line no-undef
  assert.deepEqual(await thread.all(t), ['hi 2']);
  assert.deepEqual(Object.keys(threader.config().with), ['GREETING', 'shout']);
});

test('helpers are validated like fn', () => {
  const leaky = (x) => console.log(x);
  assert.throws(() => threader((x) => leaky(x), 1, { with: { leaky } }),
                { code: 'ERR_THREADER_VALIDATION', identifier: 'console' });
  assert.throws(() => threader.config({ with: { leaky } }), { code: 'ERR_THREADER_VALIDATION' });
});

test('names not injected are still refused', () => {
  assert.throws(() => threader((x) => scale(x), 1, { with: { scale } }),
                { code: 'ERR_THREADER_VALIDATION' });
});

test('constants must be plain data', () => {
  assert.throws(() => threader(() => K, 1, { with: { K: new WeakMap() } }),  // eslint-disable-line no-undef
                (err) => err instanceof errors.ThreaderCloneError && err.path === 'opts.with.K');
  assert.throws(() => threader(() => K, 1, { with: { K: { s: Symbol('x') } } }),  // eslint-disable-line no-undef
                { code: 'ERR_THREADER_CLONE', path: 'opts.with.K.s' });
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(() => threader(() => K, 1, { with: { K: cyclic } }), { code: 'ERR_THREADER_CLONE' });  // eslint-disable-line no-undef
});

test('bad names are refused', () => {
  assert.throws(() => threader((x) => x, 1, { with: { 'not-a-name': 1 } }), RangeError);
  assert.throws(() => threader((x) => x, 1, { with: { class: 1 } }), RangeError);
  assert.throws(() => threader((x) => x, 1, { with: [1] }), TypeError);
});

test('a helper\'s error keeps its stack', async () => {
  const boom = (m) => { throw new Error(m); };
  const err = await thread.all(threader((m) => boom(m), 'deep', { with: { boom } })).catch((e) => e);
  assert.equal(err.message, 'deep');
  assert.match(err.stack, /deep/);
});
