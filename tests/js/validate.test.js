'use strict';
// Static validation of threader functions (js/validate.js; DESIGN.md,
// "Purity"; issue 4).  Run: node --test tests/js/
//
// The table below marks each function valid or invalid; invalid ones name the
// identifier the error must report and, for many, its line:column inside the
// function's own text.
//
// Decisions pinned here:
// - `typeof window` is rejected like any other reference to a name the worker
//   lacks (the check could only ever see the worker).
// - Generators, async functions and async generators are rejected as the task
//   function ("not supported yet"); nested ones are fine.
// - Method shorthand `({ f(x) {...} }).f` is accepted; its `source` is rebuilt
//   into an expression that evaluates to an equivalent method.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const ROOT = path.join(__dirname, '..', '..');
const JS = path.join(ROOT, 'js');
const {
  validateFunction, validateSource, ECMASCRIPT_GLOBALS, MAX_CACHE_ENTRIES,
  cacheSize,
} = require(path.join(JS, 'validate.js'));
const { ThreaderValidationError } = require(path.join(JS, 'errors.js'));

const VALID = 'valid';
// invalid(identifier, 'line:column'?)
const bad = (id, at) => ({ id, at });
// Rejected for what the function is, not for a name (no identifier).
const rejected = (match) => ({ id: undefined, match });

const captured = 42;
function helper() { return 1; }
const obj = {
  method(x) { return x + 1; },
  recurse(n) { return n > 0 ? recurse(n - 1) : 0; },  // `recurse` is not bound
  'quoted-key'(x) { return x * 2; },
  [Symbol.for('computed')](x) { return x - 1; },
  get getter() { return 1; },
  set setter(v) { },
  async asyncMethod() { },
  *genMethod() { },
  async *asyncGenMethod() { },
  superUser() { return super.hasOwnProperty.call({ a: 1 }, 'a'); },
};
const desc = (o, k) => Object.getOwnPropertyDescriptor(o, k);
class StaticHolder { static twice(x) { return x * 2; } }

const CASES = [
  // --- plain functions and the ECMAScript globals -------------------------
  ['arrow', (x) => x * 2, VALID],
  ['function expression', function (a, b) { return a + b; }, VALID],
  ['named function refers to itself', 'function fact(n) { return n <= 1 ? 1 : n * fact(n - 1) }', VALID],
  ['function declaration text', function declared(n) { return n > 0 ? declared(n - 1) : n; }, VALID],
  ['Math and spread', (data) => Math.max(...data), VALID],
  ['ES globals', () => [Object, Array, JSON, Reflect, Proxy, Promise, Map, Set,
    WeakMap, WeakSet, WeakRef, FinalizationRegistry, BigInt, Symbol, Intl, Date,
    RegExp, AggregateError, SharedArrayBuffer, Atomics, DataView, ArrayBuffer,
    Uint8Array, Uint8ClampedArray, Int32Array, Float32Array, Float64Array,
    BigInt64Array, BigUint64Array, WebAssembly, NaN, Infinity, undefined, eval,
    isFinite, isNaN, parseInt, parseFloat, encodeURIComponent, decodeURIComponent,
    encodeURI, decodeURI, Error, TypeError, RangeError, SyntaxError,
    ReferenceError, EvalError, URIError, Boolean, Number, String, Function], VALID],
  ['globalThis', () => globalThis.Math.PI, VALID],
  ['property of globalThis is not a reference', () => globalThis.console, VALID],
  ['data and ctx parameters', (data, ctx) => { ctx.progress(0.5); return data; }, VALID],
  ['eval is an ES global', 'src => eval(src)', VALID],
  ['Function constructor is an ES global', "() => Function('return 1')()", VALID],
  ['new Function source', new Function('a', 'b', 'return a + b'), VALID],
  ['BigInt literal and **', 'n => 2n ** BigInt(n)', VALID],
  ['unicode identifiers', '(\u00fc, \u03c0) => \u00fc * \u03c0', VALID],
  ['typeof a parameter', (x) => typeof x === 'undefined', VALID],
  ['typeof an ES global', () => typeof SharedArrayBuffer, VALID],
  ['this in a function', function () { return this; }, VALID],
  ['use strict directive', function () { 'use strict'; return this; }, VALID],
  ['new.target', function F() { return new.target; }, VALID],
  ['arguments in a function', function () { return arguments.length; }, VALID],
  ['arguments in an arrow nested in a function', function () { return (() => arguments[0])(); }, VALID],
  ['delete of a member', (o) => delete o.x, VALID],
  ['sequence and conditional', (a, b) => (a, b ? a : b), VALID],
  ['while and do-while', (n) => { let i = 0; while (i < n) i++; do i--; while (i > 0); return i; }, VALID],
  ['debugger statement', () => { debugger; }, VALID],

  // --- text that merely mentions host names -------------------------------
  ['string containing console.', (s) => s.replace('console.', ''), VALID],
  ['string containing process', (s) => 'console.log(process.env)' + s, VALID],
  ['comment containing console', (x) => /* console.log(x); require('fs') */ x, VALID],
  ['line comment containing fetch', 'x => {\n  // fetch(x) would be wrong\n  return x\n}', VALID],
  ['regex literal containing console', (s) => /console\.log\(process\)/.test(s), VALID],
  ['template text containing window', (s) => `window.${s}.document`, VALID],
  ['property named process', (o) => o.process + o.window.document.cookie, VALID],
  ['object keys named like host globals', (x) => ({ process: x, console: 1, require() { return 2; } }), VALID],
  ['optional member named fetch', (o) => o?.fetch?.(1), VALID],
  ['label named console', () => { console: for (;;) { break console; } }, VALID],

  // --- shadowing -----------------------------------------------------------
  ['parameter shadows console', (console) => console.log('x'), VALID],
  ['const shadows console', () => { const console = { log() { } }; console.log(1); }, VALID],
  ['var shadows require', 'function () { var require = (x) => x; return require("fs") }', VALID],
  ['inner let shadows outer', () => { let x = 1; { let x = 2; x++; } return x; }, VALID],
  ['catch parameter shadows', (e) => { try { return e; } catch (e) { return e; } }, VALID],

  // --- hoisting -------------------------------------------------------------
  ['var used before declaration', () => { x = 1; var x; return x; }, VALID],
  ['function declaration hoisted', () => { return f(); function f() { return 1; } }, VALID],
  ['let referenced from an earlier closure', () => { const g = () => later; let later = 1; return g(); }, VALID],
  ['class declaration used from an earlier closure', () => { const mk = () => new K(); class K { } return mk(); }, VALID],
  ['var in a block is function scoped', (x) => { if (x) { var v = 1; } return v; }, VALID],
  ['var in for-in is function scoped', (o) => { for (var k in o) { } return k; }, VALID],
  ['Annex B block function (sloppy)', 'function () { { function g() { return 1 } } return g() }', VALID],

  // --- destructuring and default parameters -------------------------------
  ['destructuring params', ({ a, b: { c }, ...rest }, [d, , e = a, ...f]) => a + c + d + e + f.length + rest.x, VALID],
  ['defaults use earlier params', (a, b = a * 2, { c = b } = {}) => a + b + c, VALID],
  ['nested destructuring declarations', (o) => { const { a: [x, { y = x }], ...r } = o; let [p = y, [q] = []] = r.list; return x + y + p + q; }, VALID],
  ['destructuring assignment to locals', (o) => { let a, b; ({ a, b = a } = o); [a, b] = [b, a]; return a + b; }, VALID],
  ['computed key in a parameter pattern', (k, { [k]: v }) => v, VALID],
  ['default is a closure over a param', (a, f = () => a) => f(), VALID],

  // --- nested functions ------------------------------------------------------
  ['nested functions see outer params', (x) => { function inner(y) { return function (z) { return x + y + z; }; } return inner(1)(2); }, VALID],
  ['curried arrows', (a) => (b) => (c) => a + b + c, VALID],
  ['nested generator is fine', (n) => { function* g() { for (let i = 0; i < n; i++) yield i; } return [...g()]; }, VALID],
  ['nested async arrow is fine', () => { const f = async () => await 1; return typeof f; }, VALID],
  ['object method closes over local', (k) => ({ m() { return k; } }).m(), VALID],
  ['getter/setter inside an object literal', () => ({ get v() { return 1; }, set v(x) { } }).v, VALID],
  ['computed key from a local', (k) => ({ [k]: 1 }), VALID],
  ['shorthand property of a local', (x) => ({ x }), VALID],

  // --- statements and their scopes ---------------------------------------
  ['catch binding', () => { try { return JSON.parse('x'); } catch (e) { return e.message; } }, VALID],
  ['catch without binding', () => { try { return 1; } catch { return 2; } finally { } }, VALID],
  ['catch with destructuring', () => { try { throw new Error('x'); } catch ({ message, name = message }) { return name; } }, VALID],
  ['for let', (n) => { let s = 0; for (let i = 0; i < n; i++) s += i; return s; }, VALID],
  ['for-of destructuring', (o) => { let s = 0; for (const [k, v] of Object.entries(o)) s += k.length + v; return s; }, VALID],
  ['for-of assigning a local', (xs) => { let last; for (last of xs); return last; }, VALID],
  ['labels', (n) => { outer: for (let i = 0; i < n; i++) { inner: for (;;) { if (i) continue outer; break inner; } } return n; }, VALID],
  ['switch case scope', 'x => { switch (x) { case 1: let y = 2; return y; default: return y } }', VALID],

  // --- classes ------------------------------------------------------------
  ['class with fields, static block and private names', () => {
    class P {
      #x = 1;
      static count = 0;
      y = this.#x + P.count;
      static { P.count++; }
      get x() { return this.#x; }
      has(o) { return #x in o; }
      #priv() { return this.#x; }
    }
    return new P().x;
  }, VALID],
  ['class extends and super', () => {
    class A { m() { return 1; } }
    class B extends A { constructor() { super(); } m() { return super.m() + 1; } }
    return new B().m();
  }, VALID],
  ['class expression name is bound inside', () => { const C = class Named { static make() { return new Named(); } }; return C.make(); }, VALID],
  ['class field arrow uses this', () => new (class { f = () => this; })().f(), VALID],
  ['static block var is local', () => { class A { static { var q = 1; A.q = q; } } return A.q; }, VALID],

  // --- expressions ------------------------------------------------------------
  ['optional chaining and ??', (o) => o?.a?.[o.k]?.(o.z) ?? null, VALID],
  ['spread in arrays, calls and objects', (a, ...rest) => [...a, ...rest, { ...a }, Math.min(...a)], VALID],
  ['tagged template with a local tag', () => { const tag = (s, ...v) => s.raw.join('') + v.join(); return tag`a${1}b${2}`; }, VALID],
  ['String.raw', (x) => String.raw`\n${x}`, VALID],
  ['template literal with local', (n) => `n=${n * 2}`, VALID],

  // --- methods ------------------------------------------------------------
  ['method shorthand', obj.method, VALID],
  ['quoted method key', obj['quoted-key'], VALID],
  ['computed method key', obj[Symbol.for('computed')], VALID],
  ['method using super', obj.superUser, VALID],
  ['static class method', StaticHolder.twice, VALID],

  // ===================================================================
  // Invalid: free identifiers.
  ['closure over a caller variable', (x) => x + captured, bad('captured', '1:12')],
  ['closure over a caller function', (x) => helper(x), bad('helper', '1:8')],
  ['console', 'function (a) {\n  console.log(a)\n}', bad('console', '2:3')],
  ['require', "x => require('fs')", bad('require', '1:6')],
  ['process', () => process.env.HOME, bad('process', '1:7')],
  ['window', () => window.location, bad('window', '1:7')],
  ['document', () => document.body, bad('document')],
  ['fetch', (url) => fetch(url), bad('fetch', '1:10')],
  ['XMLHttpRequest', () => new XMLHttpRequest(), bad('XMLHttpRequest', '1:11')],
  ['localStorage', () => localStorage.getItem('k'), bad('localStorage')],
  ['setTimeout', (f) => setTimeout(f, 1), bad('setTimeout', '1:8')],
  ['setInterval', (f) => setInterval(f, 1), bad('setInterval')],
  ['setImmediate', (f) => setImmediate(f), bad('setImmediate')],
  ['clearTimeout', (t) => clearTimeout(t), bad('clearTimeout')],
  ['Buffer', () => Buffer.from('x'), bad('Buffer')],
  ['queueMicrotask', (f) => queueMicrotask(f), bad('queueMicrotask')],
  ['module', () => module.exports, bad('module')],
  ['exports', () => exports.x, bad('exports')],
  ['global', () => global.x, bad('global')],
  ['self', () => self.postMessage(1), bad('self')],
  ['navigator', () => navigator.userAgent, bad('navigator')],
  ['structuredClone', (o) => structuredClone(o), bad('structuredClone')],
  ['performance', () => performance.now(), bad('performance')],
  ['TextEncoder', () => new TextEncoder(), bad('TextEncoder')],
  ['URL', (s) => new URL(s), bad('URL')],
  ['atob', (s) => atob(s), bad('atob')],
  ['__dirname', () => __dirname, bad('__dirname')],
  ['typeof window (decided: rejected)', () => typeof window, bad('window', '1:14')],
  ['typeof process guard', 'function () {\n  if (typeof process !== "undefined") return 1\n}', bad('process', '2:14')],
  ['arguments in a top-level arrow', () => arguments.length, bad('arguments', '1:7')],

  // Module and with syntax.
  ['dynamic import()', "() => import('fs')", bad('import', '1:7')],
  ['import.meta', '() => import.meta.url', bad('import.meta', '1:7')],
  ['import declaration', 'function () { import x from "y" }', bad('import', '1:15')],
  ['with statement', 'function (o) {\n  with (o) { return x }\n}', bad('with', '2:3')],

  // Scopes that do not reach.
  ['block let does not leak', (x) => { { let console = 1; } return console; }, bad('console')],
  ['default param cannot see body var', '(a = b) => { var b = 1; return a }', bad('b', '1:6')],
  ['default param cannot see body let', '(a = console) => { let console; return a }', bad('console', '1:6')],
  ['method name is not bound in its body', obj.recurse, bad('recurse', '1:29')],
  ['catch param does not leak', '() => { try {} catch (e) {} return e }', bad('e', '1:36')],
  ['for-let does not leak', '() => { for (let i = 0; i < 1; i++); return i }', bad('i', '1:45')],
  ['strict mode block function does not leak', "function () { 'use strict'; { function g() {} } return g() }", bad('g', '1:56')],
  ['label does not bind a name', 'function () {\n  console: for (;;) { break console }\n  return console\n}', bad('console', '3:10')],
  ['class name is not bound outside a class expression', '() => { const C = class Inner {}; return Inner }', bad('Inner', '1:42')],
  ['function expression name is not bound outside', '() => { const f = function g() {}; return g }', bad('g', '1:43')],

  // Every position where a reference can hide.
  ['member object', () => foo.bar, bad('foo', '1:7')],
  ['computed member property', (o) => o[key], bad('key', '1:10')],
  ['shorthand property', () => ({ secretKey }), bad('secretKey', '1:10')],
  ['object property value', () => ({ a: val }), bad('val')],
  ['computed object key', () => ({ [name]: 1 }), bad('name', '1:11')],
  ['spread in object', () => ({ ...defaults }), bad('defaults')],
  ['spread in array', () => [...items], bad('items', '1:11')],
  ['spread in call', (f) => f(...args), bad('args')],
  ['template literal expression', (n) => `value: ${fmt(n)}`, bad('fmt', '1:18')],
  ['tagged template tag', () => html`<b>`, bad('html', '1:7')],
  ['optional call', () => cfg?.a?.(), bad('cfg', '1:7')],
  ['new expression', () => new Foo(), bad('Foo', '1:11')],
  ['conditional', (x) => (x ? yes : 0), bad('yes')],
  ['logical', (x) => x || fallback, bad('fallback')],
  ['binary in', (k) => k in table, bad('table')],
  ['instanceof', (x) => x instanceof Widget, bad('Widget')],
  ['sequence', () => (0, sideEffect), bad('sideEffect')],
  ['default parameter', (a = DEFAULT) => a, bad('DEFAULT', '1:6')],
  ['destructuring default in params', ({ a = fallbackA }) => a, bad('fallbackA', '1:8')],
  ['destructuring default in declaration', (o) => { const { a = dflt } = o; return a; }, bad('dflt')],
  ['computed key in pattern', ({ [keyName]: v }) => v, bad('keyName', '1:5')],
  ['nested function', () => function () { return helper2(); }, bad('helper2', '1:28')],
  ['deeply nested arrow', (a) => (b) => (c) => a + b + c + d, bad('d', '1:34')],
  ['implicit global assignment', () => { total = 1; }, bad('total', '1:9')],
  ['update expression', () => counter++, bad('counter', '1:7')],
  ['compound assignment', (x) => { acc += x; }, bad('acc')],
  ['for-in target is a free name', (o) => { for (k in o); }, bad('k', '1:15')],
  ['for-of right side', () => { for (const x of source); }, bad('source')],
  ['destructuring assignment target', (o) => { ({ a } = o); }, bad('a', '1:13')],
  ['array destructuring assignment target', (o) => { [first] = o; }, bad('first')],
  ['throw', () => { throw problem; }, bad('problem')],
  ['switch discriminant', () => { switch (mode) { } }, bad('mode')],
  ['case test', (x) => { switch (x) { case LIMIT: return 1; } }, bad('LIMIT')],
  ['if test', () => { if (flag) return 1; }, bad('flag')],
  ['return inside try/finally', () => { try { } finally { return cleanup; } }, bad('cleanup')],

  // Classes.
  ['class extends a free name', () => class extends Base { }, bad('Base', '1:21')],
  ['class field initializer', () => new (class { x = counter2; })(), bad('counter2')],
  ['static block', 'function () {\n  class A { static { log(1) } }\n}', bad('log', '2:22')],
  ['computed class member key', () => class { [memberName]() { } }, bad('memberName', '1:16')],
  ['class method body', () => class { m() { return outside; } }, bad('outside')],
  ['class static field', () => class { static s = sharedConfig; }, bad('sharedConfig')],

  // Several free names: the first one (in source order) is reported.
  ['first of several', 'x => {\n  const a = alpha + x\n  return beta(a)\n}', bad('alpha', '2:13')],
  ['CRLF line endings', 'x => {\r\n  return gamma\r\n}', bad('gamma', '2:10')],

  // ===================================================================
  // Invalid: what the function is.
  ['native function', Math.max, rejected(/native function/)],
  ['bound function', helper.bind(null), rejected(/bound function/)],
  ['class constructor', class Foo { }, rejected(/class/)],
  ['async arrow (not supported yet)', async () => 1, rejected(/async functions are not supported yet/)],
  ['async function (not supported yet)', async function () { }, rejected(/async functions are not supported yet/)],
  ['generator (not supported yet)', function* () { }, rejected(/generator functions are not supported yet/)],
  ['async generator (not supported yet)', async function* () { }, rejected(/async generator functions are not supported yet/)],
  ['async method', obj.asyncMethod, rejected(/async methods are not supported yet/)],
  ['generator method', obj.genMethod, rejected(/generator methods are not supported yet/)],
  ['async generator method', obj.asyncGenMethod, rejected(/not supported yet/)],
  ['getter', desc(obj, 'getter').get, rejected(/getter/)],
  ['setter', desc(obj, 'setter').set, rejected(/setter/)],
  ['proxy of a function', new Proxy(() => 1, {}), rejected(/native function/)],
  ['top-level super is a syntax error', '() => super.x', rejected(/could not parse.*super/)],
  ['injection: two expressions', 'x => x), (console.log(1)', rejected(/expected the source of a function/)],
  ['injection: two statements', 'x => x); console.log(1); (y => y', rejected(/expected the source of a single function/)],
  ['not a function expression', '1 + 2', rejected(/expected the source of a function/)],
];

function checkValid(input, result) {
  assert.equal(typeof result.source, 'string');
  assert.ok(['function', 'arrow', 'method'].includes(result.kind), result.kind);
  assert.equal(typeof result.name, 'string');
  assert.ok(Object.isFrozen(result));
  // The shipped source must be an expression that evaluates to a function.
  const fn = (0, eval)('(' + result.source + ')');
  assert.equal(typeof fn, 'function');
  if (typeof input === 'function') assert.equal(fn.length, input.length);
}

function checkError(err, expect, source) {
  assert.ok(err instanceof ThreaderValidationError, 'not a ThreaderValidationError: ' + err);
  assert.equal(err.code, 'ERR_THREADER_VALIDATION');
  assert.equal(err.name, 'ThreaderValidationError');
  assert.equal(err.identifier, expect.id, err.message);
  if (expect.match) assert.match(err.message, expect.match);
  if (expect.id !== undefined) {
    // Named in backquotes (`import()` and `import.meta` for those keywords).
    assert.ok(err.message.includes('`' + expect.id), err.message);
    assert.equal(typeof err.line, 'number');
    assert.equal(typeof err.column, 'number');
    assert.ok(err.message.includes(err.line + ':' + err.column), err.message);
    // The position is that of the identifier in the function's own text.
    const lines = source.split(/\r\n|\r|\n/);
    assert.equal(lines[err.line - 1].slice(err.column - 1).startsWith(expect.id), true,
      'position ' + err.line + ':' + err.column + ' does not point at ' + expect.id);
  }
  if (expect.at) assert.equal(err.line + ':' + err.column, expect.at, err.message);
}

test('the table has at least 100 functions, valid and invalid', () => {
  assert.ok(CASES.length >= 100, 'only ' + CASES.length);
  assert.ok(CASES.filter((c) => c[2] === VALID).length >= 40);
  assert.ok(CASES.filter((c) => c[2] !== VALID).length >= 40);
  const names = new Set(CASES.map((c) => c[0]));
  assert.equal(names.size, CASES.length, 'duplicate case names');
});

for (const [name, input, expect] of CASES) {
  const verdict = expect === VALID ? 'valid' : 'invalid' +
    (expect.id ? ' (' + expect.id + (expect.at ? ' at ' + expect.at : '') + ')' : '');
  test(verdict + ': ' + name, () => {
    const run = () => (typeof input === 'string'
      ? validateSource(input) : validateFunction(input));
    const source = typeof input === 'string' ? input : Function.prototype.toString.call(input);
    if (expect === VALID) {
      checkValid(input, run());
    } else {
      assert.throws(run, (err) => { checkError(err, expect, source); return true; });
    }
  });
}

// ---------------------------------------------------------------------------

test('methods are shipped as expressions that behave like the method', () => {
  const r = validateFunction(obj.method);
  assert.equal(r.kind, 'method');
  assert.equal(r.name, 'method');
  const f = (0, eval)('(' + r.source + ')');
  assert.equal(f(1), 2);
  assert.equal(f.name, 'method');
  assert.throws(() => new f(), TypeError);  // methods are not constructors

  const q = (0, eval)('(' + validateFunction(obj['quoted-key']).source + ')');
  assert.equal(q(3), 6);
  const c = validateFunction(obj[Symbol.for('computed')]);
  assert.equal((0, eval)('(' + c.source + ')')(3), 2);
  const s = (0, eval)('(' + validateFunction(obj.superUser).source + ')');
  assert.equal(s(), true);
  assert.equal((0, eval)('(' + validateFunction(StaticHolder.twice).source + ')')(4), 8);

  // Positions stay relative to the method's own text.
  const m = ({ calc(x) {
    return x + missing;
  } }).calc;
  assert.throws(() => validateFunction(m), { identifier: 'missing', line: 2, column: 16 });
});

test('validateSource returns an evaluable expression for loose text', () => {
  const r = validateSource('  /* lead */ x => x + 1 // trailing comment');
  assert.equal(r.source, 'x => x + 1');
  assert.equal((0, eval)('(' + r.source + ')')(1), 2);
  assert.equal(validateSource('function named() {}').name, 'named');
  assert.equal(validateSource('run(x) { return x }').kind, 'method');
  assert.equal(validateSource('run(x) { return x }').name, 'run');
});

test('error shape: code, name, identifier, line, column and a fix', () => {
  let err;
  try {
    validateSource('function (data) {\n  return data.map((x) => x * scale)\n}');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ThreaderValidationError);
  assert.ok(err instanceof Error);
  assert.equal(err.code, 'ERR_THREADER_VALIDATION');
  assert.equal(err.name, 'ThreaderValidationError');
  assert.equal(err.identifier, 'scale');
  assert.equal(err.line, 2);
  assert.equal(err.column, 30);
  assert.match(err.message, /`scale` at 2:30 is not defined inside the worker/);
  assert.match(err.message, /pass it in data or via opts\.with/);

  // Host globals get a specific hint that still says what to do.
  for (const [src, hint] of [
    ['() => console.log(1)', /return what you want to see/],
    ['() => require("x")', /modules cannot be loaded/],
    ['() => setTimeout(1)', /no timers/],
    ['() => process.env', /host API/],
  ]) {
    assert.throws(() => validateSource(src), (e) => {
      assert.match(e.message, hint);
      assert.match(e.message, /in data/);
      return true;
    });
  }

  // The other free names are listed too.
  assert.throws(() => validateSource('() => a + b + a + c'),
    (e) => e.identifier === 'a' && /also not defined: `b`, `c`/.test(e.message));

  // Each throw is a fresh error, even when the verdict is cached.
  const f = () => notDefinedHere;
  let e1, e2;
  try { validateFunction(f); } catch (e) { e1 = e; }
  try { validateFunction(f); } catch (e) { e2 = e; }
  assert.notEqual(e1, e2);
  assert.equal(e1.message, e2.message);
});

test('non-functions are ThreaderValidationErrors with a TypeError-like message', () => {
  for (const value of [undefined, null, 1, 'x => x', {}, [], Symbol('s'), 10n, true]) {
    assert.throws(() => validateFunction(value), (e) => {
      assert.ok(e instanceof ThreaderValidationError);
      assert.equal(e.code, 'ERR_THREADER_VALIDATION');
      assert.match(e.message, /expects a function, got/);
      assert.equal(e.identifier, undefined);
      return true;
    });
  }
  assert.throws(() => validateSource(42), { code: 'ERR_THREADER_VALIDATION' });
});

test('options.allowed: injected names count as defined', () => {
  const f = (x) => clamp(x * LUT_SIZE, 0, 1);
  assert.throws(() => validateFunction(f), { identifier: 'clamp' });
  assert.throws(() => validateFunction(f, { allowed: ['clamp'] }), { identifier: 'LUT_SIZE' });
  assert.equal(validateFunction(f, { allowed: ['clamp', 'LUT_SIZE'] }).kind, 'arrow');
  assert.equal(validateFunction(f, { allowed: new Set(['LUT_SIZE', 'clamp']) }).kind, 'arrow');
  function* names() { yield 'clamp'; yield 'LUT_SIZE'; }
  assert.equal(validateFunction(f, { allowed: names() }).kind, 'arrow');
  assert.equal(validateFunction(f, { allowed: new Map([['clamp', 1], ['LUT_SIZE', 2]]).keys() }).kind, 'arrow');
  // The cached verdict does not remember a previous call's names.
  assert.throws(() => validateFunction(f), { identifier: 'clamp' });
  assert.throws(() => validateFunction(f, {}), { identifier: 'clamp' });
  assert.throws(() => validateFunction(f, { allowed: [] }), { identifier: 'clamp' });
  // Same for validateSource.
  assert.equal(validateSource('() => helperA(helperB)', { allowed: ['helperA', 'helperB'] }).kind, 'arrow');
  assert.throws(() => validateSource('() => helperA(helperB)', { allowed: ['helperA'] }), { identifier: 'helperB' });
  // Injected names do not excuse the rest.
  assert.throws(() => validateSource('() => console.log(clamp)', { allowed: ['clamp'] }), { identifier: 'console' });
  // A local binding still shadows.
  assert.equal(validateSource('clamp => clamp(1)', { allowed: [] }).kind, 'arrow');
  // A string is not a list of names.
  assert.throws(() => validateFunction(f, { allowed: 'clamp' }), /iterable of names/);
});

test('ECMASCRIPT_GLOBALS is a frozen Set of the ES globals only', () => {
  assert.ok(ECMASCRIPT_GLOBALS instanceof Set);
  assert.ok(Object.isFrozen(ECMASCRIPT_GLOBALS));
  for (const name of ['Object', 'Array', 'Math', 'JSON', 'Reflect', 'Proxy', 'Promise',
    'Map', 'Set', 'WeakMap', 'WeakRef', 'FinalizationRegistry', 'Uint8Array',
    'BigInt64Array', 'ArrayBuffer', 'SharedArrayBuffer', 'Atomics', 'DataView',
    'BigInt', 'Symbol', 'Intl', 'Date', 'RegExp', 'AggregateError', 'eval',
    'isFinite', 'parseInt', 'encodeURIComponent', 'globalThis', 'NaN', 'Infinity',
    'undefined', 'WebAssembly']) {
    assert.ok(ECMASCRIPT_GLOBALS.has(name), name);
  }
  for (const name of ['console', 'require', 'process', 'window', 'document', 'fetch',
    'setTimeout', 'Buffer', 'queueMicrotask', 'structuredClone', 'performance',
    'TextEncoder', 'URL', 'atob', 'self', 'global', 'navigator', 'module', 'exports']) {
    assert.ok(!ECMASCRIPT_GLOBALS.has(name), name);
  }
  // Every name really is a global of this engine (Node 20 / V8 11.3).
  for (const name of ECMASCRIPT_GLOBALS) assert.ok(name in globalThis, name);
  assert.throws(() => ECMASCRIPT_GLOBALS.add('console'), TypeError);
  assert.throws(() => ECMASCRIPT_GLOBALS.delete('Math'), TypeError);
  assert.throws(() => ECMASCRIPT_GLOBALS.clear(), TypeError);
  // Even a mutation that bypasses the shadowed methods does not reach the
  // validator, which keeps its own copy.
  Set.prototype.add.call(ECMASCRIPT_GLOBALS, 'sneaky');
  assert.throws(() => validateSource('() => sneaky'), { identifier: 'sneaky' });
  Set.prototype.delete.call(ECMASCRIPT_GLOBALS, 'sneaky');
});

test('caching: repeated validation returns the cached result', () => {
  const f = (x) => x + 1;
  const r1 = validateFunction(f);
  assert.equal(validateFunction(f), r1);
  // Another function object with the same text shares the analysis.
  const make = () => (x) => x + 1;
  const before = cacheSize();
  const a = validateFunction(make());
  const b = validateFunction(make());
  assert.equal(cacheSize(), before);  // `(x) => x + 1` was already analysed
  assert.deepEqual(a, b);
  const s = validateSource('y => y * 3');
  assert.equal(validateSource('y => y * 3'), s);
});

test('caching: the source cache is bounded', () => {
  for (let i = 0; i < MAX_CACHE_ENTRIES + 500; i++) validateSource('x => x + ' + i);
  assert.ok(cacheSize() <= MAX_CACHE_ENTRIES, String(cacheSize()));
  // Evicted entries are analysed again, with the same answer.
  assert.equal(validateSource('x => x + 0').kind, 'arrow');
  assert.throws(() => validateSource('x => x + zz'), { identifier: 'zz' });
});

test('benchmark: a cached 10-line function validates in well under 1 µs', (t) => {
  const fn = function (data, ctx) {
    const out = new Float64Array(data.length);
    let sum = 0;
    for (let i = 0; i < data.length; i++) {
      const v = Math.sqrt(Math.abs(data[i]));
      out[i] = v;
      sum += v;
    }
    ctx.progress(1);
    return { out, mean: sum / data.length };
  };
  const N = 100000;
  validateFunction(fn);
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) validateFunction(fn);
    const ns = Number(process.hrtime.bigint() - t0) / N;
    if (ns < best) best = ns;
  }
  // A new function object with the same text (threader(x => ...) in a loop)
  // misses the per-function cache and hits the per-source one.
  const src = Function.prototype.toString.call(fn);
  const factory = (0, eval)('() => (' + src + ')');
  let freshNs = Infinity;
  for (let round = 0; round < 5; round++) {
    const fresh = [];
    for (let i = 0; i < N / 10; i++) fresh.push(factory());
    const t1 = process.hrtime.bigint();
    for (let i = 0; i < fresh.length; i++) validateFunction(fresh[i]);
    const ns = Number(process.hrtime.bigint() - t1) / fresh.length;
    if (ns < freshNs) freshNs = ns;
  }
  const t2 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) validateSource(src);
  const sourceNs = Number(process.hrtime.bigint() - t2) / N;
  t.diagnostic('validateFunction, same function: ' + best.toFixed(1) + ' ns/call');
  t.diagnostic('validateFunction, new function object, same text: ' + freshNs.toFixed(1) + ' ns/call');
  t.diagnostic('validateSource, same text: ' + sourceNs.toFixed(1) + ' ns/call');
  assert.ok(best < 1000, best + ' ns per cached call');
});

// ---------------------------------------------------------------------------
// The modules run inside the embedded V8 shell too: load them where only
// `module`, `exports` and `require` exist.

function loadInShim() {
  const context = vm.createContext({});
  const cache = new Map();
  const load = (name) => {
    const file = path.join(JS, name.replace(/^\.\//, '') + (name.endsWith('.js') ? '' : '.js'));
    if (cache.has(file)) return cache.get(file).exports;
    const module = { exports: {} };
    cache.set(file, module);
    const wrapper = vm.runInContext('(function (module, exports, require) {' +
      fs.readFileSync(file, 'utf8') + '\n})', context, { filename: file });
    wrapper.call(undefined, module, module.exports, load);
    return module.exports;
  };
  return { context, load };
}

test('acorn and validate.js load with only module, exports and require', () => {
  const { context, load } = loadInShim();
  // (V8 itself puts a `console` in every context; keeping it out of the
  // worker is runtime enforcement, not this module's job.)
  for (const name of ['global', 'process', 'window', 'self']) {
    assert.equal(vm.runInContext('typeof ' + name, context), 'undefined', name);
  }
  const acorn = load('./vendor/acorn');
  assert.equal(typeof acorn.parse, 'function');
  assert.match(acorn.version, /^8\./);
  assert.equal(vm.runInContext('typeof acorn', context), 'undefined');  // no global leak
  const v = load('./validate');
  const fn = vm.runInContext('(x) => x.map((y) => y * 2)', context);
  assert.equal(v.validateFunction(fn).kind, 'arrow');
  const leaky = vm.runInContext('(x) => console.log(x)', context);
  assert.throws(() => v.validateFunction(leaky), (e) => e.identifier === 'console' &&
    e.code === 'ERR_THREADER_VALIDATION' && e.line === 1 && e.column === 8);
});

test('vendored acorn is the npm 8.x UMD build with its MIT license', () => {
  const text = fs.readFileSync(path.join(JS, 'vendor', 'acorn.js'), 'utf8');
  assert.match(text.slice(0, 3000), /MIT License/);
  assert.match(text.slice(0, 3000), /Permission is hereby granted, free of charge/);
  assert.match(require(path.join(JS, 'vendor', 'acorn.js')).version, /^8\./);
});
