#!/usr/bin/env node
'use strict';
// Moving data (issue 5): a 64 MiB Float64Array round trip host -> worker ->
// host with clone, transfer and shared (SharedArrayBuffer, the worker writes
// in place), against a plain memcpy of the same bytes measured in the same
// run.  Standalone: `node bench/transfer.js [options]`.
//
//   --mb=N          array size in MiB (default 64)
//   --reps=N        timed repetitions per row (default 9); the table shows the
//                   median, the JSON every sample
//   --json=PATH     where to write the JSON (default bench/results/transfer.json)
//   --threshold     instead: clone vs transfer cost per size (1 KiB .. 64 MiB),
//                   the measurement behind transferMode 'auto''s threshold
//                   (JSON: transfer-threshold.json next to --json)
//   --tiny[=N]      instead: N (default 20000) tiny tasks, each awaited
//                   alone (`await thread.all(threader(x => x + 1, i))`), and
//                   the same N in one thread.all: us per task, for the
//                   primitive fast path (compare builds with THREADER_ADDON)
//   --no-json       print only
//
// Definitions (printed with the table):
//   - a round trip moves the bytes twice (host -> worker, worker -> host):
//     GB/s = 2 x bytes / time; memcpy moves them once: GB/s = bytes / time.
//     GB = 1e9 bytes.
//   - memcpy (preallocated): TypedArray.prototype.set into a target that was
//     written before (its pages are mapped); memcpy (fresh): into a new
//     allocation (new Float64Array + set), page faults included, which is
//     what a clone's receiver pays too.  Buffer.prototype.copy is printed as a
//     cross-check of the first.
//   - the "empty task" row is the fixed cost of one task round trip with
//     no data; transfer and shared should be close to it.
//
// Checks (exit status 1 if one fails, unless --no-check):
//   transfer < 5% of clone time, and the host buffer detached after sending;
//   clone >= 25% of memcpy (fresh) bandwidth;
//   the worker's writes into the SharedArrayBuffer are visible to the host,
//   with the host's array the very same memory (no copy).

const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');

const ROOT = path.resolve(__dirname, '..');

function parseArgs(argv) {
  const opts = { mb: 64, reps: 9, json: path.join(__dirname, 'results', 'transfer.json'),
    threshold: false, check: true, tiny: 0 };
  for (const a of argv) {
    let m;
    if ((m = /^--mb=(\d+(?:\.\d+)?)$/.exec(a))) opts.mb = Number(m[1]);
    else if ((m = /^--reps=(\d+)$/.exec(a))) opts.reps = Math.max(1, Number(m[1]));
    else if ((m = /^--json=(.+)$/.exec(a))) opts.json = path.resolve(m[1]);
    else if (a === '--no-json') opts.json = null;
    else if (a === '--threshold') opts.threshold = true;
    else if (a === '--tiny') opts.tiny = 20000;
    else if ((m = /^--tiny=(\d+)$/.exec(a))) opts.tiny = Number(m[1]);
    else if (a === '--no-check') opts.check = false;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 32)
        .map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    } else {
      process.stderr.write(`transfer.js: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return opts;
}

const now = () => Number(process.hrtime.bigint()) / 1e6;  // ms

// A full GC between rows (never inside a timed loop), so that each row
// starts without the garbage of the one before: fresh memory is expensive
// here (see the memcpy rows) and a row should not pay for another's.
const gc = (() => {
  if (typeof global.gc === 'function') return global.gc;
  require('node:v8').setFlagsFromString('--expose-gc');
  return require('node:vm').runInNewContext('gc');
})();
async function between() {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function gbps(bytes, ms) {
  return bytes / (ms / 1e3) / 1e9;
}

function fill(a) {
  for (let i = 0; i < a.length; i += 512) a[i] = i;
  a[a.length - 1] = -1;
  return a;
}

function sameEnds(a, n) {
  return a.length === n && a[0] === 0 && a[512] === 512 && a[n - 1] === -1;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { threader, thread } = require(ROOT);
  threader.config({ maxWorkers: 1 });  // one worker: every task sees the same one
  if (opts.threshold) return thresholdMode(threader, thread, opts);
  if (opts.tiny > 0) return tinyMode(threader, thread, opts);

  const n = Math.round(opts.mb * 1024 * 1024 / 8);
  const bytes = n * 8;
  const reps = opts.reps;
  const rows = [];
  const row = (name, kind, samples, moved, extra = {}) => {
    const ms = median(samples);
    const r = { name, kind, ms, gbps: gbps(moved, ms), bytesMoved: moved, samples, ...extra };
    rows.push(r);
    return r;
  };

  // Warm up: start the worker, compile every function once.
  const echo = (d) => d;
  const back = (d, ctx) => ctx.transfer(d, [d.buffer]);
  const poke = (d) => {
    for (let i = 0; i < d.length; i += 4096) d[i] = i + 0.5;
    d[d.length - 1] = 42;
    return d.length;
  };
  const nothing = () => undefined;
  {
    const w = fill(new Float64Array(1024));
    await thread.all(threader(echo, w, { transferMode: 'clone' }));
    await thread.all(threader(back, w, { transfer: [w.buffer] }));
    await thread.all(threader(poke, new Float64Array(new SharedArrayBuffer(8192))));
    await thread.all(threader(nothing));
  }

  const src = fill(new Float64Array(n));
  const srcBytes = new Uint8Array(src.buffer);

  // memcpy, preallocated target (touched once so its pages exist).
  const target = new Float64Array(n);
  target.set(src);
  await between();
  const preSamples = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    target.set(src);
    preSamples.push(now() - t0);
  }
  row('memcpy (preallocated, TypedArray#set)', 'memcpy', preSamples, bytes, { copies: 1 });

  const buf = Buffer.from(src.buffer);
  const bufTarget = Buffer.allocUnsafe(bytes);
  buf.copy(bufTarget);
  await between();
  const copySamples = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    buf.copy(bufTarget);
    copySamples.push(now() - t0);
  }
  row('memcpy (preallocated, Buffer#copy)', 'memcpy', copySamples, bytes, { copies: 1 });

  await between();
  const freshSamples = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    const fresh = new Float64Array(n);
    fresh.set(src);
    freshSamples.push(now() - t0);
    if (fresh[n - 1] !== -1) throw new Error('memcpy went wrong');
  }
  row('memcpy (fresh allocation)', 'memcpy', freshSamples, bytes, { copies: 1 });

  // Empty task: the fixed cost of a round trip.
  await between();
  const emptySamples = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    await thread.all(threader(nothing));
    emptySamples.push(now() - t0);
  }
  row('empty task (no data)', 'fixed', emptySamples, 0, { copies: 0 });

  // Clone: copied in, copied back.
  await between();
  const cloneSamples = [];
  let cloneOk = true;
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    const [out] = await thread.all(threader(echo, src, { transferMode: 'clone' }));
    cloneSamples.push(now() - t0);
    cloneOk = cloneOk && sameEnds(out, n) && out.buffer !== src.buffer && src.length === n;
  }
  // One copy: in, copied once (out of line); back, the worker's copy is moved.
  const cloneRow = row('clone round trip', 'clone', cloneSamples, 2 * bytes,
                       { ok: cloneOk, copies: 1 });

  // Clone, and a new array back: the worker's slice() is a copy of its own,
  // which goes back by copy (it did not come with the task).
  await between();
  const sliceSamples = [];
  const slice = (d) => d.slice();
  await thread.all(threader(slice, new Float64Array(16)));
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    const [out] = await thread.all(threader(slice, src, { transferMode: 'clone' }));
    sliceSamples.push(now() - t0);
    if (!sameEnds(out, n)) throw new Error('slice round trip went wrong');
  }
  row('clone round trip, a new array back (d.slice())', 'clone', sliceSamples, 2 * bytes,
      { copies: 3 });

  // Clone, one way (host -> worker only; the worker returns a number).
  await between();
  const inSamples = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    await thread.all(threader((d) => d.length, src, { transferMode: 'clone' }));
    inSamples.push(now() - t0);
  }
  row('clone one way (host -> worker)', 'clone', inSamples, bytes, { copies: 1 });

  // Transfer: moved in (opts.transfer), moved back (ctx.transfer).
  let moving = fill(new Float64Array(n));
  await between();
  const transferSamples = [];
  let detached = true;
  let transferOk = true;
  for (let r = 0; r < reps; r++) {
    const sent = moving;
    const t0 = now();
    const task = threader(back, sent, { transfer: [sent.buffer] });
    const p = thread.all(task);
    const [out] = await p;
    transferSamples.push(now() - t0);
    detached = detached && sent.byteLength === 0 && sent.buffer.byteLength === 0;
    transferOk = transferOk && sameEnds(out, n);
    moving = out;
  }
  const transferRow = row('transfer round trip', 'transfer', transferSamples, 2 * bytes,
                          { ok: transferOk, hostDetached: detached, copies: 0 });

  // transferMode 'auto' (the threshold picks transfer for 64 MiB).
  await between();
  const autoSamples = [];
  let autoDetached = true;
  for (let r = 0; r < reps; r++) {
    const sent = moving;
    const t0 = now();
    const [out] = await thread.all(threader(back, sent, { transferMode: 'auto' }));
    autoSamples.push(now() - t0);
    autoDetached = autoDetached && sent.byteLength === 0;
    moving = out;
  }
  row("transferMode 'auto' round trip", 'transfer', autoSamples, 2 * bytes,
      { hostDetached: autoDetached, copies: 0 });

  // Shared: the worker writes into the host's SharedArrayBuffer in place.
  const sab = new SharedArrayBuffer(bytes);
  const shared = new Float64Array(sab);
  shared.set(src);
  await between();
  const sharedSamples = [];
  let visible = true;
  for (let r = 0; r < reps; r++) {
    shared[0] = 0;
    shared[n - 1] = -1;
    const t0 = now();
    const [len] = await thread.all(threader(poke, shared));
    sharedSamples.push(now() - t0);
    visible = visible && len === n && shared[0] === 0.5 && shared[4096] === 4096.5 &&
      shared[n - 1] === 42 && shared.buffer === sab;
  }
  const sharedRow = row('shared (SharedArrayBuffer, written in place)', 'shared',
                        sharedSamples, 2 * bytes, { visibleToHost: visible, copies: 0 });

  const memcpyFresh = rows.find((r) => r.name === 'memcpy (fresh allocation)');
  const memcpyPre = rows.find((r) => r.name.startsWith('memcpy (preallocated, Typed'));
  const checks = {
    transferUnder5PctOfClone: transferRow.ms < 0.05 * cloneRow.ms,
    transferDetachesHost: detached,
    cloneAtLeast25PctOfMemcpyFresh: cloneRow.gbps >= 0.25 * memcpyFresh.gbps,
    cloneAtLeast25PctOfMemcpyPreallocated: cloneRow.gbps >= 0.25 * memcpyPre.gbps,
    sharedWritesVisibleNoCopy: visible,
  };

  // Table.
  const pad = (s, w) => String(s).padEnd(w);
  const lpad = (s, w) => String(s).padStart(w);
  const lines = [];
  lines.push(`Threader data movement, ${opts.mb} MiB Float64Array, median of ${reps}, ` +
             `${os.cpus().length} CPUs, Node ${process.version}`);
  lines.push(`${pad('row', 48)}${lpad('ms', 9)}${lpad('GB/s', 9)}${lpad('copies', 8)}` +
             `${lpad('%memcpy', 9)}${lpad('%fresh', 9)}${lpad('%clone', 9)}`);
  for (const r of rows) {
    const pct = (x) => `${(100 * x).toFixed(0)}%`;
    const moved = r.bytesMoved > 0;
    lines.push(`${pad(r.name, 48)}${lpad(r.ms.toFixed(2), 9)}` +
               `${lpad(moved ? r.gbps.toFixed(2) : '-', 9)}${lpad(r.copies, 8)}` +
               `${lpad(moved ? pct(r.gbps / memcpyPre.gbps) : '', 9)}` +
               `${lpad(moved ? pct(r.gbps / memcpyFresh.gbps) : '', 9)}` +
               `${lpad(r.kind === 'memcpy' ? '' : `${(100 * r.ms / cloneRow.ms).toFixed(2)}%`, 9)}`);
  }
  lines.push('GB/s: a round trip counts the bytes twice (there and back), a memcpy once ' +
             '(GB = 1e9 bytes).  copies: full copies of the array made on the way.');
  lines.push('%memcpy: GB/s against memcpy (preallocated, TypedArray#set); %fresh: against ' +
             'memcpy into a fresh allocation; %clone: time against the clone round trip.');
  lines.push(`checks: ${Object.entries(checks).map(([k, v]) => `${k}=${v ? 'ok' : 'FAIL'}`).join(' ')}`);
  console.log(lines.join('\n'));

  if (opts.json) {
    fs.mkdirSync(path.dirname(opts.json), { recursive: true });
    fs.writeFileSync(opts.json, JSON.stringify({
      bench: 'transfer', date: new Date().toISOString(), node: process.version,
      cpus: os.cpus().length, cpuModel: os.cpus()[0] && os.cpus()[0].model,
      load: os.loadavg(), mib: opts.mb, reps, rows, checks,
    }, null, 2) + '\n');
    console.log(`wrote ${path.relative(process.cwd(), opts.json) || opts.json}`);
  }
  await threader.shutdown();
  if (opts.check && !Object.values(checks).every(Boolean)) process.exitCode = 1;
}

// Clone vs transfer per size (what transferMode 'auto' decides: data going
// to the worker).  For each size, batches of N tasks (one thread.all, one
// worker), each with its own Uint8Array, are sent by clone and by transfer,
// alternately, and the time per task compared: this measures the cost that
// both threads pay, not one task's latency, which on a busy machine is
// noise.  Prints the smallest size from which transfer is cheaper at that
// size and every larger one.
async function thresholdMode(threader, thread, opts) {
  const sizes = [];
  for (let kb = 1; kb <= 64 * 1024; kb *= 2) sizes.push(kb * 1024);
  const reps = Math.max(opts.reps, 11);
  const f = (d) => d.byteLength;
  const batch = async (bufs, transfer) => {
    const tasks = bufs.map((b) => (transfer ?
      threader(f, b, { transfer: [b.buffer] }) :
      threader(f, b, { transferMode: 'clone' })));
    const t0 = now();
    await thread.all(tasks);
    return (now() - t0) * 1e3 / bufs.length;  // us per task
  };
  // Warm up.
  for (let i = 0; i < 5; i++) {
    await batch(Array.from({ length: 100 }, () => new Uint8Array(4096)), false);
    await batch(Array.from({ length: 100 }, () => new Uint8Array(4096)), true);
  }
  const result = [];
  console.log('size          clone us/task   transfer us/task   clone/transfer  (median of ' +
              `${reps} batches)`);
  for (const size of sizes) {
    const n = Math.max(4, Math.min(200, Math.floor((256 << 20) / size / 4)));
    const s = { clone: [], transfer: [] };
    for (let r = 0; r < reps; r++) {
      const a = Array.from({ length: n }, () => new Uint8Array(size).fill(1));
      const b = Array.from({ length: n }, () => new Uint8Array(size).fill(1));
      if (r % 2 === 0) {
        s.clone.push(await batch(a, false));
        s.transfer.push(await batch(b, true));
      } else {
        s.transfer.push(await batch(b, true));
        s.clone.push(await batch(a, false));
      }
    }
    const m = { clone: median(s.clone), transfer: median(s.transfer) };
    result.push({ bytes: size, tasksPerBatch: n, ...m, samples: s });
    const label = size >= 1 << 20 ? `${size / (1 << 20)} MiB` : `${size / 1024} KiB`;
    console.log(`${label.padEnd(12)}${m.clone.toFixed(1).padStart(15)}${m.transfer.toFixed(1).padStart(19)}` +
                `${(m.clone / m.transfer).toFixed(2).padStart(17)}`);
  }
  let crossover = null;
  for (let i = result.length - 1; i >= 0 && result[i].transfer < result[i].clone; i--) {
    crossover = result[i].bytes;
  }
  console.log(crossover !== null ?
    `transfer is cheaper from ${crossover} bytes (and at every larger size)` :
    'transfer is not cheaper at the largest size');
  if (opts.json) {
    const file = opts.json.replace(/\.json$/, '-threshold.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ bench: 'transfer-threshold', date: new Date().toISOString(),
      node: process.version, cpus: os.cpus().length, load: os.loadavg(), rows: result,
      crossover }, null, 2) + '\n');
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
  await threader.shutdown();
}

// The primitive fast path: per-task cost of tiny tasks (number in, number
// out), awaited one at a time (latency: serialization on both sides, one
// wakeup each way) and all at once (throughput).  Prints one JSON line.
async function tinyMode(threader, thread, opts) {
  const n = opts.tiny;
  const f = (x) => x + 1;
  threader.config({ maxWorkers: null });
  for (let i = 0; i < 2000; i++) await thread.all(threader(f, i));  // warm up
  const one = [];
  const all = [];
  const cpuOne = [];
  const cpuAll = [];
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;  // us, every thread of the process
  };
  for (let r = 0; r < Math.max(3, Math.min(opts.reps, 5)); r++) {
    let c0 = cpu();
    let t0 = now();
    for (let i = 0; i < n; i++) await thread.all(threader(f, i));
    one.push((now() - t0) * 1e3 / n);
    cpuOne.push((cpu() - c0) / n);
    const tasks = [];
    c0 = cpu();
    t0 = now();
    for (let i = 0; i < n; i++) tasks.push(threader(f, i));
    const out = await thread.all(tasks);
    all.push((now() - t0) * 1e3 / n);
    cpuAll.push((cpu() - c0) / n);
    if (out[n - 1] !== n) throw new Error('wrong result');
  }
  console.log(JSON.stringify({ tiny: n, addon: process.env.THREADER_ADDON || 'default',
    awaitedUsPerTask: median(one), batchUsPerTask: median(all),
    awaitedCpuUsPerTask: median(cpuOne), batchCpuUsPerTask: median(cpuAll),
    samples: { one, all, cpuOne, cpuAll } }));
  await threader.shutdown();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
