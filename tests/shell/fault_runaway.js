// out/threader fault script (issue 7 item 1): runaway code is stopped by a
// timeout, by config workerTimeout and by .cancel(), and the workers take
// the next task straight after.  The shell has no timers: a task reports
// progress when its loop has started, and the host cancels it from
// onProgress.  Exits 0 when every check holds (tools/test runs it through
// out/threader and out/asan/threader).
function check(cond, what) { if (!cond) throw new Error('FAILED: ' + what); }

const spin = () => { for (;;) {} };
const started = (d, ctx) => { ctx.progress(0.5); for (;;) {} };

(async () => {
  await thread.all(threader((x) => x, 'warm-up'));

  // timeout: 50 on an idle pool.  The contract is 50 + 50 ms; the shell may
  // run under ASan, so only a gross overrun fails here (the Node suite
  // checks the median).
  let t0 = Date.now();
  try {
    await thread.all(threader(spin, null, { timeout: 50 }));
    check(false, 'timeout should reject');
  } catch (err) {
    check(err.code === 'ERR_THREADER_TIMEOUT', 'timeout code ' + err.code);
    check(err.timeout === 50, 'err.timeout ' + err.timeout);
  }
  let took = Date.now() - t0;
  check(took >= 49 && took < 1000, 'timeout took ' + took + ' ms');

  // Loops that catch, loop in finally, or wait on Atomics: all stopped.
  const hard = [
    () => { for (;;) { try { for (;;) {} } catch (e) {} } },
    () => { for (;;) { try { for (;;) {} } finally { for (;;) {} } } },
    () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0),
    function again(n) { try { return again(n + 1); } catch (e) { return again(0); } },
  ];
  for (let i = 0; i < hard.length; i++) {
    const code = await thread.all(threader(hard[i], 0, { timeout: 30 })).then(() => 'ok', (e) => e.code);
    check(code === 'ERR_THREADER_TIMEOUT', 'hard loop ' + i + ': ' + code);
  }

  // The workers take the next tasks straight after.
  t0 = Date.now();
  const after = await thread.all(Array.from({ length: 100 }, (_, i) => threader((x) => x * 2, i)));
  check(after[99] === 198, 'tasks after timeouts');
  check(Date.now() - t0 < 2000, 'tasks after timeouts took ' + (Date.now() - t0) + ' ms');

  // config workerTimeout applies to tasks without their own.
  threader.config({ workerTimeout: 40 });
  const wt = await thread.all(threader(spin)).then(() => 'ok', (e) => e.code + ' ' + e.timeout);
  check(wt === 'ERR_THREADER_TIMEOUT 40', 'workerTimeout: ' + wt);
  const own = await thread.all(threader((ms) => { const e = Date.now() + ms; while (Date.now() < e) {} return 'done'; }, 100, { timeout: 5000 }));
  check(own[0] === 'done', 'own timeout overrides workerTimeout');
  threader.config({ workerTimeout: 0 });

  // .cancel() stops a running infinite loop (cancelled from onProgress, so
  // it is surely running), over and over on every worker.
  for (let round = 0; round < 10; round++) {
    const loops = [];
    for (let w = 0; w < threader.config().maxWorkers; w++) {
      const t = threader(started, null, { onProgress: () => t.cancel() });
      loops.push(t);
    }
    const names = await Promise.all(loops.map((t) => thread.all(t).then(() => 'ok', (e) => e.name)));
    for (const n of names) check(n === 'AbortError', 'cancel round ' + round + ': ' + n);
  }
  const alive = await thread.all(threader((x) => x + 1, 41));
  check(alive[0] === 42, 'workers alive after cancellations');

  // A run's .cancel() and a race's losers.
  const run = thread.all(threader(started, null, { onProgress: () => run.cancel() }));
  const rc = await run.then(() => 'ok', (e) => e.name);
  check(rc === 'AbortError', 'run.cancel ' + rc);
  const winner = await thread.race(threader((x) => x, 'fast'), threader(spin), threader(spin));
  check(winner === 'fast', 'race');
  console.log('ok');
})();
