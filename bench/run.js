#!/usr/bin/env node
'use strict';
// Threader side-by-side benchmark (issue 6). Usually started through
// tools/bench, which installs bench/'s dependencies first.
//
//   node bench/run.js [--quick] [--only=threader,piscina,...] [--json=path] [--out=dir] [--no-plot]
//
// Every measurement runs in its own child process (bench/child.js), one at a
// time, so no two peers ever compete for the cores and RSS / cold start of one
// peer cannot pollute another. Results: a table on stdout,
// bench/results/latest.json (+ --json path), latest.txt, and PNG plots made by
// gnuplot from the JSON (bench/plot.js).

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const BENCH = __dirname;
const ROOT = path.resolve(BENCH, '..');
const DEFAULT_RESULTS = path.join(BENCH, 'results');

const ALL_PEERS = ['serial', 'threader', 'piscina', 'tinypool', 'workerpool', 'isolated-vm'];

// Targets for Threader from issue 6.
const TARGETS = {
  tasksPerS: 300000,
  p50us: 15,
  coldMs: 3,
  mbPerWorker: 5,
  efficiency: 0.975,  // = a speedup of 1.95 on 2 cores
};

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const opts = { quick: false, only: null, json: null, plot: true, out: null };
  for (const a of argv) {
    if (a === '--quick') opts.quick = true;
    else if (a === '--no-plot') opts.plot = false;
    else if (a.startsWith('--only=')) opts.only = a.slice(7).split(',').map(s => s.trim()).filter(Boolean);
    else if (a.startsWith('--json=')) opts.json = path.resolve(a.slice(7));
    else if (a.startsWith('--out=')) opts.out = path.resolve(a.slice(6));
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: tools/bench [--quick] [--only=name,...] [--json=path] [--out=dir] [--no-plot]\n' +
        `peers: ${ALL_PEERS.join(', ')}\n`);
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (opts.only) {
    const bad = opts.only.filter(p => !ALL_PEERS.includes(p));
    if (bad.length) {
      process.stderr.write(`bench: unknown peer(s) ${bad.join(', ')}; known: ${ALL_PEERS.join(', ')}\n`);
      process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
// Where latest.{json,txt} and the PNGs go: bench/results/ (git-ignored), or
// --out=dir for a run to keep (bench/RESULTS.md points at one).
const RESULTS = opts.out || DEFAULT_RESULTS;
const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;

const PLAN = opts.quick ? {
  cpuTaskS: 0.03, cpuTasks: 8, serialRuns: 1, scalingRuns: 1,
  tinyTasks: 20000, throughputRuns: 1, throughputWarmups: 1,
  latencyWarm: 100, latencySamples: 300,
  coldRuns: 3, childTimeoutS: 25,
} : {
  cpuTaskS: 0.3, cpuTasks: 8, serialRuns: 3, scalingRuns: 3,
  tinyTasks: 20000, throughputRuns: 3, throughputWarmups: 1,
  latencyWarm: 500, latencySamples: 2000,
  coldRuns: 5, childTimeoutS: 300,
};
// Scaling curve: same calibrated tasks; with more than 8 cores use 2 tasks per
// core so that the top of the curve is not capped at 8x.
PLAN.scalingTasks = cores <= 8 ? PLAN.cpuTasks : 2 * cores;

// ---------------------------------------------------------------- children

const log = msg => process.stderr.write(`${msg}\n`);

// -- contention: other processes on the machine during a measurement ----
//
// /proc/stat says how much CPU time the whole machine spent busy; the child
// reports its own CPU time. What is left over was used by someone else while
// the measurement ran (10 ms clock ticks, so allow a little slack).
const HZ = 100;
function machineTicks() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    return { busy: user + nice + system + irq + softirq + (steal || 0), idle: idle + (iowait || 0) };
  } catch { return null; }
}
const sleepMs = ms => new Promise(r => setTimeout(r, ms));

// Waits (at most maxS) until the machine has been at least 90% idle for a
// second, so a measurement does not start while someone else is busy.
async function waitQuiet(maxS) {
  const until = Date.now() + maxS * 1000;
  for (;;) {
    const a = machineTicks();
    if (!a) return true;
    await sleepMs(1000);
    const b = machineTicks();
    const busy = b.busy - a.busy, idle = b.idle - a.idle;
    if (busy / Math.max(1, busy + idle) <= 0.1) return true;
    if (Date.now() >= until) return false;
  }
}

const contention = { retries: 0, flagged: [], waitedS: 0 };
// Total time a full run may spend waiting for other processes (seconds).
const MAX_WAIT_S = Number(process.env.THREADER_BENCH_MAX_WAIT_S || 900);

// Runs one child; in full mode a measurement that other processes competed
// with is thrown away and repeated (up to twice) after waiting for quiet.
async function runChild(peer, mode, params, extraFlags = []) {
  const attempts = opts.quick || mode === 'probe' || contention.waitedS >= MAX_WAIT_S ? 1 : 3;
  let r;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    r = await runChildOnce(peer, mode, params, extraFlags);
    if (mode === 'probe' || !r.ok || r.foreignFrac === undefined || !r.contended) return r;
    if (attempt < attempts) {
      contention.retries++;
      log(`${peer}: ${mode}: other processes used ${(r.foreignFrac * 100).toFixed(0)}% of the cores meanwhile${r.roundsChecked ? ' (too few undisturbed rounds)' : ''}; waiting for quiet and repeating`);
      const t = Date.now();
      await waitQuiet(Math.min(60, Math.max(1, MAX_WAIT_S - contention.waitedS)));
      contention.waitedS += (Date.now() - t) / 1000;
    }
  }
  contention.flagged.push(`${peer}/${mode}${params.workers ? `@${params.workers}` : ''}`);
  return r;
}

async function runChildOnce(peer, mode, params, extraFlags) {
  const before = machineTicks();
  const own0 = process.cpuUsage();
  const wall0 = Date.now();
  const r = await spawnChild(peer, mode, params, extraFlags);
  const after = machineTicks();
  if (before && after && r.ok && typeof r.selfCpuS === 'number') {
    const wallS = (Date.now() - wall0) / 1000;
    const own = process.cpuUsage(own0);
    const busyS = (after.busy - before.busy) / HZ;
    const foreignS = Math.max(0, busyS - r.selfCpuS - (own.user + own.system) / 1e6);
    r.foreignFrac = foreignS / (wallS * cores);
    // Modes with timed rounds check each round themselves (child.js rounds())
    // and already replaced disturbed ones; only if too few were clean does
    // the whole child count as contended.
    r.contended = r.roundsChecked ? !r.allClean : foreignS > Math.max(0.05 * wallS * cores, 0.1);
  }
  return r;
}

function spawnChild(peer, mode, params, extraFlags = []) {
  const adapterFlags = (() => {
    try { return require(`./peers/${peer}.js`).nodeFlags || []; } catch { return []; }
  })();
  const args = [...adapterFlags, ...extraFlags, path.join(BENCH, 'child.js'), peer, mode, JSON.stringify(params)];
  return new Promise(resolve => {
    const child = spawn(process.execPath, args, { cwd: BENCH, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', d => { out += d; });
    child.stderr.on('data', d => { err += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, PLAN.childTimeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').filter(l => l.startsWith('@@BENCH ')).pop();
      if (line) {
        try {
          const r = JSON.parse(line.slice(8));
          if (r.ok) return resolve(r);
          return resolve({ ok: false, error: r.error || r.reason || 'failed' });
        } catch { /* fall through */ }
      }
      const why = signal === 'SIGKILL' ? `timed out after ${PLAN.childTimeoutS} s` :
        signal ? `killed by ${signal}` : `exit code ${code}`;
      const tail = err.trim().split('\n').filter(Boolean).slice(-2).join(' | ').slice(0, 300);
      resolve({ ok: false, error: `${why}${tail ? `: ${tail}` : ''}` });
    });
  });
}

// ---------------------------------------------------------------- machine

function sh(cmd, args) {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return null; }
}

function machineInfo() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus.length ? cpus[0].model.trim() : 'unknown',
    cpuMHz: cpus.length ? cpus[0].speed : null,
    cores,
    logicalCpus: cpus.length,
    totalMemGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    loadBefore: os.loadavg().map(x => +x.toFixed(2)),
  };
}

function addonInfo() {
  const f = path.join(ROOT, 'out', 'threader.node');
  try {
    const st = fs.statSync(f);
    return { path: path.relative(ROOT, f), bytes: st.size, mtime: st.mtime.toISOString() };
  } catch { return null; }
}

function repoInfo() {
  const commit = sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']);
  return { commit, dirty: dirty === null ? null : dirty.length > 0, addon: addonInfo() };
}

function wakeFloor() {
  const src = path.join(BENCH, 'floor', 'wake.c');
  const exe = path.join(os.tmpdir(), `threader-bench-wake-${process.pid}`);
  try {
    execFileSync('cc', ['-O2', '-pthread', src, '-o', exe], { stdio: 'ignore' });
    const out = execFileSync(exe, { encoding: 'utf8', timeout: 20000 });
    const m1 = /sleeping threads: round trip p50 ([\d.]+) us, p99 ([\d.]+) us/.exec(out);
    const m2 = /spinning threads: round trip p50 ([\d.]+) us, p99 ([\d.]+) us/.exec(out);
    if (!m1 || !m2) return null;
    return { sleepP50us: +m1[1], sleepP99us: +m1[2], spinP50us: +m2[1], spinP99us: +m2[2] };
  } catch { return null; } finally { try { fs.unlinkSync(exe); } catch { /* none */ } }
}

// ---------------------------------------------------------------- formatting

const fmtInt = v => (v == null || !isFinite(v)) ? '—' : Math.round(v).toLocaleString('en-US');
const fmt = (v, d) => (v == null || !isFinite(v)) ? '—' : v.toFixed(d);
const pad = (s, w) => String(s).padStart(w);
const padR = (s, w) => String(s).padEnd(w);
const median = a => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

// ---------------------------------------------------------------- main

async function main() {
  const t0 = Date.now();
  const selected = opts.only ? ALL_PEERS.filter(p => opts.only.includes(p)) : ALL_PEERS;
  const machine = machineInfo();
  const result = {
    schema: 1,
    date: new Date().toISOString(),
    command: `tools/bench${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`,
    quick: opts.quick,
    machine,
    repo: repoInfo(),
    plan: PLAN,
    targets: TARGETS,
    serial: null,
    peers: {},
  };

  log(`bench: ${machine.cpuModel}, ${cores} cores, Node ${machine.node}, load ${machine.loadBefore.join(' ')}${opts.quick ? ' (quick)' : ''}`);
  if (!opts.quick && !(await waitQuiet(0))) {
    log('bench: the machine is busy; waiting up to 60 s for quiet ...');
    await waitQuiet(60);
  }

  // 1. Which peers can run at all.
  for (const name of selected) {
    const r = await runChild(name, 'probe', {});
    const entry = { available: !!r.ok, version: r.version || null, reason: r.ok ? null : (r.reason || r.error), errors: {} };
    result.peers[name] = entry;
    if (!r.ok) log(`${name}: unavailable (${entry.reason})`);
  }

  // 2. Calibrate the CPU task and time the serial baseline (always, since
  //    every speedup is relative to it).
  const cal = await runChild('serial', 'calibrate', { targetS: PLAN.cpuTaskS });
  if (!cal.ok) throw new Error(`calibration failed: ${cal.error}`);
  const ser = await runChild('serial', 'serialCpu', { n: cal.n, tasks: PLAN.cpuTasks, runs: PLAN.serialRuns, clean: !opts.quick });
  if (!ser.ok) throw new Error(`serial baseline failed: ${ser.error}`);
  const perTaskS = ser.bestS / PLAN.cpuTasks;
  result.serial = { n: cal.n, perCallS: cal.perCallS, tasks: PLAN.cpuTasks, bestS: ser.bestS, times: ser.times, cpuTimes: ser.cpuTimes, contended: ser.contended, perTaskS };
  log(`serial: cpu task n=${cal.n.toLocaleString('en-US')} ≈ ${perTaskS.toFixed(3)} s; ${PLAN.cpuTasks} tasks serially ${ser.bestS.toFixed(3)} s`);

  // The machine's own floor for a sleep/wake round trip (bench/floor/wake.c),
  // for reading the latency column. Skipped without a C compiler.
  result.floor = wakeFloor();
  if (result.floor) log(`floor: sleeping-thread round trip p50 ${result.floor.sleepP50us} µs, spinning ${result.floor.spinP50us} µs`);

  // 3. Each peer, one measurement at a time.
  for (const name of selected) {
    const e = result.peers[name];
    if (!e.available) continue;
    const workers = cores;
    const note = (metric, r) => { if (!r.ok) { e.errors[metric] = r.error; log(`${name}: ${metric} failed: ${r.error}`); } return r.ok; };

    let r = await runChild(name, 'throughput', { tasks: PLAN.tinyTasks, runs: PLAN.throughputRuns, warmups: PLAN.throughputWarmups, workers, clean: !opts.quick });
    if (note('throughput', r)) { e.throughput = { tasks: r.tasks, times: r.times, contended: r.contended, tasksPerS: r.tasksPerS }; log(`${name}: ${fmtInt(r.tasksPerS)} tiny tasks/s`); }

    r = await runChild(name, 'latency', { warm: PLAN.latencyWarm, samples: PLAN.latencySamples, workers });
    if (note('latency', r)) { e.latency = { samples: r.samples, p50us: r.p50us, p99us: r.p99us, meanUs: r.meanUs, minUs: r.minUs }; log(`${name}: latency p50 ${fmt(r.p50us, 1)} µs, p99 ${fmt(r.p99us, 1)} µs`); }

    if (name !== 'serial') {
      const runs = [];
      for (let i = 0; i < PLAN.coldRuns; i++) {
        r = await runChild(name, 'cold', { workers: name === 'threader' ? null : workers });
        if (!note('cold', r)) break;
        runs.push({ totalMs: r.totalMs, loadMs: r.loadMs, createMs: r.createMs, firstTaskMs: r.firstTaskMs });
      }
      if (runs.length === PLAN.coldRuns) {
        e.cold = coldSummary(runs);
        log(`${name}: cold start ${fmt(e.cold.medianPoolMs, 2)} ms from creating the pool, ${fmt(e.cold.medianMs, 2)} ms from loading the library (load ${fmt(e.cold.medianLoadMs, 2)} ms)`);
      }
      if (name === 'threader') {
        // The runs above read the snapshot and the validation record that
        // earlier children left in the cache directory, as every start after
        // the first one on a machine does; these start from an empty one.
        const firstRuns = [];
        for (let i = 0; i < PLAN.coldRuns; i++) {
          const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'threader-bench-cache-'));
          r = await runChild(name, 'cold', { workers: null, cacheDir });
          fs.rmSync(cacheDir, { recursive: true, force: true });
          if (!note('coldEmptyCache', r)) break;
          firstRuns.push({ totalMs: r.totalMs, loadMs: r.loadMs, createMs: r.createMs, firstTaskMs: r.firstTaskMs });
        }
        if (firstRuns.length === PLAN.coldRuns) {
          e.coldEmptyCache = coldSummary(firstRuns);
          log(`${name}: cold start with an empty cache directory ${fmt(e.coldEmptyCache.medianPoolMs, 2)} ms from creating the pool, ${fmt(e.coldEmptyCache.medianMs, 2)} ms from loading (load ${fmt(e.coldEmptyCache.medianLoadMs, 2)} ms)`);
        }
      }

      r = await runChild(name, 'memory', { workers, warmN: Math.max(1, Math.round(cal.n / 6)) });
      if (note('memory', r)) {
        e.memory = { workers: r.workers, startedWorkers: r.startedWorkers, rssBeforeMB: r.rssBeforeMB, rssAfterMB: r.rssAfterMB, mbPerWorker: r.mbPerWorker,
          anonMBPerWorker: r.anonMBPerWorker, fileMBPerWorker: r.fileMBPerWorker };
        log(`${name}: ${fmt(r.mbPerWorker, 1)} MB RSS per worker (${fmt(r.rssBeforeMB, 1)} -> ${fmt(r.rssAfterMB, 1)} MB, ${r.startedWorkers ?? '?'} of ${r.workers} workers seen busy)`);
      }

      // Scaling curve 1..cores. On big machines only Threader and piscina get
      // every point; the others get 1 and N.
      const full = cores <= 4 || name === 'threader' || name === 'piscina';
      const points = [];
      for (let w = 1; w <= cores; w++) if (full || w === 1 || w === cores) points.push(w);
      e.scaling = [];
      for (const w of points) {
        r = await runChild(name, 'scaling', { workers: w, n: cal.n, tasks: PLAN.scalingTasks, runs: PLAN.scalingRuns, clean: !opts.quick });
        if (!note(`scaling@${w}`, r)) continue;
        const speedup = perTaskS * PLAN.scalingTasks / r.bestS;
        // utilisation: process CPU time / (wall time x workers) of the best run.
        const utilisation = r.bestCpuS / (r.bestS * w);
        e.scaling.push({ workers: w, tasks: PLAN.scalingTasks, bestS: r.bestS, times: r.times, cpuTimes: r.cpuTimes, contended: r.contended, speedup, utilisation });
        log(`${name}: ${w} worker(s): ${PLAN.scalingTasks} tasks in ${r.bestS.toFixed(3)} s, speedup ${speedup.toFixed(2)}x`);
      }
      // CPU-bound speedup: 8 tasks on a pool of `cores` workers.
      let top = PLAN.scalingTasks === PLAN.cpuTasks ? e.scaling.find(s => s.workers === cores) : null;
      if (!top && PLAN.scalingTasks !== PLAN.cpuTasks) {
        r = await runChild(name, 'scaling', { workers: cores, n: cal.n, tasks: PLAN.cpuTasks, runs: PLAN.scalingRuns, clean: !opts.quick });
        if (note('speedup', r)) top = { bestS: r.bestS, speedup: ser.bestS / r.bestS };
      }
      if (top) e.cpu = { tasks: PLAN.cpuTasks, workers: cores, bestS: top.bestS, speedup: top.speedup, efficiency: top.speedup / cores };
    } else {
      e.cpu = { tasks: PLAN.cpuTasks, workers: 1, bestS: ser.bestS, speedup: 1, efficiency: null };
    }
  }

  machine.loadAfter = os.loadavg().map(x => +x.toFixed(2));
  const addonAfter = addonInfo();
  result.repo.addonChangedDuringRun = JSON.stringify(addonAfter) !== JSON.stringify(result.repo.addon);
  // Other processes competing for the cores make every number worse.
  result.contention = {
    retries: contention.retries,
    waitedS: +contention.waitedS.toFixed(1),
    contended: contention.flagged,
    serialWallOverCpu: +(ser.bestS / ser.bestCpuS).toFixed(3),
  };
  result.elapsedS = +((Date.now() - t0) / 1000).toFixed(1);

  // 4. Targets for Threader.
  const th = result.peers.threader;
  result.threaderTargets = th && th.available ? [
    { metric: 'tiny tasks/s', target: `>= ${fmtInt(TARGETS.tasksPerS)}`, value: th.throughput?.tasksPerS, pass: th.throughput ? th.throughput.tasksPerS >= TARGETS.tasksPerS : null },
    { metric: 'p50 latency µs', target: `<= ${TARGETS.p50us}`, value: th.latency?.p50us, pass: th.latency ? th.latency.p50us <= TARGETS.p50us : null },
    { metric: 'cold start ms (pool → first result)', target: `<= ${TARGETS.coldMs}`, value: th.cold?.medianPoolMs, pass: th.cold ? th.cold.medianPoolMs <= TARGETS.coldMs : null },
    { metric: 'RSS MB/worker', target: `<= ${TARGETS.mbPerWorker}`, value: th.memory?.mbPerWorker, pass: th.memory ? th.memory.mbPerWorker <= TARGETS.mbPerWorker : null },
    { metric: `CPU speedup (${cores} cores)`, target: `>= ${(TARGETS.efficiency * cores).toFixed(2)}`, value: th.cpu?.speedup, pass: th.cpu ? th.cpu.efficiency >= TARGETS.efficiency : null },
  ] : null;

  const text = render(result);
  process.stdout.write(text);

  fs.mkdirSync(RESULTS, { recursive: true });
  const json = JSON.stringify(result, null, 2) + '\n';
  fs.writeFileSync(path.join(RESULTS, 'latest.json'), json);
  fs.writeFileSync(path.join(RESULTS, 'latest.txt'), text);
  if (opts.json) { fs.mkdirSync(path.dirname(opts.json), { recursive: true }); fs.writeFileSync(opts.json, json); }
  log(`bench: wrote ${path.relative(process.cwd(), path.join(RESULTS, 'latest.json'))}${opts.json ? ` and ${opts.json}` : ''}`);

  if (opts.plot) {
    const { plot } = require('./plot.js');
    const p = plot(path.join(RESULTS, 'latest.json'), RESULTS);
    if (p.ok) log(`bench: plots ${p.files.map(f => path.relative(process.cwd(), f)).join(', ')}`);
    else log(`bench: no plots (${p.reason})`);
  }

  // Exit status for smoke tests: 1 when Threader loaded but one of its
  // measurements failed (a crash, a hang, a wrong result). Missed targets,
  // an unbuilt addon and unavailable peers do not fail the run.
  const thErrors = th && th.available ? Object.keys(th.errors) : [];
  if (thErrors.length) {
    log(`bench: threader failed: ${thErrors.join(', ')}`);
    process.exitCode = 1;
  }
}

// Medians of cold-start runs: from creating the pool to the first result
// (medianPoolMs, the issue's definition), of the library's load, and of
// both together (medianMs).
function coldSummary(runs) {
  return {
    runs,
    medianPoolMs: median(runs.map(x => x.createMs + x.firstTaskMs)),
    medianLoadMs: median(runs.map(x => x.loadMs)),
    medianMs: median(runs.map(x => x.totalMs)),
  };
}

function render(res) {
  const m = res.machine;
  const L = [];
  L.push(`Threader benchmark${res.quick ? ' (--quick: fewer samples, shorter CPU tasks)' : ''}`);
  L.push(`machine: ${m.cpuModel}, ${m.cores} cores, ${m.totalMemGB} GB, ${m.os}`);
  L.push(`node ${m.node} (V8 ${m.v8}); ${res.date}; load avg before ${m.loadBefore.join(' ')}, after ${m.loadAfter.join(' ')}; ${res.elapsedS} s`);
  L.push(`repo ${res.repo.commit || '?'}${res.repo.dirty ? ' (uncommitted changes)' : ''}; command: ${res.command}`);
  if (res.repo.addon) L.push(`threader addon: ${res.repo.addon.path}, ${res.repo.addon.bytes} bytes, built ${res.repo.addon.mtime}`);
  if (res.repo.addonChangedDuringRun) L.push('WARNING: out/threader.node was rebuilt during the run; Threader\'s numbers may mix two builds.');
  const c = res.contention;
  if (c && c.contended.length) {
    L.push(`WARNING: other processes used more than 5% of the cores during ${c.contended.length} measurement(s)` +
      `${res.quick ? '' : ' even after retries'}: ${c.contended.slice(0, 6).join(', ')}${c.contended.length > 6 ? ', ...' : ''}` +
      ' (all in the JSON). Those numbers are pessimistic.');
  } else if (c) {
    L.push(`contention: none detected in any measurement (${c.retries} measurement(s) repeated after waiting ${c.waitedS} s for other processes).`);
  }
  L.push('');
  const s = res.serial;
  L.push(`tiny task: x => x + 1, ${fmtInt(res.plan.tinyTasks)} in flight (best of ${res.plan.throughputRuns}); latency: ${res.plan.latencySamples} sequential awaits;`);
  L.push(`cpu task: hash loop, n=${fmtInt(s.n)} ≈ ${fmt(s.perTaskS, 3)} s; ${s.tasks} tasks serially ${fmt(s.bestS, 3)} s; pools use ${cores} workers`);
  L.push('');
  const head = [padR('peer', 12), padR('version', 9), pad('tiny tasks/s', 13), pad('p50 µs', 9), pad('p99 µs', 9), pad('cold ms', 8), pad('load ms', 8), pad('+load ms', 9), pad('speedup', 8), pad('eff.', 5), pad('MB/worker', 10)];
  L.push(head.join(' '));
  L.push('-'.repeat(head.join(' ').length));
  for (const [name, e] of Object.entries(res.peers)) {
    if (!e.available) { L.push(`${padR(name, 12)} unavailable (${e.reason})`); continue; }
    L.push([
      padR(name, 12), padR(String(e.version || '').slice(0, 9), 9),
      pad(fmtInt(e.throughput?.tasksPerS), 13),
      pad(fmt(e.latency?.p50us, 1), 9), pad(fmt(e.latency?.p99us, 1), 9),
      pad(fmt(e.cold?.medianPoolMs, 2), 8), pad(fmt(e.cold?.medianLoadMs, 2), 8), pad(fmt(e.cold?.medianMs, 2), 9),
      pad(e.cpu ? `${fmt(e.cpu.speedup, 2)}x` : '—', 8),
      pad(e.cpu && e.cpu.efficiency != null ? `${Math.round(e.cpu.efficiency * 100)}%` : '—', 5),
      pad(name === 'serial' ? '—' : fmt(e.memory?.mbPerWorker, 1), 10),
    ].join(' '));
    for (const [metric, err] of Object.entries(e.errors || {})) L.push(`${' '.repeat(13)}${metric} failed: ${err}`);
  }
  L.push('');
  L.push('cold ms: median of fresh processes, from creating the pool to the first result (as the issue defines it; Threader has no pool');
  L.push('  object: from threader.config({ maxWorkers }), after require, to the first result). load ms: the require/import before it;');
  L.push('  +load ms: from loading the library to the first result. Threader starts its first worker while it loads (js/prestart.js).');
  const thc = res.peers.threader;
  if (thc && thc.coldEmptyCache) {
    L.push(`threader cold with an empty cache directory (a first run on a machine: no cached snapshot or validation record): ` +
      `${fmt(thc.coldEmptyCache.medianPoolMs, 2)} ms, ${fmt(thc.coldEmptyCache.medianMs, 2)} ms with the load (load ${fmt(thc.coldEmptyCache.medianLoadMs, 2)} ms).`);
  }
  L.push('MB/worker: (RSS with the pool warmed - RSS before loading it) / workers. serial: direct synchronous calls.');
  if (res.floor) {
    L.push(`latency floor of this machine (bench/floor/wake.c): two sleeping threads round trip p50 ${res.floor.sleepP50us} µs ` +
      `(p99 ${res.floor.sleepP99us}), two spinning threads p50 ${res.floor.spinP50us} µs.`);
  }

  // Scaling table.
  const scal = Object.entries(res.peers).filter(([, e]) => e.available && e.scaling && e.scaling.length);
  if (scal.length) {
    L.push('');
    L.push(`scaling: speedup vs serial, ${res.plan.scalingTasks} cpu tasks (best of ${res.plan.scalingRuns})`);
    L.push([padR('workers', 8), ...scal.map(([n]) => pad(n, 12))].join(''));
    for (let w = 1; w <= res.machine.cores; w++) {
      const row = scal.map(([, e]) => { const p = e.scaling.find(x => x.workers === w); return pad(p ? `${fmt(p.speedup, 2)}x` : '—', 12); });
      if (row.every(c => c.trim() === '—')) continue;
      L.push([padR(String(w), 8), ...row].join(''));
    }
  }

  // Targets.
  L.push('');
  const th = res.peers.threader;
  if (!th) {
    L.push('threader: not selected (--only)');
  } else if (!th.available) {
    L.push(`threader: ${th.reason}; targets not checked`);
  } else {
    L.push('Threader against the issue 6 targets:');
    for (const t of res.threaderTargets) {
      const digits = t.metric.includes('tasks') ? null : 2;
      const v = digits == null ? fmtInt(t.value) : fmt(t.value, digits);
      L.push(`  ${padR(t.metric, 24)} ${padR(t.target, 12)} ${pad(v, 10)}  ${t.pass == null ? 'n/a' : t.pass ? 'PASS' : 'MISS'}`);
    }
    const ratio = (a, b) => (a && b) ? `${(a / b).toFixed(1)}x` : '—';
    const tp = name => res.peers[name]?.throughput?.tasksPerS;
    L.push(`  throughput ratio: ${ratio(tp('threader'), tp('isolated-vm'))} isolated-vm (target >= 3x), ${ratio(tp('threader'), tp('piscina'))} piscina (target >= 9x)`);
  }
  L.push('');
  return L.join('\n');
}

main().catch(err => {
  process.stderr.write(`bench: ${err && err.stack || err}\n`);
  process.exit(1);
});
