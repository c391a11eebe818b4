// lockdown.js — hardens a worker context, like SES `lockdown()`.
//
// Evaluated while the startup snapshot is made, but only to a function: the
// snapshot holds `lockdown` uncalled (freezing Object.prototype or
// Array.prototype inside a snapshotted context aborts V8 10.2/11.3 at the
// next context creation).  v8c/worker.cc calls it once per worker context,
// right after deserialization and before any user code:
//
//   lockdown(randomState /* ArrayBuffer(16): sfc32 state, seeded by C++ */)
//
// What it does, in order:
//   1. Keeps only the ECMAScript globals (plus Intl and WebAssembly) and
//      deletes the rest (V8 installs `console`).  Also removes what would let
//      work outlive its task or let tasks observe each other:
//      FinalizationRegistry (callbacks run between tasks, outside any
//      timeout), Atomics.waitAsync (settles after the task ended) and the
//      legacy RegExp statics (RegExp.$1, RegExp.lastMatch, ...: the last
//      match of whichever task ran before).
//   2. Replaces Math.random by a seeded sfc32 generator whose state lives in
//      `randomState`; C++ reseeds it before each task, so the same seed
//      gives the same sequence.
//   3. Turns a few data properties of shared prototypes into accessors (the
//      "override mistake" fix of SES): after freezing, `this.name = 'X'` in
//      an Error subclass or `obj.toString = f` on a plain object must still
//      define an own property instead of failing.
//   4. Freezes every object reachable from globalThis and from the hidden
//      intrinsics (%TypedArray%, %AsyncFunction%, iterator prototypes, ...),
//      walking own property descriptors (values, getters, setters) and
//      prototypes; then freezes globalThis itself (non-extensible, every
//      property non-writable and non-configurable).
//
// `eval` and `Function` stay: they compile in this same sandbox.
(function lockdown(randomState) {
  'use strict';

  const {
    defineProperty,
    freeze,
    getOwnPropertyDescriptor,
    getPrototypeOf,
    isFrozen,
  } = Object;
  const { ownKeys, deleteProperty, apply } = Reflect;
  const ArrayPush = Array.prototype.push;
  const WeakSetCtor = WeakSet;
  const weakSetHas = WeakSet.prototype.has;
  const weakSetAdd = WeakSet.prototype.add;
  const Uint32ArrayCtor = Uint32Array;
  const TypeErrorCtor = TypeError;
  const StringCtor = String;

  // 1. Globals: an allow-list, so anything an embedder or V8 adds is gone.
  const allowedGlobals = [
    // Value properties and functions of the global object (ECMA-262 19.1-2)
    'globalThis', 'Infinity', 'NaN', 'undefined', 'eval', 'isFinite', 'isNaN',
    'parseFloat', 'parseInt', 'decodeURI', 'decodeURIComponent', 'encodeURI',
    'encodeURIComponent', 'escape', 'unescape',
    // Constructors (19.3)
    'AggregateError', 'Array', 'ArrayBuffer', 'BigInt', 'BigInt64Array',
    'BigUint64Array', 'Boolean', 'DataView', 'Date', 'Error', 'EvalError',
    'Float16Array', 'Float32Array', 'Float64Array', 'Function', 'Int8Array',
    'Int16Array', 'Int32Array', 'Iterator', 'Map', 'Number', 'Object',
    'Promise', 'Proxy', 'RangeError', 'ReferenceError', 'RegExp', 'Set',
    'SharedArrayBuffer', 'String', 'Symbol', 'SyntaxError', 'TypeError',
    'Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'URIError',
    'WeakMap', 'WeakRef', 'WeakSet',
    // Other properties (19.4) and ECMA-402 / WebAssembly JS API
    'Atomics', 'JSON', 'Math', 'Reflect', 'Intl', 'WebAssembly',
  ];
  const allowed = { __proto__: null };
  for (let i = 0; i < allowedGlobals.length; i++) allowed[allowedGlobals[i]] = true;

  const globalKeys = ownKeys(globalThis);
  for (let i = 0; i < globalKeys.length; i++) {
    const key = globalKeys[i];
    if (typeof key === 'string' && allowed[key] === true) continue;
    if (!deleteProperty(globalThis, key)) {
      throw new TypeErrorCtor(`lockdown: cannot remove global ${StringCtor(key)}`);
    }
  }
  if (typeof Atomics === 'object') deleteProperty(Atomics, 'waitAsync');
  const regexpStatics = ['$1', '$2', '$3', '$4', '$5', '$6', '$7', '$8', '$9',
    'input', '$_', 'lastMatch', '$&', 'lastParen', '$+', 'leftContext', '$`',
    'rightContext', "$'"];
  for (let i = 0; i < regexpStatics.length; i++) {
    if (!deleteProperty(RegExp, regexpStatics[i])) {
      throw new TypeErrorCtor(`lockdown: cannot remove RegExp.${regexpStatics[i]}`);
    }
  }

  // 2. Math.random: sfc32 (Doty-Humphrey), 53-bit doubles from two outputs.
  const state = new Uint32ArrayCtor(randomState);
  function next() {
    const a = state[0];
    const b = state[1];
    const c = state[2];
    const d = state[3];
    const t = (((a + b) | 0) + d) | 0;
    state[3] = (d + 1) | 0;
    state[0] = b ^ (b >>> 9);
    state[1] = (c + (c << 3)) | 0;
    state[2] = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }
  const { random } = {
    random() {
      const high = next() >>> 5;  // 27 bits
      const low = next() >>> 6;  // 26 bits
      return (high * 67108864 + low) / 9007199254740992;
    },
  };
  defineProperty(Math, 'random', {
    __proto__: null, value: random, writable: true, enumerable: false,
    configurable: true,
  });

  // 3. The override mistake: assignments that must keep working on objects
  //    that inherit these properties from a frozen prototype.
  function enableOverride(object, key) {
    const desc = getOwnPropertyDescriptor(object, key);
    if (desc === undefined || !('value' in desc) || !desc.configurable) return;
    const value = desc.value;
    const { get: getter, set: setter } = {
      get() {
        return value;
      },
      set(newValue) {
        if (this === object) {
          throw new TypeErrorCtor(
            `Cannot assign to read only property '${StringCtor(key)}' of frozen intrinsic`);
        }
        if (getOwnPropertyDescriptor(this, key) !== undefined) {
          this[key] = newValue;  // own property: ordinary assignment
        } else {
          defineProperty(this, key, {
            __proto__: null, value: newValue, writable: true, enumerable: true,
            configurable: true,
          });
        }
      },
    };
    defineProperty(object, key, {
      __proto__: null, get: getter, set: setter, enumerable: desc.enumerable,
      configurable: false,
    });
  }
  const objectKeys = ['constructor', 'toString', 'toLocaleString', 'valueOf',
    'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable'];
  for (let i = 0; i < objectKeys.length; i++) {
    enableOverride(Object.prototype, objectKeys[i]);
  }
  const errorCtors = [Error, EvalError, RangeError, ReferenceError, SyntaxError,
    TypeError, URIError, AggregateError];
  for (let i = 0; i < errorCtors.length; i++) {
    const proto = errorCtors[i].prototype;
    enableOverride(proto, 'name');
    enableOverride(proto, 'message');
    enableOverride(proto, 'constructor');
  }
  enableOverride(Error.prototype, 'toString');
  enableOverride(Function.prototype, 'constructor');
  enableOverride(Function.prototype, 'toString');
  enableOverride(Array.prototype, 'constructor');
  enableOverride(Array.prototype, 'toString');

  // 4. Freeze everything reachable.
  const roots = [globalThis];
  function addRoot(value) {
    if (value !== undefined && value !== null) apply(ArrayPush, roots, [value]);
  }
  const iteratorOf = (iterable) => iterable[Symbol.iterator]();
  addRoot(getPrototypeOf(function* () {}));  // %GeneratorFunction.prototype%
  addRoot(getPrototypeOf(async function () {}));  // %AsyncFunction.prototype%
  addRoot(getPrototypeOf(async function* () {}));  // %AsyncGeneratorFunction.prototype%
  addRoot(getPrototypeOf(iteratorOf([])));  // %ArrayIteratorPrototype%
  addRoot(getPrototypeOf(iteratorOf(new Map())));
  addRoot(getPrototypeOf(iteratorOf(new Set())));
  addRoot(getPrototypeOf(iteratorOf('')));
  addRoot(getPrototypeOf(/x/[Symbol.matchAll]('')));  // %RegExpStringIteratorPrototype%
  addRoot(getPrototypeOf(Int8Array));  // %TypedArray%
  addRoot(getPrototypeOf((function* () {})()));
  addRoot(getPrototypeOf((async function* () {})()));
  if (typeof Intl === 'object' && typeof Intl.Segmenter === 'function') {
    const segments = new Intl.Segmenter().segment('');
    addRoot(getPrototypeOf(segments));  // %SegmentsPrototype%
    addRoot(getPrototypeOf(iteratorOf(segments)));  // %SegmentIteratorPrototype%
  }
  if (typeof Iterator === 'function' && typeof Iterator.from === 'function') {
    addRoot(getPrototypeOf(Iterator.from({ next() {} })));  // %WrapForValidIteratorPrototype%
    addRoot(getPrototypeOf(iteratorOf([]).map((x) => x)));  // %IteratorHelperPrototype%
  }

  const seen = new WeakSetCtor();
  const queue = [];
  function enqueue(value) {
    const type = typeof value;
    if ((type === 'object' && value !== null) || type === 'function') {
      if (!apply(weakSetHas, seen, [value])) {
        apply(weakSetAdd, seen, [value]);
        queue[queue.length] = value;
      }
    }
  }
  for (let i = 0; i < roots.length; i++) enqueue(roots[i]);
  for (let i = 0; i < queue.length; i++) {
    const object = queue[i];
    if (object !== globalThis) freeze(object);
    enqueue(getPrototypeOf(object));
    const keys = ownKeys(object);
    for (let k = 0; k < keys.length; k++) {
      const desc = getOwnPropertyDescriptor(object, keys[k]);
      if (desc === undefined) continue;
      if ('value' in desc) {
        enqueue(desc.value);
      } else {
        enqueue(desc.get);
        enqueue(desc.set);
      }
    }
  }

  // globalThis last: non-extensible, every property read-only.
  freeze(globalThis);
  if (!isFrozen(globalThis) || !isFrozen(Object.prototype) ||
      !isFrozen(Array.prototype) || !isFrozen(Function.prototype)) {
    throw new TypeErrorCtor('lockdown: intrinsics are not frozen');
  }
});
