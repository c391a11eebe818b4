'use strict';
// Load: N tiny tasks (default 1,000,000) through thread.all in batches of
// 10,000, then N through thread.stream (fed in windows, so that a stream
// of N tasks does not hold N task objects at once), sampling RSS after a
// warm-up.  Fails (exit 1) if RSS grows or shrinks by more than 25% within
// a phase (its second half against its third quarter), if a result is wrong, or if
// a task is lost.  Prints tasks/s and the RSS
// trace.
//
//   node tests/load/million.js [N]          (THREADER_ADDON=... to pick an addon)
//   node tests/load/million.js 100000 --json
//
// tests/js/fault_load.test.js runs a smaller N in the suite.

const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const { threader, thread } = require(root);

const args = process.argv.slice(2);
const N = Number(args.find((a) => /^\d+$/.test(a)) || 1000000);
const JSON_OUT = args.includes('--json');
const BATCH = 10000;
const TOLERANCE = 0.25;

const tiny = (x) => x + 1;
const mb = (bytes) => Math.round(bytes / 1048576);

function log(...parts) {
  if (!JSON_OUT) console.log(...parts);
}

function medianOf(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function movingMedian(values, width) {
  const out = [];
  for (let i = 0; i + width <= values.length; i++) out.push(medianOf(values.slice(i, i + width)));
  return out;
}

async function viaAll(count, trace, sampleEvery) {
  const t0 = performance.now();
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    const tasks = new Array(n);
    for (let i = 0; i < n; i++) tasks[i] = threader(tiny, done + i);
    const results = await thread.all(tasks);
    if (results.length !== n || results[0] !== done + 1 || results[n - 1] !== done + n) {
      throw new Error(`thread.all batch at ${done}: wrong results`);
    }
    if (trace && (done / BATCH) % sampleEvery === 0) trace.push(process.memoryUsage().rss);
  }
  return performance.now() - t0;
}

// thread.stream over `count` tasks, in streams of BATCH tasks each (a
// stream holds its tasks until it ends), read as they complete.
async function viaStream(count, trace, sampleEvery) {
  const t0 = performance.now();
  let seen = 0;
  let sum = 0;
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    const tasks = new Array(n);
    for (let i = 0; i < n; i++) tasks[i] = threader(tiny, i);
    for await (const v of thread.stream(tasks)) {
      seen++;
      sum += v;
    }
    if (trace && (done / BATCH) % sampleEvery === 0) trace.push(process.memoryUsage().rss);
  }
  if (seen !== count) throw new Error(`thread.stream: ${seen} of ${count} results`);
  // Each batch of n sums 1..n.
  let expected = 0;
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    expected += (n * (n + 1)) / 2;
  }
  if (sum !== expected) throw new Error(`thread.stream: sum ${sum}, expected ${expected}`);
  return performance.now() - t0;
}

async function main() {
  const workers = threader.config().maxWorkers;
  log(`million: N=${N}, batches of ${BATCH}, ${workers} workers, node ${process.version}`);
  // Warm-up: start the pool, compile, let V8 and malloc settle.
  const warm = Math.max(BATCH * 20, Math.floor(N / 10));
  await viaAll(warm, null, 1);
  await viaStream(BATCH * 5, null, 1);

  const allTrace = [];
  const allMs = await viaAll(N, allTrace, 1);
  const streamTrace = [];
  const streamMs = await viaStream(N, streamTrace, 1);
  const stats = threader.stats();

  // Each phase against its own level: thread.stream keeps a different
  // working set than thread.all (its result queue and windows), and glibc's
  // per-thread arenas settle there over its first part (Node 22/24 at
  // ~450k tasks/s: +30% within the first 40% of the phase, then flat up to
  // 3M tasks; at ~420k tasks/s on Node 20 the moving median still rose to
  // +26% of the second quarter's level late in the phase, once in ~10 runs).
  // A leak is growth within a phase: the base of each is the median of its
  // third quarter, and its second half must stay within +-TOLERANCE of it.
  const phase = (t) => {
    const q = Math.max(1, Math.floor(t.length / 4));
    const base = medianOf(t.slice(2 * q, 3 * q));
    const smooth = movingMedian(t.slice(2 * q), Math.min(9, t.length - 2 * q));
    return { base, lo: Math.min(...smooth), hi: Math.max(...smooth), rawHi: Math.max(...t.slice(2 * q)) };
  };
  const phases = [phase(allTrace), phase(streamTrace)];
  const trace = [...allTrace, ...streamTrace];
  const base = phases[0].base;
  log(`RSS levels (median of each phase's third quarter): all ${mb(phases[0].base)} MB, stream ${mb(phases[1].base)} MB`);
  const lo = Math.min(phases[0].lo, phases[1].lo);
  const hi = Math.max(phases[0].hi, phases[1].hi);
  const rawHi = Math.max(...trace);
  // At most 20 points of each trace in the report.
  const thin = (values) => values.filter((_, i) => i % Math.max(1, Math.floor(values.length / 20)) === 0);
  const report = {
    N,
    workers,
    allTasksPerSec: Math.round(N / (allMs / 1000)),
    streamTasksPerSec: Math.round(N / (streamMs / 1000)),
    allSeconds: +(allMs / 1000).toFixed(2),
    streamSeconds: +(streamMs / 1000).toFixed(2),
    baseRssMB: mb(base),
    streamBaseRssMB: mb(phases[1].base),
    minRssMB: mb(lo),
    maxRssMB: mb(hi),
    rawMaxRssMB: mb(rawHi),
    allRssTraceMB: thin(allTrace).map(mb),
    streamRssTraceMB: thin(streamTrace).map(mb),
    inFlight: stats.tasks.inFlight,
    pending: stats.tasks.pending,
  };
  const failures = [];
  for (const [name, p] of [['thread.all', phases[0]], ['thread.stream', phases[1]]]) {
    if (p.hi > p.base * (1 + TOLERANCE) || p.lo < p.base * (1 - TOLERANCE)) {
      failures.push(`${name}: RSS (moving median of 9) left +-${TOLERANCE * 100}% of ` +
                    `${mb(p.base)} MB: ${mb(p.lo)}..${mb(p.hi)} MB`);
    }
    if (p.rawHi > p.base * 1.75) {
      failures.push(`${name}: an RSS sample reached ${mb(p.rawHi)} MB, over +75% of ${mb(p.base)} MB`);
    }
  }
  if (stats.tasks.inFlight !== 0 || stats.tasks.pending !== 0) {
    failures.push(`tasks still in flight: ${stats.tasks.inFlight} (pending ${stats.tasks.pending})`);
  }
  report.failures = failures;
  if (JSON_OUT) {
    console.log(JSON.stringify(report));
  } else {
    log(`thread.all:    ${report.allTasksPerSec} tasks/s (${report.allSeconds} s)`);
    log(`thread.stream: ${report.streamTasksPerSec} tasks/s (${report.streamSeconds} s)`);
    log(`RSS moving median ${report.minRssMB}..${report.maxRssMB} MB, raw max ${report.rawMaxRssMB} MB`);
    log(`RSS trace (MB), all:    ${report.allRssTraceMB.join(' ')}`);
    log(`RSS trace (MB), stream: ${report.streamRssTraceMB.join(' ')}`);
    for (const f of failures) log(`FAIL: ${f}`);
    log(failures.length === 0 ? 'ok' : 'FAILED');
  }
  process.exitCode = failures.length === 0 ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
