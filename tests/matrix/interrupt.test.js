'use strict';
// Loops that some V8 optimises into code that takes no interrupts: a
// timeout, cancel() or the heap limit (all TerminateExecution) must still
// stop them.  V8 13.6 (Node 24) unrolls such loops with Turboshaft after OSR
// and drops their interrupt check; v8c/compat.h ApplyV8FlagWorkarounds turns
// that off.  Each case runs in a child process, since a task that cannot be
// stopped also keeps its process from exiting.  Run by `tools/test --matrix`
// under every Node.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

function child(body, timeout) {
  const script = `
    const { threader, thread } = require(${JSON.stringify(root)});
    (async () => { ${body} })().then(
      (v) => { console.log(JSON.stringify(v)); process.exit(0); },
      (e) => { console.error('child failed:', e); process.exit(1); });
  `;
  const r = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8', timeout, killSignal: 'SIGKILL',
  });
  const detail = `status ${r.status}, signal ${r.signal}${r.signal ? ' (not stopped in time)' : ''}\n` +
    `stdout: ${r.stdout}\nstderr: ${r.stderr.slice(-2000)}`;
  assert.equal(r.signal, null, detail);
  assert.equal(r.status, 0, detail);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// The loop bodies found not to take interrupts on V8 13.6.233.17.
const loops = {
  'object holding a new Array':
    'let root = null; for (let i = 0;; i++) { root = { pad: new Array(64) }; if (i % 100000 === 0) root = null; }',
  'new Array().fill()':
    'let root = null; for (let i = 0;; i++) { root = new Array(64).fill(0); if (i % 100000 === 0) root = null; }',
};

for (const [name, source] of Object.entries(loops)) {
  test(`timeout stops a loop with ${name} (Node ${process.versions.node})`, () => {
    const out = child(`
      threader.config({ maxWorkers: 1 });
      const fn = new Function(${JSON.stringify(source)});
      const t0 = Date.now();
      const err = await thread.all(threader(fn, undefined, { timeout: 300 })).catch((e) => e);
      const ms = Date.now() - t0;
      const [after] = await thread.all(threader((x) => x * 2, 21));
      return { code: err && err.code, ms, after };
    `, 30000);
    assert.equal(out.code, 'ERR_THREADER_TIMEOUT');
    assert.ok(out.ms < 10000, `stopped after ${out.ms} ms`);
    assert.equal(out.after, 42);
  });
}

test('cancel() stops such a loop', () => {
  const out = child(`
    threader.config({ maxWorkers: 1 });
    const fn = new Function(${JSON.stringify(loops['object holding a new Array'])});
    const t = threader(fn);
    const run = thread.all(t);
    await new Promise((r) => setTimeout(r, 500));
    run.cancel();
    const err = await run.catch((e) => e);
    return { name: err && err.name };
  `, 30000);
  assert.equal(out.name, 'AbortError');
});

test('maxHeapMB stops a task that grows a tree of small objects', () => {
  const out = child(`
    threader.config({ maxWorkers: 1, maxHeapMB: 64 });
    const tree = () => {
      let root = null;
      for (;;) root = { left: root, right: [root, root], pad: new Array(64).fill(0) };
    };
    const err = await thread.all(threader(tree)).catch((e) => e);
    return { code: err && err.code };
  `, 60000);
  assert.equal(out.code, 'ERR_THREADER_WORKER');
});
