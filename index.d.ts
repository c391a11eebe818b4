// Type declarations for Threader: true multi-core parallelism for pure
// JavaScript functions, one V8 isolate per core.
//
//   const { threader, thread } = require('threader');
//   const squares = await thread.all([1, 2, 3].map((n) => threader((x) => x * x, n)));
//
// Task functions run in another isolate: they see only their parameters,
// ECMAScript built-ins and the names injected with `opts.with`.  Their data
// and results cross by structured clone, or are moved (`opts.transfer`,
// `ctx.transfer`, `transferMode`), or are shared (SharedArrayBuffer,
// `threader.share`): docs/DATA.md is the contract.

/** Where a task is in its life. */
export type TaskStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

/** Scheduling priority of a task. */
export type Priority = 'high' | 'normal' | 'low';

/**
 * Which ArrayBuffers of a task's data are moved to the worker instead of
 * copied.  A moved buffer is detached in the caller (byteLength 0, its
 * typed arrays and DataViews read as empty), as with postMessage; other
 * views over it are detached too.  In every mode SharedArrayBuffers (and
 * typed arrays over them) and `threader.share` values are shared, never
 * copied, and buffers that cannot move (WebAssembly memory) are copied.
 * - `'shared'` (the default): only the buffers listed in `opts.transfer`
 *   move; everything else is copied (postMessage semantics).  The default is
 *   not `'auto'` because whether a caller's array survives the call would
 *   then depend on its size.
 * - `'auto'`: `opts.transfer`, plus every buffer of 8 KiB or more (the
 *   measured point where moving beats copying, docs/DATA.md) found at the
 *   top of data: data itself, its elements or property values, and theirs
 *   when they are plain objects or arrays (the first 64 of each).  Smaller
 *   buffers are copied.
 * - `'transfer'`: `opts.transfer`, plus every buffer at the top level of
 *   data (data itself, its direct elements or property values), any size.
 * - `'clone'`: nothing moves; `opts.transfer` is ignored.
 * `'auto'` and `'transfer'` move a typed array's or DataView's buffer only
 * when the view covers all of it: a subarray, or a small Node Buffer (which
 * lives in a pool shared with other Buffers), is copied.
 */
export type TransferMode = 'auto' | 'clone' | 'transfer' | 'shared';

/** The part of AbortSignal that Threader uses. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener?(type: 'abort', listener: () => void): void;
}

/** The second argument of a task function, inside the worker. */
export interface TaskContext {
  /** Reports progress, 0..1; cheap enough to call often. */
  progress(fraction: number): void;
  /** True once the task was cancelled, for cooperative loops. */
  readonly cancelled: boolean;
  /**
   * Return `ctx.transfer(value, buffers)` to move `buffers` (found inside
   * `value`) back to the caller instead of copying them; the worker's views
   * over them are detached.  (A large buffer that came in with the task's
   * data and goes back in its result is moved back anyway: nothing in the
   * worker can see it after the task.)
   */
  transfer<T>(value: T, buffers: ArrayBuffer[]): T;
}

/** A function that runs in a worker: `fn(data, ctx)`. */
export type TaskFunction<D, R> = (data: D, ctx: TaskContext) => R;

export interface TaskOptions {
  /** Milliseconds before the task fails with ERR_THREADER_TIMEOUT; 0 for none. Defaults to config's `workerTimeout`. */
  timeout?: number | null;
  /** Default `'normal'`. */
  priority?: Priority;
  /**
   * How many times to re-run the task when its worker is lost
   * (ERR_THREADER_WORKER, e.g. the heap limit).  A task that threw, timed
   * out or was cancelled is never re-run.  Default 0.
   */
  retries?: number;
  /** Aborting it cancels the task; an already aborted signal cancels it at once. */
  signal?: AbortSignalLike | null;
  /**
   * ArrayBuffers in data to move to the worker instead of copying them:
   * detached in the caller once the task is submitted (the microtask after
   * the thread.* call that started it).  Ignored under transferMode 'clone'.
   */
  transfer?: ArrayBuffer[];
  /** Overrides config's `transferMode` for this task. */
  transferMode?: TransferMode;
  /** Seed of the worker's Math.random for this task (uint32); the same seed gives the same sequence. */
  seed?: number;
  /**
   * Pure helper functions and constants bound by name inside the task
   * function (and inside each other).  Helpers are validated like the task
   * function; constants must be primitives, arrays, plain objects or typed
   * arrays, or SharedValues (`threader.share`), which bind the shared value
   * itself and cross to each worker once.  Merged over config's `with`.
   */
  with?: Record<string, unknown> | null;
  /** Called on the host with each progress report. */
  onProgress?: (fraction: number, task: Task<unknown>) => void;
}

/**
 * A unit of work made by `threader(fn, data, opts)`.  Nothing runs until a
 * `thread.*` call takes it.  A task runs at most once: every runner it is
 * given to shares that run, and a settled task hands its settlement to any
 * later runner at once.
 */
export interface Task<T = unknown> {
  /** 'running' from the moment a runner takes the task (queued or executing). */
  readonly status: TaskStatus;
  /** Last value reported with ctx.progress, undefined if none. */
  readonly progress: number | undefined;
  /** The result once completed. */
  readonly result: T | undefined;
  /** The Error once failed; an AbortError once cancelled. */
  readonly error: Error | undefined;
  /** The task function's name. */
  readonly name: string;
  /**
   * Pending: it never runs.  Running: it settles as 'cancelled' at once and
   * its worker is stopped.  Settled: nothing happens.  Returns whether the
   * task was cancelled by this call.
   */
  cancel(reason?: unknown): boolean;
}

/** The promise of a run; `.cancel()` rejects it with an AbortError and cancels its tasks. */
export interface CancellablePromise<T> extends Promise<T> {
  cancel(reason?: unknown): boolean;
}

/**
 * Results in completion order.  Leaving a for-await loop (break, return,
 * throw) cancels the tasks not yet finished; a failed task makes the
 * iteration throw its error after the results that came before it.
 */
export interface TaskStream<T> extends AsyncIterableIterator<T> {
  next(): Promise<IteratorResult<T, undefined>>;
  return(value?: unknown): Promise<IteratorResult<T, unknown>>;
  /** Cancels the remaining tasks; the pending or next read rejects with an AbortError. */
  cancel(reason?: unknown): boolean;
  [Symbol.asyncIterator](): TaskStream<T>;
}

type ResultOf<X> = X extends Task<infer T> ? T : never;
type ResultsOf<Ts extends readonly Task<any>[]> = { -readonly [K in keyof Ts]: ResultOf<Ts[K]> };

export interface Thread {
  /** Results in input order; rejects on the first failure and cancels the rest. */
  all<const Ts extends readonly Task<any>[]>(tasks: Ts): CancellablePromise<ResultsOf<Ts>>;
  all<T>(tasks: Iterable<Task<T>>): CancellablePromise<T[]>;
  all<const Ts extends readonly Task<any>[]>(...tasks: Ts): CancellablePromise<ResultsOf<Ts>>;

  /** Async iterable of results in completion order. */
  stream<T>(tasks: Iterable<Task<T>>): TaskStream<T>;
  stream<const Ts extends readonly Task<any>[]>(...tasks: Ts): TaskStream<ResultOf<Ts[number]>>;

  /** Runs the tasks and returns nothing; failures go to config's onError. */
  fire(tasks: Iterable<Task<any>>): void;
  fire(...tasks: Task<any>[]): void;

  /** Settles like Promise.race and cancels the others. */
  race<T>(tasks: Iterable<Task<T>>): CancellablePromise<T>;
  race<const Ts extends readonly Task<any>[]>(...tasks: Ts): CancellablePromise<ResultOf<Ts[number]>>;

  /**
   * The first `n` successful results in completion order; cancels the rest.
   * Rejects with an AggregateError of the failures once `n` cannot be reached.
   * Throws a RangeError for a negative or non-integer `n`, or one above the
   * number of tasks.
   */
  any<T>(n: number, tasks: Iterable<Task<T>>): CancellablePromise<T[]>;
  any<const Ts extends readonly Task<any>[]>(n: number, ...tasks: Ts): CancellablePromise<ResultOf<Ts[number]>[]>;
}

export interface ConfigOptions {
  /** Worker count; null restores the default: one per CPU this process may
   *  run on (its affinity mask, as os.availableParallelism() counts them). */
  maxWorkers?: number | null;
  /** Default timeout in ms for tasks without their own; 0 or null for none. */
  workerTimeout?: number | null;
  /** Static validation of task functions at threader(fn); default true. */
  enableValidation?: boolean;
  transferMode?: TransferMode;
  /**
   * Heap limit of each worker isolate, in MB, for isolates made afterwards; null for V8's default.
   * It bounds ArrayBuffer memory exactly; the JS heap gets at least 16 MB, which V8's background
   * compilers need to start an isolate without aborting the process.
   */
  maxHeapMB?: number | null;
  /**
   * Receives failures nobody awaits: thread.fire tasks and throwing hooks.
   * Without it they are printed with console.error.
   */
  onError?: ((error: Error, task?: Task<unknown>) => void) | null;
  /** Helpers and constants injected into every task (see TaskOptions.with). */
  with?: Record<string, unknown> | null;
  /**
   * A file name for a Chrome trace-event file (where the host supports it),
   * a function that receives trace records, true to log them, or null.
   */
  trace?: string | boolean | ((record: TraceRecord) => void) | null;
}

export interface TraceRecord {
  event: string;
  task?: string;
  [key: string]: unknown;
}

/** The settings in force; returned frozen by threader.config(). */
export interface ThreaderConfig {
  readonly maxWorkers: number | null;
  readonly workerTimeout: number;
  readonly enableValidation: boolean;
  readonly transferMode: TransferMode;
  readonly maxHeapMB: number | null;
  readonly onError: ((error: Error, task?: Task<unknown>) => void) | null;
  readonly with: Readonly<Record<string, unknown>> | null;
  readonly trace: string | boolean | ((record: TraceRecord) => void) | null;
}

/** Counters of one worker. */
export interface WorkerStats {
  tasksRun: number;
  tasksFailed: number;
  steals: number;
  parks: number;
  busyMs: number;
  heapUsed: number;
  /** Isolates this worker has made: its first, one per replacement after a
   * heap limit, and one per rebuild after a task changed an intrinsic. */
  isolatesCreated: number;
  running: number | boolean;
  [key: string]: unknown;
}

/** What threader.stats() returns: one entry per worker, plus totals. */
export type Stats = WorkerStats[] & {
  /** Sums over the workers, and `workers`: how many. */
  totals: { [K in keyof WorkerStats]: number } & { workers: number };
  /** The shared-value registry (threader.share), where the binding has one. */
  shared?: SharedStats;
  /** Host-side task counters. */
  tasks: {
    created: number;
    started: number;
    submitted: number;
    completed: number;
    failed: number;
    cancelled: number;
    retried: number;
    /** Submitted to the pool and not yet reported back by it. */
    inFlight: number;
    /** Started, waiting for the next submission batch. */
    queued: number;
    /** The binding's own count of unsettled tasks. */
    pending: number;
  };
};

/** Counters of threader.share(), for the whole process. */
export interface SharedStats {
  /** Shared values registered and not released. */
  live: number;
  /** Their serialized size plus their SharedArrayBuffer memory, in bytes. */
  liveBytes: number;
  created: number;
  released: number;
  /** How many times a worker deserialized a shared value (once per worker and value). */
  materialized: number;
}

/**
 * A read-only input shared by many tasks, made by `threader.share(value)`:
 * it crosses to each worker once (not once per task), where it is
 * deserialized once, deep-frozen and cached.  Use it in `with` (task or
 * config): `threader(fn, x, { with: { LUT } })` binds `LUT` to the value.
 * A SharedValue of an object may also appear in data, at any depth, where
 * the worker sees the value.  The handle itself is frozen.
 */
export interface SharedValue {
  /** The id tasks refer to. */
  readonly id: number;
  /** Whether release() was called (or the value was released otherwise). */
  readonly released: boolean;
  /**
   * Lets the value go.  Tasks started before the call still get it; tasks
   * started afterwards fail with ERR_THREADER_SHARE_RELEASED.  Workers drop
   * their copies before their next task.  Returns whether this call
   * released it.  A SharedValue nobody references any more is released
   * automatically (FinalizationRegistry) where the host has one.
   */
  release(): boolean;
}

export interface Threader {
  /**
   * Makes a task; nothing runs until a thread.* call.  Throws synchronously:
   * a TypeError for a non-function fn (code ERR_THREADER_VALIDATION), a
   * ThreaderValidationError for a function that cannot run in a worker, a
   * TypeError or RangeError for bad options.
   */
  <R>(fn: TaskFunction<undefined, R>): Task<R>;
  <D, R>(fn: TaskFunction<D, R>, data: D, opts?: TaskOptions | null): Task<R>;

  /** Changes settings (all or nothing) and returns the settings in force. */
  config(options?: ConfigOptions | null): ThreaderConfig;
  /**
   * Shares a read-only value with every task that names it (see
   * SharedValue).  ArrayBuffers, typed arrays and DataViews (also inside
   * the value) are copied once into SharedArrayBuffers: every worker reads
   * that one memory, which JavaScript cannot freeze, so treat it as read
   * only.  Other values are serialized once.  Later changes to `value` are
   * not seen.  Throws a ThreaderError with code ERR_THREADER_SHARE (and
   * `path`, e.g. "value.cb") for what cannot be cloned.
   */
  share<T>(value: T): SharedValue;
  /** The class of SharedValue handles (for instanceof); not constructible. */
  readonly SharedValue: abstract new () => SharedValue;
  stats(): Stats;
  /**
   * Cancels every started, unsettled task (AbortError), stops the workers
   * and resolves when all of them have settled.  Threader keeps working
   * afterwards: the next run restarts the pool.
   */
  shutdown(): Promise<void>;
}

export const threader: Threader;
export const thread: Thread;

export class ThreaderError extends Error {
  constructor(message?: string, code?: string, options?: ErrorOptions);
  code: string;
}

/** threader(fn) refused the function. */
export class ThreaderValidationError extends ThreaderError {
  constructor(message?: string, details?: { identifier?: string; line?: number; column?: number });
  code: 'ERR_THREADER_VALIDATION';
  /** The offending identifier, e.g. 'console'. */
  identifier?: string;
  /** 1-based, relative to the function's own source. */
  line?: number;
  column?: number;
}

export class ThreaderTimeoutError extends ThreaderError {
  constructor(message?: string, timeout?: number);
  code: 'ERR_THREADER_TIMEOUT';
  /** The timeout that ran out, in ms. */
  timeout: number;
}

/** Data or a result that cannot be serialized. */
export class ThreaderCloneError extends ThreaderError {
  constructor(message?: string, path?: string);
  code: 'ERR_THREADER_CLONE';
  /** The offending value, e.g. 'data.items[3].cb'. */
  path?: string;
}

/** The worker's isolate was lost (e.g. its heap limit). */
export class ThreaderWorkerError extends ThreaderError {
  constructor(message?: string);
  code: 'ERR_THREADER_WORKER';
  /** How many times the task ran. */
  attempts?: number;
}

/** Cancellation. */
export class AbortError extends Error {
  constructor(message?: string, options?: ErrorOptions);
  name: 'AbortError';
  code: 'ABORT_ERR';
}
