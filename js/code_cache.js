'use strict';
// Opt-in (THREADER_CODE_CACHE=1; see usable() for why not by default).
//
// V8 code caches for the package's own host-side JavaScript (js/*.js,
// js/vendor/acorn.js), so that a start does not compile about 400 KB of
// source from scratch: acorn alone takes ~6 ms to compile, and its parser
// ~5 ms of lazy compilation on the first threader(fn) (validation); from a
// cache, ~1.5 ms each (this machine, Node 20).
//
//   const { withCodeCache } = require('./js/code_cache.js');
//   const api = withCodeCache(packageRoot, () => require('./js/api.js'));
//
// While `fn` runs, Module.prototype._compile is wrapped: a CommonJS file
// under <packageRoot>/js/ is compiled as a vm.Script with the cached data
// read from the cache directory (js/cache_dir.js), then run exactly as
// Node's loader would run it.  Every other file (the user's, Node's,
// anything outside js/) goes to Node's own _compile untouched, and the
// original _compile is put back as soon as `fn` returns or throws: no hook
// stays installed.  This file and js/cache_dir.js load before the hook
// exists and so are compiled without a cache (they are small).
//
// A file whose cache was missing or rejected (a different V8, flags or
// source; garbage bytes) is written back once, from script.createCachedData(),
// WRITE_DELAY_MS after load or at process 'exit', whichever comes first: by
// then the functions V8 compiles lazily (acorn's parser, on the first
// validation) are usually compiled too, and createCachedData() includes
// them.  A file whose cache was accepted is never rewritten.
//
// One file per source file, `code-<key>.bin`, the key over the file's path
// (and the binary, V8 version and flags, see cacheKey), holding the source
// text the cache was made from, then the cache:
//
//   0   'TCC1'  magic and format version
//   4   u8      source encoding: 0 latin1, 1 utf16le
//   5   3 zero bytes
//   8   u32 LE  source byte length n
//   12  n bytes the source text
//   12+n        V8 code cache (script.createCachedData())
//
// A cache is used only when its source text equals the text being compiled:
// V8 itself checks nothing but the source's length, so an edit that keeps
// the length (an npm update in place keeps npm's fixed mtimes, too) would
// otherwise run the old code.  Comparing the text costs ~1 ms for all files
// (decoding acorn's 500 KB copy); hashing it costs ~5 ms (node:crypto's
// load, or cache_dir.js's hashText in cold JS).  An edited file's cache is
// rewritten in place, so the directory holds one cache per file.
//
// Why not module.enableCompileCache() (Node >= 22.1)?  It turns on Node's
// compile cache for every module the process loads afterwards, the user's
// included, and cannot be scoped to our files.  Where the user (or
// NODE_COMPILE_CACHE) enabled it already, Node caches our files too, and
// this hook stands aside.
//
// Threads: everything here runs on the JS thread that requires the package
// (the main thread, or a Node worker_thread that loads Threader); nothing
// here runs on Threader's worker isolates.  The write-back timer and the
// 'exit' listener run on that same thread.  Nothing here throws of its
// own (a module's own errors propagate as with Node's loader): a cache that
// cannot be read, used or written falls back to Node's own loader or to
// writing nothing.

const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { cacheDir, cacheKey, cachePath, writeAtomic } = require('./cache_dir.js');

// The CommonJS loader's Module class: what require('node:module') returns,
// without loading that public module (~0.4 ms of its own imports), which
// is also what adds the statics enableCompileCache and getCompileCacheDir
// to the class (Node >= 22.1).
const Module = module.constructor;

const WRITE_DELAY_MS = 1000;

const MAGIC = 0x31434354;  // 'TCC1' read as a little-endian u32
const HEADER_BYTES = 12;
const ENCODINGS = ['latin1', 'utf16le'];

// Node's CommonJS wrapper (Module.wrapper), kept on the file's first line so
// that line numbers in stack traces are those of the file.
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) { ';
const WRAP_TAIL = '\n});';

const counters = { hits: 0, misses: 0, rejected: 0, written: 0 };
const compiled = [];  // every file compileCached compiled, in order
let pending = [];  // [{ script, file, content }]: caches to write back
let writeTimer = null;

// False where a cache would be wrong or pointless: caching is off, Node's
// own compile cache already covers our files, V8 coverage is being collected
// (functions deserialized from a code cache report less precise coverage,
// as Node's compile cache documents), or a policy manifest checks the
// integrity of what the loader compiles (only Node's _compile does that).
function usable() {
  // Opt-in: with our files compiled from a code cache, tiny-task throughput
  // measured ~17% lower (median of 14 interleaved runs of 20,000 tasks in
  // flight: 236k vs 284k tasks/s, Node 20, 2 cores; cause not found), for
  // ~5 ms less on the first threader(fn).  Worth it for a process that
  // starts often and runs little (an Electron app's start-up), so it is
  // there, but not the default.
  if (process.env.THREADER_CODE_CACHE !== '1') return false;
  if (nodeCompileCacheOn()) return false;
  if (process.env.NODE_V8_COVERAGE) return false;
  const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS || ''}`;
  if (/--experimental-policy|--policy-integrity/.test(flags)) return false;
  return cacheDir() !== null;
}

function nodeCompileCacheOn() {
  // Enabled by a call (the caller had to load node:module for it, so the
  // static is there), or by NODE_COMPILE_CACHE with node:module not loaded.
  if (typeof Module.getCompileCacheDir === 'function') {
    return Boolean(Module.getCompileCacheDir());
  }
  const [major, minor] = process.versions.node.split('.').map(Number);
  return (major > 22 || (major === 22 && minor >= 1)) &&
    Boolean(process.env.NODE_COMPILE_CACHE) && !process.env.NODE_DISABLE_COMPILE_CACHE;
}

// Node's makeRequireFunction (lib/internal/modules/helpers.js) for a module
// without policy redirects: the same properties, and require() goes through
// mod.require so that module.children, require.cache and hooks on
// Module.prototype.require behave as with Node's loader.
function makeRequire(mod) {
  const require = function require(id) {
    return mod.require(id);
  };
  function validateRequest(request) {
    if (typeof request !== 'string') {
      const err = new TypeError(
        `The "request" argument must be of type string. Received ${typeof request}`);
      err.code = 'ERR_INVALID_ARG_TYPE';
      throw err;
    }
  }
  function resolve(request, options) {
    validateRequest(request);
    return Module._resolveFilename(request, mod, false, options);
  }
  function paths(request) {
    validateRequest(request);
    return Module._resolveLookupPaths(request, mod);
  }
  resolve.paths = paths;
  require.resolve = resolve;
  Object.defineProperty(require, 'main', {
    value: process.mainModule, writable: true, enumerable: true, configurable: true,
  });
  require.extensions = Module._extensions;
  require.cache = Module._cache;
  return require;
}

const MISSING = 0;
const STALE = 1;

// The V8 cache in `file` if it was made from `content`; else MISSING (no
// file) or STALE (another source text, another format, garbage).
function readCache(file, content) {
  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return MISSING;
  }
  if (bytes.length <= HEADER_BYTES || bytes.readUInt32LE(0) !== MAGIC) return STALE;
  const encoding = ENCODINGS[bytes[4]];
  const n = bytes.readUInt32LE(8);
  if (encoding === undefined || HEADER_BYTES + n >= bytes.length ||
      n !== content.length * (encoding === 'utf16le' ? 2 : 1) ||
      bytes.toString(encoding, HEADER_BYTES, HEADER_BYTES + n) !== content) {
    return STALE;
  }
  return bytes.subarray(HEADER_BYTES + n);
}

// The file readCache reads: the header, `content`, then the cache.
function cacheFileBytes(content, cache) {
  const encoding = /[^\u0000-\u00ff]/.test(content) ? 1 : 0;
  const n = Buffer.byteLength(content, ENCODINGS[encoding]);
  const out = Buffer.alloc(HEADER_BYTES + n + cache.length);
  out.writeUInt32LE(MAGIC, 0);
  out[4] = encoding;
  out.writeUInt32LE(n, 8);
  out.write(content, HEADER_BYTES, n, ENCODINGS[encoding]);
  out.set(cache, HEADER_BYTES + n);
  return out;
}

// Compiles and runs `content` as the CommonJS module `mod`, with a code
// cache; returns { result } or null when Node's loader should do it instead
// (no cache file name, or a syntax error, which Node reports in its own form).
function compileCached(mod, content, filename) {
  const file = cachePath(`code-${cacheKey('code-cache', filename)}.bin`);
  if (file === null) return null;
  const found = readCache(file, content);
  const cachedData = typeof found === 'number' ? undefined : found;
  let script;
  try {
    // No importModuleDynamically: these files never use import() (js/api.js
    // is plain ECMAScript, shared with the C++ shell).
    script = new vm.Script(WRAP_HEAD + content + WRAP_TAIL, { filename, cachedData });
  } catch {
    return null;
  }
  compiled.push(filename);
  if (found === MISSING) {
    counters.misses++;
  } else if (found === STALE || script.cachedDataRejected) {
    counters.rejected++;
  } else {
    counters.hits++;
  }
  if (cachedData === undefined || script.cachedDataRejected) {
    pending.push({ script, file, content });
    scheduleWrite();
  }
  const wrapper = script.runInThisContext({ displayErrors: true });
  const exports = mod.exports;
  return {
    result: Reflect.apply(wrapper, exports,
      [exports, makeRequire(mod), mod, filename, path.dirname(filename)]),
  };
}

function scheduleWrite() {
  if (writeTimer !== null) return;
  writeTimer = setTimeout(flush, WRITE_DELAY_MS);
  writeTimer.unref();
  process.on('exit', flush);
}

// Writes every pending cache now.  Runs from the timer or from 'exit';
// tests call it directly.  Never throws.
function flush() {
  if (writeTimer !== null) {
    clearTimeout(writeTimer);
    writeTimer = null;
    process.removeListener('exit', flush);
  }
  const list = pending;
  pending = [];
  for (const { script, file, content } of list) {
    try {
      const cache = script.createCachedData();
      if (cache.length > 0 && writeAtomic(file, cacheFileBytes(content, cache))) {
        counters.written++;
      }
    } catch {
      // Only a speed-up: the next start compiles from source again.
    }
  }
}

// Runs `fn` (which requires files under <packageRoot>/js/) with the code
// cache hook installed, and returns what it returns.
function withCodeCache(packageRoot, fn) {
  if (!usable()) return fn();
  const jsDir = path.join(packageRoot, 'js') + path.sep;
  const proto = Module.prototype;
  const original = proto._compile;
  let active = true;
  const _compile = function _compile(content, filename, format) {
    if (active && (format === undefined || format === 'commonjs') &&
        typeof content === 'string' && typeof filename === 'string' &&
        filename.startsWith(jsDir) && filename.endsWith('.js')) {
      const done = compileCached(this, content, filename);
      if (done !== null) return done.result;
    }
    return Reflect.apply(original, this, arguments);
  };
  proto._compile = _compile;
  try {
    return fn();
  } finally {
    // Should something have wrapped _compile over ours meanwhile, ours stays
    // in its chain as a pass-through.
    active = false;
    if (proto._compile === _compile) proto._compile = original;
  }
}

// Counters since this process loaded the package, for tests and debugging:
// { hits, misses, rejected, written }.
function stats() {
  return { ...counters };
}

// The files compiled through the hook, in load order, for tests.
function compiledFiles() {
  return compiled.slice();
}

module.exports = { withCodeCache, flush, stats, compiledFiles };
