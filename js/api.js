'use strict';
// DESIGN: the public JS API (DESIGN.md, "JS API contract") over the native
// binding (js/BINDING.md).  Shared by both hosts, the Node addon and the CLI
// shell, so it uses nothing but ECMAScript: no process, no timers, no
// queueMicrotask (microtasks are `Promise.resolve().then`), AbortSignal is
// duck-typed (`aborted`, `reason`, `addEventListener`).
//
// Every function here runs on the host thread.  One `createThreader(binding)`
// call makes one independent runtime; `threader` and `thread` close over it.
//
// The functions that a process's first task runs through are written as
// parenthesized function expressions, `const f = (function f() {...});`:
// V8 compiles such a function with the code around it (here: when the
// package loads) instead of at its first call, and parses it once instead
// of twice (a pre-parse at load, a full parse at the call).  That is V8's
// documented heuristic for functions likely to be called soon.  On this
// 2-core VM (medians of 25 fresh processes, interleaved), from require's
// return to the first result: 4.2-4.3 -> 2.8-2.9 ms with Node 20, 5.4 ->
// 3.5 ms with Node 24; require itself takes 1.2-1.9 ms more, so require to
// first result is unchanged (12.7-13.5 ms with Node 20, 14.1 with 24).
// Functions for later or rarer paths stay declarations: compiled when used.
//
// Invariants
// - A task settles exactly once: every path to settlement goes through
//   settle(), which does nothing for a task that is no longer 'running' or
//   'pending'.  Late native events for a settled task are dropped.
// - A task id stays in `inflight` from binding.submit() until the binding
//   delivers that id's final event, even when JS settled the task first
//   (cancel), so an id is never reused while the binding may still know it.
// - Tasks started in one tick reach binding.submit() in one flat batch.
// - No promise made here rejects without a handler: runners settle through
//   callbacks, and the only promises exposed are those handed to the caller.
//
// Decisions the contract leaves open (also written in index.d.ts):
// - A task runs at most once.  Handing it to several runners (or twice to
//   one) attaches them all to that one run; a settled task hands its
//   settlement to any later runner at once.  Cancelling a task, by a runner
//   or by hand, settles it for every runner that holds it.
// - `status` is 'running' from the moment a runner takes the task (queued in
//   the pool or executing: the binding does not report the start).
// - `task.cancel()` on an unsettled task settles it as 'cancelled' at once
//   (synchronously), and asks the binding to stop it; whatever the worker
//   produces afterwards is dropped.
// - `retries` re-runs a task whose worker was lost (ERR_THREADER_WORKER).  A
//   task that threw, timed out, was cancelled or hit a clone error is never
//   re-run: a timeout is a deadline, and a deterministic function that ran
//   past it once would do so again.
// - `thread.fire` failures go to config's `onError(error, task)`; without
//   one, they are written to console.error (or console.log) where a console
//   exists, never as an unhandled rejection.  Cancellations are not reported.
// - `thread.stream`: a failed task makes the iterator throw that error after
//   the results that completed before it; the other tasks are cancelled.
// - `threader.shutdown()` cancels every started, unsettled task, stops the
//   pool and resolves once the binding has reported all of them.  Threader
//   keeps working afterwards: the next run restarts the pool lazily.  Tasks
//   made but never run are not touched by shutdown.
// - A non-function `fn` is a TypeError whose code is ERR_THREADER_VALIDATION
//   (a bad argument, and a validation failure).
// - Moving data (docs/DATA.md is the contract; see "Moving data" below):
//   transferMode says which ArrayBuffers of data are moved (detached in the
//   caller, as with postMessage) instead of copied.  'shared' (the default)
//   moves only the buffers in `opts.transfer`; 'auto' moves those plus the
//   buffers of AUTO_TRANSFER_MIN bytes or more near the top of data (data
//   itself, its elements or property values, and theirs when they are
//   plain objects or arrays); 'transfer' moves those plus every buffer at
//   the top level of data (data itself, its direct elements or property
//   values, and typed arrays' or DataViews' buffers there); 'clone' moves
//   none (opts.transfer is ignored).  Buffers that a mode found but cannot
//   move (not detachable, e.g. WebAssembly memory) are copied.
//   SharedArrayBuffers and threader.share() values are shared in every
//   mode.  The default is not 'auto': whether a caller's buffer survives the
//   call would depend on its size, which no reader of `threader(fn, arr)`
//   can see; opting in (config or per task) is one word.

const errors = require('./errors');
const validate = require('./validate');

const {
  ThreaderError,
  ThreaderValidationError,
  ThreaderTimeoutError,
  ThreaderCloneError,
  ThreaderWorkerError,
  AbortError,
} = errors;

// Event kinds of BINDING.md.
const EV_COMPLETED = 0;
const EV_THREW = 1;
const EV_TIMEOUT = 2;
const EV_CANCELLED = 3;
const EV_WORKER_LOST = 4;
const EV_CLONE = 5;
const EV_PROGRESS = 6;

const PRIORITIES = { __proto__: null, high: 0, normal: 1, low: 2 };
const TRANSFER_MODES = ['auto', 'clone', 'transfer', 'shared'];
const MAX_TIMEOUT = 0x7fffffff;  // as setTimeout: about 24.8 days
const MAX_TASK_ID = 0x7fffffff;
const SUBMIT_CHUNK = 2048;   // tasks per binding.submit() call, at most
const SUBMIT_NUMBERS = 7;    // numbers per task in binding.submit()
const SUBMIT_TRANSFER = 1;   // flags: the task has a transfer list
const SUBMIT_NUMBER_DATA = 2;  // flags: the data is the 7th number

// Task ids in flight -> rec.  Ids are handed out in sequence, so the ids in
// flight are nearly a sliding window: a power-of-two array indexed by
// `id & mask` holds them without hashing, and a delete never rehashes.  (A
// Map with 20,000 entries coming and going rehashed every round: ~140 bytes
// and ~3% of the CPU per tiny task, tools/bench throughput.)  An id whose
// slot is taken by an older one still in flight (a long task while millions
// of short ones pass) goes to a small Map; the array doubles only when it is
// half full, so one stuck task cannot make it grow without bound.
class IdTable {
  constructor() {
    this.ids = new Int32Array(1024);  // 0: empty (ids start at 1)
    this.recs = new Array(1024).fill(undefined);
    this.mask = 1023;
    this.overflow = new Map();
    this.size = 0;
  }

  get(id) {
    const i = id & this.mask;
    if (this.ids[i] === id) return this.recs[i];
    return this.overflow.size === 0 ? undefined : this.overflow.get(id);
  }

  has(id) {
    return this.ids[id & this.mask] === id || this.overflow.has(id);
  }

  set(id, rec) {
    if (this.size >= (this.mask + 1) >>> 1) this.grow();
    const i = id & this.mask;
    if (this.ids[i] === 0) {
      this.ids[i] = id;
      this.recs[i] = rec;
    } else {
      this.overflow.set(id, rec);
    }
    this.size++;
  }

  delete(id) {
    const i = id & this.mask;
    if (this.ids[i] === id) {
      this.ids[i] = 0;
      this.recs[i] = undefined;
      this.size--;
      return true;
    }
    if (this.overflow.size !== 0 && this.overflow.delete(id)) {
      this.size--;
      return true;
    }
    return false;
  }

  // fn(rec, id) for every entry.
  forEach(fn) {
    for (let i = 0; i <= this.mask; i++) {
      if (this.ids[i] !== 0) fn(this.recs[i], this.ids[i]);
    }
    for (const [id, rec] of Array.from(this.overflow)) fn(rec, id);
  }

  keys() {
    const out = [];
    this.forEach((rec, id) => out.push(id));
    return out;
  }

  grow() {
    const oldIds = this.ids;
    const oldRecs = this.recs;
    const oldOverflow = this.overflow;
    const size = (this.mask + 1) * 2;
    this.ids = new Int32Array(size);
    this.recs = new Array(size).fill(undefined);
    this.mask = size - 1;
    this.overflow = new Map();
    this.size = 0;
    for (let i = 0; i < oldIds.length; i++) {
      if (oldIds[i] !== 0) this.set(oldIds[i], oldRecs[i]);
    }
    for (const [id, rec] of oldOverflow) this.set(id, rec);
  }

}
const MAX_WORKERS = 1024;  // as the binding allows
const FN_BINDING = '__threader_fn__';  // name of fn inside a `with` wrapper
// The worker compiles task code as a function of this one parameter, which
// resolves a SharedValue's id to its value (v8c/worker.cc, SharedNative).
const SHARED_BINDING = '__threader_shared__';
const kConstruct = Symbol('kConstruct');  // only threader() makes Tasks

// ---------------------------------------------------------------------------
// Argument errors, in the style of Node's ERR_INVALID_ARG_TYPE & co.

function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'function':
      return value.name ? `function ${value.name}` : 'an anonymous function';
    case 'object': {
      if (Array.isArray(value)) return 'an array';
      const ctor = value.constructor;
      if (ctor && typeof ctor === 'function' && ctor.name) {
        return `an instance of ${ctor.name}`;
      }
      return 'an object';
    }
    case 'string': {
      const s = value.length > 28 ? `${value.slice(0, 25)}...` : value;
      return `type string (${JSON.stringify(s)})`;
    }
    case 'symbol':
      return `type symbol (${String(value)})`;
    case 'bigint':
      return `type bigint (${value}n)`;
    case 'number':
      return `type number (${Object.is(value, -0) ? '-0' : value})`;
    default:
      return `type ${typeof value} (${String(value)})`;
  }
}

function withCode(err, code) {
  err.code = code;
  return err;
}

function invalidType(name, expected, value) {
  return withCode(new TypeError(
    `The "${name}" argument must be ${expected}. Received ${describe(value)}`),
  'ERR_INVALID_ARG_TYPE');
}

function invalidValue(name, expected, value) {
  return withCode(new RangeError(
    `The "${name}" argument must be ${expected}. Received ${describe(value)}`),
  'ERR_INVALID_ARG_VALUE');
}

function outOfRange(name, range, value) {
  const received = typeof value === 'number' ?
    (Object.is(value, -0) ? '-0' : String(value)) : describe(value);
  return withCode(new RangeError(
    `The value of "${name}" is out of range. It must be ${range}. ` +
    `Received ${received}`), 'ERR_OUT_OF_RANGE');
}

function isPlainOptions(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function tag(value) {
  return Object.prototype.toString.call(value);
}

function isArrayBuffer(value) {
  return value !== null && typeof value === 'object' &&
    tag(value) === '[object ArrayBuffer]';
}

function isAbortSignal(value) {
  return value !== null && typeof value === 'object' &&
    typeof value.aborted === 'boolean' &&
    typeof value.addEventListener === 'function';
}

// ---------------------------------------------------------------------------
// Validation of option values.  Each returns the normalized value or throws.

function checkTimeout(name, value) {
  if (typeof value !== 'number') {
    throw invalidType(name, 'a number of milliseconds', value);
  }
  if (!(value >= 0) || value > MAX_TIMEOUT) {
    throw outOfRange(name, `>= 0 and <= ${MAX_TIMEOUT} (0 means none)`, value);
  }
  return Math.ceil(value);
}

function checkPriority(name, value) {
  if (typeof value !== 'string') {
    throw invalidType(name, "one of 'high', 'normal', 'low'", value);
  }
  const p = PRIORITIES[value];
  if (p === undefined) {
    throw invalidValue(name, "one of 'high', 'normal', 'low'", value);
  }
  return p;
}

function checkRetries(name, value) {
  if (typeof value !== 'number') {
    throw invalidType(name, 'a non-negative integer', value);
  }
  if (!Number.isInteger(value) || value < 0 || value > 1000) {
    throw outOfRange(name, 'an integer >= 0 and <= 1000', value);
  }
  return value;
}

function checkTransferMode(name, value) {
  if (typeof value !== 'string') {
    throw invalidType(name, `one of ${TRANSFER_MODES.map((m) => `'${m}'`).join(', ')}`,
                      value);
  }
  if (!TRANSFER_MODES.includes(value)) {
    throw invalidValue(name,
                       `one of ${TRANSFER_MODES.map((m) => `'${m}'`).join(', ')}`,
                       value);
  }
  return value;
}

function checkFunctionOrNull(name, value) {
  if (value !== null && typeof value !== 'function') {
    throw invalidType(name, 'a function or null', value);
  }
  return value;
}

function checkTransferList(name, value) {
  if (!Array.isArray(value)) {
    throw invalidType(name, 'an array of ArrayBuffers', value);
  }
  const seen = new Set();
  for (let i = 0; i < value.length; i++) {
    const buf = value[i];
    if (!isArrayBuffer(buf)) {
      throw invalidType(`${name}[${i}]`, 'an ArrayBuffer (not a view, not a ' +
                        'SharedArrayBuffer)', buf);
    }
    if (seen.has(buf)) {
      throw invalidValue(`${name}[${i}]`, 'listed once', buf);
    }
    seen.add(buf);
  }
  return value.slice();
}

// ---------------------------------------------------------------------------
// Structured-clone path finding.  Walks a value the way V8's ValueSerializer
// does (own enumerable string keys, Map and Set entries) and names the first
// value that cannot be cloned, e.g. "data.items[3].cb".  The path syntax is
// the one v8c/serializer.cc uses for what the binding reports:
//   .name  ["odd key"]  [3]  .get("key")  .keys()[0]  .values()[0]

const UNCLONEABLE_TAGS = {
  __proto__: null,
  '[object Promise]': 'a Promise',
  '[object WeakMap]': 'a WeakMap',
  '[object WeakSet]': 'a WeakSet',
  '[object WeakRef]': 'a WeakRef',
  '[object FinalizationRegistry]': 'a FinalizationRegistry',
  '[object Generator]': 'a generator',
  '[object AsyncGenerator]': 'a generator',
  '[object Module]': 'a module namespace',
};
// Leaves that clone as a whole, without looking inside.
const LEAF_TAGS = new Set([
  '[object Date]', '[object RegExp]', '[object ArrayBuffer]',
  '[object SharedArrayBuffer]', '[object DataView]', '[object Boolean]',
  '[object Number]', '[object String]', '[object BigInt]', '[object Error]',
  '[object Int8Array]', '[object Uint8Array]', '[object Uint8ClampedArray]',
  '[object Int16Array]', '[object Uint16Array]', '[object Int32Array]',
  '[object Uint32Array]', '[object Float32Array]', '[object Float64Array]',
  '[object BigInt64Array]', '[object BigUint64Array]', '[object Float16Array]',
]);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

function childPath(path, key) {
  if (ARRAY_INDEX.test(key)) return `${path}[${key}]`;
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function mapKeyLabel(key, index) {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'number' || typeof key === 'boolean' || key === null ||
      key === undefined) {
    return String(key);
  }
  return `<key ${index}>`;
}

function uncloneableKind(value) {
  const type = typeof value;
  if (type === 'function') return 'a function';
  if (type === 'symbol') return 'a symbol';
  if (type === 'object' && value !== null) {
    const t = tag(value);
    if (t === '[object Symbol]') return 'a Symbol object';
    return UNCLONEABLE_TAGS[t];
  }
  return undefined;
}

function findUncloneable(value, root = 'value') {
  const seen = new Set();
  let found;
  function walk(v, path, depth) {
    const kind = uncloneableKind(v);
    if (kind !== undefined) {
      found = { path, reason: kind };
      return true;
    }
    if (v === null || typeof v !== 'object' || seen.has(v) || depth > 200) {
      return false;
    }
    seen.add(v);
    const t = tag(v);
    if (LEAF_TAGS.has(t)) return false;
    if (t === '[object Map]') {
      let i = 0;
      for (const [k, val] of v) {
        if (walk(k, `${path}.keys()[${i}]`, depth + 1)) return true;
        if (walk(val, `${path}.get(${mapKeyLabel(k, i)})`, depth + 1)) return true;
        i++;
      }
      return false;
    }
    if (t === '[object Set]') {
      let i = 0;
      for (const val of v) {
        if (walk(val, `${path}.values()[${i}]`, depth + 1)) return true;
        i++;
      }
      return false;
    }
    for (const key of Object.keys(v)) {
      let child;
      try {
        child = v[key];
      } catch {
        return false;  // a throwing getter: give up quietly, as V8c does
      }
      if (walk(child, childPath(path, key), depth + 1)) return true;
    }
    return false;
  }
  walk(value, root, 0);
  return found;
}

// A ThreaderCloneError from the binding's message, which names the path
// when it could ("data.items[3].cb: a function could not be cloned"); the
// path is otherwise found by walking `value` (when the host has it).
function cloneError(message, root, value, haveValue) {
  const suffix = ' could not be cloned';
  if (message.startsWith(root) && message.endsWith(suffix)) {
    const cut = message.lastIndexOf(': ');
    if (cut > 0) return new ThreaderCloneError(message, message.slice(0, cut));
  }
  let where;
  if (haveValue) {
    try {
      where = findUncloneable(value, root);
    } catch {
      where = undefined;  // e.g. a Proxy that throws: no path to name
    }
  }
  if (where === undefined) return new ThreaderCloneError(message);
  return new ThreaderCloneError(
    `${where.path}: ${where.reason} could not be cloned (${message})`, where.path);
}

// Buffers moved by transferMode 'transfer': at the top level of data (see
// bufferOf for which views count).
function topLevelBuffers(data, into) {
  function add(v) {
    if (v === null || typeof v !== 'object') return;
    const b = bufferOf(v);
    if (b !== undefined) into.add(b);
  }
  if (data === null || typeof data !== 'object') return into;
  add(data);
  if (isArrayBuffer(data) || ArrayBuffer.isView(data)) return into;
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) add(data[i]);
  } else if (tag(data) === '[object Object]') {
    for (const key of Object.keys(data)) add(data[key]);
  }
  return into;
}

// ---------------------------------------------------------------------------
// Moving data: transfer lists by transferMode, and threader.share() values.
// (Kept apart from the task hot path: flush() calls transferListFor(rec)
// once per task; for primitive data it returns at once, for objects it
// reads a few properties, see scanBuffers.)

// transferMode 'auto' moves ArrayBuffers of at least this many bytes and
// copies smaller ones.  Measured with `node bench/transfer.js --threshold`
// (docs/DATA.md): from 8 KiB up a move cost less than a copy in every run
// (at 4 KiB in most; at 2 KiB they were even).
const AUTO_TRANSFER_MIN = 8 * 1024;
// How far the scans below look: data, its first SCAN_WIDTH elements or
// property values, and theirs when they are plain objects or arrays.
const SCAN_WIDTH = 64;
// Cloned ArrayBuffers of at least this many bytes are copied once, out of
// line, instead of twice through the wire bytes (v8c/serializer.h,
// kOutOfLineMin; js/worker_runtime.js finds them in results).
const OUT_OF_LINE_MIN = 256 * 1024;

function isPlainContainer(v) {
  if (Array.isArray(v)) return true;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// The non-shared ArrayBuffer that a transferMode may move for `v`: `v`
// itself, or a view's buffer when the view covers all of it.  A view over
// part of a buffer (a subarray, or a small Node Buffer, which lives in an
// 8 KiB pool shared with other Buffers) is copied: moving its buffer would
// take memory away that the caller did not pass.
function bufferOf(v) {
  if (isArrayBuffer(v)) return v;
  if (ArrayBuffer.isView(v)) {
    const b = v.buffer;
    return isArrayBuffer(b) && v.byteOffset === 0 && v.byteLength === b.byteLength ?
      b : undefined;
  }
  return undefined;
}

// One bounded walk over the top of data (see SCAN_WIDTH) for the buffers
// that transferMode 'auto' moves (`move`, AUTO_TRANSFER_MIN bytes or more,
// whole views only; null to skip) and those large enough to clone out of
// line (`clone`, OUT_OF_LINE_MIN or more, any view).  Cheap for small data:
// a few property reads, in JIT-compiled code.
function scanBuffers(data, move, clone) {
  function visit(v, depth) {
    if (v === null || typeof v !== 'object') return;
    if (ArrayBuffer.isView(v)) {
      const b = v.buffer;
      if (!isArrayBuffer(b)) return;
      const n = b.byteLength;
      if (move !== null && n >= AUTO_TRANSFER_MIN && v.byteOffset === 0 &&
          v.byteLength === n) {
        move.add(b);
      } else if (n >= OUT_OF_LINE_MIN) {
        clone.add(b);
      }
      return;
    }
    if (isArrayBuffer(v)) {
      const n = v.byteLength;
      if (move !== null && n >= AUTO_TRANSFER_MIN) move.add(v);
      else if (n >= OUT_OF_LINE_MIN) clone.add(v);
      return;
    }
    if (depth >= 2 || !isPlainContainer(v)) return;
    if (Array.isArray(v)) {
      const n = Math.min(v.length, SCAN_WIDTH);
      for (let i = 0; i < n; i++) visit(v[i], depth + 1);
    } else {
      let n = 0;
      for (const key in v) {
        if (n++ >= SCAN_WIDTH) break;
        if (Object.prototype.hasOwnProperty.call(v, key)) visit(v[key], depth + 1);
      }
    }
  }
  try {
    visit(data, 0);
  } catch {
    // A getter threw: stop looking; the serializer reports it as a clone
    // error naming the path.
  }
}

// The transfer-list slot of binding.submit (js/BINDING.md; sections in
// v8c/serializer.h): the caller's buffers; then, after a null, the buffers
// the mode found, which the binding moves only where it can; then, after a
// second null, large buffers to clone out of line; and the SharedValue
// handles the task's `with` uses, which pin them while it is in flight.
// Undefined when there is nothing to list (the common case: no work).
const buildTransferList = (function buildTransferList(mode, data, explicit, shared, nativeLists) {
  let found;
  let large;
  if (data !== null && typeof data === 'object') {
    if (mode === 'transfer') {
      found = new Set();
      try {
        topLevelBuffers(data, found);
      } catch {
        // A getter threw: the serializer reports it.
      }
    }
    if (nativeLists) {
      const move = mode === 'auto' ? new Set() : null;
      large = new Set();
      scanBuffers(data, move, large);
      if (move !== null) found = move;
    } else if (mode === 'auto') {
      found = new Set();
      scanBuffers(data, found, new Set());
    }
  }
  const listed = mode === 'clone' ? undefined : explicit;
  const haveListed = listed !== undefined && listed.length > 0;
  const haveFound = found !== undefined && found.size > 0;
  const haveLarge = large !== undefined && large.size > 0;
  const haveShared = nativeLists && shared !== undefined && shared.length > 0;
  if (!haveListed && !haveFound && !haveLarge && !haveShared) return undefined;
  const list = haveListed ? listed.slice() : [];
  if (!nativeLists) {
    // The pure-JS mock: structuredClone's plain list of buffers.
    if (haveFound) for (const b of found) if (!list.includes(b)) list.push(b);
    return list.length > 0 ? list : undefined;
  }
  if (haveFound || haveLarge) {
    list.push(null);
    if (haveFound) for (const b of found) list.push(b);
  }
  if (haveLarge) {
    list.push(null);
    for (const b of large) list.push(b);
  }
  if (haveShared) for (const h of shared) list.push(h);
  return list;
});

// threader.share() copies ArrayBuffers (and views' buffers) into
// SharedArrayBuffers once, so that every worker reads the same memory instead
// of a copy each.  Returns `value` itself when it holds none, else a copy of
// its containers (arrays, plain and other ordinary objects, Maps, Sets) with
// the buffers replaced; other leaves (Dates, RegExps, Errors and what they
// hold) are kept as they are.
function toShareable(value) {
  if (!hasUnsharedBuffer(value)) return value;
  const memo = new Map();  // original -> converted (buffers and containers)
  function sabFor(buffer) {
    let sab = memo.get(buffer);
    if (sab === undefined) {
      sab = new SharedArrayBuffer(buffer.byteLength);
      new Uint8Array(sab).set(new Uint8Array(buffer));
      memo.set(buffer, sab);
    }
    return sab;
  }
  function convert(v) {
    if (v === null || typeof v !== 'object') return v;
    if (memo.has(v)) return memo.get(v);
    if (isArrayBuffer(v)) return sabFor(v);
    if (ArrayBuffer.isView(v)) {
      if (!isArrayBuffer(v.buffer)) return v;
      const sab = sabFor(v.buffer);
      const Ctor = v instanceof DataView ? DataView : TYPED_CTORS[tag(v).slice(8, -1)];
      if (Ctor === undefined) return v;
      const view = Ctor === DataView ? new DataView(sab, v.byteOffset, v.byteLength) :
        new Ctor(sab, v.byteOffset, v.length);
      memo.set(v, view);
      return view;
    }
    const t = tag(v);
    if (t === '[object Map]') {
      const out = new Map();
      memo.set(v, out);
      for (const [k, x] of v) out.set(convert(k), convert(x));
      return out;
    }
    if (t === '[object Set]') {
      const out = new Set();
      memo.set(v, out);
      for (const x of v) out.add(convert(x));
      return out;
    }
    if (LEAF_TAGS.has(t) || uncloneableKind(v) !== undefined) return v;
    if (isSharedHandle(v)) return v;
    const out = Array.isArray(v) ? new Array(v.length) : {};
    memo.set(v, out);
    for (const key of Object.keys(v)) out[key] = convert(v[key]);
    return out;
  }
  return convert(value);
}

const TYPED_CTORS = {
  __proto__: null,
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
  Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array,
  BigUint64Array,
};
if (typeof globalThis.Float16Array === 'function') {
  TYPED_CTORS.Float16Array = globalThis.Float16Array;
}

// Whether structured clone would meet a non-shared ArrayBuffer in `value`
// (iterative: deep values do not overflow the stack).
function hasUnsharedBuffer(value) {
  const seen = new Set();
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (isArrayBuffer(v) || (ArrayBuffer.isView(v) && isArrayBuffer(v.buffer))) {
      return true;
    }
    const t = tag(v);
    if (t === '[object Map]') {
      for (const [k, x] of v) stack.push(k, x);
    } else if (t === '[object Set]') {
      for (const x of v) stack.push(x);
    } else if (!LEAF_TAGS.has(t) && uncloneableKind(v) === undefined &&
               !isSharedHandle(v)) {
      for (const key of Object.keys(v)) stack.push(v[key]);
    }
  }
  return false;
}

// SharedValue handles of every runtime (createThreader) in this realm.
const sharedStates = new WeakMap();  // handle -> state (see share())

function isSharedHandle(v) {
  return v !== null && typeof v === 'object' && sharedStates.has(v);
}

// ---------------------------------------------------------------------------
// `with`: constants become source text, helpers are validated functions.

const RESERVED = new Set((
  'break case catch class const continue debugger default delete do else ' +
  'enum export extends false finally for function if import in instanceof ' +
  'new null return super switch this throw true try typeof var void while ' +
  'with yield let static implements interface package private protected ' +
  'public await arguments eval undefined NaN Infinity globalThis ' +
  FN_BINDING + ' ' + SHARED_BINDING).split(' '));

const TYPED_ARRAYS = [
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
  'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array',
  'BigInt64Array', 'BigUint64Array',
];

function numberSource(n) {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  if (Object.is(n, -0)) return '-0';
  return String(n);
}

// Source text of a constant: primitives, arrays, plain objects and typed
// arrays; anything else throws ThreaderCloneError naming the path.
function constantSource(value, path, seen = new Set()) {
  switch (typeof value) {
    case 'undefined': return 'undefined';
    case 'boolean': return String(value);
    case 'number': return numberSource(value);
    case 'bigint': return `${value}n`;
    case 'string': return JSON.stringify(value);
    case 'function':
    case 'symbol':
      throw new ThreaderCloneError(
        `${path} cannot be injected: ${uncloneableKind(value)} is not a ` +
        'constant (helpers must be top-level `with` entries)', path);
    default: break;
  }
  if (value === null) return 'null';
  if (seen.has(value)) {
    throw new ThreaderCloneError(`${path} cannot be injected: it is circular`,
                                 path);
  }
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      const parts = [];
      for (let i = 0; i < value.length; i++) {
        parts.push(constantSource(value[i], `${path}[${i}]`, seen));
      }
      return `[${parts.join(',')}]`;
    }
    const t = tag(value).slice(8, -1);
    if (TYPED_ARRAYS.includes(t) && value instanceof globalThis[t]) {
      const items = Array.prototype.map.call(
        value, t.startsWith('Big') ? (x) => `${x}n` : numberSource);
      return `new ${t}([${items.join(',')}])`;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      const parts = Object.keys(value).map((k) =>
        `${JSON.stringify(k)}:${constantSource(value[k], childPath(path, k), seen)}`);
      return `{${parts.join(',')}}`;
    }
    throw new ThreaderCloneError(
      `${path} cannot be injected: ${describe(value)} is not a plain ` +
      'constant (use primitives, arrays, plain objects or typed arrays)', path);
  } finally {
    seen.delete(value);
  }
}

function checkWithNames(name, value) {
  if (!isPlainOptions(value)) {
    throw invalidType(name, 'an object mapping names to helpers or constants',
                      value);
  }
  for (const key of Object.keys(value)) {
    if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) || RESERVED.has(key)) {
      throw invalidValue(`${name}.${key}`,
                         'named by a plain identifier that is not a reserved ' +
                         'word', key);
    }
  }
  return value;
}

// ---------------------------------------------------------------------------
// Function validation.  js/validate.js does the real scope analysis; until it
// exists, a minimal check keeps native and bound functions out.

const NATIVE_CODE = /\{\s*\[native code\]\s*\}\s*$/;

function minimalValidate(fn) {
  const source = Function.prototype.toString.call(fn);
  if (NATIVE_CODE.test(source)) {
    throw new ThreaderValidationError(
      `${describe(fn)} is a native or bound function; only plain JavaScript ` +
      'functions can run in a worker');
  }
  if (/^class\b/.test(source)) {
    throw new ThreaderValidationError(
      `${describe(fn)} is a class; pass a function`);
  }
  return { source, name: fn.name || '', kind: 'function' };
}

function notAFunction(name, value) {
  const err = new TypeError(
    `The "${name}" argument must be a function. Received ${describe(value)}`);
  err.code = 'ERR_THREADER_VALIDATION';
  return err;
}

// ---------------------------------------------------------------------------
// Rebuilding a worker's exception on the host.

const STANDARD_ERRORS = {
  __proto__: null,
  Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError,
  URIError, AggregateError,
};

function looksLikeError(value) {
  return value !== null && typeof value === 'object' &&
    typeof value.name === 'string' && typeof value.message === 'string';
}

// `value` is the worker runtime's description of what the task threw:
// {name, message, stack, ...own enumerable properties}, with `cause` and
// AggregateError's `errors` described the same way (js/worker_runtime.js).
function rebuildError(value, depth = 0) {
  if (value === null || typeof value !== 'object') {
    const err = new Error(`The task threw a non-error value: ${String(value)}`);
    err.value = value;
    return err;
  }
  const name = typeof value.name === 'string' ? value.name : 'Error';
  const message = typeof value.message === 'string' ? value.message :
    String(value.message === undefined ? '' : value.message);
  const Ctor = STANDARD_ERRORS[name] || Error;
  const rebuild = (v) => (depth < 8 && looksLikeError(v) ? rebuildError(v, depth + 1) : v);
  const err = Ctor === AggregateError ?
    new AggregateError(Array.isArray(value.errors) ? value.errors.map(rebuild) : [],
                       message) :
    new Ctor(message);
  if (Ctor === Error && name !== 'Error') {
    Object.defineProperty(err, 'name', {
      value: name, writable: true, configurable: true, enumerable: false,
    });
  }
  // The worker's stack, whose frames point into the task's function.
  const stack = typeof value.stack === 'string' && value.stack !== '' ?
    value.stack : `${name}: ${message}`;
  Object.defineProperty(err, 'stack', {
    value: stack, writable: true, configurable: true, enumerable: false,
  });
  for (const key of Object.keys(value)) {
    if (key === 'name' || key === 'message' || key === 'stack') continue;
    if (key === 'errors' && Ctor === AggregateError) continue;
    try {
      if (key === 'cause') {
        Object.defineProperty(err, 'cause', {
          value: rebuild(value.cause), writable: true, configurable: true,
          enumerable: false,
        });
      } else {
        err[key] = value[key];
      }
    } catch {
      // A read-only property on the rebuilt error: keep the worker's message.
    }
  }
  return err;
}

function abortError(message, reason) {
  return reason === undefined ?
    new AbortError(message) : new AbortError(message, { cause: reason });
}

// ---------------------------------------------------------------------------
// The runtime.

function createThreader(binding, host = {}) {
  if (binding === null || typeof binding !== 'object' &&
      typeof binding !== 'function') {
    throw invalidType('binding', 'the native binding object', binding);
  }
  for (const member of ['registerFunction', 'submit', 'cancel', 'setHandler',
    'configure', 'stats', 'shutdown', 'pending']) {
    if (typeof binding[member] !== 'function') {
      throw invalidType(`binding.${member}`, 'a function', binding[member]);
    }
  }

  // The default worker count (one per CPU), for config().maxWorkers and for
  // `maxWorkers: null`: from the host (Node knows the CPU count), else the
  // binding, whose configure({}) changes nothing and returns the current one.
  let defaultWorkers = null;
  if (typeof host.defaultMaxWorkers === 'number') {
    defaultWorkers = host.defaultMaxWorkers;
  } else if (typeof binding.defaultMaxWorkers === 'number') {
    defaultWorkers = binding.defaultMaxWorkers;
  } else {
    const current = binding.configure({});
    if (typeof current === 'number' && current >= 1) defaultWorkers = current;
  }
  if (defaultWorkers !== null) {
    defaultWorkers = Math.max(1, Math.min(MAX_WORKERS, Math.floor(defaultWorkers)));
  }

  const config = {
    maxWorkers: null,       // null: the default (one per CPU)
    workerTimeout: 0,       // ms, 0: none
    enableValidation: true,
    transferMode: 'shared',  // see "Moving data" at the top
    maxHeapMB: null,        // null: V8's default
    onError: null,
    with: null,
    trace: null,
  };
  let configWith = null;  // {names, parts} precomputed from config.with

  const inflight = new IdTable();  // native task id -> rec
  let queue = [];              // recs waiting for the next flush
  let flushScheduled = false;
  // source -> {id, used}: the binding's id for each function source.
  // Bounded: a program that makes endless distinct sources (generated code)
  // must not keep them all.  Past fnIdLimit entries, those not used since
  // the last sweep are released (binding.releaseFunction), second-chance
  // style, so the hot path only sets a flag.
  const fnIds = new Map();
  const FN_IDS_MIN_LIMIT = 4096;
  let fnIdLimit = FN_IDS_MIN_LIMIT;
  let flushCount = 0;  // flushes so far: the batch each fnIds entry was last in
  const canReleaseFunctions = typeof binding.releaseFunction === 'function';
  // Started, unsettled recs are in `queue` (waiting for the next flush),
  // in `flushing` (the batch flush() is building) or in `inflight` (with
  // the binding): no separate set, which cost a Set add and delete per task.
  let flushing = null;
  let nextId = 1;
  let idsWrapped = false;  // once true, allocId checks for ids in use
  let handlerInstalled = false;
  let shutdownState = null;    // {promise, resolve, ids} while draining
  let shuttingDown = false;    // inside shutdown(): no binding.cancel calls
  const counters = {
    created: 0, started: 0, submitted: 0, completed: 0, failed: 0,
    cancelled: 0, retried: 0,
  };
  const compileCache = new WeakMap();  // fn -> {v: compiled, raw: compiled}

  // -- tracing --------------------------------------------------------------

  const trace = (function trace(event, rec, extra) {
    const t = config.trace;
    if (t === null || t === false || typeof t === 'string') return;
    const record = { event, task: rec ? rec.fn.name || '(anonymous)' : undefined,
                     ...extra };
    try {
      if (typeof t === 'function') {
        t(record);
      } else if (typeof console === 'object' && console !== null) {
        console.log(`threader: ${JSON.stringify(record)}`);
      }
    } catch {
      // A trace hook must not break the runtime.
    }
  });

  // -- errors nobody awaits (fire, hooks) -----------------------------------

  function reportError(err, task) {
    const onError = config.onError;
    if (typeof onError === 'function') {
      try {
        onError(err, task);
        return;
      } catch (hookErr) {
        err = hookErr;  // Report the hook's own failure below.
      }
    }
    if (typeof console === 'object' && console !== null) {
      const print = typeof console.error === 'function' ? console.error :
        typeof console.log === 'function' ? console.log : null;
      if (print !== null) {
        try {
          print.call(console, 'threader: unhandled task failure:',
                     err && err.stack ? err.stack : err);
        } catch {
          // Nothing left to tell.
        }
      }
    }
  }

  // -- compiling a task's function ------------------------------------------

  const validateOne = (function validateOne(fn, allowed, enabled = config.enableValidation) {
    if (enabled && typeof validate.validateFunction === 'function') {
      const info = validate.validateFunction(fn, { allowed });
      return {
        source: info.source, name: info.name || fn.name || '',
        inert: info.inert === true,
      };
    }
    const info = minimalValidate(fn);
    return { source: info.source, name: info.name, inert: false };
  });

  function withParts(object, names, allowed, label, enabled) {
    const parts = [];
    for (const name of names) {
      const v = object[name];
      if (isSharedHandle(v)) {
        parts.push(sharedSource(v, `${label}.${name}`));
      } else if (typeof v === 'function') {
        parts.push(validateOne(v, allowed, enabled).source);
      } else {
        parts.push(constantSource(v, `${label}.${name}`));
      }
    }
    return parts;
  }

  const compile = (function compile(fn, taskWith) {
    if (taskWith === undefined && configWith === null) {
      let entry = compileCache.get(fn);
      if (entry === undefined) {
        entry = { v: null, raw: null };
        compileCache.set(fn, entry);
      }
      const key = config.enableValidation ? 'v' : 'raw';
      if (entry[key] === null) entry[key] = validateOne(fn, []);
      return entry[key];
    }
    // Merge config-level and task-level helpers; the task's win.
    const names = [];
    const parts = [];
    const shared = [];  // SharedValues among them
    const taskNames = taskWith === undefined ? [] : Object.keys(taskWith);
    const allowed = configWith === null ? taskNames.slice() :
      [...new Set([...configWith.names, ...taskNames])];
    if (configWith !== null) {
      for (let i = 0; i < configWith.names.length; i++) {
        if (taskNames.includes(configWith.names[i])) continue;
        names.push(configWith.names[i]);
        parts.push(configWith.parts[i]);
        collectShared(config.with[configWith.names[i]], shared);
      }
      // Config helpers were validated with only config names allowed; they
      // cannot see task helpers, which is what they were checked against.
    }
    if (taskNames.length > 0) {
      names.push(...taskNames);
      parts.push(...withParts(taskWith, taskNames, allowed, 'opts.with'));
      for (const n of taskNames) collectShared(taskWith[n], shared);
    }
    const main = validateOne(fn, allowed);
    if (names.length === 0) return main;
    // The function comes first, so its lines keep their numbers in stacks.
    const decls = names.map((n, i) => `const ${n} = ${parts[i]};`).join('\n');
    const source = `(function () { const ${FN_BINDING} = (${main.source});\n` +
      `${decls}\nreturn ${FN_BINDING}; })()`;
    // Not inert: the helpers are functions the task may call.
    return {
      source, name: main.name, inert: false,
      shared: shared.length > 0 ? shared : undefined,
    };
  });

  // -- task records ---------------------------------------------------------

  const settle = (function settle(rec, status, value) {
    if (rec.status !== 'running' && rec.status !== 'pending') return false;
    rec.status = status;
    rec.value = value;
    counters[status]++;
    rec.data = undefined;
    const extra = rec.extra;
    if (extra !== null) {
      if (extra.signal !== undefined) {
        if (extra.onAbort !== undefined &&
            typeof extra.signal.removeEventListener === 'function') {
          try {
            extra.signal.removeEventListener('abort', extra.onAbort);
          } catch {
            // A duck-typed signal without a working removeEventListener.
          }
        }
        extra.signal = undefined;
        extra.onAbort = undefined;
      }
      extra.transfer = undefined;
      if (extra.sharedHeld) dropShared(rec);
      extra.onProgress = undefined;
    }
    if (config.trace !== null) trace(status, rec, undefined);
    const waiter = rec.waiter;
    if (waiter !== null) {
      rec.waiter = null;
      notify(waiter, rec, rec.waiterIndex);
      const more = extra !== null ? extra.moreWaiters : null;
      if (more !== null) {
        extra.moreWaiters = null;
        for (let i = 0; i < more.length; i += 2) notify(more[i], rec, more[i + 1]);
      }
    }
    return true;
  });

  function cancelRec(rec, err) {
    if (rec.status !== 'running' && rec.status !== 'pending') return false;
    if (rec.id !== 0 && !shuttingDown) {
      try {
        binding.cancel(rec.id);
      } catch (e) {
        reportError(e, rec.task);
      }
    }
    return settle(rec, 'cancelled', err);
  }

  const notify = (function notify(waiter, rec, index) {
    try {
      waiter.settled(rec, index);
    } catch (err) {
      reportError(err, rec.task);
    }
  });

  // Calls waiter.settled(rec, index) once rec settles (at once if it has).
  const attach = (function attach(rec, waiter, index) {
    if (rec.status !== 'running' && rec.status !== 'pending') {
      notify(waiter, rec, index);
    } else if (rec.waiter === null) {
      rec.waiter = waiter;
      rec.waiterIndex = index;
    } else {
      const extra = extraOf(rec);
      if (extra.moreWaiters === null) {
        extra.moreWaiters = [waiter, index];
      } else {
        extra.moreWaiters.push(waiter, index);
      }
    }
  });

  const start = (function start(rec) {
    if (rec.status !== 'pending') return;
    rec.status = 'running';
    counters.started++;
    if (rec.fn.shared !== undefined) holdShared(rec);
    enqueue(rec);
  });

  const enqueue = (function enqueue(rec) {
    queue.push(rec);
    if (!flushScheduled) {
      flushScheduled = true;
      Promise.resolve().then(safeFlush);
    }
  });

  const allocId = (function allocId() {
    for (;;) {
      const id = nextId;
      if (nextId >= MAX_TASK_ID) {
        nextId = 1;
        idsWrapped = true;
      } else {
        nextId++;
      }
      if (!idsWrapped || !inflight.has(id)) return id;
    }
  });

  // Releases the function ids not used since the last sweep, never one that
  // the batch being built (flushCount) uses.
  function sweepFnIds() {
    for (const [source, entry] of fnIds) {
      if (entry.used || entry.flush === flushCount) {
        entry.used = false;
      } else {
        fnIds.delete(source);
        binding.releaseFunction(entry.id);
      }
    }
    fnIdLimit = Math.max(FN_IDS_MIN_LIMIT, fnIds.size * 2);
  }

  const fnIdFor = (function fnIdFor(rec) {
    const fn = rec.fn;
    const known = fnIds.get(fn.source);
    if (known !== undefined) {
      known.used = true;
      known.flush = flushCount;
      return known.id;
    }
    if (fnIds.size >= fnIdLimit && canReleaseFunctions) sweepFnIds();
    // Inert sources (js/validate.js) spare the worker its integrity check.
    const id = binding.registerFunction(fn.source, fn.name, fn.inert);
    fnIds.set(fn.source, { id, used: true, flush: flushCount });
    return id;
  });

  // -- moving data: transfer lists and threader.share() --------------------

  // Native bindings understand the extended transfer list and share();
  // the pure-JS mock of the tests does not.
  const nativeShare = typeof binding.share === 'function' &&
    typeof binding.release === 'function';

  const transferListFor = (function transferListFor(rec) {
    const extra = rec.extra;
    const mode = extra !== null && extra.transferMode !== undefined ?
      extra.transferMode : config.transferMode;
    const shared = rec.fn.shared;
    if (shared !== undefined) checkLive(shared);
    return buildTransferList(mode, rec.data,
                             extra !== null ? extra.transfer : undefined,
                             shared, nativeShare);
  });

  // Handles of this runtime whose native value was not dropped yet.
  const finalizer = typeof FinalizationRegistry === 'function' ?
    new FinalizationRegistry((state) => dropNative(state)) : null;

  function dropNative(state) {
    if (state.dropped) return;
    state.dropped = true;
    try {
      binding.release(state.id);
    } catch (err) {
      reportError(err);
    }
  }

  function releasedError(where) {
    return new ThreaderError(
      `${where}: the SharedValue was released (threader.share)`,
      'ERR_THREADER_SHARE_RELEASED');
  }

  function checkLive(handles) {
    for (const h of handles) {
      if (sharedStates.get(h).dropped) throw releasedError('opts.with');
    }
  }

  function collectShared(v, into) {
    if (isSharedHandle(v) && !into.includes(v)) into.push(v);
  }

  function sharedSource(handle, where) {
    const st = sharedStates.get(handle);
    if (st.released) throw releasedError(where);
    return `${SHARED_BINDING}(${st.id})`;
  }

  // A started task holds its `with` SharedValues until it settles, so that
  // release() waits for it (retries included); once submitted, the task's
  // own blob pins the value natively as well.
  function holdShared(rec) {
    for (const h of rec.fn.shared) sharedStates.get(h).uses++;
    extraOf(rec).sharedHeld = true;
  }

  function dropShared(rec) {
    rec.extra.sharedHeld = false;
    for (const h of rec.fn.shared) {
      const st = sharedStates.get(h);
      if (--st.uses === 0 && st.released) dropNative(st);
    }
  }

  // Handles are native objects (a host object that the serializer knows,
  // v8c/host_share.cc) with this prototype, frozen.
  class SharedValue {
    constructor() {
      throw new TypeError('Illegal constructor: make shared values with threader.share(value)');
    }

    // Whether release() was called (or the value was released otherwise).
    get released() {
      const st = sharedStates.get(this);
      return st === undefined || st.released || st.dropped;
    }

    // Lets the value go: tasks started before this call still get it; tasks
    // started afterwards fail with ERR_THREADER_SHARE_RELEASED.  Workers drop
    // their copies before their next task.  Returns whether it released.
    release() {
      const st = sharedStates.get(this);
      if (st === undefined || st.released) return false;
      st.released = true;
      if (finalizer !== null) finalizer.unregister(st);
      // Tasks started in this tick are submitted by the flush microtask
      // already queued, which runs first.
      Promise.resolve().then(() => {
        if (st.uses === 0) dropNative(st);
      });
      return true;
    }

    get [Symbol.toStringTag]() { return 'SharedValue'; }
  }

  function shareError(message, path) {
    const err = new ThreaderError(message, 'ERR_THREADER_SHARE');
    if (path !== undefined) err.path = path;
    return err;
  }

  function share(value) {
    if (isSharedHandle(value)) {
      if (sharedStates.get(value).released) throw releasedError('value');
      return value;
    }
    if (!nativeShare) {
      throw shareError('threader.share() needs the native binding');
    }
    const kind = uncloneableKind(value);
    if (kind !== undefined) {
      throw shareError(`value: ${kind} could not be shared`, 'value');
    }
    let handle;
    try {
      handle = binding.share(toShareable(value));
    } catch (err) {
      const message = String(err && err.message !== undefined ? err.message : err);
      const cut = message.indexOf(': ');
      let path = message.startsWith('value') && cut > 0 &&
        message.endsWith('could not be cloned') ? message.slice(0, cut) : undefined;
      if (path === undefined) {
        try {
          const where = findUncloneable(value, 'value');
          if (where !== undefined) path = where.path;
        } catch {
          // A throwing getter or Proxy: no path to name.
        }
      }
      throw shareError(message.replace(/could not be cloned$/, 'could not be shared'),
                       path);
    }
    Object.setPrototypeOf(handle, SharedValue.prototype);
    Object.freeze(handle);
    const st = { id: handle.id, released: false, dropped: false, uses: 0 };
    sharedStates.set(handle, st);
    if (finalizer !== null) finalizer.register(handle, st, st);
    return handle;
  }

  function sharedStats() {
    if (typeof binding.sharedStats !== 'function') return undefined;
    return binding.sharedStats();
  }

  const ensureHandler = (function ensureHandler() {
    if (handlerInstalled) return;
    binding.setHandler(onEvents);
    handlerInstalled = true;
  });

  // Runs as a microtask: it must never throw (that would be an unhandled
  // rejection), so anything unexpected fails the tasks it concerns.
  const safeFlush = (function safeFlush() {
    try {
      flush();
      flushing = null;
    } catch (err) {
      // Fail the started tasks that did not reach the binding and are not
      // waiting for a later flush.
      const waiting = new Set(queue);
      const lost = flushing;
      flushing = null;
      if (lost !== null) {
        for (const rec of lost) {
          if (rec.status === 'running' && rec.id === 0 && !waiting.has(rec)) {
            settle(rec, 'failed', err);
          }
        }
      }
      reportError(err);
    }
  });

  // binding.submit's reusable batch: at most SUBMIT_CHUNK tasks per call,
  // their numbers in a Float64Array (the binding copies them in one go
  // rather than reading 7 array slots through the V8 API per task) and
  // their data and transfer lists in an Array.  Chunks also let the workers
  // start on the first tasks of a large flush while the rest serialize.
  // Each call is one lock and one wakeup (js/BINDING.md).
  const submitNumbers = new Float64Array(SUBMIT_CHUNK * SUBMIT_NUMBERS);
  const submitValues = new Array(SUBMIT_CHUNK * 2).fill(undefined);
  const submitRecs = new Array(SUBMIT_CHUNK).fill(undefined);

  const flush = (function flush() {
    flushScheduled = false;
    flushCount++;
    const q = queue;
    queue = [];
    flushing = q;
    let count = 0;
    for (let i = 0; i < q.length; i++) {
      const rec = q[i];
      if (rec.status !== 'running' || rec.id !== 0) continue;
      let fnId;
      let transfer;
      try {
        fnId = fnIdFor(rec);
        transfer = transferListFor(rec);
      } catch (err) {
        settle(rec, 'failed', err);
        continue;
      }
      const id = allocId();
      rec.id = id;
      rec.attempts++;
      inflight.set(id, rec);
      const timeout = rec.timeout !== undefined ? rec.timeout :
        config.workerTimeout;
      rec.timeoutUsed = timeout;
      const at = count * SUBMIT_NUMBERS;
      submitNumbers[at] = id;
      submitNumbers[at + 1] = fnId;
      submitNumbers[at + 2] = timeout;
      submitNumbers[at + 3] = rec.priority;
      submitNumbers[at + 4] = rec.seed;
      const data = rec.data;
      if (typeof data === 'number' && transfer === undefined) {
        // The common tiny task's data goes with the numbers: the binding
        // then reads no V8 value for it.
        submitNumbers[at + 5] = SUBMIT_NUMBER_DATA;
        submitNumbers[at + 6] = data;
      } else {
        submitNumbers[at + 5] = transfer !== undefined ? SUBMIT_TRANSFER : 0;
        submitValues[count * 2] = data;
      }
      submitValues[count * 2 + 1] = transfer;
      submitRecs[count++] = rec;
      // Keep the data only where a retry may need it again.
      if (rec.retriesLeft === 0) rec.data = undefined;
      if (count === SUBMIT_CHUNK) {
        submitChunk(count);
        count = 0;
      }
    }
    if (count > 0) submitChunk(count);
  });

  // Hands the first `count` tasks of the batch to the binding, then clears
  // the batch (it must not keep task data alive).
  const submitChunk = (function submitChunk(count) {
    let failures;
    try {
      ensureHandler();
      failures = binding.submit(count, submitNumbers, submitValues);
    } catch (err) {
      for (let i = 0; i < count; i++) {
        const rec = submitRecs[i];
        inflight.delete(rec.id);
        rec.id = 0;
        settle(rec, 'failed', err);
      }
      clearChunk(count);
      return;
    }
    counters.submitted += count;
    trace('submit', null, { tasks: count });
    if (failures !== undefined && failures !== null) {
      // [index in the batch, message, ...]: not submitted, settled here.
      for (let i = 0; i + 1 < failures.length; i += 2) {
        const index = failures[i];
        const rec = submitRecs[index];
        if (inflight.get(rec.id) !== rec) continue;
        inflight.delete(rec.id);
        rec.id = 0;
        const data = submitNumbers[index * SUBMIT_NUMBERS + 5] & SUBMIT_NUMBER_DATA ?
          submitNumbers[index * SUBMIT_NUMBERS + 6] : submitValues[index * 2];
        settle(rec, 'failed', cloneError(String(failures[i + 1]), 'data', data, true));
      }
    }
    clearChunk(count);
  });

  const clearChunk = (function clearChunk(count) {
    submitValues.fill(undefined, 0, count * 2);
    submitRecs.fill(undefined, 0, count);
  });

  function resultCloneError(value) {
    if (value !== null && typeof value === 'object') {
      const message = String(value.message);
      return typeof value.path === 'string' ?
        new ThreaderCloneError(message, value.path) : cloneError(message, 'result');
    }
    return cloneError(String(value), 'result');
  }

  const onEvents = (function onEvents(events) {
    for (let i = 0; i + 2 < events.length; i += 3) {
      try {
        handleEvent(events[i], events[i + 1], events[i + 2]);
      } catch (err) {
        reportError(err);
      }
    }
    if (shutdownState !== null) checkDrained();
  });

  const handleEvent = (function handleEvent(id, kind, value) {
    const rec = inflight.get(id);
    if (rec === undefined) return;
    if (kind === EV_PROGRESS) {
      if (rec.status !== 'running' || rec.id !== id) return;
      rec.progress = value;
      const onProgress = rec.extra !== null ? rec.extra.onProgress : undefined;
      if (onProgress !== undefined) {
        try {
          onProgress(value, rec.task);
        } catch (err) {
          reportError(err, rec.task);
        }
      }
      return;
    }
    inflight.delete(id);
    if (rec.id !== id) return;
    rec.id = 0;
    if (rec.status !== 'running') return;  // settled in JS already
    switch (kind) {
      case EV_COMPLETED:
        settle(rec, 'completed', value);
        break;
      case EV_THREW:
        settle(rec, 'failed', rebuildError(value));
        break;
      case EV_TIMEOUT: {
        const ms = rec.timeoutUsed;
        settle(rec, 'failed', new ThreaderTimeoutError(
          `Task ${rec.fn.name ? `"${rec.fn.name}" ` : ''}timed out after ${ms} ms`, ms));
        break;
      }
      case EV_CANCELLED:
        settle(rec, 'cancelled', new AbortError('The task was cancelled'));
        break;
      case EV_WORKER_LOST:
        if (rec.retriesLeft > 0) {
          rec.retriesLeft--;
          counters.retried++;
          trace('retry', rec, { attempt: rec.attempts + 1 });
          enqueue(rec);
        } else {
          const err = new ThreaderWorkerError(
            `${value === undefined ? 'The worker running the task was lost' :
              String(value)}${rec.attempts > 1 ? ` (after ${rec.attempts} attempts)` : ''}`);
          err.attempts = rec.attempts;
          settle(rec, 'failed', err);
        }
        break;
      case EV_CLONE:
        settle(rec, 'failed', resultCloneError(value));
        break;
      default:
        settle(rec, 'failed', new ThreaderError(
          `Unknown event kind ${kind} from the binding`, 'ERR_THREADER_INTERNAL'));
    }
  });

  // -- Task -----------------------------------------------------------------

  class Task {
    #rec;

    constructor(rec, token) {
      if (token !== kConstruct) {
        throw new TypeError('Illegal constructor: make tasks with threader(fn, data, opts)');
      }
      this.#rec = rec;
    }

    // The record behind a Task of this runtime, or undefined.
    static recOf(value) {
      return value !== null && typeof value === 'object' && #rec in value ?
        value.#rec : undefined;
    }

    get status() { return this.#rec.status; }
    get progress() { return this.#rec.progress; }
    get result() {
      const rec = this.#rec;
      return rec.status === 'completed' ? rec.value : undefined;
    }

    get error() {
      const rec = this.#rec;
      return rec.status === 'failed' || rec.status === 'cancelled' ? rec.value : undefined;
    }

    get name() { return this.#rec.fn.name; }
    get [Symbol.toStringTag]() { return 'Task'; }

    // Pending: never runs.  Running: settles now as cancelled and the worker
    // is stopped.  Settled: no-op.  Returns whether it cancelled anything.
    cancel(reason) {
      return cancelRec(this.#rec, abortError('The task was cancelled', reason));
    }
  }

  // 30 random bits: a small integer (Smi) on every V8 build, pointer
  // compression included.  A uint32 above 2**31 would turn rec.seed into a
  // double field, and that change of the record's shape deoptimizes the
  // code already optimized for it during the first thousands of tasks.
  const randomSeed = (function randomSeed() {
    return (Math.random() * 0x40000000) | 0;
  });

  // A task's record.  The fields every task uses are here; the options
  // and state few tasks have (transfer lists, signals, progress callbacks,
  // held SharedValues, more than one waiter) are in `extra`, made on
  // demand: with 20,000 tiny tasks in flight every field is 160 KB to
  // allocate and collect (tools/bench throughput).
  //   value: the result once completed, the error once failed or cancelled
  //   fn:    what compile() made of the function (source, name, inert,
  //          shared: the SharedValues of its `with` helpers, or undefined)
  const newRec = (function newRec(fn, data, timeout, priority, seed, retries, extra) {
    return {
      task: null, status: 'pending', value: undefined, progress: undefined,
      fn, data, id: 0, attempts: 0, timeout, timeoutUsed: 0, priority, seed,
      retriesLeft: retries, waiter: null, waiterIndex: 0, extra,
    };
  });

  function newExtra() {
    return {
      transfer: undefined, transferMode: undefined, signal: undefined,
      onAbort: undefined, onProgress: undefined, sharedHeld: false,
      moreWaiters: null,
    };
  }

  function extraOf(rec) {
    if (rec.extra === null) rec.extra = newExtra();
    return rec.extra;
  }

  const threader = (function threader(fn, data, opts) {
    if (typeof fn !== 'function') throw notAFunction('fn', fn);
    let timeout;
    let priority = 1;
    let retries = 0;
    let seed;
    let extra = null;
    let taskWith;
    let signal;
    if (opts !== undefined && opts !== null) {
      if (!isPlainOptions(opts)) throw invalidType('opts', 'an object', opts);
      if (opts.timeout !== undefined && opts.timeout !== null) {
        timeout = checkTimeout('opts.timeout', opts.timeout);
      }
      if (opts.priority !== undefined) {
        priority = checkPriority('opts.priority', opts.priority);
      }
      if (opts.retries !== undefined) {
        retries = checkRetries('opts.retries', opts.retries);
      }
      if (opts.seed !== undefined) {
        if (typeof opts.seed !== 'number' || !Number.isFinite(opts.seed)) {
          throw invalidType('opts.seed', 'a finite number', opts.seed);
        }
        seed = opts.seed | 0;  // the binding reads it as a uint32
      }
      if (opts.transfer !== undefined) {
        extra = extra || newExtra();
        extra.transfer = checkTransferList('opts.transfer', opts.transfer);
      }
      if (opts.transferMode !== undefined) {
        extra = extra || newExtra();
        extra.transferMode = checkTransferMode('opts.transferMode', opts.transferMode);
      }
      if (opts.onProgress !== undefined) {
        if (typeof opts.onProgress !== 'function') {
          throw invalidType('opts.onProgress', 'a function', opts.onProgress);
        }
        extra = extra || newExtra();
        extra.onProgress = opts.onProgress;
      }
      if (opts.signal !== undefined && opts.signal !== null) {
        if (!isAbortSignal(opts.signal)) {
          throw invalidType('opts.signal', 'an AbortSignal', opts.signal);
        }
        signal = opts.signal;
      }
      if (opts.with !== undefined && opts.with !== null) {
        taskWith = checkWithNames('opts.with', opts.with);
      }
    }
    const compiled = compile(fn, taskWith);
    if (compiled.shared !== undefined) {
      for (const h of compiled.shared) {
        if (sharedStates.get(h).released) throw releasedError('opts.with');
      }
    }
    const rec = newRec(compiled, data, timeout, priority,
                       seed !== undefined ? seed : randomSeed(), retries, extra);
    const task = new Task(rec, kConstruct);
    rec.task = task;
    counters.created++;
    if (signal !== undefined) {
      if (signal.aborted) {
        settle(rec, 'cancelled',
               abortError('The task was aborted by its signal', signal.reason));
      } else {
        const ex = extraOf(rec);
        ex.signal = signal;
        ex.onAbort = () => {
          cancelRec(rec, abortError('The task was aborted by its signal',
                                    signal.reason));
        };
        signal.addEventListener('abort', ex.onAbort, { once: true });
      }
    }
    return task;
  });

  // -- runners --------------------------------------------------------------
  //
  // A runner is a waiter: attach() registers it on each of its tasks with the
  // task's index, and settle() calls `waiter.settled(rec, index)` exactly
  // once per attachment.  Classes instead of closures keep a run of 10,000
  // single-task runs cheap.

  const recOf = (function recOf(name, value, index) {
    const rec = Task.recOf(value);
    if (rec !== undefined) return rec;
    const err = invalidType(`${name}() argument ${index}`,
                            'a Task made by threader(fn, data)', value);
    if (value !== null && typeof value === 'object' &&
        tag(value) === '[object Task]') {
      err.message += ' (a Task of another threader instance)';
    }
    throw err;
  });

  function collect(name, args) {
    let list = args;
    if (args.length === 1 && Task.recOf(args[0]) === undefined) {
      const only = args[0];
      if (Array.isArray(only)) {
        list = only;
      } else if (only !== null && typeof only === 'object' &&
                 typeof only[Symbol.iterator] === 'function') {
        list = Array.from(only);
      }
    }
    const recs = new Array(list.length);
    for (let i = 0; i < list.length; i++) recs[i] = recOf(name, list[i], i);
    return recs;
  }

  function cancelAll(recs, message, reason) {
    let err;
    for (let i = 0; i < recs.length; i++) {
      const rec = recs[i];
      if (rec.status === 'running' || rec.status === 'pending') {
        if (err === undefined) err = abortError(message, reason);
        cancelRec(rec, err);
      }
    }
  }

  // Starts each task and attaches `waiter`; stops early once the waiter is
  // done (a task that had already settled decided the run), and cancels
  // what it did not start.
  const runAll = (function runAll(recs, waiter) {
    for (let i = 0; i < recs.length && !waiter.done; i++) {
      const rec = recs[i];
      start(rec);
      attach(rec, waiter, i);
    }
    if (waiter.done) {
      cancelAll(recs, `Cancelled by ${waiter.name}(): the run had already settled`);
    }
  });

  // promise.cancel(reason) of every thread.* promise: cancels the run the
  // promise belongs to.  Call it as a method (promise.cancel()).
  const kRunOfPromise = Symbol('threader.run');
  function cancelThisRun(reason) {
    const run = this !== null && (typeof this === 'object' || typeof this === 'function') ?
      this[kRunOfPromise] : undefined;
    if (run === undefined) {
      throw new TypeError('cancel() must be called on a thread.* promise: promise.cancel()');
    }
    return run.cancel(reason);
  }

  // The executor of every Run's promise: it runs synchronously inside `new
  // Promise`, so the constructor picks the functions up right after.
  let capturedResolve;
  let capturedReject;
  const captureResolvers = (function captureResolvers(resolve, reject) {
    capturedResolve = resolve;
    capturedReject = reject;
  });

  // The promise-returning runners: `promise` has .cancel().
  // Subclasses give `name` (a getter on their prototype: one field less per
  // run) and the tasks (`recs`, or OneRun's `rec`).
  class Run {
    constructor() {
      this.done = false;
      this.resolveFn = undefined;
      this.rejectFn = undefined;
      // One shared executor instead of a closure per run (less to allocate
      // and to scavenge with 20,000 runs in flight).
      this.promise = new Promise(captureResolvers);
      this.resolveFn = capturedResolve;
      this.rejectFn = capturedReject;
      capturedResolve = capturedReject = undefined;
      // Plain stores, not defineProperty (a runtime call per run), and one
      // shared cancel function rather than a closure per run: with 20,000
      // runs in flight each byte counts (tools/bench throughput).
      this.promise[kRunOfPromise] = this;
      this.promise.cancel = cancelThisRun;
    }

    resolve(value) {
      if (this.done) return;
      this.done = true;
      this.resolveFn(value);
    }

    // Resolved: the tasks still running are not needed any more.
    finish(value) {
      this.resolve(value);
      this.cancelTasks(`Cancelled by ${this.name}(): not needed any more`);
    }

    fail(err) {
      if (this.done) return;
      this.done = true;
      this.rejectFn(err);
      this.cancelTasks(`Cancelled by ${this.name}(): another task failed`);
    }

    cancel(reason) {
      if (this.done) return false;
      this.done = true;
      this.rejectFn(abortError(`${this.name}() was cancelled`, reason));
      this.cancelTasks(`Cancelled by ${this.name}().cancel()`, reason);
      return true;
    }

    // Cancels the run's tasks that are still pending or running.
    cancelTasks(message, reason) {
      cancelAll(this.recs, message, reason);
    }
  }

  // thread.all(task) of a single task, the common case: no arrays until
  // it resolves.  With 20,000 such runs in flight (tools/bench throughput),
  // this and all()'s `arguments` took a run's allocation from 456 to 336
  // bytes.
  class OneRun extends Run {
    constructor(rec) {
      super();
      this.rec = rec;
    }

    get name() { return 'thread.all'; }

    settled(rec) {
      if (this.done) return;
      if (rec.status === 'completed') {
        this.resolve([rec.value]);
      } else {
        this.fail(rec.value);
      }
    }

    cancelTasks(message, reason) {
      const rec = this.rec;
      if (rec.status === 'running' || rec.status === 'pending') {
        cancelRec(rec, abortError(message, reason));
      }
    }
  }

  class AllRun extends Run {
    constructor(recs) {
      super();
      this.recs = recs;
      this.results = new Array(recs.length);
      this.left = recs.length;
      if (this.left === 0) this.resolve(this.results);
    }

    get name() { return 'thread.all'; }

    settled(rec, index) {
      if (this.done) return;
      if (rec.status === 'completed') {
        this.results[index] = rec.value;
        if (--this.left === 0) this.resolve(this.results);
      } else {
        this.fail(rec.value);
      }
    }
  }

  class RaceRun extends Run {
    constructor(recs) {
      super();
      this.recs = recs;
    }

    get name() { return 'thread.race'; }

    settled(rec) {
      if (this.done) return;
      if (rec.status === 'completed') {
        this.finish(rec.value);
      } else {
        this.fail(rec.value);
      }
    }
  }

  class AnyRun extends Run {
    constructor(n, recs) {
      super();
      this.recs = recs;
      this.n = n;
      this.results = [];
      this.failures = [];
      if (n === 0) this.resolve(this.results);
    }

    get name() { return 'thread.any'; }

    settled(rec) {
      if (this.done) return;
      if (rec.status === 'completed') {
        this.results.push(rec.value);
        if (this.results.length === this.n) this.finish(this.results);
        return;
      }
      this.failures.push(rec.value);
      const total = this.recs.length;
      const open = total - this.results.length - this.failures.length;
      if (this.results.length + open < this.n) {
        this.fail(new AggregateError(
          this.failures, `thread.any(): ${this.failures.length} of ${total} ` +
          `tasks failed, so ${this.n} cannot succeed`));
      }
    }
  }

  // thread.fire's one waiter: reports failures, never rejects anything.
  const fireWaiter = {
    name: 'thread.fire',
    done: false,
    settled(rec) {
      if (rec.status === 'failed') reportError(rec.value, rec.task);
    },
  };

  // `arguments` rather than a rest parameter: the single-task case then
  // allocates no argument array.
  const all = (function all(first) {
    if (arguments.length === 1) {
      const only = Task.recOf(first);
      if (only !== undefined) {
        const run = new OneRun(only);
        start(only);
        attach(only, run, 0);
        return run.promise;
      }
    }
    const run = new AllRun(collect('thread.all', arguments));
    runAll(run.recs, run);
    return run.promise;
  });

  function race(...args) {
    const run = new RaceRun(collect('thread.race', args));
    runAll(run.recs, run);
    return run.promise;
  }

  function any(n, ...args) {
    if (typeof n !== 'number') {
      throw invalidType('n', 'a non-negative integer (how many results)', n);
    }
    const recs = collect('thread.any', args);
    if (!Number.isInteger(n) || n < 0 || n > recs.length) {
      throw outOfRange('n', `an integer >= 0 and <= the number of tasks ` +
                       `(${recs.length})`, n);
    }
    const run = new AnyRun(n, recs);
    if (n > 0) runAll(recs, run);
    return run.promise;
  }

  function fire(...args) {
    runAll(collect('thread.fire', args), fireWaiter);
    return undefined;
  }

  // thread.stream's state, and the async iterator handed to the caller.
  class StreamRun {
    constructor(recs) {
      this.name = 'thread.stream';
      this.recs = recs;
      this.buffer = [];   // settled recs not yet read, completion order,
      this.head = 0;      // from buffer[head] on (a queue without shift())
      this.readers = [];  // {resolve, reject} waiting in next()
      this.delivered = 0;
      this.done = false;  // no more values: failed, cancelled or returned
      this.pendingError = undefined;  // what the next read must throw
      this.errorTaken = false;
    }

    settled(rec) {
      if (this.done) return;
      if (rec.status !== 'completed') {
        // Later values are dropped; earlier buffered ones still come first.
        this.done = true;
        cancelAll(this.recs, 'Cancelled by thread.stream(): another task failed');
      }
      if (this.readers.length > 0) {
        this.deliver(this.readers.shift(), rec);
        if (this.done) this.drainReaders();
      } else {
        this.buffer.push(rec);
      }
    }

    deliver(reader, rec) {
      this.delivered++;
      if (rec.status === 'completed') {
        reader.resolve({ value: rec.value, done: false });
      } else {
        this.errorTaken = true;
        reader.reject(rec.value);
      }
    }

    drainReaders() {
      while (this.readers.length > 0) {
        const reader = this.readers.shift();
        if (this.pendingError !== undefined && !this.errorTaken) {
          this.errorTaken = true;
          reader.reject(this.pendingError);
        } else {
          reader.resolve({ value: undefined, done: true });
        }
      }
    }

    next() {
      if (this.head < this.buffer.length) {
        const rec = this.buffer[this.head];
        this.buffer[this.head++] = undefined;
        if (this.head === this.buffer.length) {
          this.buffer.length = 0;
          this.head = 0;
        }
        return new Promise((resolve, reject) => {
          this.deliver({ resolve, reject }, rec);
        });
      }
      if (this.pendingError !== undefined && !this.errorTaken) {
        this.errorTaken = true;
        return Promise.reject(this.pendingError);
      }
      if (this.done || this.delivered === this.recs.length) {
        return Promise.resolve({ value: undefined, done: true });
      }
      return new Promise((resolve, reject) => {
        this.readers.push({ resolve, reject });
      });
    }

    close(err) {
      this.done = true;
      this.buffer.length = 0;
      this.head = 0;
      if (err !== undefined) {
        this.pendingError = err;
      } else {
        this.errorTaken = true;
      }
      cancelAll(this.recs, 'Cancelled by thread.stream(): the stream was closed');
      this.drainReaders();
    }
  }

  function stream(...args) {
    const run = new StreamRun(collect('thread.stream', args));
    runAll(run.recs, run);
    return {
      next() {
        return run.next();
      },
      return(value) {
        if (!run.done) run.close();
        run.buffer.length = 0;
        run.head = 0;
        run.errorTaken = true;
        run.drainReaders();
        return Promise.resolve({ value, done: true });
      },
      // Cancels the rest; the pending or next read rejects with AbortError.
      cancel(reason) {
        // Nothing to cancel once closed, or once every value was read.
        if (run.done || run.delivered === run.recs.length) return false;
        run.close(abortError('thread.stream() was cancelled', reason));
        return true;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
      get [Symbol.toStringTag]() {
        return 'ThreaderStream';
      },
    };
  }

  // -- config, stats, shutdown ---------------------------------------------

  function has(object, key) {
    return Object.prototype.hasOwnProperty.call(object, key) &&
      object[key] !== undefined;
  }

  function configure(options) {
    if (options !== undefined && options !== null) {
      if (!isPlainOptions(options)) {
        throw invalidType('options', 'an object', options);
      }
      // Check every value first, so that a bad one changes nothing.
      const next = { ...config };
      let nextWith = configWith;
      const native = {};
      if (has(options, 'maxWorkers')) {
        const v = options.maxWorkers;
        if (v === null) {
          next.maxWorkers = null;
          native.maxWorkers = defaultWorkers !== null ? defaultWorkers : 0;
        } else {
          if (typeof v !== 'number') {
            throw invalidType('maxWorkers', 'a positive integer or null', v);
          }
          if (!Number.isInteger(v) || v < 1 || v > MAX_WORKERS) {
            throw outOfRange('maxWorkers', `an integer >= 1 and <= ${MAX_WORKERS}`, v);
          }
          next.maxWorkers = v;
          native.maxWorkers = v;
        }
      }
      if (has(options, 'maxHeapMB')) {
        const v = options.maxHeapMB;
        if (v === null) {
          next.maxHeapMB = null;
          native.maxHeapMB = 0;
        } else {
          if (typeof v !== 'number') {
            throw invalidType('maxHeapMB', 'a positive number or null', v);
          }
          if (!Number.isFinite(v) || v < 1 || v > 1048576) {
            throw outOfRange('maxHeapMB', '>= 1 and <= 1048576', v);
          }
          next.maxHeapMB = Math.ceil(v);
          native.maxHeapMB = next.maxHeapMB;
        }
      }
      if (has(options, 'workerTimeout')) {
        next.workerTimeout = options.workerTimeout === null ? 0 :
          checkTimeout('workerTimeout', options.workerTimeout);
      }
      if (has(options, 'enableValidation')) {
        if (typeof options.enableValidation !== 'boolean') {
          throw invalidType('enableValidation', 'a boolean',
                            options.enableValidation);
        }
        next.enableValidation = options.enableValidation;
      }
      if (has(options, 'transferMode')) {
        next.transferMode = checkTransferMode('transferMode', options.transferMode);
      }
      if (has(options, 'onError')) {
        next.onError = checkFunctionOrNull('onError', options.onError);
      }
      if (has(options, 'trace')) {
        const v = options.trace;
        if (v !== null && typeof v !== 'boolean' && typeof v !== 'string' &&
            typeof v !== 'function') {
          throw invalidType('trace', 'a file name, a function, a boolean or null', v);
        }
        next.trace = v;
      }
      if (has(options, 'with')) {
        const v = options.with;
        if (v === null) {
          next.with = null;
          nextWith = null;
        } else {
          checkWithNames('with', v);
          const names = Object.keys(v);
          nextWith = names.length === 0 ? null : {
            names,
            parts: withParts(v, names, names, 'with', next.enableValidation),
          };
          next.with = { ...v };
        }
      }
      if (native.maxWorkers !== undefined || native.maxHeapMB !== undefined) {
        binding.configure(native);
      }
      if (next.trace !== config.trace && typeof binding.setTrace === 'function') {
        binding.setTrace(typeof next.trace === 'string' ? next.trace : null);
      }
      Object.assign(config, next);
      configWith = nextWith;
    }
    return currentConfig();
  }

  function currentConfig() {
    return Object.freeze({
      ...config,
      maxWorkers: config.maxWorkers !== null ? config.maxWorkers : defaultWorkers,
      with: config.with === null ? null : Object.freeze({ ...config.with }),
    });
  }

  const STAT_FIELDS = ['tasksRun', 'tasksFailed', 'steals', 'parks', 'busyMs',
    'heapUsed', 'isolatesCreated', 'running'];

  function stats() {
    const raw = binding.stats();
    const workers = Array.isArray(raw) ? raw.map((w) => ({ ...w })) : [];
    const totals = {};
    for (const field of STAT_FIELDS) totals[field] = 0;
    for (const w of workers) {
      for (const key of Object.keys(w)) {
        if (typeof w[key] === 'number') totals[key] = (totals[key] || 0) + w[key];
        else if (typeof w[key] === 'boolean') totals[key] = (totals[key] || 0) + (w[key] ? 1 : 0);
      }
    }
    totals.workers = workers.length;
    workers.totals = totals;
    workers.tasks = {
      ...counters,
      inFlight: inflight.size,
      queued: queue.length,
      pending: binding.pending(),
    };
    const shared = sharedStats();
    if (shared !== undefined) workers.shared = shared;
    return workers;
  }

  function checkDrained() {
    const s = shutdownState;
    for (const id of s.ids) {
      if (!inflight.has(id)) s.ids.delete(id);
    }
    if (s.ids.size === 0) {
      shutdownState = null;
      s.resolve();
    }
  }

  // Every started, unsettled rec, once each.
  function runningRecs() {
    const out = new Set();
    const add = (rec) => {
      if (rec.status === 'running') out.add(rec);
    };
    if (flushing !== null) flushing.forEach(add);
    queue.forEach(add);
    inflight.forEach(add);
    return Array.from(out);
  }

  function shutdown() {
    if (shutdownState !== null) return shutdownState.promise;
    const err = new AbortError('Cancelled by threader.shutdown()');
    // Settle in JS first; binding.shutdown() stops them natively.
    shuttingDown = true;
    try {
      for (const rec of runningRecs()) settle(rec, 'cancelled', err);
    } finally {
      shuttingDown = false;
    }
    queue = [];
    let failure;
    try {
      binding.shutdown();
    } catch (e) {
      failure = e;
    }
    if (canReleaseFunctions) {
      for (const entry of fnIds.values()) {
        try {
          binding.releaseFunction(entry.id);
        } catch (e) {
          if (failure === undefined) failure = e;
        }
      }
    }
    fnIds.clear();
    fnIdLimit = FN_IDS_MIN_LIMIT;
    handlerInstalled = false;
    if (failure !== undefined) return Promise.reject(failure);
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    shutdownState = { promise, resolve, ids: new Set(inflight.keys()) };
    checkDrained();
    trace('shutdown', null, {});
    return promise;
  }

  Object.defineProperties(threader, {
    config: { value: configure, enumerable: true },
    stats: { value: stats, enumerable: true },
    shutdown: { value: shutdown, enumerable: true },
    share: { value: share, enumerable: true },
    Task: { value: Task },
    SharedValue: { value: SharedValue },
  });

  const thread = Object.freeze({ all, stream, fire, race, any });
  return { threader, thread };
}

module.exports = {
  createThreader,
  findUncloneable,
  IdTable,  // for tests
};
