'use strict';
// require('<package root>') under the running Node loads the addon built for
// its ABI (index.js over js/load_addon.js).  Run by `tools/test --matrix`
// under every Node of the matrix.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

test(`require(package root) works under Node ${process.versions.node}`, async () => {
  const { threader, thread } = require(root);
  assert.equal(typeof threader, 'function');
  assert.deepEqual(await thread.all(threader((x) => x + 1, 41)), [42]);
});
