// out/threader: every runner works in the shell host, with timeouts and
// cancellation of running tasks.
function check(cond, what) { if (!cond) throw new Error('FAILED: ' + what); }

(async () => {
  const firstTwo = await thread.any(2, threader(() => 1), threader(() => 2), threader(() => 3));
  check(firstTwo.length === 2, 'any');
  const winner = await thread.race(threader(() => 'fast'), threader(() => { for (;;) {} }));
  check(winner === 'fast', 'race');
  const seen = [];
  for await (const r of thread.stream(threader((x) => x, 1), threader((x) => x, 2))) seen.push(r);
  check(seen.length === 2 && seen.includes(1) && seen.includes(2), 'stream');
  try {
    await thread.all(threader(() => { for (;;) {} }, null, { timeout: 50 }));
    check(false, 'timeout should reject');
  } catch (err) {
    check(err.code === 'ERR_THREADER_TIMEOUT', 'timeout code ' + err.code);
  }
  const loop = threader(() => { for (;;) {} });
  const run = thread.all(loop);
  loop.cancel();
  try { await run; check(false, 'cancel should reject'); } catch (err) {
    check(err.name === 'AbortError', 'abort ' + err.name);
  }
  check(await thread.all(threader((x) => x + 1, 41)).then((r) => r[0]) === 42, 'worker reusable');
  let threw = false;
  try { threader(() => console.log('x')); } catch (err) {
    threw = err.code === 'ERR_THREADER_VALIDATION';
  }
  check(threw, 'validation');
  console.log('ok');
})();
