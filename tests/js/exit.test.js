'use strict';
// A `node` process that uses Threader exits by itself when its work is done:
// the addon keeps the event loop alive only while tasks are pending.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { load } = require('./helpers/load.js');

const { isMock, root } = load();
const skip = isMock && 'mock binding: needs the real addon';

function runScript(source, timeout = 20000) {
  const t0 = Date.now();
  const child = spawnSync(process.execPath, ['-e', source], {
    cwd: root, encoding: 'utf8', timeout, env: { ...process.env, THREADER_ROOT: root },
  });
  return { ...child, elapsed: Date.now() - t0 };
}

test('exits after a run', { skip }, () => {
  const r = runScript(`
    const { threader, thread } = require(process.env.THREADER_ROOT);
    thread.all([1, 2, 3].map((n) => threader((x) => x * 2, n)))
      .then((v) => console.log(JSON.stringify(v)));
  `);
  assert.equal(r.signal, null, `killed after ${r.elapsed} ms: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '[2,4,6]');
});

test('exits after merely loading the package', { skip }, () => {
  const r = runScript(`require(process.env.THREADER_ROOT); console.log('loaded');`);
  assert.equal(r.signal, null, 'did not exit');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'loaded');
});

test('exits after failures, timeouts, cancellations and fire', { skip }, () => {
  const r = runScript(`
    const { threader, thread } = require(process.env.THREADER_ROOT);
    threader.config({ onError: () => {} });
    const spin = () => { for (;;) {} };
    const loop = threader(spin);
    thread.all(loop).catch(() => {});
    setTimeout(() => loop.cancel(), 30);
    thread.all(threader(spin, null, { timeout: 30 })).catch((e) => console.log(e.code));
    thread.fire(threader(() => { throw new Error('x'); }));
    const s = thread.stream(threader(spin), threader((x) => x, 1));
    (async () => { for await (const v of s) { console.log('first', v); break; } })();
  `);
  assert.equal(r.signal, null, `did not exit (${r.elapsed} ms): ${r.stdout} ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ERR_THREADER_TIMEOUT/);
  assert.match(r.stdout, /first 1/);
});

test('exits after shutdown with tasks in flight', { skip }, () => {
  const r = runScript(`
    const { threader, thread } = require(process.env.THREADER_ROOT);
    const tasks = Array.from({ length: 8 }, () => threader(() => { for (;;) {} }));
    thread.all(tasks).catch((e) => console.log(e.name));
    setTimeout(() => threader.shutdown().then(() => console.log('down')), 50);
  `);
  assert.equal(r.signal, null, 'did not exit');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /AbortError/);
  assert.match(r.stdout, /down/);
});
