'use strict';
// The real addon under the running Node: js/load_addon.js finds the build for
// this ABI (or $THREADER_ADDON), and it runs tasks on real workers.  Run by
// `tools/test --matrix` under every Node of the matrix.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const { loadAddon } = require('../../js/load_addon.js');
const { createThreader } = require('../../js/api.js');

const binding = loadAddon(root);
const { threader, thread } = createThreader(binding, { defaultMaxWorkers: 2 });

test('the addon is the native one for this ABI', () => {
  assert.notEqual(binding.isMock, true);
  for (const member of ['registerFunction', 'submit', 'cancel', 'setHandler',
    'configure', 'stats', 'shutdown', 'pending']) {
    assert.equal(typeof binding[member], 'function', member);
  }
});

test(`runs tasks on worker isolates under Node ${process.versions.node} ` +
     `(V8 ${process.versions.v8}, ABI ${process.versions.modules})`, async () => {
  const results = await thread.all([1, 2, 3, 4].map((n) => threader((x) => x * x, n)));
  assert.deepEqual(results, [1, 4, 9, 16]);
});

test('structured data and errors cross the isolates', async () => {
  const [out] = await thread.all(threader(
    (d) => ({ sum: d.list.reduce((a, b) => a + b, 0), when: d.when, map: d.map }),
    { list: [1, 2, 3], when: new Date(0), map: new Map([['a', 1]]) }));
  assert.equal(out.sum, 6);
  assert.ok(out.when instanceof Date);
  assert.equal(out.map.get('a'), 1);
  await assert.rejects(thread.all(threader(() => {
    throw new RangeError('boom');
  })), (err) => err.name === 'RangeError' && /boom/.test(err.message));
});
