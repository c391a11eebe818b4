'use strict';
// A pure-JS implementation of the binding contract (js/BINDING.md), for
// testing js/api.js without the native addon.
//
// Tasks run on the main thread, `maxWorkers` of them per setImmediate turn,
// one handler call per turn.  Sync code cannot be interrupted, so:
// - a running task cannot be cancelled (cancel() only removes queued ones);
// - a timeout is checked after the task returns: a task that ran longer
//   than its timeout reports TIMEOUT (an infinite loop would hang the test,
//   so tests that need a real timeout skip under the mock);
// - ctx.cancelled is always false.
// Test hooks, mock only:
// - throwing an object with `mockWorkerLost: true` reports WORKER_LOST;
// - ctx.mockRuns is how many times the same function ran before in this
//   binding (so a task can fail on its first run only).

const path = require('node:path');
const { findUncloneable } = require(path.join(__dirname, '..', '..', '..', 'js', 'api.js'));

const EV = {
  COMPLETED: 0, THREW: 1, TIMEOUT: 2, CANCELLED: 3, WORKER_LOST: 4, CLONE: 5,
  PROGRESS: 6,
};

class TransferResult {
  constructor(value, list) {
    this.value = value;
    this.list = list;
  }
}

// As js/worker_runtime.js describes a thrown value.
function errorValue(err, depth = 0) {
  if (err === null || typeof err !== 'object') {
    return { name: 'Error', message: String(err), stack: '', value: err, nonError: true };
  }
  const value = {};
  for (const key of Object.keys(err)) {
    try {
      value[key] = structuredClone(err[key]);
    } catch {
      // Not cloneable: dropped, as the serializer would.
    }
  }
  value.name = String(err.name);
  value.message = String(err.message);
  value.stack = String(err.stack);
  if (depth < 3) {
    const cause = Object.getOwnPropertyDescriptor(err, 'cause');
    if (cause && 'value' in cause) {
      value.cause = cause.value !== null && typeof cause.value === 'object' ?
        errorValue(cause.value, depth + 1) : cause.value;
    }
    if (Array.isArray(err.errors)) value.errors = err.errors.map((e) => errorValue(e, depth + 1));
  }
  return value;
}

class MockBinding {
  constructor({ maxWorkers = 4 } = {}) {
    this.isMock = true;
    this.defaultMaxWorkers = maxWorkers;
    this.maxWorkers = maxWorkers;
    this.maxHeapMB = 0;
    this.fns = [null];  // fnId 0 unused
    this.queues = [[], [], []];  // by priority
    this.handler = null;
    this.events = [];
    this.scheduled = false;
    this.inFlight = 0;  // submitted, final event not yet delivered
    this.workers = [];
    this.submitCalls = 0;
    this.submitSizes = [];
    this.configureCalls = [];
    this.shutdowns = 0;
  }

  registerFunction(source, name, inert = false) {
    if (typeof source !== 'string') throw new TypeError('source must be a string');
    this.fns.push({ source, name, inert, runs: 0 });
    return this.fns.length - 1;
  }

  // The native binding's contract (js/BINDING.md): `count` tasks, 7 numbers
  // each in `numbers` (taskId, fnId, timeoutMs, priority, seed, flags, and
  // the data when flags & 2) and 2 values each in `values` (data unless
  // flags & 2, transfer list when flags & 1).
  submit(count, numbers, values) {
    if (!Number.isInteger(count) || count < 0 || !(numbers instanceof Float64Array) ||
        !Array.isArray(values) || numbers.length < count * 7 || values.length < count * 2) {
      throw new TypeError('submit: expected (count, Float64Array, Array)');
    }
    this.submitCalls++;
    this.submitSizes.push(count);
    const failures = [];
    for (let i = 0; i < count; i++) {
      const [taskId, fnId, timeoutMs, priority, seed, flags, number] =
        numbers.subarray(i * 7, i * 7 + 7);
      const data = flags & 2 ? number : values[i * 2];
      const transfer = flags & 1 ? values[i * 2 + 1] : undefined;
      if (!Number.isInteger(taskId) || taskId <= 0) {
        throw new TypeError(`submit: bad taskId ${taskId}`);
      }
      if (this.fns[fnId] === undefined || fnId === 0) {
        throw new TypeError(`submit: unknown fnId ${fnId}`);
      }
      let copy;
      try {
        copy = transfer === undefined ? structuredClone(data) :
          structuredClone(data, { transfer });
      } catch (err) {
        failures.push(i, err.message);
        continue;
      }
      this.queues[priority].push({ taskId, fnId, data: copy, timeoutMs, seed });
      this.inFlight++;
    }
    this.schedule();
    return failures.length > 0 ? failures : undefined;
  }

  cancel(taskId) {
    for (const q of this.queues) {
      const i = q.findIndex((t) => t.taskId === taskId);
      if (i !== -1) {
        q.splice(i, 1);
        this.events.push(taskId, EV.CANCELLED, undefined);
        this.schedule();
        return true;
      }
    }
    return false;
  }

  setHandler(fn) {
    this.handler = fn;
  }

  configure(options) {
    this.configureCalls.push({ ...options });
    if (options.maxWorkers !== undefined) {
      this.maxWorkers = options.maxWorkers || this.defaultMaxWorkers;
    }
    if (options.maxHeapMB !== undefined) this.maxHeapMB = options.maxHeapMB;
  }

  stats() {
    while (this.workers.length < this.maxWorkers) {
      this.workers.push({
        tasksRun: 0, tasksFailed: 0, steals: 0, parks: 0, busyMs: 0,
        heapUsed: 0, isolatesCreated: 1, running: false,
      });
    }
    return this.workers.slice(0, this.maxWorkers).map((w) => ({ ...w }));
  }

  shutdown() {
    this.shutdowns++;
    for (const q of this.queues) {
      for (const t of q) this.events.push(t.taskId, EV.CANCELLED, undefined);
      q.length = 0;
    }
    this.schedule();
  }

  pending() {
    return this.inFlight;
  }

  // -- internals ------------------------------------------------------------

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.turn());
  }

  take() {
    for (const q of this.queues) {
      if (q.length > 0) return q.shift();
    }
    return undefined;
  }

  turn() {
    this.scheduled = false;
    this.stats();  // make sure the worker records exist
    for (let w = 0; w < this.maxWorkers; w++) {
      const task = this.take();
      if (task === undefined) break;
      this.run(task, this.workers[w]);
    }
    const events = this.events;
    this.events = [];
    for (let i = 1; i < events.length; i += 3) {
      if (events[i] !== EV.PROGRESS) this.inFlight--;
    }
    if (events.length > 0 && this.handler !== null) this.handler(events);
    if (this.queues.some((q) => q.length > 0) || this.events.length > 0) {
      this.schedule();
    }
  }

  run(task, worker) {
    const entry = this.fns[task.fnId];
    const events = this.events;
    const id = task.taskId;
    const t0 = Date.now();
    worker.tasksRun++;
    let kind;
    let value;
    try {
      // A fresh function object per task, as the real worker makes one.
      const fn = (0, eval)(`(${entry.source})`);
      const ctx = {
        progress(fraction) {
          events.push(id, EV.PROGRESS, fraction);
        },
        cancelled: false,
        transfer(v, list) {
          return new TransferResult(v, list);
        },
        mockRuns: entry.runs,
      };
      entry.runs++;
      const result = fn(task.data, ctx);
      try {
        value = result instanceof TransferResult ?
          structuredClone(result.value, { transfer: result.list }) :
          structuredClone(result);
        kind = EV.COMPLETED;
      } catch (err) {
        // As v8c/serializer.cc words it: the path when it can name one.
        kind = EV.CLONE;
        const where = findUncloneable(result, 'result');
        value = where !== undefined ?
          `${where.path}: ${where.reason} could not be cloned` :
          `result could not be cloned: ${err.message}`;
      }
    } catch (err) {
      if (err !== null && typeof err === 'object' && err.mockWorkerLost) {
        kind = EV.WORKER_LOST;
        value = 'The worker was lost (mock)';
        worker.isolatesCreated++;
      } else {
        kind = EV.THREW;
        value = errorValue(err);
      }
    }
    const elapsed = Date.now() - t0;
    worker.busyMs += elapsed;
    if (kind !== EV.COMPLETED) worker.tasksFailed++;
    if (task.timeoutMs > 0 && elapsed > task.timeoutMs) {
      kind = EV.TIMEOUT;
      value = undefined;
    }
    events.push(id, kind, value);
  }
}

module.exports = { MockBinding, EV };
