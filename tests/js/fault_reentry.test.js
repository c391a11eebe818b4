'use strict';
// Fault suite: user code that runs *inside* Threader's own calls and calls
// back into Threader.  Getters on `data` run while the binding serialises a
// batch (inside binding.submit); onProgress, onError and trace hooks run
// inside the binding's event handler.  From there a user may cancel tasks,
// submit more, reconfigure or shut down.  Each case runs in a child process
// (a broken in-flight count would keep node alive forever) and must: settle
// every task once with a sensible status, keep the pool usable, and let
// node exit by itself.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { load } = require('./helpers/load.js');

const { isMock, root } = load();
const skip = isMock && 'mock binding: needs the addon';

const PRELUDE = `
  const { threader, thread } = require(process.env.THREADER_ROOT);
  const outcome = (t) => thread.all(t).then((v) => v[0], (e) => e.name + ': ' + e.message);
  const report = async (label, tasks) => {
    const out = await Promise.all(tasks.map(outcome));
    const after = await thread.all(threader((x) => x + 1, 41)).then((v) => v[0], (e) => 'after failed: ' + e.message);
    // Final native events of tasks JS already settled (cancelled) may still
    // be on their way: give them a moment before reading the counts.
    await new Promise((resolve) => setTimeout(resolve, 100));
    console.log(JSON.stringify({ label, out, after, pending: threader.stats().tasks.pending,
                                 inFlight: threader.stats().tasks.inFlight }));
  };
`;

function run(source) {
  const r = spawnSync(process.execPath, ['-e', PRELUDE + source], {
    cwd: root, encoding: 'utf8', timeout: 15000, killSignal: 'SIGKILL',
    env: { ...process.env, THREADER_ROOT: root },
  });
  assert.notEqual(r.signal, 'SIGKILL', `node did not exit by itself (hung): ${r.stdout} ${r.stderr}`);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  assert.ok(line, `no report: ${r.stdout} ${r.stderr}`);
  return JSON.parse(line);
}

const ABORT = /^AbortError/;

test('a data getter cancels its own task during submission', { skip }, () => {
  const r = run(`
    const others = [0, 1].map((i) => threader((x) => x, i));
    const self = threader((d) => d.x, { get x() { self.cancel(); return 1; } });
    report('self', [others[0], self, others[1]]);
  `);
  assert.equal(r.out[0], 0);
  assert.match(String(r.out[1]), ABORT);
  assert.equal(r.out[2], 1);
  assert.equal(r.after, 42);
  assert.equal(r.pending, 0);
});

test('a data getter cancels a later task of the same batch', { skip }, () => {
  const r = run(`
    const others = [0, 1, 2].map((i) => threader((x) => x, i));
    const self = threader((d) => d.x, { get x() { others[2].cancel(); return 'me'; } });
    report('later', [others[0], self, others[1], others[2]]);
  `);
  assert.deepEqual(r.out.slice(0, 3), [0, 'me', 1]);
  assert.match(String(r.out[3]), ABORT);
  assert.equal(r.after, 42);
  assert.equal(r.pending, 0);
});

test('a data getter cancels an earlier task of the same batch: the others are unaffected, node exits', { skip }, () => {
  const r = run(`
    const others = [0, 1, 2].map((i) => threader((x) => x, i));
    const self = threader((d) => d.x, { get x() { others[0].cancel(); return 'me'; } });
    report('earlier', [others[0], self, others[1], others[2]]);
  `);
  assert.match(String(r.out[0]), ABORT);
  assert.deepEqual(r.out.slice(1), ['me', 1, 2]);
  assert.equal(r.after, 42);
  assert.equal(r.pending, 0);
});

test('a data getter starts another run during submission', { skip }, () => {
  const r = run(`
    let inner;
    const self = threader((d) => d.x, { get x() { inner = threader((y) => y * 10, 7); thread.all(inner).catch(() => {}); return 1; } });
    report('submit', [self]).then(() => outcome(inner)).then((v) => console.log(JSON.stringify({ inner: v })));
  `);
  assert.deepEqual(r.inner, 70);
});

test('a data getter shuts Threader down during submission', { skip }, () => {
  const r = run(`
    const others = [0, 1].map((i) => threader((x) => x, i));
    const self = threader((d) => d.x, { get x() { threader.shutdown(); return 1; } });
    report('shutdown', [others[0], self, others[1]]);
  `);
  for (const o of r.out) assert.ok(o === 0 || o === 1 || ABORT.test(String(o)), String(o));
  assert.equal(r.after, 42);
  assert.equal(r.pending, 0);
});

test('a data getter reconfigures the pool during submission', { skip }, () => {
  const r = run(`
    const self = threader((d) => d.x, { get x() { threader.config({ maxWorkers: 1, maxHeapMB: 32, workerTimeout: 1000 }); return 1; } });
    report('config', [threader((x) => x, 0), self]);
  `);
  assert.deepEqual(r.out, [0, 1]);
  assert.equal(r.after, 42);
});

test('a data getter that throws fails only its own task', { skip }, () => {
  const r = run(`
    const self = threader((d) => d.x, { get x() { throw new Error('getter threw'); } });
    report('throws', [threader((x) => x, 0), self, threader((x) => x, 2)]);
  `);
  assert.equal(r.out[0], 0);
  assert.match(String(r.out[1]), /ThreaderCloneError.*getter threw/);
  assert.equal(r.out[2], 2);
  assert.equal(r.pending, 0);
});

test('onProgress cancels other running tasks, submits more, and shuts down', { skip }, () => {
  const r = run(`
    const spin = (d, ctx) => { ctx.progress(0.5); for (;;) {} };
    const victim = threader((d) => { for (;;) {} });
    let extra;
    const t = threader(spin, null, { onProgress: () => {
      victim.cancel();
      extra = threader((x) => x * 3, 5);
      thread.all(extra).catch(() => {});
      t.cancel();
    } });
    report('progress', [victim, t]).then(() => outcome(extra)).then((v) => console.log(JSON.stringify({ extra: v })));
  `);
  assert.equal(r.extra, 15);
  const r2 = run(`
    const t = threader((d, ctx) => { ctx.progress(0.5); for (;;) {} }, null, { onProgress: () => threader.shutdown() });
    report('progress-shutdown', [t, threader((d) => { for (;;) {} })]);
  `);
  for (const o of r2.out) assert.match(String(o), ABORT);
  assert.equal(r2.after, 42);
  assert.equal(r2.pending, 0);
});

test('onError and trace hooks that call back into Threader', { skip }, () => {
  const r = run(`
    let second;
    threader.config({ onError: (err) => {
      if (second === undefined) {
        second = threader((x) => x + 1, 1);
        thread.fire(second);
        threader.shutdown();
      }
    } });
    thread.fire(threader(() => { throw new Error('first'); }));
    // Wait for the hook however slow the machine is, then report.
    const wait = () => (second === undefined ? setTimeout(wait, 20) : report('onError', [second]));
    setTimeout(wait, 20);
  `);
  assert.ok(r.out[0] === 2 || ABORT.test(String(r.out[0])), String(r.out[0]));
  assert.equal(r.after, 42);
  const r2 = run(`
    let n = 0;
    threader.config({ trace: (rec) => {
      if (rec.event === 'submit' && n++ === 0) thread.all(threader((x) => x, 'from trace')).then((v) => console.log(JSON.stringify({ fromTrace: v[0] })));
    } });
    report('trace', [threader((x) => x, 1)]);
  `);
  assert.equal(r2.after, 42);
});
