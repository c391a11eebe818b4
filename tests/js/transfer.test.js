'use strict';
// Moving data (issue 5, docs/DATA.md): opts.transfer and ctx.transfer,
// transferMode ('shared' default, 'auto', 'transfer', 'clone'),
// SharedArrayBuffers across workers with Atomics, large clones (out of
// line), the primitive fast path, and RSS after moving 100 MB ten times.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { load, needsRealWorkers, root } = require('./helpers/load.js');

const { threader, thread } = load();
const real = needsRealWorkers('needs the native serializer and real workers');

const AUTO_MIN = 8192;  // js/api.js AUTO_TRANSFER_MIN

test.afterEach(() => {
  threader.config({ transferMode: 'shared', maxWorkers: null });
});

// -- the default and the modes ---------------------------------------------

test("the default transferMode is 'shared': nothing moves unless listed", async () => {
  threader.config({ transferMode: undefined });
  assert.equal(threader.config().transferMode, 'shared');
  const big = new Float64Array(100000).fill(2);
  const [sum] = await thread.all(threader((a) => a.reduce((x, y) => x + y, 0), big));
  assert.equal(sum, 200000);
  assert.equal(big.length, 100000, 'not detached');
  assert.equal(big[5], 2);
});

test('opts.transfer moves the listed buffers: detached in the caller, intact in the worker', async () => {
  const data = new Float64Array(1 << 16).map((_, i) => i);
  const buffer = data.buffer;
  const [out] = await thread.all(threader((a) => [a.length, a[12345], a.buffer.byteLength], data,
                                          { transfer: [buffer] }));
  assert.deepEqual(out, [1 << 16, 12345, 8 << 16]);
  assert.equal(buffer.byteLength, 0);
  assert.equal(data.length, 0);
});

test('ctx.transfer moves result buffers back; the worker keeps nothing', async () => {
  const [out] = await thread.all(threader((n, ctx) => {
    const a = new Uint32Array(n);
    for (let i = 0; i < n; i++) a[i] = i * 3;
    return ctx.transfer({ a, tag: 'x' }, [a.buffer]);
  }, 1 << 18));
  assert.equal(out.tag, 'x');
  assert.ok(out.a instanceof Uint32Array);
  assert.equal(out.a.length, 1 << 18);
  assert.equal(out.a[1000], 3000);
});

test('a round trip host -> worker -> host by transfer: the host buffer is detached, the same bytes come back', async () => {
  let a = new Float64Array(1 << 20).fill(1.5);
  for (let i = 0; i < 3; i++) {
    const sent = a;
    [a] = await thread.all(threader((d, ctx) => {
      d[0] += 1;
      return ctx.transfer(d, [d.buffer]);
    }, sent, { transfer: [sent.buffer] }));
    assert.equal(sent.byteLength, 0);
  }
  assert.equal(a[0], 4.5);
  assert.equal(a[1], 1.5);
});

test("transferMode 'clone' ignores opts.transfer; 'transfer' moves every top-level buffer", async () => {
  const kept = new Uint8Array(64);
  await thread.all(threader((d) => d.length, kept, { transferMode: 'clone', transfer: [kept.buffer] }));
  assert.equal(kept.length, 64);
  const small = { a: new Uint8Array(8), b: new ArrayBuffer(4), c: [new Uint8Array(4)] };
  await thread.all(threader((d) => d.a.length, small, { transferMode: 'transfer' }));
  assert.equal(small.a.byteLength, 0);
  assert.equal(small.b.byteLength, 0);
  assert.equal(small.c[0].byteLength, 4, 'only the top level');
});

test("transferMode 'auto' moves buffers of 8 KiB or more near the top of data, copies smaller ones", async () => {
  const data = {
    big: new Float64Array(AUTO_MIN / 8),          // exactly the threshold: moved
    small: new Uint8Array(AUTO_MIN - 1),          // below: copied
    raw: new ArrayBuffer(AUTO_MIN * 2),           // a raw buffer: moved
    nested: { deep: new Uint8Array(AUTO_MIN) },   // one level down: moved
    list: [new Uint8Array(AUTO_MIN)],             // in an array: moved
    deeper: { a: { b: new Uint8Array(AUTO_MIN) } },  // two levels down: copied
  };
  data.big[3] = 7;
  const [seen] = await thread.all(threader((d) => [d.big[3], d.small.length, d.raw.byteLength,
    d.nested.deep.length, d.list[0].length, d.deeper.a.b.length], data, { transferMode: 'auto' }));
  assert.deepEqual(seen, [7, AUTO_MIN - 1, AUTO_MIN * 2, AUTO_MIN, AUTO_MIN, AUTO_MIN]);
  assert.equal(data.big.byteLength, 0);
  assert.equal(data.small.byteLength, AUTO_MIN - 1);
  assert.equal(data.raw.byteLength, 0);
  assert.equal(data.nested.deep.byteLength, 0);
  assert.equal(data.list[0].byteLength, 0);
  assert.equal(data.deeper.a.b.byteLength, AUTO_MIN);
});

test("transferMode 'auto' as config; a view over part of a buffer is copied, not moved", async () => {
  threader.config({ transferMode: 'auto' });
  const whole = new Uint8Array(1 << 16);
  const backing = new Uint8Array(1 << 16);
  const part = backing.subarray(0, 1 << 15);
  const pooled = Buffer.from('a small Node Buffer lives in an 8 KiB pool');
  await thread.all(threader((d) => d.whole.length + d.part.length + d.pooled.length,
                            { whole, part, pooled }));
  assert.equal(whole.byteLength, 0, 'moved');
  assert.equal(part.byteLength, 1 << 15, 'copied: its buffer holds more than the view');
  assert.equal(pooled.toString(), 'a small Node Buffer lives in an 8 KiB pool');
});

test("transferMode 'auto' copies what cannot move (WebAssembly memory) instead of failing", real, async () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  new Uint8Array(memory.buffer)[10] = 42;
  const [v] = await thread.all(threader((b) => new Uint8Array(b)[10], memory.buffer,
                                        { transferMode: 'auto' }));
  assert.equal(v, 42);
  assert.equal(memory.buffer.byteLength, 65536);
});

// -- SharedArrayBuffer ------------------------------------------------------

test("workers' writes into a SharedArrayBuffer are visible to the host, no copy", real, async () => {
  const sab = new SharedArrayBuffer(8 * 1024);
  const view = new Float64Array(sab);
  const tasks = [0, 1, 2, 3].map((part) => threader(({ v, part }) => {
    const n = v.length / 4;
    for (let i = part * n; i < (part + 1) * n; i++) v[i] = i * 2;
    return v.buffer instanceof SharedArrayBuffer;
  }, { v: view, part }));
  assert.deepEqual(await thread.all(tasks), [true, true, true, true]);
  for (let i = 0; i < view.length; i++) assert.equal(view[i], i * 2);
});

test('Atomics across workers: two workers add to one counter; one waits for the other', real, async () => {
  threader.config({ maxWorkers: 2 });
  const sab = new SharedArrayBuffer(16);
  const cells = new Int32Array(sab);
  const adds = [0, 1].map(() => threader((c) => {
    for (let i = 0; i < 10000; i++) Atomics.add(c, 0, 1);
    return true;
  }, cells));
  await thread.all(adds);
  assert.equal(Atomics.load(cells, 0), 20000);

  // Worker A waits on cells[1]; worker B stores and notifies.
  const waiter = threader((c) => Atomics.wait(c, 1, 0, 10000), cells, { priority: 'high' });
  const notifier = threader((c) => {
    const start = Date.now();
    while (Atomics.load(c, 2) === 0 && Date.now() - start < 100) { /* let A start waiting */ }
    Atomics.store(c, 1, 1);
    return Atomics.notify(c, 1);
  }, cells);
  const [woke, notified] = await thread.all(waiter, notifier);
  assert.ok(woke === 'ok' || woke === 'not-equal', woke);
  assert.ok(notified === 0 || notified === 1);
  assert.equal(Atomics.load(cells, 1), 1);
});

test('a SharedArrayBuffer in a transfer list is refused: it is shared, never moved', real, async () => {
  const sab = new SharedArrayBuffer(8);
  await assert.rejects(thread.all(threader((d, ctx) => ctx.transfer(d, [d]), sab)),
                       { code: 'ERR_THREADER_CLONE', message: /SharedArrayBuffer/ });
});

// -- large clones (out of line) -----------------------------------------------

test('a large clone: the host keeps its buffer; the worker changes only its copy', real, async () => {
  const src = new Float64Array(1 << 18).map((_, i) => i);  // 2 MiB
  const [out] = await thread.all(threader((d) => {
    d[0] = -1;
    return [d[0], d[1000], d.length];
  }, src, { transferMode: 'clone' }));
  assert.deepEqual(out, [-1, 1000, 1 << 18]);
  assert.equal(src[0], 0);
  assert.equal(src.length, 1 << 18);
});

test('a large clone keeps structure: shared buffers, offsets, DataViews, identity', real, async () => {
  const buffer = new ArrayBuffer(1 << 20);
  const whole = new Uint8Array(buffer);
  whole[100] = 1;
  whole[(1 << 19) + 5] = 2;
  const data = {
    whole,
    half: new Uint8Array(buffer, 1 << 19, 1 << 18),
    view: new DataView(buffer, 8, 64),
    raw: buffer,
    list: [whole, new Float32Array(buffer, 1024, 16)],
  };
  const [out] = await thread.all(threader((d) => [
    d.whole.buffer === d.half.buffer, d.half.buffer === d.raw, d.view.buffer === d.raw,
    d.list[0] === d.whole, d.list[1].buffer === d.raw, d.half[5], d.whole[100],
    d.half.byteOffset, d.view.byteOffset, d.list[1].byteOffset,
  ], data));
  assert.deepEqual(out, [true, true, true, true, true, 2, 1, 1 << 19, 8, 1024]);
  assert.equal(buffer.byteLength, 1 << 20, 'cloned, not moved');
});

test('a large clone that the task returns comes back whole; the caller still has its own', real, async () => {
  const src = new Int32Array(1 << 20).fill(3);
  const [back] = await thread.all(threader((d) => {
    d[7] = 9;
    return d;
  }, src));
  assert.equal(back.length, 1 << 20);
  assert.equal(back[7], 9);
  assert.equal(back[8], 3);
  assert.equal(src[7], 3);
  assert.notEqual(back.buffer, src.buffer);
});

test('large buffers made in the worker come back intact', real, async () => {
  const [a, b] = await thread.all(
    threader((n) => new Float64Array(n).fill(0.25), 1 << 19),
    threader((n) => ({ x: new Uint8Array(n).fill(7), y: 'y' }), 3 << 20));
  assert.equal(a.length, 1 << 19);
  assert.equal(a[(1 << 19) - 1], 0.25);
  assert.equal(b.x.length, 3 << 20);
  assert.equal(b.x[12345], 7);
});

// -- the primitive fast path --------------------------------------------------

test('primitives cross exactly (fast path both ways)', async () => {
  const cases = [0, -0, 1, -1, 2 ** 31, -(2 ** 31) - 1, 0.1, NaN, Infinity, -Infinity,
    Number.MAX_VALUE, Number.MIN_VALUE, true, false, null, undefined, '', 'a', 'héllo',
    'h€llo 🙂', '\ud800 lone surrogate', 'x'.repeat(1 << 20), '€'.repeat(1 << 16), 12n, -(2n ** 70n)];
  const out = await thread.all(cases.map((v) => threader((x) => x, v)));
  for (let i = 0; i < cases.length; i++) {
    assert.ok(Object.is(out[i], cases[i]), `case ${i}: ${String(cases[i]).slice(0, 20)}`);
  }
  const ops = await thread.all(threader((x) => typeof x, 'str'), threader((x) => x * 2, 21),
                               threader((s) => s.length, 'h€llo'));
  assert.deepEqual(ops, ['string', 42, 5]);
  // A number with a transfer list takes the general path: the list is moved.
  const buf = new ArrayBuffer(16);
  assert.deepEqual(await thread.all(threader((x) => x + 1, 41, { transfer: [buf] })), [42]);
  assert.equal(buf.byteLength, 0);
});

test('a primitive with a SharedValue in `with` still crosses', real, async () => {
  const k = threader.share({ k: 10 });
  try {
    const out = await thread.all([1, 2, 3].map((i) => threader((x) => x * K.k, i, { with: { K: k } })));
    assert.deepEqual(out, [10, 20, 30]);
  } finally {
    k.release();
  }
});

// -- memory ---------------------------------------------------------------------

// Runs in a child process (node --expose-gc): one line of JSON on stdout.
const RSS_CHILD = `
'use strict';
const { threader, thread } = require(${JSON.stringify(root)});
const rss = () => process.memoryUsage.rss();
const MB100 = 100 << 20;
async function quiet() {
  for (let i = 0; i < 6; i++) {
    global.gc();
    await new Promise((r) => setTimeout(r, 50));
  }
}
(async () => {
  threader.config({ maxWorkers: 2 });
  const back = (d, ctx) => ctx.transfer(d, [d.buffer]);
  const length = (d) => d.length;
  const echo = (d) => d;
  // Warm up: both workers started, every function compiled, buffers moved.
  for (let i = 0; i < 4; i++) {
    const w = new Uint8Array(1 << 20);
    await thread.all(threader(back, w, { transfer: [w.buffer] }));
    await thread.all(threader(length, new Uint8Array(1 << 20), { transferMode: 'clone' }));
    await thread.all(threader(echo, new Uint8Array(1 << 20), { transferMode: 'clone' }));
  }
  await quiet();
  const baseline = rss();
  let peak = baseline;
  // Each round in its own function, so that no suspended frame of this one
  // keeps the last buffer alive.
  async function transferRound(i) {
    let a = new Uint8Array(MB100).fill(i + 1);  // resident
    peak = Math.max(peak, rss());
    const [b] = await thread.all(threader(back, a, { transfer: [a.buffer] }));
    if (a.byteLength !== 0 || b.length !== MB100 || b[12345] !== i + 1) throw new Error('transfer');
    peak = Math.max(peak, rss());
    a = null;
  }
  async function cloneRound(i) {
    const a = new Uint8Array(MB100).fill(i + 1);
    const [n] = await thread.all(threader(length, a, { transferMode: 'clone' }));
    const [c] = await thread.all(threader(echo, a, { transferMode: 'clone' }));
    if (n !== MB100 || c.length !== MB100 || c[777] !== i + 1 || a.length !== MB100) {
      throw new Error('clone');
    }
    peak = Math.max(peak, rss());
  }
  for (let i = 0; i < 10; i++) await transferRound(i);
  await quiet();
  const afterTransfers = rss();
  for (let i = 0; i < 10; i++) await cloneRound(i);
  await quiet();
  const afterClones = rss();
  await threader.shutdown();
  console.log(JSON.stringify({ baseline, peak, afterTransfers, afterClones }));
})().catch((err) => { console.error(err); process.exit(1); });
`;

test('RSS returns near its baseline after 10 transfers of 100 MB each (and 10 clones)', real, () => {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', RSS_CHILD], {
    cwd: root, encoding: 'utf8', timeout: 240000,
    env: { ...process.env },
  });
  assert.equal(r.status, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(r.stdout.trim().split('\n').pop());
  const mb = (x) => (x / 1048576).toFixed(1);
  const slack = Math.max(0.2 * report.baseline, 24 << 20);
  for (const phase of ['afterTransfers', 'afterClones']) {
    assert.ok(report[phase] - report.baseline <= slack,
              `${phase}: RSS ${mb(report[phase])} MB vs baseline ${mb(report.baseline)} MB ` +
              `(peak ${mb(report.peak)} MB): more than ${mb(slack)} MB retained`);
  }
  assert.ok(report.peak - report.baseline >= 90 << 20,
            `the child should have held 100 MB at its peak (peak ${mb(report.peak)} MB)`);
});
