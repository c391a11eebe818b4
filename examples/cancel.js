'use strict';
// Cancellation: an AbortController stops a long-running task (the worker is
// terminated, not waited for), a timeout stops a runaway loop, and a run's
// .cancel() stops a whole batch.  The pool keeps working after each.
//
//   node examples/cancel.js

const { threader, thread } = require('..');

// Runs in a worker: counts up forever looking for something that is never
// found.
function search(target) {
  let n = 0;
  for (;;) {
    n++;
    if (n === target) return n;  // target is negative: never
  }
}

async function main() {
  // 1. AbortController: cancel after 300 ms.
  const ac = new AbortController();
  const task = threader(search, -1, { signal: ac.signal });
  const t0 = performance.now();
  setTimeout(() => ac.abort(new Error('user pressed stop')), 300);
  try {
    await thread.all(task);
  } catch (err) {
    console.log(`aborted: ${err.name} after ${(performance.now() - t0).toFixed(0)} ms ` +
                `(cause: ${err.cause && err.cause.message}); task status: ${task.status}`);
  }

  // 2. A timeout on a runaway loop.
  try {
    await thread.all(threader(search, -1, { timeout: 100 }));
  } catch (err) {
    console.log(`timeout: ${err.code} (${err.message})`);
  }

  // 3. Cancel a whole run: every task in it stops.
  const batch = Array.from({ length: 4 }, () => threader(search, -1));
  const run = thread.all(batch);
  setTimeout(() => run.cancel(), 100);
  try {
    await run;
  } catch (err) {
    console.log(`run cancelled: ${err.name}; tasks: ${batch.map((t) => t.status).join(', ')}`);
  }

  // The workers are free again.
  const [answer] = await thread.all(threader((x) => x * 2, 21));
  console.log(`the pool still works: ${answer}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
