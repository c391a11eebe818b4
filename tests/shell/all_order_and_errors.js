// out/threader: thread.all over 10,000 tasks keeps input order, and a
// throwing task rejects with the worker's own error.
function check(cond, what) { if (!cond) throw new Error('FAILED: ' + what); }

const tasks = [];
for (let i = 0; i < 10000; i++) tasks.push(threader((x) => x * x - 1, i));
thread.all(tasks).then((results) => {
  check(results.length === 10000, 'length');
  for (let i = 0; i < results.length; i++) check(results[i] === i * i - 1, 'value ' + i);
  check(tasks[5].status === 'completed' && tasks[5].result === 24, 'task fields');
  const bad = threader((x) => { if (x > 2) throw new RangeError('too big: ' + x); return x; }, 3);
  return thread.all(threader((x) => x, 1), bad).then(
    () => check(false, 'should reject'),
    (err) => {
      check(err instanceof RangeError, 'error class ' + err.name);
      check(err.message === 'too big: 3', 'message ' + err.message);
      check(bad.status === 'failed' && bad.error === err, 'task error');
      console.log('ok');
    });
});
