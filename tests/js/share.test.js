'use strict';
// threader.share(value) (issue 5, docs/DATA.md): a read-only input that
// crosses to each worker once, used through `with` or inside data.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { load, needsRealWorkers, root } = require('./helpers/load.js');

const { threader, thread, isMock } = load();
const real = needsRealWorkers('threader.share needs the native binding');

test.afterEach(() => {
  threader.config({ with: null, maxWorkers: null, enableValidation: true });
});

function sharedStats() {
  return threader.stats().shared;
}

test('the mock binding has no share(): a clear error', { skip: !isMock && 'native binding' }, () => {
  assert.throws(() => threader.share({ a: 1 }), { code: 'ERR_THREADER_SHARE' });
});

test('share() returns a frozen SharedValue handle', real, () => {
  const h = threader.share({ a: 1 });
  try {
    assert.ok(h instanceof threader.SharedValue);
    assert.ok(Object.isFrozen(h));
    assert.equal(Object.prototype.toString.call(h), '[object SharedValue]');
    assert.equal(typeof h.id, 'number');
    assert.equal(h.released, false);
    assert.equal(threader.share(h), h, 'sharing a handle again returns it');
    assert.throws(() => new threader.SharedValue(), TypeError);
  } finally {
    h.release();
  }
});

test('a typed array is shared as a SharedArrayBuffer-backed view, copied once', real, async () => {
  const src = new Float64Array(1 << 16).map((_, i) => i / 2);
  const h = threader.share(src);
  try {
    src[1] = 99;  // share() took a copy: later changes are not seen
    const out = await thread.all([0, 1, 2, 3].map((i) => threader((i) => [
      LUT[i], LUT.length, LUT.buffer instanceof SharedArrayBuffer, Object.isExtensible(LUT),
    ], i, { with: { LUT: h } })));
    assert.deepEqual(out.map((r) => r[0]), [0, 0.5, 1, 1.5]);
    for (const r of out) assert.deepEqual(r.slice(1), [1 << 16, true, false]);
  } finally {
    h.release();
  }
});

test('1,000 tasks use a large shared table: it is deserialized once per worker, not per task', real, async () => {
  threader.config({ maxWorkers: 2 });
  const table = {};
  for (let i = 0; i < 20000; i++) table[`k${i}`] = { id: i, name: `name ${i}`, tags: [i % 7, i % 11] };
  const h = threader.share(table);
  try {
    const before = sharedStats();
    assert.ok(before.liveBytes > 500000, `serialized size ${before.liveBytes}`);
    const tasks = [];
    for (let i = 0; i < 1000; i++) {
      tasks.push(threader((i) => T[`k${(i * 7) % 20000}`].id + T.k1.tags[1], i, { with: { T: h } }));
    }
    const out = await thread.all(tasks);
    for (let i = 0; i < 1000; i++) assert.equal(out[i], (i * 7) % 20000 + 1);
    const after = sharedStats();
    const made = after.materialized - before.materialized;
    assert.ok(made >= 1 && made <= 2, `deserialized ${made} times for 1,000 tasks on 2 workers`);
  } finally {
    h.release();
  }
});

test('config-level with: a SharedValue for every task', real, async () => {
  const h = threader.share(['zero', 'one', 'two']);
  try {
    threader.config({ with: { NAMES: h } });
    const out = await thread.all([0, 1, 2].map((i) => threader((i) => NAMES[i], i)));
    assert.deepEqual(out, ['zero', 'one', 'two']);
  } finally {
    threader.config({ with: null });
    h.release();
  }
});

test('shared values are deep-frozen in the worker: tasks cannot leave state behind', real, async () => {
  threader.config({ maxWorkers: 1 });
  const h = threader.share({ list: [1, 'a', { n: 1 }], map: new Map([['k', { v: 1 }]]), when: new Date(0) });
  try {
    // Task code is sloppy unless it says 'use strict': writes to frozen
    // properties fail silently there, and throw in strict code.
    const tries = await thread.all(threader(() => {
      const attempt = (f) => {
        try {
          f();
          return 'no error';
        } catch (e) {
          return e.name;
        }
      };
      const strict = attempt(() => {
        'use strict';
        S.list[2].n = 5;
      });
      const push = attempt(() => S.list.push(2));
      attempt(() => { S.list[2].n = 6; });
      attempt(() => { S.extra = 1; });
      attempt(() => { S.map.get('k').v = 2; });
      return [strict, push, S.list[2].n, S.extra, S.map.get('k').v, Object.isFrozen(S.list[2]),
        Object.isFrozen(S.map)];
    }, 0, { with: { S: h } }));
    assert.deepEqual(tries[0], ['TypeError', 'TypeError', 1, undefined, 1, true, true]);
    const [again] = await thread.all(threader(() => [S.list.length, S.list[2].n, S.map.get('k').v],
                                              0, { with: { S: h } }));
    assert.deepEqual(again, [3, 1, 1]);
  } finally {
    h.release();
  }
});

test('a SharedValue inside data: the worker gets the value, once per worker', real, async () => {
  threader.config({ maxWorkers: 2 });
  const h = threader.share({ scale: 3, names: ['x', 'y'] });
  try {
    const before = sharedStats().materialized;
    const tasks = [];
    for (let i = 0; i < 200; i++) {
      tasks.push(threader((d) => [d.cfg.scale * d.i, d.cfg.names[d.i % 2], d.cfg === d.again,
        Object.isFrozen(d.cfg)], { i, cfg: h, again: h }));
    }
    const out = await thread.all(tasks);
    for (let i = 0; i < 200; i++) assert.deepEqual(out[i], [3 * i, i % 2 ? 'y' : 'x', true, true]);
    const [whole] = await thread.all(threader((d) => d.names.join(''), h));
    assert.equal(whole, 'xy');
    const made = sharedStats().materialized - before;
    assert.ok(made >= 1 && made <= 2, `deserialized ${made} times`);
  } finally {
    h.release();
  }
});

test('a shared SharedArrayBuffer stays shared: writes are visible to the host', real, async () => {
  const sab = new SharedArrayBuffer(64);
  const h = threader.share({ cells: new Int32Array(sab) });
  try {
    await thread.all([1, 2, 3].map((i) => threader((i) => Atomics.add(S.cells, i, i), i,
                                                   { with: { S: h } })));
    assert.deepEqual(Array.from(new Int32Array(sab).slice(0, 4)), [0, 1, 2, 3]);
  } finally {
    h.release();
  }
});

test('buffers anywhere in a shared value become SharedArrayBuffer-backed', real, async () => {
  const buffer = new ArrayBuffer(16);
  new Uint8Array(buffer)[3] = 7;
  const h = threader.share({ deep: { raw: buffer, view: new Uint8Array(buffer, 2, 4) },
    list: [new Float32Array([1.5])], map: new Map([['b', new Uint16Array([4])]]) });
  try {
    const [out] = await thread.all(threader(() => [
      S.deep.raw instanceof SharedArrayBuffer, S.deep.view.buffer === S.deep.raw, S.deep.view[1],
      S.list[0][0], S.map.get('b')[0], S.map.get('b').buffer instanceof SharedArrayBuffer,
    ], 0, { with: { S: h } }));
    assert.deepEqual(out, [true, true, 7, 1.5, 4, true]);
  } finally {
    h.release();
  }
});

test('a shared string works through `with`; inside data it is refused', real, async () => {
  const text = 'lorem ipsum '.repeat(10000);
  const h = threader.share(text);
  try {
    const [n] = await thread.all(threader((w) => TEXT.split(w).length, 'ipsum', { with: { TEXT: h } }));
    assert.equal(n, 10001);
    await assert.rejects(thread.all(threader((d) => d, { t: h })),
                         { code: 'ERR_THREADER_CLONE', message: /data\.t: a SharedValue of a primitive/ });
  } finally {
    h.release();
  }
});

test('release(): tasks already started finish; later ones fail with ERR_THREADER_SHARE_RELEASED', real, async () => {
  const h = threader.share({ v: 5 });
  const live = sharedStats().live;
  const started = thread.all(Array.from({ length: 50 }, (_, i) =>
    threader((i) => S.v + i, i, { with: { S: h } })));
  const inData = thread.all(threader((d) => d.v, h));
  assert.equal(h.release(), true);
  assert.equal(h.release(), false, 'twice: no-op');
  assert.equal(h.released, true);
  const out = await started;
  assert.equal(out[49], 54);
  assert.deepEqual(await inData, [5]);
  assert.throws(() => threader((x) => S.v, 1, { with: { S: h } }),
                { code: 'ERR_THREADER_SHARE_RELEASED' });
  assert.throws(() => threader.share(h), { code: 'ERR_THREADER_SHARE_RELEASED' });
  await assert.rejects(thread.all(threader((d) => d, [h])),
                       { code: 'ERR_THREADER_CLONE', message: /released/ });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(sharedStats().live, live - 1);
});

test('a task made before release() but started after it fails cleanly', real, async () => {
  const h = threader.share({ v: 1 });
  const t = threader((x) => S.v + x, 1, { with: { S: h } });
  h.release();
  await new Promise((r) => setTimeout(r, 5));
  await assert.rejects(thread.all(t), { code: 'ERR_THREADER_SHARE_RELEASED' });
});

test('unshareable values: ERR_THREADER_SHARE naming the path', real, () => {
  const cases = [
    [() => 1, 'value'],
    [Symbol('s'), 'value'],
    [{ a: { cb() {} } }, 'value.a.cb'],
    [[1, new WeakMap()], 'value[1]'],
    [{ p: Promise.resolve() }, 'value.p'],
  ];
  for (const [value, path] of cases) {
    assert.throws(() => threader.share(value), (err) => {
      assert.equal(err.code, 'ERR_THREADER_SHARE');
      assert.equal(err.path, path, err.message);
      assert.match(err.message, /could not be shared/);
      return true;
    });
  }
});

test('__threader_shared__ is no global and user code cannot name it', real, async () => {
  const [seen] = await thread.all(threader(() => typeof globalThis.__threader_shared__));
  assert.equal(seen, 'undefined');
  assert.throws(() => threader(() => __threader_shared__(1)),  // eslint-disable-line no-undef
                { code: 'ERR_THREADER_VALIDATION' });
  assert.throws(() => threader((x) => x, 1, { with: { __threader_shared__: 1 } }),
                { code: 'ERR_INVALID_ARG_VALUE' });
  // Without validation it resolves only what the task itself pins.
  const h = threader.share({ secret: 1 });
  try {
    threader.config({ enableValidation: false });
    const [err] = await thread.all(threader(
      new Function('id', 'try { return __threader_shared__(id).secret } catch (e) { return e.message }'),
      h.id));
    assert.match(String(err), /not available/);
  } finally {
    threader.config({ enableValidation: true });
    h.release();
  }
});

test('lockdown still holds after tasks that use shared values', real, async () => {
  threader.config({ maxWorkers: 1 });
  const h = threader.share({ a: [1, 2, 3] });
  try {
    // A first task, so that the worker exists (an earlier test may have
    // shut the pool down; the next task starts a worker and its isolate).
    await thread.all(threader((x) => x, 0));
    const before = threader.stats().totals.isolatesCreated;
    for (let i = 0; i < 20; i++) {
      await thread.all(threader((i) => S.a.reduce((x, y) => x + y, i), i, { with: { S: h } }));
    }
    assert.equal(threader.stats().totals.isolatesCreated, before, 'no isolate was rebuilt');
  } finally {
    h.release();
  }
});

test('a dropped SharedValue is released automatically (FinalizationRegistry)', real, () => {
  const child = `
    const { threader, thread } = require(${JSON.stringify(root)});
    (async () => {
      const live = () => threader.stats().shared.live;
      const start = live();
      (() => { threader.share({ big: 'x'.repeat(1 << 20) }); })();
      const held = live();
      for (let i = 0; i < 20 && live() > start; i++) {
        global.gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      console.log(JSON.stringify({ start, held, end: live() }));
      await threader.shutdown();
    })();`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', child],
                      { cwd: root, encoding: 'utf8', timeout: 60000, env: { ...process.env } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.deepEqual(out, { start: 0, held: 1, end: 0 });
});
