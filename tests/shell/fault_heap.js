// out/threader fault script (issue 7 items 2 and 3): with maxHeapMB, a task
// that exhausts its heap fails with ERR_THREADER_WORKER, the other tasks in
// flight complete, retries re-run only a lost-worker task (attempts counted
// through a SharedArrayBuffer); stack overflow is a RangeError and the
// worker goes on.
function check(cond, what) { if (!cond) throw new Error('FAILED: ' + what); }

const hog = (c) => {
  Atomics.add(c, 0, 1);
  const keep = [];
  for (;;) keep.push(new Array(100000).fill(1.5));
};
const counter = () => new Int32Array(new SharedArrayBuffer(4));

(async () => {
  threader.config({ maxHeapMB: 64 });
  const c1 = counter();
  const others = Array.from({ length: 200 }, (_, i) => threader((x) => x + 1, i));
  const [err, rest] = await Promise.all([
    thread.all(threader(hog, c1)).then(() => null, (e) => e),
    thread.all(others),
  ]);
  check(err !== null && err.code === 'ERR_THREADER_WORKER', 'heap: ' + (err && err.code));
  check(err.attempts === 1 && c1[0] === 1, 'ran once');
  check(rest.length === 200 && rest[199] === 200, 'others completed');

  const c2 = counter();
  const e2 = await thread.all(threader(hog, c2, { retries: 2 })).then(() => null, (e) => e);
  check(e2.code === 'ERR_THREADER_WORKER', 'retries code');
  check(c2[0] === 3 && e2.attempts === 3, 'retries: 2 ran ' + c2[0] + ' times, attempts ' + e2.attempts);

  const c3 = counter();
  const e3 = await thread.all(threader((c) => { Atomics.add(c, 0, 1); throw new TypeError('no'); }, c3, { retries: 3 }))
    .then(() => null, (e) => e);
  check(e3 instanceof TypeError && c3[0] === 1, 'a throw is not retried (' + c3[0] + ')');

  const so = await thread.all(threader(function r(n) { return r(n + 1) + 1; }, 0)).then(() => null, (e) => e);
  check(so instanceof RangeError, 'stack overflow: ' + so);
  const after = await thread.all(threader((x) => x * 2, 21));
  check(after[0] === 42, 'worker fine after overflow and heap loss');
  threader.config({ maxHeapMB: null });
  console.log('ok');
})();
