'use strict';
// Where Threader keeps what it can rebuild but would rather not on every
// start: the workers' V8 startup snapshot (v8c/snapshot.cc) and V8 code
// caches of the host-side JavaScript (js/code_cache.js).  Both are only a
// speed-up: a missing, stale or unwritable cache costs the time to rebuild,
// never a failure.
//
//   $THREADER_CACHE_DIR        that directory ('' or 'off': no cache at all)
//   else $XDG_CACHE_HOME/threader, else ~/.cache/threader
//
// Every file in it is named by a key over everything the bytes depend on
// (see cacheKey): the Node binary (path, size, mtime), its V8 version,
// the command-line options and NODE_OPTIONS (V8 flags change what a
// snapshot or a code cache may hold), the architecture, and the caller's
// own inputs (the addon file, the source file).  A different binary or flag
// set reads and writes different files, so one cache directory may serve
// many Nodes.  The text of a `node -e` / `-p` script is not part of the
// key, or every such script would leave its own files behind.  (V8's exact
// digest, v8.cachedDataVersionTag(), would need node:v8: 2.3 ms to load.
// A flag set that slips through is caught when the file is read: V8
// rejects a mismatched code cache, v8c/snapshot.cc checks its header.)
//
// Writes are atomic (a temporary file, then rename), with mode 0600 in a
// 0700 directory: the files hold code this process will run.

const fs = require('node:fs');
const path = require('node:path');

let cachedDir;  // undefined: not decided yet; null: caching is off

// os.homedir() reads $HOME first too (uv_os_homedir); node:os is loaded
// only without it, as loading it costs ~0.4 ms of every start.
function homeDir() {
  const home = process.env.HOME;
  return home ? home : require('node:os').homedir();
}

// The directory's path; it is made (mode 0700) by the first write into it
// (writeAtomic here, WriteAtomically in v8c/snapshot.cc), not here: a start
// that finds its files only reads, and a missing or unreadable directory is
// a cache miss like any other.
function cacheDir() {
  if (cachedDir !== undefined) return cachedDir;
  const env = process.env.THREADER_CACHE_DIR;
  let dir;
  if (env !== undefined) {
    dir = env === '' || env === 'off' ? null : path.resolve(env);
  } else {
    const xdg = process.env.XDG_CACHE_HOME;
    const base = xdg ? xdg : path.join(homeDir(), '.cache');
    dir = path.join(base, 'threader');
  }
  cachedDir = dir;
  return dir;
}

function statKey(file) {
  try {
    const st = fs.statSync(file);
    return `${file}:${st.size}:${st.mtimeMs}`;
  } catch {
    return `${file}:?`;
  }
}

// Two 32-bit FNV-1a lanes over UTF-16 code units: a name, not a security
// measure (node:crypto's first hash costs ~0.7 ms of OpenSSL start-up,
// a fifth of the cold start we aim for).  Whatever reads a cached file
// checks it again: V8 rejects a code cache that does not match, and
// v8c/snapshot.cc checks its snapshot header.
function hashText(text) {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

// process.execArgv without the script text of -e / -p (and their long
// forms), which names nothing the cached bytes depend on.
const SCRIPT_OPTIONS = new Set(['-e', '--eval', '-p', '--print', '-pe']);
function optionsKey(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (SCRIPT_OPTIONS.has(arg)) {
      i++;  // and its value
      continue;
    }
    if (/^--(eval|print)=/.test(arg)) continue;
    out.push(arg);
  }
  return out.join(' ');
}

// What every key shares: the running binary, its V8, flags and platform
// (made once per process).
let runtimeKey = null;
function runtimeParts() {
  if (runtimeKey === null) {
    runtimeKey = [
      statKey(process.execPath),
      process.version,
      process.versions.v8,
      process.arch,
      optionsKey(process.execArgv),
      process.env.NODE_OPTIONS || '',
    ].join('\0');
  }
  return runtimeKey;
}

// A hex key over the running binary, its V8 and flags, and `parts`.
function cacheKey(...parts) {
  return hashText([runtimeParts(), ...parts.map(String)].join('\0'));
}

// The path for `name` (e.g. 'snapshot-<key>.bin'), or null when caching is
// off.
function cachePath(name) {
  const dir = cacheDir();
  return dir === null ? null : path.join(dir, name);
}

// Writes `bytes` to `file` atomically; returns false (quietly) on failure.
let tmpCounter = 0;
function writeAtomic(file, bytes) {
  const tmp = `${file}.${process.pid}.${++tmpCounter}.tmp`;
  try {
    try {
      fs.writeFileSync(tmp, bytes, { mode: 0o600 });
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
      // The first write: make the directory, then try once more.
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      fs.writeFileSync(tmp, bytes, { mode: 0o600 });
    }
    fs.renameSync(tmp, file);
    return true;
  } catch {
    try { fs.unlinkSync(tmp); } catch {}
    return false;
  }
}

// Removes the files of one kind (`prefix`...`suffix`) in the directory of
// `keptFile` but the `keep` most recently written, `keptFile` counted as
// the newest.  Every key (a Node binary, flag set or package version) has
// files of its own, so without this the directory only grows; callers run
// it when they create a new file, not at every start.  Quiet on failure.
function pruneOld(keptFile, prefix, suffix, keep) {
  const dir = path.dirname(keptFile);
  const kept = path.basename(keptFile);
  let names;
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const old = [];
  for (const name of names) {
    if (name === kept || !name.startsWith(prefix) || !name.endsWith(suffix)) continue;
    try {
      const st = fs.lstatSync(path.join(dir, name));
      if (st.isFile()) old.push({ name, mtimeMs: st.mtimeMs });
    } catch {
      // Gone meanwhile.
    }
  }
  old.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const { name } of old.slice(Math.max(keep - 1, 0))) {
    try { fs.unlinkSync(path.join(dir, name)); } catch {}
  }
}

module.exports = { cacheDir, cacheKey, cachePath, hashText, pruneOld, statKey, writeAtomic };
