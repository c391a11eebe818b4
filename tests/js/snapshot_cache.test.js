'use strict';
// The worker snapshot's disk cache and the first worker started at load
// (js/prestart.js, js/cache_dir.js, v8c/snapshot.cc).  Each case runs in a
// fresh Node process: the snapshot is made (or read) once per process.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..');
const real = fs.existsSync(path.join(root, 'out', 'threader.node')) ||
  Boolean(process.env.THREADER_ADDON);
const skip = real && !process.env.THREADER_TEST_MOCK ? false : 'needs the real addon';

// Runs one task in a child and reports where its snapshot came from.
const CHILD = `
const root = ${JSON.stringify(root)};
const { threader, thread } = require(root);
const binding = require(root + '/js/load_addon.js').loadAddon(root);
const hardened = () => Object.isSealed(Array.prototype) && Object.isFrozen(Math) &&
  Object.isFrozen(globalThis) && !('console' in globalThis) &&
  Object.isFrozen(Array.prototype.map) && Object.isSealed(Object.prototype);
thread.all(threader((x) => x * 2, 21), threader(hardened)).then((r) => {
  process.stdout.write(JSON.stringify({ result: r[0], hardened: r[1],
    info: binding.snapshotInfo(), stats: threader.stats() }));
});`;

function run(env) {
  const out = spawnSync(process.execPath, ['-e', CHILD], {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60000,
  });
  assert.equal(out.status, 0, `child failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

function tmpDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'threader-cache-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const snapshots = (dir) => fs.readdirSync(dir).filter((f) => /^snapshot-.*\.bin$/.test(f));

test('the first process makes the snapshot and writes it; the next reads it', { skip }, (t) => {
  const dir = tmpDir(t);
  const first = run({ THREADER_CACHE_DIR: dir });
  assert.equal(first.result, 42);
  assert.equal(first.info.source, 'created');
  assert.equal(snapshots(dir).length, 1);
  const mode = fs.statSync(path.join(dir, snapshots(dir)[0])).mode & 0o777;
  assert.equal(mode, 0o600);
  const second = run({ THREADER_CACHE_DIR: dir });
  assert.equal(second.result, 42);
  assert.equal(second.info.source, 'cache');
  assert.ok(second.info.ms < first.info.ms, `read ${second.info.ms} ms, made ${first.info.ms} ms`);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

for (const [name, damage] of [
  ['a corrupted byte', (buf) => { buf[buf.length >> 1] ^= 0x55; return buf; }],
  ['a truncated file', (buf) => buf.subarray(0, buf.length - 100)],
  ['a foreign V8 version', (buf) => { buf.write('9.9.999', 32, 'latin1'); return buf; }],
  ['garbage', () => Buffer.from('not a snapshot at all')],
]) {
  test(`${name} is ignored and replaced, never fed to V8`, { skip }, (t) => {
    const dir = tmpDir(t);
    run({ THREADER_CACHE_DIR: dir });
    const file = path.join(dir, snapshots(dir)[0]);
    fs.writeFileSync(file, damage(fs.readFileSync(file)));
    const again = run({ THREADER_CACHE_DIR: dir });
    assert.equal(again.result, 42);
    assert.equal(again.info.source, 'created');
    assert.equal(run({ THREADER_CACHE_DIR: dir }).info.source, 'cache', 'not rewritten');
  });
}

// Sets a file's mtime to `secondsAgo` seconds before now.
function age(file, secondsAgo) {
  const t = Date.now() / 1000 - secondsAgo;
  fs.utimesSync(file, t, t);
}

test('a new snapshot prunes the least recently used beyond 8, and stale temporary files', { skip }, (t) => {
  const dir = tmpDir(t);
  // Ten snapshots of other keys, used 10..100 minutes ago, with plans.
  for (let i = 1; i <= 10; i++) {
    const name = `snapshot-old${String(i).padStart(2, '0')}.bin`;
    fs.writeFileSync(path.join(dir, name), 'x');
    fs.writeFileSync(path.join(dir, `${name}.plan`), 'x');
    age(path.join(dir, name), 600 * i);
  }
  fs.writeFileSync(path.join(dir, 'snapshot-dead.bin.123.tmp'), 'x');
  age(path.join(dir, 'snapshot-dead.bin.123.tmp'), 7200);
  fs.writeFileSync(path.join(dir, 'snapshot-busy.bin.456.tmp'), 'x');  // being written
  fs.writeFileSync(path.join(dir, 'validated-other.json'), 'x');
  age(path.join(dir, 'validated-other.json'), 100000);

  const first = run({ THREADER_CACHE_DIR: dir });
  assert.equal(first.info.source, 'created');
  const left = snapshots(dir).sort();
  const made = left.filter((f) => !f.startsWith('snapshot-old'));
  assert.equal(made.length, 1);
  assert.deepEqual(left.filter((f) => f.startsWith('snapshot-old')),
    ['01', '02', '03', '04', '05', '06', '07'].map((i) => `snapshot-old${i}.bin`));
  assert.ok(!fs.existsSync(path.join(dir, 'snapshot-old08.bin.plan')));
  assert.ok(fs.existsSync(path.join(dir, 'snapshot-old07.bin.plan')));
  assert.ok(!fs.existsSync(path.join(dir, 'snapshot-dead.bin.123.tmp')));
  assert.ok(fs.existsSync(path.join(dir, 'snapshot-busy.bin.456.tmp')));
  assert.ok(fs.existsSync(path.join(dir, 'validated-other.json')));

  // Reading a snapshot marks it used: an hour-old one is fresh again.
  age(path.join(dir, made[0]), 3600);
  assert.equal(run({ THREADER_CACHE_DIR: dir }).info.source, 'cache');
  const usedAgo = Date.now() / 1000 - fs.statSync(path.join(dir, made[0])).mtimeMs / 1000;
  assert.ok(usedAgo < 600, `mtime ${usedAgo} s ago`);
});

const plans = (dir) => fs.readdirSync(dir).filter((f) => /^snapshot-.*\.bin\.plan$/.test(f));

test('the lockdown plan is learned once and read back beside the snapshot', { skip }, (t) => {
  const dir = tmpDir(t);
  const first = run({ THREADER_CACHE_DIR: dir });
  assert.equal(first.info.plan, 'learned');
  assert.equal(first.hardened, true);
  assert.equal(plans(dir).length, 1);
  assert.equal(fs.statSync(path.join(dir, plans(dir)[0])).mode & 0o777, 0o600);
  const second = run({ THREADER_CACHE_DIR: dir });
  assert.equal(second.info.source, 'cache');
  assert.equal(second.info.plan, 'cache');
  assert.equal(second.result, 42);
  assert.equal(second.hardened, true);
});

for (const [name, damage] of [
  ['a corrupted record', (buf) => { buf[buf.length - 3] ^= 0x55; return buf; }],
  ['a truncated plan', (buf) => buf.subarray(0, buf.length - 5)],
  ['a plan of another snapshot', (buf) => { buf[16] ^= 0xff; return buf; }],
  ['an empty plan file', () => Buffer.alloc(0)],
  ['a garbage plan file', () => Buffer.from('not a plan')],
]) {
  test(`${name} is ignored: the plan is learned again and the file replaced`, { skip }, (t) => {
    const dir = tmpDir(t);
    run({ THREADER_CACHE_DIR: dir });
    const file = path.join(dir, plans(dir)[0]);
    fs.writeFileSync(file, damage(fs.readFileSync(file)));
    const again = run({ THREADER_CACHE_DIR: dir });
    assert.equal(again.info.source, 'cache');
    assert.equal(again.info.plan, 'learned');
    assert.equal(again.hardened, true);
    assert.equal(run({ THREADER_CACHE_DIR: dir }).info.plan, 'cache', 'not rewritten');
  });
}

test('THREADER_CACHE_DIR=off: no files, the snapshot is made in memory', { skip }, (t) => {
  const dir = tmpDir(t);
  const r = run({ THREADER_CACHE_DIR: 'off', HOME: dir, XDG_CACHE_HOME: dir });
  assert.equal(r.result, 42);
  assert.equal(r.info.source, 'created');
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('different V8 flags use a different snapshot file', { skip }, (t) => {
  const dir = tmpDir(t);
  run({ THREADER_CACHE_DIR: dir });
  const r = run({ THREADER_CACHE_DIR: dir, NODE_OPTIONS: '--max-old-space-size=300' });
  assert.equal(r.info.source, 'created');
  assert.equal(snapshots(dir).length, 2);
});

test('one worker starts at load; THREADER_PRESTART=0 starts none', { skip }, () => {
  const probe = (env) => {
    const out = spawnSync(process.execPath, ['-e', `
      const root = ${JSON.stringify(root)};
      const { threader } = require(root);
      setTimeout(() => process.stdout.write(JSON.stringify(threader.stats())), 300);`],
    { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60000 });
    assert.equal(out.status, 0, out.stderr);
    return JSON.parse(out.stdout);
  };
  const started = probe({}).filter((w) => w.running);
  assert.equal(started.length, 1);
  assert.equal(started[0].isolatesCreated, 1);
  assert.equal(probe({ THREADER_PRESTART: '0' }).filter((w) => w.running).length, 0);
});
