// out/threader fault script, small enough for Valgrind and LeakSanitizer
// (tests/load/valgrind_shell.sh): one of each outcome, ok, throw, timeout,
// cancel of a running loop, clone errors both ways, stack overflow, then
// shutdown with tasks in flight, a restart, and a clean exit.
function check(cond, what) { if (!cond) throw new Error('FAILED: ' + what); }

(async () => {
  const ok = await thread.all([1, 2, 3].map((n) => threader((x) => x * 2, n)));
  check(ok.join() === '2,4,6', 'ok');
  const thrown = await thread.all(threader(() => { throw new RangeError('r'); })).then(() => null, (e) => e);
  check(thrown instanceof RangeError, 'throw');
  const timedOut = await thread.all(threader(() => { for (;;) {} }, null, { timeout: 30 })).then(() => null, (e) => e);
  check(timedOut.code === 'ERR_THREADER_TIMEOUT', 'timeout');
  const loop = threader((d, ctx) => { ctx.progress(0.5); for (;;) {} }, null, { onProgress: () => loop.cancel() });
  const cancelled = await thread.all(loop).then(() => null, (e) => e);
  check(cancelled.name === 'AbortError', 'cancel');
  const dataClone = await thread.all(threader((d) => d, { f() {} })).then(() => null, (e) => e);
  check(dataClone.code === 'ERR_THREADER_CLONE' && dataClone.path === 'data.f', 'data clone');
  const resultClone = await thread.all(threader(() => ({ f() {} }))).then(() => null, (e) => e);
  check(resultClone.code === 'ERR_THREADER_CLONE' && resultClone.path === 'result.f', 'result clone');
  const so = await thread.all(threader(function r(n) { return r(n + 1) + 1; }, 0)).then(() => null, (e) => e);
  check(so instanceof RangeError, 'overflow');

  // No timers in the shell: a loop's progress report says it is running.
  let onRunning;
  const running = new Promise((resolve) => { onRunning = resolve; });
  const inflight = [];
  for (let i = 0; i < 2; i++) {
    inflight.push(thread.all(threader((d, ctx) => { ctx.progress(0.5); for (;;) {} }, null,
                                     { onProgress: () => onRunning() })).then(() => 'ok', (e) => e.name));
  }
  for (let i = 0; i < 100; i++) inflight.push(thread.all(threader((x) => x, i)).then(() => 'ok', (e) => e.name));
  await running;
  await threader.shutdown();
  const outcomes = await Promise.all(inflight);
  check(outcomes[0] === 'AbortError' || outcomes[1] === 'AbortError', 'a loop cancelled by shutdown');
  for (const o of outcomes) check(o === 'ok' || o === 'AbortError', 'outcome ' + o);
  const again = await thread.all(threader((x) => x + 1, 1));
  check(again[0] === 2, 'after shutdown');
  console.log('ok');
})();
