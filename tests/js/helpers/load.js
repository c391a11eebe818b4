'use strict';
// Loads Threader for a test file: the real package when an addon is built
// (out/threader.node, out/node-<major>/, or $THREADER_ADDON) and
// THREADER_TEST_MOCK is not set, else js/api.js over the pure-JS mock
// binding.  One instance per test process (node --test runs each file in
// its own process).

const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..', '..');
const addonPath = path.join(root, 'out', 'threader.node');
function addonBuilt() {
  if (process.env.THREADER_ADDON || fs.existsSync(addonPath)) return true;
  try {
    const { listAddons } = require(path.join(root, 'js', 'load_addon.js'));
    return listAddons(root).length > 0;
  } catch {
    return false;
  }
}

const wantMock = Boolean(process.env.THREADER_TEST_MOCK) ||
  (!process.env.THREADER_ADDON && !addonBuilt());

let cached;

function load() {
  if (cached !== undefined) return cached;
  const errors = require(path.join(root, 'js', 'errors.js'));
  if (wantMock) {
    const { createThreader } = require(path.join(root, 'js', 'api.js'));
    const { MockBinding } = require('./mock_binding.js');
    const binding = new MockBinding({ maxWorkers: 4 });
    const { threader, thread } = createThreader(binding);
    cached = { threader, thread, errors, isMock: true, binding, root };
  } else {
    const pkg = require(root);
    cached = {
      threader: pkg.threader, thread: pkg.thread, errors, isMock: false,
      binding: null, root,
    };
  }
  return cached;
}

// Options for node:test: `{ skip }` for tests that need real workers.
function needsRealWorkers(reason = 'needs real parallel workers') {
  return { skip: load().isMock ? `mock binding: ${reason}` : false };
}

module.exports = { load, needsRealWorkers, root, addonPath };
