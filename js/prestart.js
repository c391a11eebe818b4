'use strict';
// Starting the pool's first worker while the package loads (Node and
// Electron main processes; index.js calls this right after loading the
// addon).
//
// A worker needs the process's startup snapshot (v8c/snapshot.cc), then an
// isolate and a hardened context from it.  Made lazily at the first task,
// that is 30-40 ms on this machine before the first result; started here, it
// overlaps with the rest of the package's loading and the caller's own
// start-up, and with the snapshot read back from the cache directory
// (js/cache_dir.js) it is ~0.5 ms plus ~3 ms for the isolate.  Only one
// worker is started: the others start when a submission has tasks for them
// or when the first result is drained (src/pool.c), so a process that loads
// Threader and never uses it holds one idle worker.
//
// THREADER_PRESTART=0 turns this off (the first task then starts the first
// worker, as in the shell and the C API).

const { cacheKey, cachePath, statKey } = require('./cache_dir.js');

// The snapshot file for this Node binary, its flags and this addon build;
// null when the cache is off.
function snapshotCacheFile(addonFile) {
  if (!addonFile) return null;
  return cachePath(`snapshot-${cacheKey('snapshot', statKey(addonFile))}.bin`);
}

function prestart(binding, addonFile) {
  if (typeof binding.start !== 'function') return;  // a test double
  const file = snapshotCacheFile(addonFile);
  // 0 still tells the addon where the snapshot lives, without starting.
  const count = process.env.THREADER_PRESTART === '0' ? 0 : 1;
  binding.start(count, file === null ? '' : file);
}

module.exports = { prestart, snapshotCacheFile };
