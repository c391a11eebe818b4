// lockdown.js — hardens a worker context, in the manner of SES `lockdown()`.
//
// Run while v8c/snapshot.cc makes the startup snapshot.  It changes nothing
// there: changing intrinsics inside a snapshotted context makes V8 10.2/11.3
// abort at the next context creation, when V8 installs its flag-dependent
// builtins.  It only *plans*: it finds every intrinsic, decides how each one
// will be locked, and compiles verify(), all kept in the snapshot.  Its
// completion value { lockdown, diff } is kept with SnapshotCreator::AddData.
//
//   diff()                    run once per process, by the first worker, in
//                             its fresh context before lockdown: what V8
//                             added to the intrinsics at context creation,
//                             as [planIndex, key, ...], or null if the plan
//                             cannot be used (then every worker walks).
//   lockdown(randomState, additions)
//                             run by v8c/worker.cc in every worker context
//                             right after deserialization, before user code;
//                             returns { verify, regexpIntact, regexpPrototype }
//                             for the check after every task (see below).
//
// lockdown:
//   1. Keeps only the ECMAScript globals (plus Intl and WebAssembly) and
//      deletes the rest (V8 installs `console`).  Also removes what would let
//      work outlive its task or let tasks observe each other:
//      FinalizationRegistry (callbacks run between tasks, outside any
//      timeout), Atomics.waitAsync (settles after its task ended) and the
//      legacy RegExp statics (RegExp.$1, RegExp.lastMatch, ...: the last
//      match of whichever task ran before).
//   2. Replaces Math.random by a seeded sfc32 generator whose state lives in
//      `randomState`; C++ reseeds it before each task, so the same seed
//      gives the same sequence.
//   3. Locks every intrinsic reachable from globalThis or from the hidden
//      intrinsics (%TypedArray%, %AsyncFunction%, iterator prototypes, ...),
//      following own property descriptors (values, getters, setters) and
//      prototypes: the planned ones, plus what `additions` names; then
//      freezes globalThis itself.
//
// How an intrinsic is locked depends on what V8 optimizes, as measured on
// V8 10.2 (tests/v8c_unittest.cc, HardeningKeepsFastPaths):
//   - Functions, and objects that are no other object's prototype: frozen.
//   - Prototypes (Object.prototype, Array.prototype, Uint8Array.prototype,
//     Map.prototype, ...): sealed, not frozen.  Freezing a prototype gives
//     it read-only "slow" elements, after which every indexed store into an
//     object that inherits from it (every array, every typed array) takes
//     V8's slow path: typed-array loops ran 25x slower, Math.random 180x.
//     Redefining its properties as read-only instead moves the prototype to
//     dictionary mode (Array.prototype.push stops inlining) and, for
//     `constructor` and the iterator methods, trips V8's protectors.  So
//     their data properties stay writable, and verify() checks after every
//     task that each still holds its original value.
//   - RegExp.prototype: left exactly as V8 made it, because any change to
//     its shape, even Object.preventExtensions, sends every regular
//     expression down V8's slow path (20x).  After every task C++ compares
//     its hidden class with the one it had (a change means a property was
//     added, removed or reconfigured, or its prototype or extensibility
//     changed), then verify() compares the values of its data properties;
//     regexpIntact() compares every descriptor when the class differs.
// verify() returns false if a task changed anything; the worker then
// replaces its isolate before the next task, so no change a task makes to
// an intrinsic is ever seen by another task.  As prototypes stay writable
// there is no "override mistake" to work around: `this.name = x` in an
// Error subclass or `obj.toString = f` work as usual.
//
// `eval` and `Function` stay: they compile in this same sandbox.
(function planLockdown() {
  'use strict';

  const {
    defineProperty,
    freeze,
    seal,
    getOwnPropertyDescriptor,
    getPrototypeOf,
    isExtensible,
    isFrozen,
    isSealed,
  } = Object;
  const { ownKeys, deleteProperty, apply } = Reflect;
  const ObjectPrototype = Object.prototype;
  const RegExpPrototype = RegExp.prototype;
  const ArrayPrototype = Array.prototype;
  const MathObject = Math;
  const RegExpCtor = RegExp;
  const SymbolCtor = Symbol;
  const FunctionCtor = Function;
  const WeakSetCtor = WeakSet;
  const weakSetHas = WeakSet.prototype.has;
  const weakSetAdd = WeakSet.prototype.add;
  const Uint32ArrayCtor = Uint32Array;
  const TypeErrorCtor = TypeError;
  const StringCtor = String;
  const JSONStringify = JSON.stringify;
  const regexpTest = RegExp.prototype.test;
  const has = (set, value) => apply(weakSetHas, set, [value]);
  const add = (set, value) => apply(weakSetAdd, set, [value]);
  const push = (array, value) => { array[array.length] = value; };
  const isObject = (value) =>
    (typeof value === 'object' && value !== null) || typeof value === 'function';

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
  const regexpStatics = ['$1', '$2', '$3', '$4', '$5', '$6', '$7', '$8', '$9',
    'input', '$_', 'lastMatch', '$&', 'lastParen', '$+', 'leftContext', '$`',
    'rightContext', "$'"];

  // ---- finding the intrinsics --------------------------------------------

  function hiddenIntrinsics() {
    const iteratorOf = (iterable) => iterable[SymbolCtor.iterator]();
    const roots = [
      getPrototypeOf(function* () {}),  // %GeneratorFunction.prototype%
      getPrototypeOf(async function () {}),  // %AsyncFunction.prototype%
      getPrototypeOf(async function* () {}),  // %AsyncGeneratorFunction.prototype%
      getPrototypeOf(iteratorOf([])),  // %ArrayIteratorPrototype%
      getPrototypeOf(iteratorOf(new Map())),
      getPrototypeOf(iteratorOf(new Set())),
      getPrototypeOf(iteratorOf('')),
      getPrototypeOf(/x/[SymbolCtor.matchAll]('')),  // %RegExpStringIteratorPrototype%
      getPrototypeOf(Int8Array),  // %TypedArray%
      getPrototypeOf((function* () {})()),
      getPrototypeOf((async function* () {})()),
    ];
    if (typeof Intl === 'object' && typeof Intl.Segmenter === 'function') {
      const segments = new Intl.Segmenter().segment('');
      push(roots, getPrototypeOf(segments));  // %SegmentsPrototype%
      push(roots, getPrototypeOf(iteratorOf(segments)));  // %SegmentIteratorPrototype%
    }
    if (typeof Iterator === 'function' && typeof Iterator.from === 'function') {
      push(roots, getPrototypeOf(Iterator.from({ next() {} })));
      push(roots, getPrototypeOf(iteratorOf([]).map((x) => x)));  // %IteratorHelperPrototype%
    }
    return roots;
  }

  // Breadth-first over values, getters, setters and prototypes, from
  // `roots`, skipping what `known` already holds.  Returns the objects found
  // and marks in `prototypes` the ones that are some object's prototype.
  function walk(roots, known, prototypes) {
    const seen = new WeakSetCtor();
    const found = [];
    const enqueue = (value) => {
      if (isObject(value) && !has(seen, value) && (known === null || !has(known, value))) {
        add(seen, value);
        push(found, value);
      }
    };
    for (let i = 0; i < roots.length; i++) enqueue(roots[i]);
    for (let i = 0; i < found.length; i++) {
      const object = found[i];
      const proto = getPrototypeOf(object);
      if (proto !== null) {
        add(prototypes, proto);
        enqueue(proto);
      }
      const keys = ownKeys(object);
      for (let k = 0; k < keys.length; k++) {
        const desc = getOwnPropertyDescriptor(object, keys[k]);
        if ('value' in desc) {
          if (keys[k] === 'prototype' && isObject(desc.value)) add(prototypes, desc.value);
          enqueue(desc.value);
        } else {
          enqueue(desc.get);
          enqueue(desc.set);
        }
      }
    }
    return found;
  }

  // ---- verify() for sealed prototypes --------------------------------------

  // One straight-line function with a named load per watched property, so
  // that V8 turns it into a few hundred compares.
  function compileVerify(entries /* [object, key, value, ...] */) {
    const objects = [];
    const values = [];
    const symbols = [];
    const lines = [];
    for (let i = 0; i < entries.length; i += 3) {
      const object = entries[i];
      const key = entries[i + 1];
      let slot = 0;
      while (slot < objects.length && objects[slot] !== object) slot++;
      if (slot === objects.length) push(objects, object);
      let access;
      if (typeof key === 'symbol') {
        push(symbols, key);
        access = `o${slot}[S[${symbols.length - 1}]]`;
      } else if (apply(regexpTest, /^[A-Za-z_$][A-Za-z0-9_$]*$/, [key])) {
        access = `o${slot}.${key}`;
      } else {
        access = `o${slot}[${JSONStringify(key)}]`;
      }
      push(values, entries[i + 2]);
      push(lines, `if (${access} !== v${values.length - 1}) return false;`);
    }
    const bindings = ['_ = 0'];
    for (let i = 0; i < objects.length; i++) push(bindings, `o${i} = O[${i}]`);
    for (let i = 0; i < values.length; i++) push(bindings, `v${i} = V[${i}]`);
    const body = `'use strict';\nconst ${bindings.join(', ')};\n` +
      `return function verify() {\n${lines.join('\n')}\nreturn true;\n};`;
    try {
      return FunctionCtor('O', 'V', 'S', body)(objects, values, symbols);
    } catch {
      // --disallow-code-generation-from-strings: the same check as a loop
      // (megamorphic loads, a few microseconds per task instead of one).
      return () => {
        for (let i = 0; i < entries.length; i += 3) {
          if (entries[i][entries[i + 1]] !== entries[i + 2]) return false;
        }
        return true;
      };
    }
  }

  // Seals or freezes `objects` (see the header), unless apply is false, and
  // appends the watch entries of the sealed ones to `entries` (if given).
  function lockObjects(objects, prototypes, entries, apply) {
    for (let i = 0; i < objects.length; i++) {
      const object = objects[i];
      if (object === globalThis || object === RegExpPrototype) continue;
      if (!has(prototypes, object)) {
        if (apply) freeze(object);
        continue;
      }
      if (apply) seal(object);
      if (entries === null) continue;
      const keys = ownKeys(object);
      for (let k = 0; k < keys.length; k++) {
        const desc = getOwnPropertyDescriptor(object, keys[k]);
        if ('value' in desc && desc.writable) {
          push(entries, object);
          push(entries, keys[k]);
          push(entries, desc.value);
        }
      }
    }
    return entries;
  }

  // The full check of RegExp.prototype: every descriptor, its prototype and
  // its extensibility.  verify() itself only compares the values of its data
  // properties; C++ first compares the object's hidden class (its V8 map),
  // which changes whenever a property is added, removed or reconfigured, and
  // calls this when the map differs (the GC may also move a map).
  function makeRegExpCheck() {
    const keys = ownKeys(RegExpPrototype);
    const descs = [];
    for (let i = 0; i < keys.length; i++) descs[i] = getOwnPropertyDescriptor(RegExpPrototype, keys[i]);
    const same = (a, b) => b !== undefined && a.value === b.value && a.get === b.get &&
      a.set === b.set && a.writable === b.writable && a.enumerable === b.enumerable &&
      a.configurable === b.configurable;
    return function regexpIntact() {
      if (!isExtensible(RegExpPrototype) || getPrototypeOf(RegExpPrototype) !== ObjectPrototype) {
        return false;
      }
      const now = ownKeys(RegExpPrototype);
      if (now.length !== keys.length) return false;
      for (let i = 0; i < now.length; i++) {
        if (now[i] !== keys[i] || !same(descs[i], getOwnPropertyDescriptor(RegExpPrototype, now[i]))) {
          return false;
        }
      }
      return true;
    };
  }

  // ---- the plan, made now, in the snapshot ---------------------------------

  const planPrototypes = new WeakSetCtor();
  const planObjects = walk([globalThis, ...hiddenIntrinsics()], null, planPrototypes);
  const planKnown = new WeakSetCtor();
  for (let i = 0; i < planObjects.length; i++) add(planKnown, planObjects[i]);
  // The keys each planned object had, to see what V8 adds at context
  // creation: planKeys[planKeyStart[i] .. planKeyStart[i + 1]).
  const planKeys = [];
  const planKeyStart = [0];
  for (let i = 0; i < planObjects.length; i++) {
    const keys = ownKeys(planObjects[i]);
    for (let k = 0; k < keys.length; k++) push(planKeys, keys[k]);
    push(planKeyStart, planKeys.length);
  }
  // Math.random is replaced before Math is frozen, and RegExp.prototype is
  // checked by its own function: neither belongs in the planned verify().
  const planEntries = lockObjects(planObjects, planPrototypes, [], false);
  const plannedVerify = compileVerify(planEntries);
  plannedVerify();  // compile it here: the snapshot keeps the bytecode

  // Well-known symbols by name, for passing keys through C++ as text.
  const wellKnown = [];
  const symbolNames = ownKeys(SymbolCtor);
  for (let i = 0; i < symbolNames.length; i++) {
    if (typeof SymbolCtor[symbolNames[i]] === 'symbol') {
      push(wellKnown, symbolNames[i]);
    }
  }
  function encodeKey(key) {
    if (typeof key !== 'symbol') return key;
    for (let i = 0; i < wellKnown.length; i++) {
      if (SymbolCtor[wellKnown[i]] === key) return `@@${wellKnown[i]}`;
    }
    return null;
  }
  function decodeKey(text) {
    if (text.length > 2 && text[0] === '@' && text[1] === '@') {
      return SymbolCtor[text.slice(2)];
    }
    return text;
  }

  // Run in a fresh context from the snapshot, before any lockdown: the
  // properties of planned objects that V8 added, or set to objects outside
  // the plan, at context creation, as [planIndex, encodedKey, ...].  null:
  // the plan cannot be used (a watched value changed, or a key cannot be
  // named); every worker then walks.
  function diff() {
    if (!plannedVerify()) return null;
    const additions = [];
    const outside = (value) => isObject(value) && !has(planKnown, value);
    for (let i = 0; i < planObjects.length; i++) {
      const object = planObjects[i];
      const keys = ownKeys(object);
      const start = planKeyStart[i];
      const count = planKeyStart[i + 1] - start;
      // Keys keep their order, and V8 only appends: when the count is the
      // same and the keys match in order, no key is new.
      let sameKeys = keys.length === count;
      for (let k = 0; sameKeys && k < count; k++) sameKeys = keys[k] === planKeys[start + k];
      for (let k = 0; k < keys.length; k++) {
        let known = sameKeys;
        for (let p = start; !known && p < start + count; p++) known = planKeys[p] === keys[k];
        const desc = getOwnPropertyDescriptor(object, keys[k]);
        if (known && !outside(desc.value) && !outside(desc.get) && !outside(desc.set)) continue;
        const encoded = encodeKey(keys[k]);
        if (encoded === null) return null;
        push(additions, i);
        push(additions, encoded);
      }
    }
    return additions;
  }

  // ---- lockdown, per worker -------------------------------------------------

  function lockdown(randomState, additions) {
    // 1. Globals: an allow-list, so anything an embedder or V8 adds is gone.
    //    V8's own debugging globals from command-line flags (--expose-gc's
    //    `gc`, --expose-externalize-string, ...) are not configurable and
    //    cannot go; like every other intrinsic they end up frozen.
    const globalKeys = ownKeys(globalThis);
    for (let i = 0; i < globalKeys.length; i++) {
      const key = globalKeys[i];
      if (typeof key === 'string' && allowed[key] === true) continue;
      if (!deleteProperty(globalThis, key) &&
          getOwnPropertyDescriptor(globalThis, key).configurable !== false) {
        throw new TypeErrorCtor(`lockdown: cannot remove global ${StringCtor(key)}`);
      }
    }
    // Atomics and SharedArrayBuffer only exist in deserialized contexts.
    if (typeof Atomics === 'object') deleteProperty(Atomics, 'waitAsync');
    for (let i = 0; i < regexpStatics.length; i++) {
      if (!deleteProperty(RegExpCtor, regexpStatics[i])) {
        throw new TypeErrorCtor(`lockdown: cannot remove RegExp.${regexpStatics[i]}`);
      }
    }

    // 2. Math.random: sfc32 (Doty-Humphrey), 53-bit doubles from two outputs.
    const state = new Uint32ArrayCtor(randomState);
    const next = () => {
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
    };
    const { random } = {
      random() {
        const high = next() >>> 5;  // 27 bits
        const low = next() >>> 6;  // 26 bits
        return (high * 67108864 + low) / 9007199254740992;
      },
    };
    defineProperty(MathObject, 'random', {
      __proto__: null, value: random, writable: true, enumerable: false,
      configurable: true,
    });
    freeze(random);

    // 3. Lock the intrinsics.
    const regexpIntact = makeRegExpCheck();
    const regexpValues = [];
    const regexpKeys = ownKeys(RegExpPrototype);
    for (let i = 0; i < regexpKeys.length; i++) {
      const desc = getOwnPropertyDescriptor(RegExpPrototype, regexpKeys[i]);
      if ('value' in desc) {
        push(regexpValues, RegExpPrototype);
        push(regexpValues, regexpKeys[i]);
        push(regexpValues, desc.value);
      }
    }
    // Few entries each: a loop does, and compiles nothing per worker.
    const unchanged = (entries) => {
      for (let i = 0; i < entries.length; i += 3) {
        if (entries[i][entries[i + 1]] !== entries[i + 2]) return false;
      }
      return true;
    };
    let verify;
    if (additions === undefined || additions === null) {
      // No plan for this context: find and lock everything now (slow).
      const prototypes = new WeakSetCtor();
      const objects = walk([globalThis, ...hiddenIntrinsics()], null, prototypes);
      const verifyAll = compileVerify(lockObjects(objects, prototypes, [], true));
      verify = () => verifyAll() && unchanged(regexpValues);
    } else {
      lockObjects(planObjects, planPrototypes, null, true);
      // What V8 added at context creation: lock it, and watch the new
      // writable properties of prototypes.
      const roots = [];
      const extra = [];
      for (let i = 0; i < additions.length; i += 2) {
        const owner = planObjects[additions[i]];
        const key = decodeKey(additions[i + 1]);
        const desc = getOwnPropertyDescriptor(owner, key);
        if (desc === undefined) continue;
        if ('value' in desc) {
          push(roots, desc.value);
          if (desc.writable && has(planPrototypes, owner) && owner !== RegExpPrototype) {
            push(extra, owner);
            push(extra, key);
            push(extra, desc.value);
          }
        } else {
          push(roots, desc.get);
          push(roots, desc.set);
        }
      }
      const prototypes = new WeakSetCtor();
      const found = walk(roots, planKnown, prototypes);
      lockObjects(found, prototypes, extra, true);
      // Straight-line code like plannedVerify: the loop in unchanged() does
      // a megamorphic keyed load per entry, which made this check ~40% of
      // a tiny task's time on the worker (perf, tools/bench throughput).
      // Compiling it costs ~0.1 ms once per worker.
      for (let i = 0; i < regexpValues.length; i++) push(extra, regexpValues[i]);
      const extraVerify = compileVerify(extra);
      verify = () => plannedVerify() && extraVerify();
    }
    freeze(globalThis);
    freeze(verify);
    freeze(regexpIntact);

    if (!isFrozen(globalThis) || !isSealed(ObjectPrototype) || !isSealed(ArrayPrototype) ||
        !isFrozen(MathObject)) {
      throw new TypeErrorCtor('lockdown: intrinsics are not locked');
    }
    return freeze({ __proto__: null, verify, regexpIntact, regexpPrototype: RegExpPrototype });
  }

  return freeze({ __proto__: null, lockdown, diff });
})();
