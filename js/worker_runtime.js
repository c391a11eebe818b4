// worker_runtime.js — the part of the worker that is JavaScript.
//
// Run once, while v8c/snapshot.cc makes the startup snapshot; its completion
// value (the runtime object below) is kept with SnapshotCreator::AddData and
// read back by each worker with Context::GetDataFromSnapshotOnce, so user
// code never sees it: it declares no global and mutates nothing global.
//
// The calling convention, as v8c/worker.cc drives it for each task:
//   fn(data, ctx)  where ctx = makeContext(...) below, one frozen object per
//   worker: ctx.progress(fraction), ctx.cancelled, ctx.transfer(value, bufs).
// A thrown value comes back to the host as describeError(value): a plain,
// cloneable object {name, message, stack, ...own enumerable properties}.
// Shared values (threader.share) are deep-frozen with deepFreeze(value) once
// per worker, right after they are deserialized (v8c/worker.cc).
//
// Everything used here is captured when the snapshot is made, before any
// user code exists; the worker freezes the intrinsics (js/lockdown.js) right
// after the context is deserialized.
(function workerRuntime() {
  'use strict';

  const {
    create: ObjectCreate,
    defineProperty: ObjectDefineProperty,
    freeze: ObjectFreeze,
    keys: ObjectKeys,
    getOwnPropertyDescriptor: ObjectGetOwnPropertyDescriptor,
    getOwnPropertyNames: ObjectGetOwnPropertyNames,
    getPrototypeOf: ObjectGetPrototypeOf,
    isFrozen: ObjectIsFrozen,
    preventExtensions: ObjectPreventExtensions,
  } = Object;
  const { isArray: ArrayIsArray } = Array;
  const { isView: ArrayBufferIsView } = ArrayBuffer;
  const { apply: ReflectApply } = Reflect;
  const ArrayPrototype = Array.prototype;
  const MapPrototype = Map.prototype;
  const SetPrototype = Set.prototype;
  const MapForEach = Map.prototype.forEach;
  const SetForEach = Set.prototype.forEach;
  const ObjectPrototype = Object.prototype;
  const ArrayBufferByteLength =
    ObjectGetOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength').get;
  const StringCtor = String;
  const ErrorCtor = Error;
  const hasOwn = Function.prototype.call.bind(Object.prototype.hasOwnProperty);

  const MAX_DEPTH = 3;  // for causes and AggregateError.errors
  const MAX_ERRORS = 100;

  // Defines (never assigns) so that frozen or tamed prototypes cannot turn
  // the write into a setter call or a silent no-op.
  function put(target, key, value) {
    ObjectDefineProperty(target, key, {
      __proto__: null, value, writable: true, enumerable: true,
      configurable: true,
    });
  }

  function safeString(value) {
    try {
      return StringCtor(value);
    } catch {
      return '[unprintable value]';
    }
  }

  function get(object, key) {
    try {
      return { ok: true, value: object[key] };
    } catch {
      return { ok: false, value: undefined };
    }
  }

  // Values V8's serializer refuses become text; objects are kept as they are
  // (the C++ side retries with only name/message/stack if one of them still
  // cannot be cloned).
  function cloneable(value) {
    const type = typeof value;
    if (type === 'function') return `[Function: ${value.name || 'anonymous'}]`;
    if (type === 'symbol') return safeString(value);
    return value;
  }

  function describeError(error, depth = 0) {
    const out = ObjectCreate(Object.prototype);
    if (error === null || (typeof error !== 'object' && typeof error !== 'function')) {
      // `throw 42`, `throw 'text'`: keep the value, give it an Error's shape.
      put(out, 'name', 'Error');
      put(out, 'message', safeString(cloneable(error)));
      put(out, 'stack', '');
      put(out, 'value', cloneable(error));
      put(out, 'nonError', true);
      return out;
    }
    let keys = [];
    try {
      keys = ObjectKeys(error);
    } catch {}
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (key === '__proto__') continue;
      const read = get(error, key);
      if (read.ok) put(out, key, cloneable(read.value));
    }
    const name = get(error, 'name');
    put(out, 'name', name.ok && name.value !== undefined ? safeString(name.value) : 'Error');
    const message = get(error, 'message');
    put(out, 'message', message.ok && message.value !== undefined ? safeString(message.value) : '');
    const stack = get(error, 'stack');
    put(out, 'stack', stack.ok && stack.value !== undefined ? safeString(stack.value) : '');
    if (depth < MAX_DEPTH) {
      let own;
      try {
        own = ObjectGetOwnPropertyDescriptor(error, 'cause');
      } catch {}
      if (own !== undefined && hasOwn(own, 'value')) {
        const cause = own.value;
        put(out, 'cause', cause !== null && typeof cause === 'object'
          ? describeError(cause, depth + 1) : cloneable(cause));
      }
      try {
        own = ObjectGetOwnPropertyDescriptor(error, 'errors');
      } catch {
        own = undefined;
      }
      if (own !== undefined && hasOwn(own, 'value') && ArrayIsArray(own.value)) {
        const errors = [];
        const list = own.value;
        for (let i = 0; i < list.length && i < MAX_ERRORS; i++) {
          errors[i] = describeError(list[i], depth + 1);
        }
        put(out, 'errors', errors);
      }
    }
    return out;
  }

  // One ctx per worker, frozen.  `progress`, `isCancelled` and `transfer`
  // are native functions bound to the worker (v8c/worker.cc).
  function makeContext(progress, isCancelled, transfer) {
    const ctx = {
      progress,
      get cancelled() {
        return isCancelled();
      },
      transfer,
    };
    // Nothing reachable from ctx may carry state from one task to the next.
    ObjectFreeze(ObjectGetOwnPropertyDescriptor(ctx, 'cancelled').get);
    ObjectFreeze(progress);
    ObjectFreeze(isCancelled);
    ObjectFreeze(transfer);
    return ObjectFreeze(ctx);
  }

  // Freezes a freshly deserialized shared value and everything in it, so that
  // no task can leave state behind in it for the next one on this worker.
  // Iterative (deep values do not overflow the stack); a frozen object is
  // not entered again, which also ends cycles.  Left as they are, and read
  // only by contract (docs/DATA.md): the elements of typed arrays and
  // DataViews (JavaScript cannot freeze them; they are made non-extensible),
  // arrays that hold only numbers (freezing them would make V8 box every
  // element: seconds for millions of doubles, and slow reads after), and
  // the entries of Maps and Sets (freezing a Map does not stop set()).
  function deepFreeze(root) {
    const stack = [root];
    const push = (v) => {
      if (v !== null && typeof v === 'object') stack[stack.length] = v;
    };
    const pushEntry = (value, key) => {
      push(key);
      push(value);
    };
    while (stack.length > 0) {
      const v = stack.pop();
      if (ObjectIsFrozen(v)) continue;
      if (ArrayBufferIsView(v)) {
        ObjectPreventExtensions(v);
        continue;
      }
      const proto = ObjectGetPrototypeOf(v);
      if (proto === ArrayPrototype && ArrayIsArray(v)) {
        const n = v.length;
        let numbers = n > 0;
        for (let i = 0; i < n && numbers; i++) {
          if (typeof v[i] !== 'number') numbers = false;
        }
        if (numbers) continue;
        ObjectFreeze(v);
        for (let i = 0; i < n; i++) push(v[i]);
        continue;
      }
      ObjectFreeze(v);
      if (proto === MapPrototype) {
        ReflectApply(MapForEach, v, [pushEntry]);
      } else if (proto === SetPrototype) {
        ReflectApply(SetForEach, v, [push]);
      } else {
        // Deserialized: data properties only (non-enumerable ones too, e.g.
        // an Error's cause).
        const keys = ObjectGetOwnPropertyNames(v);
        for (let i = 0; i < keys.length; i++) push(v[keys[i]]);
      }
    }
    return root;
  }

  // Large ArrayBuffers near the top of a task's result, for v8c/serializer.cc
  // to clone out of line (one copy, or none when the buffer came in with the
  // task): the result itself, its elements or property values, and theirs
  // when they are plain objects or arrays (the first 64 of each).  The same
  // rule and size as js/api.js's largeBuffers (OUT_OF_LINE_MIN, kOutOfLineMin
  // in C++).  Returns an array, or undefined when there are none (the usual
  // case).  A throwing getter ends the scan quietly: the serializer will
  // report it.
  const OUT_OF_LINE_MIN = 256 * 1024;
  const SCAN_WIDTH = 64;
  function byteLengthOf(buffer) {
    try {
      return ReflectApply(ArrayBufferByteLength, buffer, []);
    } catch {
      return -1;  // not an ArrayBuffer (a SharedArrayBuffer, or a fake)
    }
  }
  function largeBuffers(value) {
    let found;
    const visit = (v, depth) => {
      if (v === null || typeof v !== 'object') return;
      if (ArrayBufferIsView(v)) {
        const b = v.buffer;
        if (byteLengthOf(b) >= OUT_OF_LINE_MIN) (found || (found = [])).push(b);
        return;
      }
      if (byteLengthOf(v) >= OUT_OF_LINE_MIN) {
        (found || (found = [])).push(v);
        return;
      }
      if (depth >= 2) return;
      if (ArrayIsArray(v)) {
        const n = v.length < SCAN_WIDTH ? v.length : SCAN_WIDTH;
        for (let i = 0; i < n; i++) visit(v[i], depth + 1);
        return;
      }
      const proto = ObjectGetPrototypeOf(v);
      if (proto !== ObjectPrototype && proto !== null) return;
      const keys = ObjectKeys(v);
      const n = keys.length < SCAN_WIDTH ? keys.length : SCAN_WIDTH;
      for (let i = 0; i < n; i++) visit(v[keys[i]], depth + 1);
    };
    try {
      visit(value, 0);
    } catch {
      // A getter threw: serialize without out-of-line buffers.
    }
    return found;
  }

  // An Error made inside the worker's realm (for failures the runtime
  // itself reports, e.g. a promise that never settles).
  function makeError(message) {
    return new ErrorCtor(message);
  }

  return ObjectFreeze({
    __proto__: null,
    deepFreeze,
    describeError,
    largeBuffers,
    makeContext,
    makeError,
  });
})();
