'use strict';
// One measurement in a fresh process: node bench/child.js <peer> <mode> '<json params>'
// Prints exactly one line "@@BENCH <json>" on stdout (run.js parses it), then
// exits. Every mode starts from a clean process, so RSS, JIT state and cold
// start of one peer never leak into another's numbers.

const { performance } = require('node:perf_hooks');
const workloads = require('./workloads.js');

const [, , peerName, mode, rawParams] = process.argv;
const params = rawParams ? JSON.parse(rawParams) : {};
// A cache directory of its own (Threader's snapshot and validation record;
// js/cache_dir.js): run.js passes a fresh empty one for the cold start of a
// first run on a machine.
if (params.cacheDir) process.env.THREADER_CACHE_DIR = params.cacheDir;
const peer = require(`./peers/${peerName}.js`);

const now = () => performance.now();  // ms, sub-µs resolution
const sleep = ms => new Promise(r => setTimeout(r, ms));

// selfCpuS: CPU time of this whole process (all threads) since it started;
// run.js compares it with the machine's busy time to spot other processes.
function emit(obj) {
  const c = process.cpuUsage();
  obj.selfCpuS = (c.user + c.system) / 1e6;
  process.stdout.write(`\n@@BENCH ${JSON.stringify(obj)}\n`);
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

// A gc() for the main isolate only. Not --expose-gc: that V8 flag is
// process-wide, so every isolate created later (Threader's and isolated-vm's
// workers) would get a `gc` global too. The flag is switched on just long
// enough to take gc from a throwaway context.
let gcFn = null;
// RssAnon / RssFile / RssShmem from /proc/self/status, in MB (Linux only).
function rssParts() {
  try {
    const st = require('node:fs').readFileSync('/proc/self/status', 'utf8');
    const get = k => { const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st); return m ? +m[1] / 1024 : null; };
    return { anon: get('RssAnon'), file: get('RssFile'), shmem: get('RssShmem') };
  } catch { return null; }
}

function gc() {
  if (gcFn === null) {
    const v8 = require('node:v8');
    const vm = require('node:vm');
    v8.setFlagsFromString('--expose-gc');
    try { gcFn = vm.runInNewContext('gc'); } catch { gcFn = () => {}; }
    v8.setFlagsFromString('--no-expose-gc');
  }
  gcFn(); gcFn();
}

// Runs `count` calls of `call(i)` all in flight at once, returns seconds.
// Serial (synchronous) peers are timed as a plain loop.
async function burst(pool, count, check) {
  const results = new Array(count);
  let t0, t1;
  if (peer.sync) {
    t0 = now();
    for (let i = 0; i < count; i++) results[i] = pool.tiny(i);
    t1 = now();
  } else {
    const ps = new Array(count);
    t0 = now();
    for (let i = 0; i < count; i++) ps[i] = pool.tiny(i);
    const out = await Promise.all(ps);
    t1 = now();
    for (let i = 0; i < count; i++) results[i] = out[i];
  }
  if (check) {
    for (let i = 0; i < count; i++) {
      const v = pool.unwrap(results[i]);
      if (v !== i + 1) throw new Error(`wrong result for task ${i}: ${JSON.stringify(results[i])}`);
    }
  }
  return (t1 - t0) / 1000;
}

// Runs `w` cpu tasks at once so that every worker of a w-sized pool gets one
// (pools hand queued tasks to idle workers; Threader's workers steal).
async function warmAll(pool, w, n) {
  const ps = [];
  for (let i = 0; i < w; i++) ps.push(pool.cpu(n));
  await Promise.all(ps);
}

// JIT warm-up for the cpu function, the same for the serial loop and every
// pool: many short calls (so V8 optimises it through the regular call path,
// not only by on-stack replacement of one long call), then one call per worker
// of a tenth of the real size, then a pause for background compile jobs.
const WARM_CALLS = 300;
async function jitWarm(pool, w, n) {
  const small = Math.max(1, Math.floor(n / 2000));
  if (peer.sync) {
    for (let i = 0; i < WARM_CALLS; i++) pool.cpu(small);
    pool.cpu(Math.max(1, Math.floor(n / 10)));
  } else {
    const ps = [];
    for (let i = 0; i < WARM_CALLS * w; i++) ps.push(pool.cpu(small));
    await Promise.all(ps);
    await warmAll(pool, w, Math.max(1, Math.floor(n / 10)));
  }
  await sleep(20);
}


// -- rounds that others did not disturb ------------------------------------
//
// Timed rounds (throughput, CPU tasks) check /proc/stat: if other processes
// used the cores during a round (the machine's busy time exceeds this
// process's own CPU time by more than 5% of the cores, or 30 ms), the round is
// marked contended and, when `clean` is set, one more round is run, up to 3x
// the planned number. The best time is taken from clean rounds when there are
// enough of them.
const CORES = require('node:os').availableParallelism ? require('node:os').availableParallelism() : require('node:os').cpus().length;
function busyTicks() {
  try {
    const f = require('node:fs').readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0);
  } catch { return null; }
}

async function rounds(runs, clean, fn) {
  const out = [];
  const maxRounds = clean ? runs * 3 : runs;
  let good = 0;
  for (let k = 0; k < maxRounds && good < runs; k++) {
    const b0 = busyTicks();
    const c0 = process.cpuUsage();
    const t0 = now();
    const extra = await fn(k);
    const wallS = (now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    const cpuS = (c.user + c.system) / 1e6;
    const b1 = busyTicks();
    const foreignS = b0 === null ? 0 : Math.max(0, (b1 - b0) / 100 - cpuS);
    const contended = foreignS > Math.max(0.05 * wallS * CORES, 0.03);
    out.push({ s: wallS, cpuS, foreignS: +foreignS.toFixed(3), contended, ...extra });
    if (!contended) good++;
    else if (clean) await sleep(500);
  }
  const cleanRounds = out.filter(r => !r.contended);
  const pool = cleanRounds.length ? cleanRounds : out;
  const best = pool.reduce((a, b) => (b.s < a.s ? b : a));
  return { rounds: out, best, allClean: cleanRounds.length >= runs };
}

const modes = {
  // Serial only: find n such that cpu(n) takes about targetS seconds.
  async calibrate({ targetS }) {
    let n = 1e6;
    workloads.cpu(n);
    for (;;) {
      const t0 = now(); workloads.cpu(n); const s = (now() - t0) / 1000;
      if (s > 0.05) {
        n = Math.round(n * targetS / s);
        break;
      }
      n *= 4;
    }
    const times = [];
    for (let i = 0; i < 3; i++) {
      const t0 = now(); workloads.cpu(n); times.push((now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    return { n, perCallS: times[1] };
  },

  // Serial only: `tasks` calls of cpu(n) back to back, best of `runs`.
  async serialCpu({ n, tasks, runs, clean }) {
    const pool = await peer.create({ workers: 1 }, await peer.load());
    await jitWarm(pool, 1, n);
    const r = await rounds(runs, clean, async () => {
      for (let i = 0; i < tasks; i++) pool.cpu(n);
      return {};
    });
    return {
      times: r.rounds.map(x => x.s), cpuTimes: r.rounds.map(x => x.cpuS), contended: r.rounds.map(x => x.contended),
      bestS: r.best.s, bestCpuS: r.best.cpuS, roundsChecked: true, allClean: r.allClean,
    };
  },

  async throughput({ tasks, runs, warmups, workers, clean }) {
    const pool = await peer.create({ workers }, await peer.load());
    try {
      for (let i = 0; i < warmups; i++) await burst(pool, tasks, i === 0);
      const r = await rounds(runs, clean, async k => { await burst(pool, tasks, k === 0); return {}; });
      return {
        tasks, times: r.rounds.map(x => x.s), contended: r.rounds.map(x => x.contended),
        tasksPerS: tasks / r.best.s, roundsChecked: true, allClean: r.allClean,
      };
    } finally { await pool.close(); }
  },

  async latency({ warm, samples, workers }) {
    const pool = await peer.create({ workers }, await peer.load());
    try {
      const lat = new Float64Array(samples);
      if (peer.sync) {
        for (let i = 0; i < warm; i++) pool.tiny(i);
        for (let i = 0; i < samples; i++) {
          const t0 = now(); const r = pool.tiny(i); lat[i] = now() - t0;
          if (r !== i + 1) throw new Error('wrong result');
        }
      } else {
        for (let i = 0; i < warm; i++) await pool.tiny(i);
        for (let i = 0; i < samples; i++) {
          const t0 = now(); const r = await pool.tiny(i); lat[i] = now() - t0;
          if (pool.unwrap(r) !== i + 1) throw new Error(`wrong result ${JSON.stringify(r)}`);
        }
      }
      const us = Array.from(lat, x => x * 1000).sort((a, b) => a - b);
      return {
        samples,
        p50us: quantile(us, 0.5),
        p99us: quantile(us, 0.99),
        meanUs: us.reduce((a, b) => a + b, 0) / us.length,
        minUs: us[0],
      };
    } finally { await pool.close(); }
  },

  // From the line that loads the library (require / import inside create)
  // to the first result of a tiny task. Pool size: the library's default for
  // Threader, one per core for the others.
  async cold({ workers }) {
    const t0 = now();
    const lib = await peer.load();
    const t1 = now();
    const pool = await peer.create({ workers }, lib);
    const t2 = now();
    const r = await pool.tiny(41);
    const t3 = now();
    if (pool.unwrap(r) !== 42) throw new Error(`wrong result ${JSON.stringify(r)}`);
    const out = { totalMs: t3 - t0, loadMs: t1 - t0, createMs: t2 - t1, firstTaskMs: t3 - t2 };
    await pool.close();
    return out;
  },

  // RSS with the pool warmed (every worker ran a task) minus the RSS of the
  // same process before the library was loaded, after running the workload
  // serially (the serial baseline), divided by the worker count.
  async memory({ workers, warmN }) {
    for (let i = 0; i < 1000; i++) workloads.tiny(i);
    workloads.cpu(warmN);
    gc(); await sleep(100); gc();
    const rss0 = process.memoryUsage.rss();
    const parts0 = rssParts();
    const pool = await peer.create({ workers }, await peer.load());
    try {
      await warmAll(pool, workers, warmN);
      const ps = [];
      for (let i = 0; i < 1000; i++) ps.push(pool.tiny(i));
      await Promise.all(ps);
      await warmAll(pool, workers, warmN);
      const started = typeof pool.startedWorkers === 'function' ? pool.startedWorkers() : null;
      gc(); await sleep(300); gc();
      const rss1 = process.memoryUsage.rss();
      const parts1 = rssParts();
      // How the growth splits: anonymous memory (heaps, stacks, malloc) vs
      // file-backed pages (code of node / the addon touched by the workers).
      const split = parts0 && parts1 && parts0.anon != null ? {
        anonMBPerWorker: (parts1.anon - parts0.anon) / workers,
        fileMBPerWorker: (parts1.file - parts0.file) / workers,
      } : {};
      return {
        workers, startedWorkers: started, ...split,
        rssBeforeMB: rss0 / 2 ** 20, rssAfterMB: rss1 / 2 ** 20,
        mbPerWorker: (rss1 - rss0) / 2 ** 20 / workers,
      };
    } finally { await pool.close(); }
  },

  // `tasks` equal cpu(n) tasks in flight on a pool of `workers`; best of runs.
  async scaling({ workers, n, tasks, runs, clean }) {
    const pool = await peer.create({ workers }, await peer.load());
    try {
      await jitWarm(pool, workers, n);
      const r = await rounds(runs, clean, async () => {
        const ps = [];
        for (let i = 0; i < tasks; i++) ps.push(pool.cpu(n));
        const out = await Promise.all(ps);
        // Equal tasks give equal results: a cheap check that every task ran.
        const first = pool.unwrap(out[0]);
        if (typeof first !== 'number' || out.some(v => pool.unwrap(v) !== first)) {
          throw new Error(`bad cpu results ${JSON.stringify(out.slice(0, 3))}`);
        }
        return {};
      });
      return {
        workers, tasks, times: r.rounds.map(x => x.s), cpuTimes: r.rounds.map(x => x.cpuS),
        contended: r.rounds.map(x => x.contended), bestS: r.best.s, bestCpuS: r.best.cpuS,
        roundsChecked: true, allClean: r.allClean,
      };
    } finally { await pool.close(); }
  },

  async probe() {
    const a = peer.available();
    return { ...a, version: a.ok ? peer.version() : null };
  },
};

(async () => {
  const fn = modes[mode];
  if (!fn) throw new Error(`unknown mode ${mode}`);
  const result = await fn(params);
  emit({ ok: true, peer: peerName, mode, ...result });
  process.exit(0);
})().catch(err => {
  emit({ ok: false, peer: peerName, mode, error: String(err && err.stack || err).split('\n').slice(0, 3).join(' | ') });
  process.exit(1);
});
