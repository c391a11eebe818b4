'use strict';
// V8 code caches of the package's own JS (js/code_cache.js): each test runs
// fresh `node` processes that require the package with their own
// THREADER_CACHE_DIR, and checks what they read and wrote, that results are
// right, and that loading through the cache looks exactly like loading
// through Node's own loader (module tree, strict mode, stack traces).
// Without a built addon the child builds the API over the mock binding
// (index.js has loaded every js/ file, through the cache, before it looks
// for the addon).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..');

// The child: loads the package, runs two tasks, and prints one JSON line.
// CC_MODE: 'exit' (caches, if any, are written at 'exit'), 'flush'
// (code_cache.flush() before printing), 'wait' (prints after the write-back
// timer has fired), 'throw' (also reports threader(42)'s error).
const CHILD = `
const Module = require('node:module');
const path = require('node:path');
const root = process.env.THREADER_ROOT;
const originalCompile = Module.prototype._compile;
let pkg = null;
try {
  pkg = require(root);
} catch (err) {
  if (err.code !== 'ERR_THREADER_ADDON_MISSING') throw err;
}
const hookRemoved = Module.prototype._compile === originalCompile;
let api;
if (pkg) {
  api = pkg;
} else {
  const { MockBinding } = require(path.join(root, 'tests', 'js', 'helpers', 'mock_binding.js'));
  api = require(path.join(root, 'js', 'api.js')).createThreader(new MockBinding({ maxWorkers: 2 }));
}
const codeCache = require(path.join(root, 'js', 'code_cache.js'));

// The module tree under index.js, as Node's loader would have built it.
function tree(mod, seen = new Set()) {
  if (seen.has(mod)) return '(cycle)';
  seen.add(mod);
  return {
    file: path.relative(root, mod.filename),
    loaded: mod.loaded,
    children: mod.children.filter((c) => c.filename.startsWith(root))
      .map((c) => tree(c, seen)),
  };
}
const index = require.cache[require.resolve(root)];
const apiFile = path.join(root, 'js', 'api.js');
let strict;
try {
  void require(apiFile).createThreader.caller;
  strict = false;
} catch {
  strict = true;
}

const report = { hookRemoved, strict, tree: index ? tree(index) : null };
if (process.env.CC_MODE === 'throw') {
  try {
    api.threader(42);
  } catch (err) {
    report.error = { name: err.name, code: err.code, stack: err.stack };
  }
}
api.thread.all([api.threader((x) => x + 1, 1), api.threader((x) => x * 2, 21)])
  .then((result) => {
    report.result = result;
    const done = () => {
      report.stats = codeCache.stats();
      console.log(JSON.stringify(report));
    };
    if (process.env.CC_MODE === 'flush') {
      codeCache.flush();
      done();
    } else if (process.env.CC_MODE === 'wait') {
      setTimeout(done, 1500);
    } else {
      done();
    }
  });
`;

function tmpdir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'threader-code-cache-'));
  t.after(() => {
    try { fs.chmodSync(dir, 0o700); } catch {}
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function run(cacheDir, { mode = 'exit', env = {}, uid, gid } = {}) {
  const r = spawnSync(process.execPath, ['-e', CHILD], {
    cwd: root,
    encoding: 'utf8',
    timeout: 30000,
    uid,
    gid,
    env: {
      ...process.env,
      THREADER_ROOT: root,
      THREADER_CACHE_DIR: cacheDir,
      CC_MODE: mode,
      ...env,
    },
  });
  assert.equal(r.signal, null, `child killed: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const line = r.stdout.trim().split('\n').pop();
  const report = JSON.parse(line);
  assert.deepEqual(report.result, [2, 42]);
  assert.equal(report.hookRemoved, true, 'Module.prototype._compile was left wrapped');
  assert.equal(report.strict, true, 'js/api.js no longer strict');
  return report;
}

// { name: bytes } of the cache files in `dir`.
function cacheFiles(dir) {
  const out = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (/^code-.*\.bin$/.test(name) && fs.statSync(file).isFile()) {
      out[name] = fs.readFileSync(file);
    }
  }
  return out;
}

// The js/ files index.js loads through the hook (not js/code_cache.js and
// js/cache_dir.js, which load before it).
const CACHED_FILES = 5;

test('the first run writes a cache per file, the second reads them all', (t) => {
  const dir = tmpdir(t);
  const first = run(dir);
  assert.deepEqual(first.stats, { hits: 0, misses: CACHED_FILES, rejected: 0, written: 0 });
  const files = cacheFiles(dir);
  assert.equal(Object.keys(files).length, CACHED_FILES, 'written at exit');
  assert.ok(Object.values(files).every((b) => b.length > 0));

  const mtimes = Object.keys(files).map((n) => fs.statSync(path.join(dir, n)).mtimeMs);
  const second = run(dir, { mode: 'wait' });
  assert.deepEqual(second.stats, { hits: CACHED_FILES, misses: 0, rejected: 0, written: 0 });
  // Nothing changed, so nothing was rewritten.
  assert.deepEqual(cacheFiles(dir), files);
  assert.deepEqual(Object.keys(files).map((n) => fs.statSync(path.join(dir, n)).mtimeMs), mtimes);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

test('the write-back timer and flush() write without waiting for exit', (t) => {
  const dir = tmpdir(t);
  assert.equal(run(dir, { mode: 'wait' }).stats.written, CACHED_FILES);
  const dir2 = tmpdir(t);
  assert.equal(run(dir2, { mode: 'flush' }).stats.written, CACHED_FILES);
  assert.deepEqual(run(dir2).stats, { hits: CACHED_FILES, misses: 0, rejected: 0, written: 0 });
});

test('a corrupted cache file is rejected quietly and rewritten', (t) => {
  const dir = tmpdir(t);
  run(dir);
  const names = Object.keys(cacheFiles(dir));
  assert.equal(names.length, CACHED_FILES);
  const garbage = Buffer.alloc(4096);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
  for (const name of names) fs.writeFileSync(path.join(dir, name), garbage);

  const rejected = run(dir, { mode: 'flush' });
  assert.deepEqual(rejected.stats,
    { hits: 0, misses: 0, rejected: CACHED_FILES, written: CACHED_FILES });
  const rewritten = cacheFiles(dir);
  assert.deepEqual(Object.keys(rewritten), names);
  for (const name of names) assert.notDeepEqual(rewritten[name], garbage, name);

  assert.deepEqual(run(dir).stats, { hits: CACHED_FILES, misses: 0, rejected: 0, written: 0 });
});

test('THREADER_CACHE_DIR=off reads and writes nothing', (t) => {
  const home = tmpdir(t);
  const report = run('off', { mode: 'wait', env: { HOME: home, XDG_CACHE_HOME: home } });
  assert.deepEqual(report.stats, { hits: 0, misses: 0, rejected: 0, written: 0 });
  assert.deepEqual(fs.readdirSync(home), []);
});

test('the cache stands aside while V8 coverage is collected', (t) => {
  const dir = tmpdir(t);
  const coverage = tmpdir(t);
  const report = run(dir, { mode: 'flush', env: { NODE_V8_COVERAGE: coverage } });
  assert.deepEqual(report.stats, { hits: 0, misses: 0, rejected: 0, written: 0 });
  assert.deepEqual(cacheFiles(dir), {});
});

// As root, permissions do not stop writes: the child then runs as `nobody`
// (the package must be readable by it).
test('an unwritable cache directory still loads', (t) => {
  const base = tmpdir(t);
  fs.chmodSync(base, 0o755);
  const dir = path.join(base, 'cache');
  fs.mkdirSync(dir);
  const opts = { mode: 'wait' };
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    const nobody = 65534;
    const probe = spawnSync(process.execPath, ['-e', `require.resolve(${JSON.stringify(root)})`],
      { cwd: root, uid: nobody, gid: nobody });
    if (probe.status !== 0) {
      t.skip('running as root, and user nobody cannot read the package');
      return;
    }
    fs.chownSync(dir, nobody, nobody);
    opts.uid = nobody;
    opts.gid = nobody;
  }
  fs.chmodSync(dir, 0o500);
  const report = run(dir, opts);
  assert.equal(report.stats.written, 0);
  assert.deepEqual(fs.readdirSync(dir), []);
});

// Writes that fail after the directory check passed (here: a directory
// squats on each cache file's name, which even root cannot replace by a
// file) are only a lost speed-up.
test('cache files that cannot be read or written are only a miss', (t) => {
  const dir = tmpdir(t);
  run(dir);
  const names = Object.keys(cacheFiles(dir));
  assert.equal(names.length, CACHED_FILES);
  for (const name of names) {
    fs.unlinkSync(path.join(dir, name));
    fs.mkdirSync(path.join(dir, name));
  }
  const report = run(dir, { mode: 'flush' });
  assert.deepEqual(report.stats, { hits: 0, misses: CACHED_FILES, rejected: 0, written: 0 });
  assert.deepEqual(fs.readdirSync(dir).sort(), names.sort());
  assert.deepEqual(cacheFiles(dir), {});
});

// Compares what the child saw with a code cache (cold: compiled and then
// written; warm: read back) to Node's own loader (cache off): the same
// module tree, and the same stack for an error thrown inside js/api.js.
test('modules and stack traces are those of Node\'s own loader', (t) => {
  const dir = tmpdir(t);
  const plain = run('off', { mode: 'throw' });
  const cold = run(dir, { mode: 'throw' });
  const warm = run(dir, { mode: 'throw' });
  assert.equal(cold.stats.misses, CACHED_FILES);
  assert.equal(warm.stats.hits, CACHED_FILES);

  assert.equal(plain.error.name, 'TypeError');
  assert.equal(plain.error.code, 'ERR_THREADER_VALIDATION');
  // Frames inside the package, e.g. "at threader (/…/js/api.js:1234:11)".
  const frames = (stack) => stack.split('\n')
    .filter((l) => l.includes(path.join(root, 'js') + path.sep));
  const plainFrames = frames(plain.error.stack);
  assert.ok(plainFrames.length > 0, plain.error.stack);
  for (const frame of plainFrames) {
    const m = /[/\\]js[/\\]((?:vendor[/\\])?[\w.]+\.js):(\d+):(\d+)\)?$/.exec(frame);
    assert.ok(m, frame);
    const lines = fs.readFileSync(path.join(root, 'js', m[1]), 'utf8').split('\n').length;
    assert.ok(Number(m[2]) > 1 && Number(m[2]) <= lines, frame);
  }
  for (const report of [cold, warm]) {
    assert.deepEqual(report.error, plain.error);
    assert.deepEqual(frames(report.error.stack), plainFrames);
    assert.deepEqual(report.tree, plain.tree);
  }
  if (plain.tree !== null) {
    assert.equal(plain.tree.file, 'index.js');
    assert.ok(JSON.stringify(plain.tree).includes(path.join('js', 'vendor', 'acorn.js')));
  }
});
