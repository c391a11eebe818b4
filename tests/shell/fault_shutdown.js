// out/threader fault script (issue 7 item 6): shutdown with tasks in flight
// (running loops, thousands queued, a heap hog, tasks made this tick):
// every task settles exactly once, as cancelled or completed, and the
// script then exits 0 on its own (nothing left pending).  Also the script
// tests/load/valgrind_shell.sh runs under Valgrind.
function check(cond, what) { if (!cond) throw new Error('FAILED: ' + what); }

(async () => {
  threader.config({ maxHeapMB: 64 });
  const tasks = [];
  const counts = new Map();
  const watch = (t) => {
    tasks.push(t);
    counts.set(t, 0);
    return thread.all(t).then(() => counts.set(t, counts.get(t) + 1), () => counts.set(t, counts.get(t) + 1));
  };
  const runs = [];
  // No timers in the shell: a loop's progress report says it is running.
  let onStarted;
  const started = new Promise((resolve) => { onStarted = resolve; });
  const onProgress = () => onStarted();
  for (let i = 0; i < 4; i++) runs.push(watch(threader((d, ctx) => { ctx.progress(0.5); for (;;) {} }, null, { onProgress })));
  runs.push(watch(threader(() => { const k = []; for (;;) k.push(new Array(100000).fill(1)); }, null, { retries: 50 })));
  for (let i = 0; i < 3000; i++) runs.push(watch(threader((x) => x, i)));
  await started;
  for (let i = 0; i < 50; i++) runs.push(watch(threader((x) => x, i)));
  await threader.shutdown();
  await Promise.all(runs);
  let cancelled = 0;
  for (const t of tasks) {
    check(counts.get(t) === 1, 'settled ' + counts.get(t) + ' times');
    check(t.status === 'cancelled' || t.status === 'completed', 'status ' + t.status);
    if (t.status === 'cancelled') {
      cancelled++;
      check(t.error.name === 'AbortError', 'error ' + t.error.name);
    }
  }
  check(cancelled >= 4, cancelled + ' cancelled');
  // Threader works after shutdown, then shuts down again with nothing running.
  const again = await thread.all(threader((x) => x * 2, 21));
  check(again[0] === 42, 'after shutdown');
  threader.config({ maxHeapMB: null });
  await threader.shutdown();
  console.log('ok', cancelled, 'cancelled of', tasks.length);
})();
