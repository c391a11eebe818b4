'use strict';
// V8 code caches of the package's own JS (js/code_cache.js): each test runs
// fresh `node` processes that require the package with their own
// THREADER_CACHE_DIR, and checks what they read and wrote, that results are
// right, and that loading through the cache looks exactly like loading
// through Node's own loader (module tree, strict mode, stack traces).
// Without a built addon the child loads js/api.js through withCodeCache
// itself and builds the API over the mock binding.

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
const codeCache = require(path.join(root, 'js', 'code_cache.js'));
let api;
if (pkg) {
  api = pkg;
} else {
  const { createThreader } = codeCache.withCodeCache(root, () => require(path.join(root, 'js', 'api.js')));
  const { MockBinding } = require(path.join(root, 'tests', 'js', 'helpers', 'mock_binding.js'));
  api = createThreader(new MockBinding({ maxWorkers: 2 }));
}
const hookRemoved = Module.prototype._compile === originalCompile;
const jsFiles = codeCache.compiledFiles().map((f) => path.relative(root, f));

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

const report = { hookRemoved, strict, jsFiles, tree: index ? tree(index) : null };
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

// `cached`: whether the hook is expected to compile the package's files.
function run(cacheDir, { mode = 'exit', env = {}, uid, gid, pkg = root, cached = true } = {}) {
  const r = spawnSync(process.execPath, ['-e', CHILD], {
    cwd: pkg,
    encoding: 'utf8',
    timeout: 30000,
    uid,
    gid,
    env: {
      ...process.env,
      THREADER_ROOT: pkg,
      THREADER_CACHE_DIR: cacheDir,
      THREADER_CODE_CACHE: '1',  // opt-in (js/code_cache.js)
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
  if (!cached) {
    assert.deepEqual(report.jsFiles, []);
    return report;
  }
  // At least the files index.js loads in any order (js/load_addon.js and
  // js/prestart.js may load outside the hook), each once.
  for (const f of ['errors.js', 'api.js', 'validate.js', path.join('vendor', 'acorn.js')]) {
    assert.ok(report.jsFiles.includes(path.join('js', f)), `${f} not in ${report.jsFiles}`);
  }
  assert.equal(new Set(report.jsFiles).size, report.jsFiles.length, report.jsFiles);
  report.n = report.jsFiles.length;
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

const stats = (hits, misses, rejected, written) => ({ hits, misses, rejected, written });

test('the first run writes a cache per file, the second reads them all', (t) => {
  const dir = tmpdir(t);
  const first = run(dir);
  assert.deepEqual(first.stats, stats(0, first.n, 0, 0));
  const files = cacheFiles(dir);
  assert.equal(Object.keys(files).length, first.n, 'written at exit');

  const mtimes = Object.keys(files).map((n) => fs.statSync(path.join(dir, n)).mtimeMs);
  const second = run(dir, { mode: 'wait' });
  assert.deepEqual(second.stats, stats(first.n, 0, 0, 0));
  // Nothing changed, so nothing was rewritten.
  assert.deepEqual(cacheFiles(dir), files);
  assert.deepEqual(Object.keys(files).map((n) => fs.statSync(path.join(dir, n)).mtimeMs), mtimes);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

test('the write-back timer and flush() write without waiting for exit', (t) => {
  const dir = tmpdir(t);
  const waited = run(dir, { mode: 'wait' });
  assert.equal(waited.stats.written, waited.n);
  const dir2 = tmpdir(t);
  const flushed = run(dir2, { mode: 'flush' });
  assert.equal(flushed.stats.written, flushed.n);
  assert.deepEqual(run(dir2).stats, stats(flushed.n, 0, 0, 0));
});

test('a corrupted cache file is rejected quietly and rewritten', (t) => {
  const dir = tmpdir(t);
  const { n } = run(dir);
  const names = Object.keys(cacheFiles(dir));
  assert.equal(names.length, n);
  const garbage = Buffer.alloc(4096);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
  for (const name of names) fs.writeFileSync(path.join(dir, name), garbage);

  assert.deepEqual(run(dir, { mode: 'flush' }).stats, stats(0, 0, n, n));
  const rewritten = cacheFiles(dir);
  assert.deepEqual(Object.keys(rewritten), names);
  for (const name of names) assert.notDeepEqual(rewritten[name], garbage, name);
  assert.deepEqual(run(dir).stats, stats(n, 0, 0, 0));

  // The same with the header and source text intact and V8's part
  // garbled: V8 rejects it (script.cachedDataRejected).
  for (const name of names) {
    const bytes = fs.readFileSync(path.join(dir, name));
    const v8Part = 12 + bytes.readUInt32LE(8);
    assert.ok(v8Part < bytes.length, name);
    for (let i = v8Part; i < bytes.length; i++) bytes[i] = garbage[i % garbage.length];
    fs.writeFileSync(path.join(dir, name), bytes);
  }
  assert.deepEqual(run(dir, { mode: 'flush' }).stats, stats(0, 0, n, n));
  assert.deepEqual(run(dir).stats, stats(n, 0, 0, 0));
});

// V8 checks only a cache's source length: an edit that keeps it must not
// run the old code.  Runs on a copy of the package.
test('an edited file does not run its old cache, even at the same length', (t) => {
  const pkg = tmpdir(t);
  fs.cpSync(path.join(root, 'js'), path.join(pkg, 'js'), { recursive: true });
  for (const file of ['index.js', 'package.json', path.join('tests', 'js', 'helpers', 'mock_binding.js')]) {
    fs.cpSync(path.join(root, file), path.join(pkg, file));
  }
  const env = {};
  const addon = path.join(root, 'out', 'threader.node');
  if (!process.env.THREADER_ADDON && fs.existsSync(addon)) env.THREADER_ADDON = addon;
  const dir = tmpdir(t);
  const opts = { mode: 'throw', env, pkg };
  const cold = run(dir, opts);
  assert.match(cold.error.stack, /must be a function/);
  const warm = run(dir, opts);
  assert.deepEqual(warm.stats, stats(warm.n, 0, 0, 0));

  const apiFile = path.join(pkg, 'js', 'api.js');
  const before = fs.readFileSync(apiFile, 'utf8');
  const after = before.replace('must be a function', 'must be a FUNCTION');
  assert.notEqual(after, before);
  assert.equal(after.length, before.length);
  fs.writeFileSync(apiFile, after);
  const mtime = fs.statSync(apiFile).mtime;

  const edited = run(dir, opts);
  assert.deepEqual(edited.stats, stats(edited.n - 1, 0, 1, 0));
  assert.match(edited.error.stack, /must be a FUNCTION/);
  assert.deepEqual(run(dir, opts).stats, stats(edited.n, 0, 0, 0));

  // Back to the old text (an npm update in place keeps npm's fixed mtimes):
  // the old code again.
  fs.writeFileSync(apiFile, before);
  fs.utimesSync(apiFile, mtime, mtime);
  const reverted = run(dir, opts);
  assert.equal(reverted.stats.rejected, 1);
  assert.match(reverted.error.stack, /must be a function/);
});

test('THREADER_CACHE_DIR=off reads and writes nothing', (t) => {
  const home = tmpdir(t);
  const report = run('off', { mode: 'wait', env: { HOME: home, XDG_CACHE_HOME: home }, cached: false });
  assert.deepEqual(report.stats, stats(0, 0, 0, 0));
  assert.deepEqual(fs.readdirSync(home), []);
});

test('without THREADER_CODE_CACHE=1 the hook stays out (opt-in)', (t) => {
  const dir = tmpdir(t);
  const report = run(dir, { mode: 'wait', env: { THREADER_CODE_CACHE: '' }, cached: false });
  assert.deepEqual(report.stats, stats(0, 0, 0, 0));
  assert.deepEqual(cacheFiles(dir), {});
});

test('the cache stands aside while V8 coverage is collected', (t) => {
  const dir = tmpdir(t);
  const coverage = tmpdir(t);
  const report = run(dir, { mode: 'flush', env: { NODE_V8_COVERAGE: coverage }, cached: false });
  assert.deepEqual(report.stats, stats(0, 0, 0, 0));
  assert.deepEqual(cacheFiles(dir), {});
});

// As root, permissions do not stop writes: the child then runs as `nobody`
// (the package must be readable by it).
test('an unwritable cache directory still loads', (t) => {
  const base = tmpdir(t);
  fs.chmodSync(base, 0o755);
  const dir = path.join(base, 'cache');
  fs.mkdirSync(dir);
  const opts = { mode: 'wait', cached: false };
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
  // Every file misses and no write lands (js/cache_dir.js checks nothing up
  // front: the directory is only known to be unwritable when a write fails).
  const report = run(dir, { ...opts, mode: 'flush', cached: true });
  assert.equal(report.stats.hits, 0);
  assert.equal(report.stats.written, 0);
  assert.ok(report.stats.misses > 0, JSON.stringify(report.stats));
  assert.deepEqual(fs.readdirSync(dir), []);
});

// Writes that fail after the directory check passed (here: a directory
// squats on each cache file's name, which even root cannot replace by a
// file) are only a lost speed-up.
test('cache files that cannot be read or written are only a miss', (t) => {
  const dir = tmpdir(t);
  const { n } = run(dir);
  const names = Object.keys(cacheFiles(dir));
  assert.equal(names.length, n);
  for (const name of names) {
    fs.unlinkSync(path.join(dir, name));
    fs.mkdirSync(path.join(dir, name));
  }
  const report = run(dir, { mode: 'flush' });
  assert.deepEqual(report.stats, stats(0, n, 0, 0));
  assert.deepEqual(fs.readdirSync(dir).filter((name) => name.startsWith('code-')).sort(),
    names.sort());
  assert.deepEqual(cacheFiles(dir), {});
});

// Compares what the child saw with a code cache (cold: compiled and then
// written; warm: read back) to Node's own loader (cache off): the same
// module tree, and the same stack for an error thrown inside js/api.js.
test('modules and stack traces are those of Node\'s own loader', (t) => {
  const dir = tmpdir(t);
  const plain = run('off', { mode: 'throw', cached: false });
  const cold = run(dir, { mode: 'throw' });
  const warm = run(dir, { mode: 'throw' });
  assert.deepEqual(cold.stats, stats(0, cold.n, 0, 0));
  assert.deepEqual(warm.stats, stats(warm.n, 0, 0, 0));

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
