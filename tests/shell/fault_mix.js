// out/threader fault script (issue 7 item 5, under ASan in tools/test): a
// seeded random mix of ok / throw / timeout / cancel (pending and running)
// / clone errors / stack overflow at every priority, through every runner,
// then an accounting check: every task settled exactly once with the right
// status.  The shell has no timers: running tasks are cancelled from
// onProgress, pending ones at once or in a microtask.
function check(cond, what) { if (!cond) throw new Error('FAILED: ' + what); }

function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = (typeof arguments !== 'undefined' && arguments.length > 0) ? Number(arguments[0]) : Date.now() % 100000;
const random = prng(SEED);
const N = 2000;
const PRIORITIES = ['high', 'normal', 'low'];
const spinning = (d, ctx) => { ctx.progress(0.5); for (;;) {} };

(async () => {
  const plan = [];
  const counts = new Array(N).fill(0);
  const watchers = [];
  const microCancels = [];
  for (let i = 0; i < N; i++) {
    const r = random();
    const priority = PRIORITIES[Math.floor(random() * 3)];
    let kind;
    let task;
    if (r < 0.45) { kind = 'ok'; task = threader((x) => x * 2, i, { priority }); }
    else if (r < 0.60) { kind = 'throw'; task = threader((x) => { throw new TypeError('t' + x); }, i, { priority }); }
    else if (r < 0.66) { kind = 'timeout'; task = threader(() => { for (;;) {} }, i, { priority, timeout: 2 + Math.floor(random() * 10) }); }
    else if (r < 0.72) {
      kind = 'cancel-running';
      task = threader(spinning, i, { priority, onProgress: () => task.cancel() });
    } else if (r < 0.82) {
      kind = 'cancel-pending';
      task = threader((x) => x, i, { priority });
      if (random() < 0.5) microCancels.push(task);
    } else if (r < 0.88) { kind = 'clone'; task = threader((x) => x, { f() {} }, { priority }); }
    else if (r < 0.94) { kind = 'result-clone'; task = threader(() => Symbol('s'), i, { priority }); }
    else { kind = 'overflow'; task = threader(function deep(n) { return deep(n + 1) + 1; }, 0, { priority }); }
    plan.push({ kind, task });
    const count = () => { counts[i]++; };
    watchers.push(thread.all(task).then(count, count));
  }
  // Group runs through the other runners.
  const groups = [];
  for (let i = 0; i + 3 <= N; i += 30) {
    const g = plan.slice(i, i + 3).map((p) => p.task);
    const w = Math.floor(random() * 3);
    if (w === 0) groups.push(thread.race(g).catch(() => {}));
    else if (w === 1) groups.push(thread.any(1, g).catch(() => {}));
    else groups.push((async () => { try { for await (const v of thread.stream(g)) void v; } catch (e) { void e; } })());
  }
  // Pending cancellations: half at once (before the flush), half later.
  for (const p of plan) if (p.kind === 'cancel-pending' && !microCancels.includes(p.task)) p.task.cancel();
  await Promise.resolve();
  for (const t of microCancels) t.cancel();
  await Promise.all(watchers);
  await Promise.all(groups);

  for (let i = 0; i < N; i++) {
    const { kind, task } = plan[i];
    const where = 'task ' + i + ' (' + kind + ') ' + task.status + ' seed ' + SEED;
    check(counts[i] === 1, where + ' settled ' + counts[i] + ' times');
    if (task.status === 'cancelled') {
      check(task.error.name === 'AbortError', where);
      continue;
    }
    switch (kind) {
      case 'ok': check(task.status === 'completed' && task.result === i * 2, where); break;
      case 'throw': check(task.error instanceof TypeError && task.error.message === 't' + i, where); break;
      case 'timeout': check(task.error.code === 'ERR_THREADER_TIMEOUT', where); break;
      case 'cancel-running': check(false, where + ': a running loop must end cancelled'); break;
      case 'cancel-pending': check(task.status === 'completed' && task.result === i, where); break;
      case 'clone': check(task.error.code === 'ERR_THREADER_CLONE' && task.error.path === 'data.f', where); break;
      case 'result-clone': check(task.error.code === 'ERR_THREADER_CLONE' && task.error.path === 'result', where); break;
      case 'overflow': check(task.error instanceof RangeError, where); break;
      default: check(false, kind);
    }
  }
  const after = await thread.all(threader((x) => x + 1, 41));
  check(after[0] === 42, 'pool after the mix');
  console.log('ok seed ' + SEED);
})();
