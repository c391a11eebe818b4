'use strict';
// Errors: worker exceptions keep name, message, stack and own properties;
// stable codes for Threader's own errors.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./helpers/load.js');

const { threader, thread, errors, isMock, root } = load();

const failure = (fn, data) => thread.all(threader(fn, data)).catch((e) => e);

test('a worker TypeError comes back as a TypeError', async () => {
  const err = await failure(function explode(x) {
    throw new TypeError(`bad input ${x}`);
  }, 7);
  assert.ok(err instanceof TypeError);
  assert.equal(err.name, 'TypeError');
  assert.equal(err.message, 'bad input 7');
  assert.match(err.stack, /bad input 7/);
  // The stack points into the user's function.
  assert.match(err.stack, /explode/);
});

test('each standard error type keeps its constructor', async () => {
  const cases = [
    ['RangeError', () => { throw new RangeError('r'); }],
    ['SyntaxError', () => JSON.parse('{')],
    ['URIError', () => decodeURIComponent('%')],
    ['EvalError', () => { throw new EvalError('e'); }],
    ['Error', () => { throw new Error('plain'); }],
  ];
  for (const [name, fn] of cases) {
    const err = await failure(fn);
    assert.equal(err.name, name);
    assert.ok(err instanceof globalThis[name], name);
  }
});

test('a ReferenceError stays a ReferenceError', async () => {
  // Validation would refuse the free name, so build the error by hand.
  const err = await failure(() => { throw new ReferenceError('ref'); });
  assert.ok(err instanceof ReferenceError);
});

test('custom names and own properties survive', async () => {
  const err = await failure(() => {
    const e = new Error('custom');
    e.name = 'QuotaError';
    e.code = 'E_QUOTA';
    e.details = { limit: 3, used: [1, 2, 3] };
    throw e;
  });
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'QuotaError');
  assert.equal(err.message, 'custom');
  assert.equal(err.code, 'E_QUOTA');
  assert.deepEqual(err.details, { limit: 3, used: [1, 2, 3] });
});

test('an error subclass defined in the task keeps its name', async () => {
  const err = await failure(() => {
    class ParseFailure extends Error {
      constructor(m) {
        super(m);
        this.name = 'ParseFailure';
      }
    }
    throw new ParseFailure('line 3');
  });
  assert.equal(err.name, 'ParseFailure');
  assert.equal(err.message, 'line 3');
});

test('throwing a non-error value gives an Error naming it', async () => {
  const err = await failure(() => { throw 42; });  // eslint-disable-line no-throw-literal
  assert.ok(err instanceof Error);
  assert.match(err.message, /42/);
});

test('stack overflow gives a RangeError and the worker is fine', async () => {
  const err = await failure(function recurse(n) { return recurse(n + 1) + 1; }, 0);
  assert.ok(err instanceof RangeError, String(err));
  assert.deepEqual(await thread.all(threader((x) => x * 2, 4)), [8]);
});

test('data that cannot be cloned: ERR_THREADER_CLONE naming the path', async () => {
  const data = { items: [1, 2, { cb() {} }] };
  const t = threader((d) => d, data);
  const err = await thread.all(t).catch((e) => e);
  assert.ok(err instanceof errors.ThreaderCloneError, String(err));
  assert.equal(err.code, 'ERR_THREADER_CLONE');
  assert.equal(err.path, 'data.items[2].cb');
  assert.match(err.message, /data\.items\[2\]\.cb/);
  assert.equal(t.status, 'failed');
});

test('clone paths for other values', async () => {
  const cases = [
    [{ s: Symbol('x') }, 'data.s'],
    [[1, new WeakMap()], 'data[1]'],
    [{ 'a b': { p: Promise.resolve() } }, 'data["a b"].p'],
    [new Map([['k', () => 1]]), 'data.get("k")'],
    [() => 1, 'data'],
  ];
  for (const [data, path] of cases) {
    const err = await failure((d) => d, data);
    assert.equal(err.code, 'ERR_THREADER_CLONE', String(err));
    assert.equal(err.path, path);
  }
});

test('one bad task in a batch does not fail the others', async () => {
  const good = Array.from({ length: 5 }, (_, i) => threader((x) => x, i));
  const bad = threader((x) => x, { f() {} });
  const outcomes = await Promise.all([...good, bad].map((t) => thread.all(t).then(() => 'ok', (e) => e.code)));
  assert.deepEqual(outcomes, ['ok', 'ok', 'ok', 'ok', 'ok', 'ERR_THREADER_CLONE']);
});

test('a result that cannot be cloned: ERR_THREADER_CLONE', async () => {
  const err = await failure(() => ({ answer: 42, fn: () => 1 }));
  assert.ok(err instanceof errors.ThreaderCloneError, String(err));
  assert.equal(err.code, 'ERR_THREADER_CLONE');
  assert.equal(err.path, 'result.fn');
  assert.match(err.message, /result\.fn/);
});

test('validation errors are synchronous, with identifier, line and column', () => {
  const secret = 42;
  assert.throws(() => threader((x) => x + secret), (err) => {
    assert.ok(err instanceof errors.ThreaderValidationError);
    assert.equal(err.code, 'ERR_THREADER_VALIDATION');
    assert.equal(err.identifier, 'secret');
    assert.equal(err.line, 1);
    assert.equal(typeof err.column, 'number');
    return true;
  });
});

test('error classes have stable codes and names', () => {
  const cases = [
    [new errors.ThreaderValidationError('m'), 'ThreaderValidationError', 'ERR_THREADER_VALIDATION'],
    [new errors.ThreaderTimeoutError('m', 5), 'ThreaderTimeoutError', 'ERR_THREADER_TIMEOUT'],
    [new errors.ThreaderCloneError('m', 'data.x'), 'ThreaderCloneError', 'ERR_THREADER_CLONE'],
    [new errors.ThreaderWorkerError('m'), 'ThreaderWorkerError', 'ERR_THREADER_WORKER'],
    [new errors.AbortError(), 'AbortError', 'ABORT_ERR'],
  ];
  for (const [err, name, code] of cases) {
    assert.ok(err instanceof Error);
    assert.equal(err.name, name);
    assert.equal(err.code, code);
  }
  assert.ok(new errors.ThreaderTimeoutError('m') instanceof errors.ThreaderError);
});

test('the package exports the error classes', { skip: isMock && 'mock binding: the package needs the addon' }, () => {
  const pkg = require(root);
  for (const name of ['ThreaderError', 'ThreaderValidationError', 'ThreaderTimeoutError',
    'ThreaderCloneError', 'ThreaderWorkerError', 'AbortError']) {
    assert.equal(typeof pkg[name], 'function', name);
  }
});

test('cause and AggregateError.errors are rebuilt too', async () => {
  const err = await failure(() => {
    throw new Error('outer', { cause: new TypeError('inner') });
  });
  assert.equal(err.message, 'outer');
  assert.ok(err.cause instanceof TypeError, String(err.cause));
  assert.equal(err.cause.message, 'inner');
  const agg = await failure(() => {
    throw new AggregateError([new RangeError('a'), new Error('b')], 'both');
  });
  assert.ok(agg instanceof AggregateError);
  assert.equal(agg.message, 'both');
  assert.ok(agg.errors[0] instanceof RangeError);
  assert.equal(agg.errors[1].message, 'b');
});
