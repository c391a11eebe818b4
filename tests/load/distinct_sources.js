'use strict';
// Load: many distinct task sources in a long-running process.  Every
// distinct `opts.with` constant (and every distinct function text) becomes
// a new source that js/api.js interns (fnIds) and the binding registers
// (registerFunction) for good: nothing is ever evicted.  A service that
// passes a per-request value through `with` grows without bound.  This
// script measures it: N tasks, each with its own constant, in rounds of
// 5,000, printing RSS and the host heap; it fails (exit 1) if RSS after the
// warm-up grows by more than LIMIT_MB (default 50) over the run.
//
//   node tests/load/distinct_sources.js [N=200000] [LIMIT_MB=50]

const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const { threader, thread } = require(root);

const N = Number(process.argv[2] || 200000);
const LIMIT_MB = Number(process.argv[3] || 50);
const ROUND = 5000;
const mb = (b) => Math.round(b / 1048576);

async function main() {
  const f = (x) => x + K;  // eslint-disable-line no-undef
  let base;
  const t0 = Date.now();
  for (let done = 0, round = 0; done < N; done += ROUND, round++) {
    const tasks = [];
    for (let i = 0; i < ROUND; i++) tasks.push(threader(f, 1, { with: { K: done + i } }));
    const out = await thread.all(tasks);
    if (out[ROUND - 1] !== done + ROUND) throw new Error(`wrong result in round ${round}`);
    const m = process.memoryUsage();
    if (round === 3) base = m.rss;
    if (round % 5 === 4) {
      console.log(`${done + ROUND} distinct sources: RSS ${mb(m.rss)} MB, host heap ${mb(m.heapUsed)} MB, ` +
                  `worker heaps ${threader.stats().map((w) => mb(w.heapUsed)).join('/')} MB`);
    }
  }
  const growth = mb(process.memoryUsage().rss - base);
  console.log(`${N} distinct sources in ${((Date.now() - t0) / 1000).toFixed(1)} s; RSS grew ${growth} MB after the warm-up`);
  if (growth > LIMIT_MB) {
    console.log(`FAIL: more than ${LIMIT_MB} MB: interned sources are never released`);
    process.exitCode = 1;
  } else {
    console.log('ok');
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
