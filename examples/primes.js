'use strict';
// Counts the primes below a limit, split into ranges that run in parallel.
// Runs under Node (`node examples/primes.js [limit]`) and under the CLI shell
// (`out/threader examples/primes.js`), where `threader` and `thread` are
// globals and only console.log exists.
//
// It times the same work on 1 worker and on all workers and prints the
// speedup.

const { threader, thread } = typeof require === 'function' ? require('..') : globalThis;

const now = typeof performance === 'object' && performance !== null &&
  typeof performance.now === 'function' ? () => performance.now() : () => Date.now();

const LIMIT = (typeof process === 'object' && Number(process.argv[2])) || 4000000;
const CHUNKS = 64;

// Runs in a worker: only its parameters and ECMAScript built-ins.
function countPrimes(range) {
  let count = 0;
  for (let n = Math.max(range.from, 2); n < range.to; n++) {
    if (n % 2 === 0) {
      if (n === 2) count++;
      continue;
    }
    let prime = true;
    for (let d = 3; d * d <= n; d += 2) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

function ranges() {
  const out = [];
  const step = Math.ceil(LIMIT / CHUNKS);
  for (let from = 0; from < LIMIT; from += step) {
    out.push({ from, to: Math.min(LIMIT, from + step) });
  }
  return out;
}

async function timed() {
  const t0 = now();
  const counts = await thread.all(ranges().map((r) => threader(countPrimes, r)));
  return { ms: now() - t0, primes: counts.reduce((a, b) => a + b, 0) };
}

async function main() {
  const workers = threader.config().maxWorkers;
  // Warm the pool so neither timing pays for starting it.
  await thread.all(threader((x) => x, 0));

  threader.config({ maxWorkers: 1 });
  const one = await timed();
  threader.config({ maxWorkers: null });
  await thread.all(ranges().slice(0, 8).map((r) => threader((x) => x.from, r)));
  const all = await timed();

  if (one.primes !== all.primes) throw new Error(`mismatch: ${one.primes} vs ${all.primes}`);
  console.log(`primes below ${LIMIT}: ${all.primes}`);
  console.log(`1 worker: ${one.ms.toFixed(1)} ms`);
  console.log(`${workers === null ? 'all' : workers} workers: ${all.ms.toFixed(1)} ms`);
  console.log(`speedup: ${(one.ms / all.ms).toFixed(2)}x`);
}

main().catch((err) => {
  console.log(`primes failed: ${err && err.stack ? err.stack : err}`);
  if (typeof process === 'object') process.exitCode = 1;
});
