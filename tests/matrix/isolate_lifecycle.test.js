'use strict';
// Worker isolates are created and disposed in the order the running Node's
// platform requires (v8c/compat.h DisposeNodeIsolate): unregister then
// dispose up to Node 22, MultiIsolatePlatform::DisposeIsolate from Node 24.
// Getting it wrong does not fail any task: the process aborts later, at
// exit or when V8 next posts a task for a disposed isolate.  So each case
// runs in a child process under the running Node, which must exit 0 with
// nothing on stderr.  Run by `tools/test --matrix` under every Node.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

// Runs `body` (an async function body with threader, thread in scope) in a
// child; returns {status, signal, stdout, stderr}.
function child(body, { timeout = 60000 } = {}) {
  const script = `
    const { threader, thread } = require(${JSON.stringify(root)});
    (async () => { ${body} })().then(
      () => {},
      (e) => { console.error('child failed:', e); process.exitCode = 1; });
  `;
  return spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8', timeout, killSignal: 'SIGKILL',
  });
}

function assertClean(r, what) {
  const detail = `${what}: status ${r.status}, signal ${r.signal}\n` +
    `stdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.signal, null, detail);
  assert.equal(r.status, 0, detail);
  assert.doesNotMatch(r.stderr, /Assertion failed|Fatal error|Check failed|Aborted/, detail);
}

test(`worker isolates disposed by shutdown leave Node ${process.versions.node} exiting cleanly`, () => {
  const r = child(`
    threader.config({ maxWorkers: 3 });
    const out = await thread.all([1, 2, 3, 4, 5, 6].map((n) => threader((x) => x * 2, n)));
    if (out.join() !== '2,4,6,8,10,12') throw new Error('bad results ' + out);
    await threader.shutdown();
  `);
  assertClean(r, 'shutdown then exit');
});

test('exit without shutdown, with idle workers alive, is clean', () => {
  const r = child(`
    threader.config({ maxWorkers: 2 });
    await thread.all([1, 2, 3].map((n) => threader((x) => x, n)));
  `);
  assertClean(r, 'exit with idle workers');
});

test('isolates replaced mid-run (heap limit, lockdown rebuild) are disposed cleanly', () => {
  const r = child(`
    threader.config({ maxWorkers: 1, maxHeapMB: 32 });
    const hog = () => { const keep = []; for (;;) keep.push(new Array(100000).fill(1.5)); };
    for (let i = 0; i < 3; i++) {
      const err = await thread.all(threader(hog)).catch((e) => e);
      if (!err || err.code !== 'ERR_THREADER_WORKER') throw new Error('expected a heap loss: ' + err);
    }
    // A task that changes an intrinsic makes the worker rebuild its isolate.
    await thread.all(threader(() => { try { Array.prototype.x = 1; } catch {} return 1; })).catch(() => {});
    const [v] = await thread.all(threader((x) => x + 1, 1));
    if (v !== 2) throw new Error('bad result ' + v);
    await threader.shutdown();
  `);
  assertClean(r, 'replacements');
});

test('many workers started and stopped concurrently (isolate addresses reused)', () => {
  const r = child(`
    for (let round = 0; round < 8; round++) {
      threader.config({ maxWorkers: 4 });
      await thread.all(Array.from({ length: 16 }, (_, i) => threader((x) => x, i)));
      threader.config({ maxWorkers: 1 });
      await thread.all(threader((x) => x, round));
      await threader.shutdown();
    }
  `, { timeout: 120000 });
  assertClean(r, 'start/stop rounds');
});
