'use strict';
// Package entry for Node and Electron main processes: loads the native addon
// and builds the public API (js/api.js) over it.
//
//   const { threader, thread } = require('threader');

const os = require('node:os');
const path = require('node:path');

const errors = require('./js/errors.js');
const { createThreader } = require('./js/api.js');

const ADDON_PATH = path.join(__dirname, 'out', 'threader.node');

function loadAddon() {
  try {
    return require(ADDON_PATH);
  } catch (cause) {
    const missing = cause && cause.code === 'MODULE_NOT_FOUND' &&
      String(cause.message).includes(ADDON_PATH);
    const err = new Error(missing ?
      `threader: the native addon ${ADDON_PATH} is missing. Build it with ` +
      '`tools/build` in the package folder (or run `npm install` there).' :
      `threader: the native addon ${ADDON_PATH} could not be loaded ` +
      `(${cause && cause.message}). It may have been built for another ` +
      `Node.js (this is ${process.version}, ABI ${process.versions.modules}); ` +
      'rebuild it with `tools/build` in the package folder.', { cause });
    err.code = missing ? 'ERR_THREADER_ADDON_MISSING' : 'ERR_THREADER_ADDON_LOAD';
    throw err;
  }
}

const defaultMaxWorkers = typeof os.availableParallelism === 'function' ?
  os.availableParallelism() : os.cpus().length;

const { threader, thread } = createThreader(loadAddon(), { defaultMaxWorkers });

module.exports = {
  threader,
  thread,
  ...errors,
};
