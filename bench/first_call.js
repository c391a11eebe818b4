'use strict';
// One fresh process's first moments with Threader, from the outside:
// prints {load, config, mk, run, createToFirst, total} in ms, where `mk`
// is the first threader(fn) and `run` its thread.all.  Run it in a loop of
// fresh processes and take medians; this machine's speed drifts.
//
//   node bench/first_call.js            a task function the validation
//                                       record holds after the first run
//   node bench/first_call.js --fresh    a source no run has seen (its
//                                       constant is the process id), so
//                                       the validator loads acorn
//
// THREADER_CODE_CACHE=1 and THREADER_CACHE_DIR apply as usual.
const { performance } = require('node:perf_hooks');

const fresh = process.argv.includes('--fresh');
const t0 = performance.now();
const { threader, thread } = require('..');
const t1 = performance.now();
threader.config({ maxWorkers: 2 });
const t2 = performance.now();
// Indirect eval: a source text no earlier run has made.
const fn = fresh ? (0, eval)(`(x) => x + ${process.pid}`) : (x) => x + 1;
const t2b = performance.now();
const unit = threader(fn, 41);
const t3 = performance.now();
thread.all(unit).then(() => {
  const t4 = performance.now();
  const ms = (x) => Math.round(x * 1000) / 1000;
  console.log(JSON.stringify({
    load: ms(t1 - t0), config: ms(t2 - t1), mk: ms(t3 - t2b), run: ms(t4 - t3),
    createToFirst: ms(t4 - t1 - (t2b - t2)), total: ms(t4 - t0 - (t2b - t2)),
  }));
  return threader.shutdown();
});
