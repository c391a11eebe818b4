// Exercises index.d.ts; checked by `tsc -p tests/ts --noEmit`, never run.
import {
  threader, thread, Task, TaskContext, CancellablePromise, TaskStream, ThreaderConfig,
  Stats, ThreaderTimeoutError, ThreaderCloneError, ThreaderValidationError,
  ThreaderWorkerError, ThreaderError, AbortError,
} from '../..';

function square(x: number): number {
  return x * x;
}

function describe(s: string, ctx: TaskContext): { text: string; len: number } {
  ctx.progress(0.5);
  if (ctx.cancelled) return { text: '', len: 0 };
  return { text: s.toUpperCase(), len: s.length };
}

function fill(n: number, ctx: TaskContext): Float64Array {
  const out = new Float64Array(n);
  return ctx.transfer(out, [out.buffer as ArrayBuffer]);
}

async function main(): Promise<void> {
  const a: Task<number> = threader(square, 3);
  const b = threader(describe, 'abc', { timeout: 100, priority: 'high', retries: 2, seed: 7 });
  const c = threader(() => 'no data');
  const d = threader(fill, 1024, { transferMode: 'clone' });

  // @ts-expect-error data must match the function's parameter
  threader(square, 'three');
  // @ts-expect-error a function that needs data needs data
  threader(square);
  // @ts-expect-error unknown priority
  threader(square, 1, { priority: 'urgent' });

  const status: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' = a.status;
  const progress: number | undefined = b.progress;
  const maybe: number | undefined = a.result;
  const err: Error | undefined = a.error;
  const cancelled: boolean = a.cancel();
  void [status, progress, maybe, err, cancelled];

  // all: a tuple keeps each task's type, in input order.
  const run: CancellablePromise<[number, { text: string; len: number }, string]> = thread.all(a, b, c);
  const [n, info, s] = await run;
  const total: number = n + info.len + s.length;
  void total;

  const many = [1, 2, 3].map((x) => threader(square, x));
  const squares: number[] = await thread.all(many);
  const squares2: number[] = await thread.all(new Set(many));
  void [squares, squares2];

  const arr: Float64Array = (await thread.all(d))[0];
  void arr;

  const stream: TaskStream<number> = thread.stream(many);
  for await (const v of stream) {
    const x: number = v;
    if (x > 4) break;
  }
  thread.stream(a, b).cancel();

  thread.fire(a, b);
  const nothing: void = thread.fire(many);
  void nothing;

  const winner: number | string = await thread.race(a, c);
  const firstTwo: number[] = await thread.any(2, many);
  const mixed: (number | string)[] = await thread.any(1, a, c);
  void [winner, firstTwo, mixed];

  const r = thread.race(many);
  r.cancel(new Error('no longer needed'));

  const ac = new AbortController();
  threader(square, 2, {
    signal: ac.signal,
    transfer: [new ArrayBuffer(8)],
    with: { clamp: (x: number) => Math.max(0, x), LIMIT: 10 },
    onProgress: (f: number, t: Task<unknown>) => { void f; void t.status; },
  });
  ac.abort();

  const cfg: ThreaderConfig = threader.config({
    maxWorkers: 4, workerTimeout: 1000, enableValidation: true, transferMode: 'transfer',
    maxHeapMB: 256, onError: (e: Error) => { void e.message; }, with: { K: 1 }, trace: null,
  });
  const workers: number | null = cfg.maxWorkers;
  void workers;
  threader.config({ maxWorkers: null, trace: (rec) => { void rec.event; } });
  // @ts-expect-error unknown transfer mode
  threader.config({ transferMode: 'fast' });

  const st: Stats = threader.stats();
  const runs: number = st.totals.tasksRun + st[0].busyMs + st.tasks.inFlight;
  void runs;

  await threader.shutdown();

  try {
    await thread.all(a);
  } catch (e) {
    if (e instanceof ThreaderTimeoutError) {
      const code: 'ERR_THREADER_TIMEOUT' = e.code;
      const ms: number = e.timeout;
      void [code, ms];
    } else if (e instanceof ThreaderCloneError) {
      const path: string | undefined = e.path;
      void path;
    } else if (e instanceof ThreaderValidationError) {
      void [e.identifier, e.line, e.column];
    } else if (e instanceof ThreaderWorkerError) {
      void e.attempts;
    } else if (e instanceof AbortError) {
      const name: 'AbortError' = e.name;
      void name;
    } else if (e instanceof ThreaderError) {
      const code: string = e.code;
      void code;
    } else if (e instanceof AggregateError) {
      void e.errors;
    }
  }
}

void main;
