'use strict';
// Static validation of the functions given to threader(fn) (DESIGN.md,
// "Purity"; issue 4, "Validation at threader(fn)").
//
// A task function is shipped to a worker isolate as source text, so it must
// not depend on anything but its parameters, its own locals and the
// ECMAScript built-ins.  The function is parsed with the vendored acorn
// parser and a small scope analysis runs over the ESTree AST
// (js/analyze.js); this module keeps the results and judges them: every
// identifier reference that resolves to no binding inside the function is
// free, and a free identifier that is neither an ECMAScript global nor a name
// injected with `opts.with` is an error.  No regular expressions over the
// source text: `s => s.replace('console.', '')` is valid.
//
// Decisions (the issue asks for them to be written down):
// - Generators, async functions and async generators are rejected as the task
//   function ("not supported yet").  Nested ones inside the task are fine.
// - Classes, getters/setters, native and bound functions are rejected.
// - Method shorthand (`({ f(x) { ... } }).f`, whose text `f(x) { ... }` is
//   not an expression) is supported: `source` is rebuilt as
//   `({"f"(x) { ... }})["f"]`, keeping method semantics (`super` works, not
//   constructible).  A computed key (`[k]() {}`) is replaced by a string key
//   (it is not shipped, so it is not checked).  Line and column in errors are
//   always relative to the function's own text.
// - `typeof window` is still a reference to a name that the worker lacks and
//   is rejected like any other use: feature detection inside a task can only
//   ever see the worker, which has no host objects.
// - `this` is not an identifier and is never an error (in the worker it is
//   whatever the runtime calls the function with).
// - `with` statements, `import()`, `import.meta` and import/export
//   declarations are rejected.
// - Free names are resolved TDZ-agnostically (a `let` declared later in the
//   same scope counts as defined); in sloppy code, a function declared in a
//   block is also visible in the enclosing function (Annex B).
//
// Uses nothing but ECMAScript: it also runs inside the embedded V8 shell.
//
// The path of a validation whose source is cached or recorded is written as
// parenthesized function expressions, compiled with this file rather than
// at the first threader(fn) (see "parenthesized" in js/api.js).

// The analysis itself (acorn and the scope analysis, js/analyze.js) is
// loaded at the first source that is not in the validation record: a start
// whose functions all validated before never compiles it.
let analyzer = null;
function analyzerModule() {
  if (analyzer === null) analyzer = require('./analyze');
  return analyzer;
}

// An on-disk record of sources that validated (js/validation_memo.js), set
// by the package entry as a function that opens it, called at the first
// analysis; null in the shell and with the cache off.
let memo = null;
let openMemo = null;
const { ThreaderValidationError } = require('./errors');

const fnToString = Function.prototype.toString;
const ReflectApply = Reflect.apply;
const NO_ARGS = Object.freeze([]);

// Host APIs people reach for; their messages get a specific hint.
const MODULE_NAMES = new Set(['require', 'module', 'exports', '__dirname',
  '__filename', 'define']);
const LOG_NAMES = new Set(['console']);
const TIMER_NAMES = new Set(['setTimeout', 'setInterval', 'setImmediate',
  'clearTimeout', 'clearInterval', 'clearImmediate', 'queueMicrotask',
  'requestAnimationFrame', 'requestIdleCallback']);
const HOST_NAMES = new Set(['process', 'Buffer', 'global', 'window', 'self',
  'document', 'navigator', 'location', 'fetch', 'XMLHttpRequest', 'WebSocket',
  'localStorage', 'sessionStorage', 'indexedDB', 'structuredClone',
  'performance', 'TextEncoder', 'TextDecoder', 'URL', 'URLSearchParams',
  'atob', 'btoa', 'crypto', 'Blob', 'File', 'FormData', 'Headers', 'Request',
  'Response', 'AbortController', 'AbortSignal', 'Event', 'EventTarget',
  'MessageChannel', 'MessagePort', 'BroadcastChannel', 'Worker', 'alert',
  'postMessage', 'importScripts', 'Deno', 'Bun']);

const MAX_CACHE_ENTRIES = 1000;
const sourceCache = new Map();  // source text -> analysis entry
const functionCache = new WeakMap();  // function -> entry with its own result

// ---------------------------------------------------------------------------
// Errors.

// `details` is plain data so that it can be cached; every throw creates a
// fresh error (with its own stack).
function fail(details) {
  throw new ThreaderValidationError(details.message, details);
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  if (type === 'object') return 'an object';
  if (type === 'string') return 'a string';
  if (type === 'undefined') return 'undefined';
  return 'a ' + type;
}

function freeIdentifierMessage(name, line, column, others) {
  const where = '`' + name + '` at ' + line + ':' + column;
  let text;
  if (name === 'arguments') {
    text = where + ' is the `arguments` of the caller (an arrow function has ' +
      'none of its own), which does not exist inside the worker: use a ' +
      'rest parameter, or pass the values in data';
  } else if (LOG_NAMES.has(name)) {
    text = where + ' is not defined inside the worker, which has only ' +
      'ECMAScript built-ins: return what you want to see as the result (or ' +
      'report progress with ctx.progress()), and pass any input in data';
  } else if (MODULE_NAMES.has(name)) {
    text = where + ' is not defined inside the worker: modules cannot be ' +
      'loaded there. Pass the values you need in data, or inject pure ' +
      'helpers via opts.with';
  } else if (TIMER_NAMES.has(name)) {
    text = where + ' is not defined inside the worker: there are no timers ' +
      'or event loop there. Compute synchronously and pass what you need ' +
      'in data';
  } else if (HOST_NAMES.has(name)) {
    text = where + ' is not defined inside the worker: it is a host API, ' +
      'and the worker has only ECMAScript built-ins. Pass the values you ' +
      'need in data';
  } else {
    text = where + ' is not defined inside the worker: pass it in data or ' +
      'via opts.with (e.g. { with: { ' + name + ' } } for a constant or a ' +
      'pure helper function)';
  }
  if (others.length > 0) {
    text += ' (also not defined: ' + others.map((n) => '`' + n + '`')
      .join(', ') + ')';
  }
  return text;
}

const cachedAnalysis = (function cachedAnalysis(source, nameHint) {
  let entry = sourceCache.get(source);
  if (entry !== undefined) return entry;
  if (openMemo !== null) {
    const open = openMemo;
    openMemo = null;
    memo = open();
  }
  if (memo !== null) entry = memo.get(source);
  if (entry === undefined) {
    entry = analyzerModule().analyse(source, nameHint);
    if (memo !== null && entry.error === null && entry.kind !== 'method') {
      memo.add(source, entry);
    }
  }
  if (sourceCache.size >= MAX_CACHE_ENTRIES) {
    // Evict the oldest entry (a Map iterates in insertion order).
    sourceCache.delete(sourceCache.keys().next().value);
  }
  sourceCache.set(source, entry);
  return entry;
});

// ---------------------------------------------------------------------------
// Checking a cached entry against the injected names.

function allowedLookup(allowed) {
  if (allowed === undefined || allowed === null) return null;
  if (allowed instanceof Set) return allowed;
  if (typeof allowed === 'string' || typeof allowed[Symbol.iterator] !== 'function') {
    fail({ message: 'options.allowed must be an iterable of names, got ' +
      describe(allowed) });
  }
  return new Set(allowed);
}

const finish = (function finish(entry, result, options) {
  if (entry.error !== null) fail(entry.error);
  const free = entry.free;
  if (free.length === 0) return result;
  const allowed = allowedLookup(options === undefined || options === null
    ? undefined : options.allowed);
  let first = null;
  const others = [];
  for (let i = 0; i < free.length; i++) {
    const f = free[i];
    if (allowed !== null && allowed.has(f.name)) continue;
    if (first === null) first = f;
    else if (f.name !== first.name && !others.includes(f.name) && others.length < 5) {
      others.push(f.name);
    }
  }
  if (first === null) return result;
  return fail({
    message: freeIdentifierMessage(first.name, first.line, first.column, others),
    identifier: first.name, line: first.line, column: first.column,
  });
});

// ---------------------------------------------------------------------------
// Public API.

// validateFunction(fn, { allowed }) -> { source, name, kind }
//   source: a function expression; (0, eval)('(' + source + ')') is the
//           function.  kind: 'function' | 'arrow' | 'method'.
// Throws ThreaderValidationError.  The result object is frozen and shared by
// calls that validate the same function.
const validateFunction = (function validateFunction(fn, options) {
  if (typeof fn !== 'function') {
    fail({ message: 'threader(fn) expects a function, got ' + describe(fn) +
      ': pass the task as a function or arrow function' });
  }
  let hit = functionCache.get(fn);
  if (hit === undefined) {
    hit = functionEntry(fn);
    functionCache.set(fn, hit);
  }
  return finish(hit, hit.result, options);
});

const ownName = (function ownName(fn) {
  let name;
  try {
    name = fn.name;
  } catch (e) {
    return '';
  }
  return typeof name === 'string' ? name : '';
});

const functionEntry = (function functionEntry(fn) {
  let source;
  try {
    source = ReflectApply(fnToString, fn, NO_ARGS);
  } catch (e) {
    source = null;  // e.g. a revoked proxy
  }
  const name = ownName(fn);
  if (source === null || typeof source !== 'string' ||
      source.endsWith('[native code] }')) {
    const bound = name.startsWith('bound ');
    const message = bound
      ? 'a bound function cannot be a threader function: its bound `this` ' +
        'and arguments live in the caller. Pass the unbound function and ' +
        'put the bound values in data'
      : '`' + (name || 'anonymous') + '` is a native function (or a ' +
        'proxy): it has no source to send to a worker. Wrap it in a ' +
        'function, e.g. (data) => Math.max(...data)';
    return { error: { message, identifier: undefined }, free: [], result: null };
  }
  const entry = cachedAnalysis(source, name);
  if (entry.error !== null) return { error: entry.error, free: [], result: null };
  // Functions with the same text and name share one frozen result.
  const resultName = name || entry.name;
  let result = entry.result;
  if (result === undefined || result.name !== resultName) {
    result = Object.freeze({
      source: entry.source, name: resultName, kind: entry.kind,
      inert: entry.inert === true,
    });
    if (entry.result === undefined) entry.result = result;
  }
  return { error: null, free: entry.free, result };
});

// validateSource(source, { allowed }) -> { source, name, kind }: the same
// checks on the text of a function (as Function.prototype.toString gives it).
function validateSource(source, options) {
  if (typeof source !== 'string') {
    fail({ message: 'validateSource expects the source text of a function, ' +
      'got ' + describe(source) });
  }
  const entry = cachedAnalysis(source, '');
  if (entry.error !== null) return fail(entry.error);
  let result = entry.result;
  if (result === undefined || result.name !== entry.name) {
    result = Object.freeze({
      source: entry.source, name: entry.name, kind: entry.kind,
      inert: entry.inert === true,
    });
    if (entry.result === undefined) entry.result = result;
  }
  return finish(entry, result, options);
}

// Test hook: number of cached source texts (bounded by MAX_CACHE_ENTRIES).
function cacheSize() {
  return sourceCache.size;
}

// Sets how to open the memo cachedAnalysis asks before parsing: a function
// returning { get(source) -> analysis | undefined, add(source, analysis) }
// or null, called once, at the first analysis; or null for no memo.
function setMemo(open) {
  memo = null;
  openMemo = open;
}

module.exports = {
  setMemo,
  validateFunction,
  validateSource,
  // The ECMAScript globals a function may use (a frozen Set).
  get ECMASCRIPT_GLOBALS() { return analyzerModule().ECMASCRIPT_GLOBALS; },
  MAX_CACHE_ENTRIES,
  cacheSize,
};
