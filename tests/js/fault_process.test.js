'use strict';
// Fault suite, issue 7 item 8: the process around Threader.  Each case runs
// a small script in a child `node` with a time limit and checks how it
// ended: process.exit() with tasks in flight exits with that code, at once,
// no crash, no hang; an uncaught exception or unhandled rejection with tasks
// in flight exits 1 as Node always does; an idle pool never keeps node
// alive; SIGTERM / SIGINT during work end the process promptly; a
// worker_threads Worker that uses Threader can be terminated mid-flight;
// common V8 flags do not break the workers.  (exit.test.js has the basic
// "exits when done" cases.)

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync, spawn } = require('node:child_process');
const { load } = require('./helpers/load.js');

const { isMock, root } = load();
const skip = isMock && 'mock binding: needs the real addon';

// Prelude of every child script: the package, and a few task functions.
const PRELUDE = `
  const { threader, thread } = require(process.env.THREADER_ROOT);
  const spin = () => { for (;;) {} };
  const hog = () => { const keep = []; for (;;) keep.push(new Array(100000).fill(1.5)); };
  const flood = (n) => Array.from({ length: n }, (_, i) => threader((x) => x + 1, i));
`;

const CRASH = /FATAL|Segmentation|Aborted|core dumped|Assertion|Check failed|double free|corrupted|terminate called|pure virtual/i;

function runScript(source, { timeout = 20000, args = [], env = {} } = {}) {
  const t0 = Date.now();
  const child = spawnSync(process.execPath, [...args, '-e', PRELUDE + source], {
    cwd: root, encoding: 'utf8', timeout, killSignal: 'SIGKILL',
    env: { ...process.env, THREADER_ROOT: root, ...env },
  });
  return { ...child, elapsed: Date.now() - t0 };
}

function assertClean(r, what) {
  assert.ok(!CRASH.test(r.stderr), `${what}: crash output:\n${r.stderr}`);
  assert.notEqual(r.signal, 'SIGKILL', `${what}: hung (killed after ${r.elapsed} ms)\n${r.stdout}\n${r.stderr}`);
}

// -- process.exit mid-flight ---------------------------------------------------

test('process.exit(0) with running loops and 10,000 queued tasks exits 0 at once', { skip }, () => {
  for (let i = 0; i < 3; i++) {
    const r = runScript(`
      thread.all([spin, spin, spin, spin].map((f) => threader(f))).catch(() => {});
      thread.all(flood(10000)).catch(() => {});
      setTimeout(() => process.exit(0), ${[5, 30, 80][i]});
    `);
    assertClean(r, `exit after ${[5, 30, 80][i]} ms`);
    assert.equal(r.signal, null);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.elapsed < 5000, `${r.elapsed} ms`);
  }
});

test('process.exit keeps its code; exiting from a completion callback works too', { skip }, () => {
  const r = runScript(`
    thread.all(threader(spin)).catch(() => {});
    thread.all(flood(1000)).then(() => process.exit(7));
  `);
  assertClean(r, 'exit(7) from then()');
  assert.equal(r.status, 7, r.stderr);
  const r2 = runScript(`
    thread.all(threader(spin)).catch(() => {});
    thread.stream(flood(50))[Symbol.asyncIterator]().next().then(() => { process.exitCode = 3; process.exit(); });
  `);
  assertClean(r2, 'exit() with exitCode from a stream read');
  assert.equal(r2.status, 3, r2.stderr);
});

// Once a known crash (SIGSEGV 2/30 on Node 20, 3/12 on Node 22 under build
// load): process.exit() skips the environment cleanup hooks, and Node
// disposed its platform while a worker thread was still making an isolate to
// replace one lost to the heap limit.  index.js now stops and joins the pool
// from a 'exit' listener, which runs before that teardown; 72 exits clean
// here (Node 20), and on Node 22 and 24 in the matrix.
test('process.exit while a task is exhausting its heap, and while one is being retried', { skip }, () => {
  // Twelve exits spread over the hogs' lives (first attempt, replacement,
  // retries), so that one run meets the race with high probability.
  const failures = [];
  for (let i = 0; i < 12; i++) {
    const delay = 40 + i * 35;
    const r = runScript(`
      threader.config({ maxHeapMB: 64 });
      thread.all(threader(hog, null, { retries: 5 })).catch(() => {});
      thread.all(threader(hog)).catch(() => {});
      setTimeout(() => process.exit(0), ${delay});
    `);
    if (r.status !== 0 || CRASH.test(r.stderr)) failures.push(`${delay} ms: status ${r.status} signal ${r.signal}`);
  }
  assert.deepEqual(failures, []);
});

test('process.exit during a submission storm and during shutdown', { skip }, () => {
  const r = runScript(`
    let n = 0;
    const tick = () => {
      thread.all(flood(2000)).catch(() => {});
      if (++n === 20) process.exit(0);
      setImmediate(tick);
    };
    tick();
  `);
  assertClean(r, 'exit during submissions');
  assert.equal(r.status, 0, r.stderr);
  const r2 = runScript(`
    thread.all([threader(spin), threader(spin), ...flood(5000)]).catch(() => {});
    setTimeout(() => { threader.shutdown(); process.exit(0); }, 30);
  `);
  assertClean(r2, 'exit right after shutdown()');
  assert.equal(r2.status, 0, r2.stderr);
});

// -- uncaught errors with tasks in flight ------------------------------------

test('an uncaught exception with tasks in flight exits 1 with the error, promptly', { skip }, () => {
  const r = runScript(`
    thread.all([threader(spin), threader(spin), ...flood(5000)]).catch(() => {});
    setTimeout(() => { throw new Error('uncaught with tasks in flight'); }, 30);
  `);
  assertClean(r, 'uncaught');
  assert.equal(r.signal, null);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /uncaught with tasks in flight/);
  assert.ok(r.elapsed < 5000, `${r.elapsed} ms`);
});

test('an unhandled rejection of a thread.all exits 1 (Node\'s default), naming the task error', { skip }, () => {
  const r = runScript(`
    thread.all(threader(spin)).catch(() => {});
    thread.all(threader(() => { throw new RangeError('nobody handles me'); }));
  `);
  assertClean(r, 'unhandled rejection');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /nobody handles me/);
});

test('an uncaughtException handler that keeps going: the pool still works', { skip }, () => {
  const r = runScript(`
    process.on('uncaughtException', (e) => {
      console.log('caught', e.message);
      thread.all(threader((x) => x * 2, 21)).then((v) => { console.log('after', v[0]); process.exit(0); });
    });
    thread.all(threader(spin, null, { timeout: 50 })).catch(() => {});
    setTimeout(() => { throw new Error('boom'); }, 10);
  `);
  assertClean(r, 'uncaughtException handler');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /caught boom/);
  assert.match(r.stdout, /after 42/);
});

// -- an idle pool does not keep node alive -------------------------------------

test('an idle pool does not keep node alive after any kind of outcome', { skip }, () => {
  const r = runScript(`
    threader.config({ maxHeapMB: 64 });
    (async () => {
      await thread.all(flood(1000));
      await thread.all(threader(spin, null, { timeout: 20 })).catch(() => {});
      await thread.all(threader(hog, null, { retries: 1 })).catch(() => {});
      await thread.all(threader((x) => x, { f() {} })).catch(() => {});
      await thread.all(threader(() => ({ f() {} }))).catch(() => {});
      await thread.race(threader((x) => x, 1), threader(spin));
      await thread.any(1, threader((x) => x, 1), threader(spin), threader(spin));
      const ac = new AbortController();
      const p = thread.all(threader(spin, null, { signal: ac.signal })).catch(() => {});
      setTimeout(() => ac.abort(), 10);
      await p;
      threader(spin);  // made, never run
      console.log('done at', Date.now());
    })();
  `);
  assertClean(r, 'idle exit');
  assert.equal(r.status, 0, r.stderr);
  const doneAt = Number(/done at (\d+)/.exec(r.stdout)[1]);
  // The process must end soon after the last task settled.
  assert.ok(Date.now() - doneAt < 3000 + 500, `exited ${Date.now() - doneAt} ms after the work`);
});

test('a workerTimeout left in the config does not keep node alive', { skip }, () => {
  const r = runScript(`
    threader.config({ workerTimeout: 60000 });
    thread.all(flood(10)).then(() => console.log('done'));
  `, { timeout: 10000 });
  assertClean(r, 'workerTimeout idle');
  assert.equal(r.status, 0);
  assert.ok(r.elapsed < 5000, `${r.elapsed} ms`);
});

// -- signals -------------------------------------------------------------------

function spawnAndSignal(source, signal, afterMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', PRELUDE + source], {
      cwd: root, env: { ...process.env, THREADER_ROOT: root },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    let sentAt = 0;
    const kill = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.stdout.once('data', () => {
      setTimeout(() => { sentAt = Date.now(); child.kill(signal); }, afterMs);
    });
    child.on('exit', (code, sig) => {
      clearTimeout(kill);
      resolve({ code, signal: sig, stdout, stderr, lag: Date.now() - sentAt });
    });
  });
}

test('SIGTERM during work terminates promptly (default: killed by the signal)', { skip }, async () => {
  const r = await spawnAndSignal(`
    thread.all([spin, spin, spin, spin].map((f) => threader(f))).catch(() => {});
    thread.all(flood(20000)).catch(() => {});
    console.log('started');
  `, 'SIGTERM', 50);
  assert.ok(!CRASH.test(r.stderr), r.stderr);
  assert.equal(r.signal, 'SIGTERM', `exit code ${r.code}`);
  assert.ok(r.lag < 2000, `${r.lag} ms after SIGTERM`);
});

test('SIGTERM / SIGINT handlers that shut down and exit: prompt, every task settles', { skip }, async () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    const r = await spawnAndSignal(`
      const tasks = [threader(spin), threader(spin), ...flood(5000)];
      const outcomes = tasks.map((t) => thread.all(t).then(() => 'ok', (e) => e.name));
      process.on('${signal}', async () => {
        await threader.shutdown();
        const all = await Promise.all(outcomes);
        const bad = all.filter((o) => o !== 'ok' && o !== 'AbortError');
        console.log('settled', all.length, 'bad', bad.length);
        process.exit(0);
      });
      console.log('started');
    `, signal, 50);
    assert.ok(!CRASH.test(r.stderr), r.stderr);
    assert.equal(r.code, 0, `${signal}: ${r.signal} ${r.stderr}`);
    assert.match(r.stdout, /settled 5002 bad 0/);
    assert.ok(r.lag < 2000, `${signal}: ${r.lag} ms`);
  }
});

// -- worker_threads --------------------------------------------------------------

test('a worker_threads Worker using Threader can be terminated mid-flight; the main pool is unaffected', { skip }, () => {
  const r = runScript(`
    const { Worker } = require('node:worker_threads');
    const src = \`
      const { threader, thread } = require(process.env.THREADER_ROOT);
      const { parentPort } = require('node:worker_threads');
      thread.all([0, 1].map(() => threader(() => { for (;;) {} }))).catch(() => {});
      thread.all(Array.from({ length: 3000 }, (_, i) => threader((x) => x, i))).catch(() => {});
      setTimeout(() => parentPort.postMessage('busy'), 30);
    \`;
    (async () => {
      for (let i = 0; i < 3; i++) {
        const w = new Worker(src, { eval: true });
        await new Promise((resolve) => w.once('message', resolve));
        await w.terminate();
      }
      const w2 = new Worker(src + ';setTimeout(() => process.exit(0), 40);', { eval: true });
      await new Promise((resolve) => w2.once('exit', resolve));
      const v = await thread.all(flood(100));
      console.log('main ok', v[99]);
    })();
  `);
  assertClean(r, 'worker_threads');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /main ok 100/);
});

// -- V8 flags ---------------------------------------------------------------------

test('V8 flags that do not add globals leave the workers working', { skip }, () => {
  for (const flag of ['--stack-size=500', '--max-old-space-size=256', '--jitless', '--disallow-code-generation-from-strings']) {
    const r = runScript(`thread.all(threader((x) => x * 2, 21)).then((v) => console.log('result', v[0]), (e) => console.log('failed', e.code, e.message));`,
                        { args: [flag] });
    assertClean(r, flag);
    assert.match(r.stdout, /result 42/, `${flag}: ${r.stdout} ${r.stderr}`);
  }
});

test('node --expose-gc (common in test and benchmark runs) leaves the workers working', { skip }, () => {
  for (const flag of ['--expose-gc', '--expose-gc-as=collect', '--expose-externalize-string']) {
    const r = runScript(`thread.all(threader((x) => x * 2, 21)).then((v) => console.log('result', v[0]), (e) => console.log('failed', e.code, e.message));`,
                        { args: [flag] });
    assertClean(r, flag);
    assert.match(r.stdout, /result 42/, `${flag}: ${r.stdout} ${r.stderr}`);
  }
});
