'use strict';
// Inert functions (js/validate.js isInert, thr_fn_mark_inert): a function
// that cannot change any object that existed before it ran lets the worker
// skip lockdown's verify() after its tasks.  The table pins the rule down,
// construct by construct; the API tests check who gets the mark (never a
// task with `with` helpers, never one that skipped validation); the worker
// tests check that a change to an intrinsic is still undone before an
// inert task could see it.

const test = require('node:test');
const assert = require('node:assert/strict');
const { validateFunction } = require('../../js/validate.js');
const { createThreader } = require('../../js/api.js');
const { MockBinding } = require('./helpers/mock_binding.js');
const { load, needsRealWorkers } = require('./helpers/load.js');

/* eslint-disable no-undef, no-unused-vars */
const TABLE = [
  // [inert, function, why]
  [true, (x) => x + 1, 'operators on the data'],
  [true, (x) => x.a * x.b, 'property reads'],
  [true, (x) => x?.a?.[0], 'optional chains'],
  [true, ({ a, b = 2 }, [c, ...d]) => a + b + c + d.length, 'destructuring parameters with defaults'],
  [true, (x) => `${x} and ${x}`, 'template literal'],
  [true, (x) => [...x, { ...x }], 'spread into new literals'],
  [true, (x) => Math.max(x, 1) + Math.sqrt(x) + Math.random(), 'Math functions'],
  [true, (x) => Math.max?.(x), 'optional call of a Math function'],
  [true, (x) => { let s = 0; for (let i = 0; i < x; i++) s += i; return s; }, 'loops over locals'],
  [true, (x) => { for (const k in x) {} for (const v of x) {} return 1; }, 'for-in/for-of declaring locals'],
  [true, (x) => { let a, b; [a, b] = x; ({ a } = x); return a + b; }, 'destructuring assignment to locals'],
  [true, (x) => { switch (x) { case 1: return 'one'; default: return typeof x; } }, 'switch, typeof'],
  [true, (x) => { try { return x.a.b; } catch (e) { return e instanceof TypeError; } }, 'try/catch, instanceof'],
  [true, (x) => x in Object.prototype, 'in'],
  [true, (x) => Array.prototype.includes === x, 'reading an intrinsic'],
  [true, function (x) { return arguments.length + x; }, 'reading arguments'],
  [true, function named(x) { return typeof named; }, 'a named function expression'],
  [true, (x) => /a+/.source + x, 'a regular expression literal, read'],
  [false, (x) => { x.a = 1; return x; }, 'property write'],
  [false, (x) => { x.n++; return x; }, 'property update'],
  [false, (x) => { x[0] += 1; return x; }, 'element compound assignment'],
  [false, (x) => { [x.a] = [1]; return x; }, 'destructuring into a property'],
  [false, (x) => { ({ a: x.b } = x); return x; }, 'object destructuring into a property'],
  [false, (x) => { for (x.k in x) {} return 1; }, 'for-in into a property'],
  [false, (x) => { for (x.k of [1]) {} return 1; }, 'for-of into a property'],
  [false, (x) => delete x.a, 'delete'],
  [false, (x) => [x].map(String), 'a method call'],
  [false, (x) => String(x), 'a global function call'],
  [false, (x) => Math.constructor(x), 'a name Math inherits'],
  [false, (x) => Math['max'](x), 'a computed Math member'],
  [false, (x) => Math.max.call(null, x), 'Math.max.call'],
  [false, (x) => { const Math = Object; return Math.max(x); }, 'a local Math'],
  [false, (x, Math) => Math.max(x), 'a Math parameter'],
  [false, (x) => new Date(x), 'new'],
  [false, (x) => String.raw`${x}`, 'a tagged template'],
  [false, (x) => () => x, 'a nested arrow'],
  [false, (x) => { function f() {} return x; }, 'a nested declaration'],
  [false, (x) => ({ get a() { return x; } }), 'a getter in a literal'],
  [false, (x) => ({ valueOf() { return 1; } }) + x, 'a method in a literal'],
  [false, (x) => class {}, 'a class expression'],
  [false, (x) => { class C {} return x; }, 'a class declaration'],
];
/* eslint-enable no-undef, no-unused-vars */

test(`the inert rule, construct by construct (${TABLE.length} functions)`, () => {
  assert.ok(TABLE.length >= 40);
  for (const [inert, fn, why] of TABLE) {
    assert.equal(validateFunction(fn).inert, inert, `${why}: ${fn}`);
  }
});

test('only validated tasks without helpers register as inert', () => {
  const binding = new MockBinding();
  const { threader, thread } = createThreader(binding);
  const clamp = (v) => Math.min(v, 1);
  const marks = () => Object.fromEntries(binding.fns.filter(Boolean).map((f) => [f.source, f.inert]));
  return (async () => {
    await thread.all(
      threader((x) => x + 1, 1),
      threader((x) => [x].map(String), 1),
    );
    await thread.all(threader((x) => x + 2, 1, { with: { clamp } }));
    threader.config({ enableValidation: false });
    await thread.all(threader((x) => x + 3, 1));
    threader.config({ enableValidation: true });
    const m = marks();
    assert.equal(m['(x) => x + 1'], true);
    assert.equal(m['(x) => [x].map(String)'], false);
    const withHelpers = Object.keys(m).find((s) => s.includes('x + 2'));
    assert.equal(m[withHelpers], false, withHelpers);
    assert.equal(m['(x) => x + 3'], false);
    await threader.shutdown();
  })();
});

test('a change to an intrinsic is undone before an inert task runs next', needsRealWorkers(), async () => {
  const { threader, thread } = load();
  threader.config({ maxWorkers: 1 });
  try {
    const probe = () => Array.prototype.includes === null || Object.prototype.polluted === 1;
    assert.equal(validateFunction(probe).inert, true);
    await thread.all(threader(probe));  // the worker exists
    const before = threader.stats().totals.isolatesCreated;
    for (let i = 0; i < 20; i++) {
      const [changed] = await thread.all(threader(() => {
        Array.prototype.includes = null;
        return Array.prototype.includes === null;
      }));
      assert.equal(changed, true);
      const [seen] = await thread.all(threader(probe));
      assert.equal(seen, false, `round ${i}`);
    }
    // Each change cost that worker its isolate, rebuilt from the snapshot.
    assert.equal(threader.stats().totals.isolatesCreated, before + 20);
    const [sum] = await thread.all(threader((n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += Math.sqrt(i * i);
      return s;
    }, 100));
    assert.equal(sum, 4950);
  } finally {
    threader.config({ maxWorkers: null });
  }
});
