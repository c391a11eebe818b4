'use strict';
// thread.stream with a live progress display: each task reports its progress
// with ctx.progress(), the host draws one bar per task and prints results in
// the order they finish.
//
//   node examples/stream_progress.js

const { threader, thread } = require('..');

// Runs in a worker: a slow Monte Carlo estimate of pi, reporting progress.
function estimatePi(job, ctx) {
  let inside = 0;
  const step = Math.max(1, Math.floor(job.samples / 100));
  for (let i = 1; i <= job.samples; i++) {
    const x = Math.random();
    const y = Math.random();
    if (x * x + y * y <= 1) inside++;
    if (i % step === 0) ctx.progress(i / job.samples);
  }
  return { id: job.id, pi: (4 * inside) / job.samples };
}

const tty = Boolean(process.stdout.isTTY);
const WIDTH = 30;

function bar(fraction) {
  const filled = Math.round((fraction || 0) * WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(Math.round((fraction || 0) * 100)).padStart(3)}%`;
}

async function main() {
  const sizes = [4, 9, 2, 7, 5, 3, 8, 6].map((m) => m * 2000000);
  const tasks = sizes.map((samples, id) => threader(estimatePi, { id, samples }, { seed: id + 1 }));
  const done = [];

  let drawn = 0;
  function draw() {
    if (!tty) return;
    if (drawn > 0) process.stdout.write(`\x1b[${drawn}A`);
    const lines = tasks.map((t, i) => `task ${i} ${bar(t.progress)} ${t.status}`);
    lines.push(`finished: ${done.join(', ') || '-'}`);
    process.stdout.write(lines.map((l) => `\x1b[2K${l}\n`).join(''));
    drawn = lines.length;
  }

  const timer = setInterval(draw, 50);
  const t0 = performance.now();
  try {
    for await (const { id, pi } of thread.stream(tasks)) {
      done.push(id);
      if (!tty) console.log(`task ${id} finished: pi ~ ${pi.toFixed(5)}`);
      draw();
    }
  } finally {
    clearInterval(timer);
  }
  draw();
  const estimates = tasks.map((t) => t.result.pi);
  const mean = estimates.reduce((a, b) => a + b, 0) / estimates.length;
  console.log(`all ${tasks.length} tasks in ${(performance.now() - t0).toFixed(0)} ms, ` +
              `completion order ${done.join(' ')}, mean pi ~ ${mean.toFixed(5)}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
