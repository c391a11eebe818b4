'use strict';
// index.d.ts is checked by tsc over tests/ts/typed_example.ts.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

test('tsc --noEmit passes over the typed example', {
  skip: !fs.existsSync(tsc) && 'node_modules/typescript missing (npm install)',
  timeout: 120000,
}, () => {
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tests', 'ts'), '--noEmit'],
                      { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});
