'use strict';
// Package entry for Node and Electron main processes: loads the native addon
// built for the running Node (js/load_addon.js: out/threader.node, or
// out/node-<major>/threader.node, or $THREADER_ADDON) and builds the public
// API (js/api.js) over it.
//
//   const { threader, thread } = require('threader');
//
// A missing addon throws an Error (code ERR_THREADER_ADDON_MISSING) naming
// the command that builds it: `tools/build` (or `npm install`) in the package
// folder.

// js/code_cache.js is opt-in (THREADER_CODE_CACHE=1; see its usable()):
// not loaded at all otherwise.
const withCodeCache = process.env.THREADER_CODE_CACHE === '1' ?
  require('./js/code_cache.js').withCodeCache : (root, fn) => fn();

// The addon comes first and starts the first worker (js/prestart.js), so
// that its snapshot and isolate are made on another core while the rest of
// the package loads.  js/load_addon.js stays outside the code cache hook:
// loading the addon may set V8 flags (v8c/compat.h), and V8 rejects a code
// cache made under other flags.
const { loadAddon, loadedAddonFile } = require('./js/load_addon.js');
const binding = loadAddon(__dirname);
require('./js/prestart.js').prestart(binding, loadedAddonFile());

// Our own js/ files (acorn alone is 250 KB) may compile from a V8 code
// cache (opt-in, js/code_cache.js); the hook is gone again once these
// requires return.
const { errors, createThreader, validate, createMemo } = withCodeCache(__dirname, () => ({
  errors: require('./js/errors.js'),
  createThreader: require('./js/api.js').createThreader,
  validate: require('./js/validate.js'),
  createMemo: require('./js/validation_memo.js').createMemo,
  // js/validate.js loads acorn at the first validation; with the code cache
  // on, load it here, through the cache.
  acorn: process.env.THREADER_CODE_CACHE === '1' ? require('./js/vendor/acorn.js') : null,
}));

// Sources that validated in an earlier run are not parsed again
// (js/validation_memo.js): the first threader(fn) then skips loading acorn.
// Its reading side is loaded here, with the package (a module of its own
// loaded at the first threader(fn) cost ~0.7 ms there, ~0.3 ms of it
// Node's module loader); the record is opened at the first validation, and
// the code that writes it loads only when there is something new to write.
// The record's key names the files whose code made the recorded analyses,
// and the package version: npm installs every file with the same mtime, so
// a same-size edit would otherwise keep the key.  package.json is read, not required: require()
// would make it a module (~0.3 ms at the first threader(fn)).
validate.setMemo(() => {
  const fs = require('node:fs');
  const path = require('node:path');
  const { cacheKey, cachePath, statKey } = require('./js/cache_dir.js');
  let version = '?';
  try {
    version = String(JSON.parse(fs.readFileSync(path.join(__dirname, 'package.json'), 'utf8')).version);
  } catch {
    // No version in the key: the stats below still name the code.
  }
  const file = cachePath(`validated-${cacheKey('validation-memo', version,
    statKey(path.join(__dirname, 'js', 'analyze.js')),
    statKey(path.join(__dirname, 'js', 'vendor', 'acorn.js')))}.json`);
  return createMemo(file);
});

// The default worker count is the binding's: one per CPU this process may
// run on (src/pool.c, as os.availableParallelism() counts them).
const { threader, thread } = createThreader(binding);

// process.exit() and fatal exceptions skip Node's environment cleanup hooks
// and go straight to tearing down V8's platform, while our worker threads
// may still be running V8.  Stop and join them first: 'exit' listeners run
// synchronously before that teardown.  binding.shutdown() terminates
// running tasks, so this is quick.
process.on('exit', () => binding.shutdown());

module.exports = {
  threader,
  thread,
  ...errors,
};
