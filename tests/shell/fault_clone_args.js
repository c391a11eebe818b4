// out/threader fault script (issue 7 items 4 and 7): uncloneable data and
// results give ERR_THREADER_CLONE naming the path; bad arguments throw a
// TypeError or RangeError naming what was wrong.
function check(cond, what) { if (!cond) throw new Error('FAILED: ' + what); }

function throws(f, Type, re, what) {
  try { f(); } catch (e) {
    check(e instanceof Type, what + ': ' + e.name + ' ' + e.message);
    check(re.test(e.message), what + ': message ' + e.message);
    return;
  }
  check(false, what + ' did not throw');
}

(async () => {
  const dataCases = [
    [{ items: [0, 1, { cb() {} }] }, 'data.items[2].cb'],
    [{ s: Symbol('x') }, 'data.s'],
    [[1, new WeakMap()], 'data[1]'],
    [{ p: Promise.resolve(1) }, 'data.p'],
    [new Map([['k', () => 1]]), 'data.get("k")'],
  ];
  for (const [data, path] of dataCases) {
    const e = await thread.all(threader((d) => d, data)).then(() => null, (x) => x);
    check(e && e.code === 'ERR_THREADER_CLONE', path + ': ' + (e && e.code));
    check(e.path === path, 'path ' + e.path + ' != ' + path);
  }
  const resultCases = [
    [() => () => 1, 'result'],
    [() => ({ items: [0, 1, { cb() {} }] }), 'result.items[2].cb'],
    [() => ({ w: new WeakMap() }), 'result.w'],
  ];
  for (const [fn, path] of resultCases) {
    const e = await thread.all(threader(fn)).then(() => null, (x) => x);
    check(e && e.code === 'ERR_THREADER_CLONE' && e.path === path, path + ': ' + (e && e.path));
  }
  let deep = {};
  let cur = deep;
  for (let i = 0; i < 100000; i++) { cur.a = {}; cur = cur.a; }
  const de = await thread.all(threader((d) => 1, deep)).then(() => null, (x) => x);
  check(de && de.code === 'ERR_THREADER_CLONE', 'deep data: ' + (de && de.message));

  const id = (x) => x;
  throws(() => threader(), TypeError, /fn/, 'missing fn');
  throws(() => threader('x => x'), TypeError, /fn/, 'string fn');
  throws(() => threader(id, 1, { timeout: -1 }), RangeError, /timeout/, 'negative timeout');
  throws(() => threader(id, 1, { timeout: NaN }), RangeError, /timeout/, 'NaN timeout');
  throws(() => threader(id, 1, { timeout: Infinity }), RangeError, /timeout/, 'Infinity timeout');
  throws(() => threader(id, 1, { priority: 'urgent' }), RangeError, /priority/, 'unknown priority');
  throws(() => threader(id, 1, { retries: 1e9 }), RangeError, /retries/, 'huge retries');
  throws(() => threader(id, 1, { transferMode: 'fast' }), RangeError, /transferMode/, 'unknown transferMode');
  throws(() => threader(id, 1, 5), TypeError, /opts/, 'non-object opts');
  throws(() => thread.any(-1, threader(id, 1)), RangeError, /"n"/, 'any(-1)');
  throws(() => thread.all(5), TypeError, /Task/, 'all(5)');
  throws(() => threader.config({ maxWorkers: 0 }), RangeError, /maxWorkers/, 'maxWorkers 0');
  throws(() => threader.config({ maxHeapMB: -1 }), RangeError, /maxHeapMB/, 'maxHeapMB -1');
  throws(() => threader.config({ transferMode: 'x' }), RangeError, /transferMode/, 'config transferMode');
  const ok = await thread.all(threader(id, 'still fine'));
  check(ok[0] === 'still fine', 'pool after bad arguments');
  console.log('ok');
})();
