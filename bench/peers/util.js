'use strict';
// Helpers for the peer adapters: find a peer package in bench/node_modules
// without loading it, and read its version.
const fs = require('node:fs');
const path = require('node:path');

const BENCH = path.join(__dirname, '..');

function resolvable(id) {
  try {
    require.resolve(id, { paths: [BENCH] });
    return { ok: true };
  } catch {
    return { ok: false, reason: 'not installed (run tools/bench, or npm install --prefix bench)' };
  }
}

function pkgVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(BENCH, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch { return null; }
}

module.exports = { resolvable, pkgVersion };
