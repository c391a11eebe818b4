'use strict';
// js/load_addon.js: which build it picks for the running Node, and the errors
// it gives when there is none.  Runs on fake package roots (the "addons" are
// not ELF files, so loading one fails with ERR_THREADER_ADDON_LOAD naming the
// file it picked), under every Node of the matrix.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { loadAddon, listAddons, KNOWN_ABIS, ENV_VAR } =
  require('../../js/load_addon.js');

const ABI = Number(process.versions.modules);
const MAJOR = Number(process.versions.node.split('.')[0]);
const OTHER = ABI === 127 ? 137 : 127;

// fakeRoot({ 'out': 115, 'out/node-22': 127, 'out/legacy': null }): a package
// root whose out folders hold a threader.node and, unless null, an addon.json.
const roots = [];
test.after(() => {
  for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
});

function tempRoot() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'threader-load-'));
  roots.push(root);
  return root;
}

function fakeRoot(builds) {
  const root = tempRoot();
  for (const [dir, modules] of Object.entries(builds)) {
    const abs = path.join(root, dir);
    fs.mkdirSync(abs, { recursive: true });
    fs.writeFileSync(path.join(abs, 'threader.node'), `fake addon ${dir}\n`);
    if (modules !== null) {
      fs.writeFileSync(path.join(abs, 'addon.json'), JSON.stringify({
        modules, node: `${KNOWN_ABIS[modules] || 99}.0.0`, v8: '0.0',
      }));
    }
  }
  return root;
}

function withoutEnv(fn) {
  const saved = process.env[ENV_VAR];
  delete process.env[ENV_VAR];
  try {
    return fn();
  } finally {
    if (saved !== undefined) process.env[ENV_VAR] = saved;
  }
}

// The file loadAddon chose, relative to root, read from its load error.
function picked(root) {
  try {
    withoutEnv(() => loadAddon(root));
  } catch (err) {
    assert.equal(err.code, 'ERR_THREADER_ADDON_LOAD', err.message);
    assert.ok(err.cause, 'keeps Node\'s error as the cause');
    return err.message.match(/^Threader addon (\S+) /)[1];
  }
  return assert.fail('a fake addon loaded');
}

test('the ABI table matches the running Node when it is a matrix Node', () => {
  if (KNOWN_ABIS[ABI] !== undefined) assert.equal(KNOWN_ABIS[ABI], MAJOR);
});

test('picks the build whose addon.json names the running ABI', () => {
  const root = fakeRoot({ 'out': OTHER, [`out/node-${MAJOR}`]: ABI, 'out/node-99': 999 });
  assert.equal(picked(root), path.join('out', `node-${MAJOR}`, 'threader.node'));
});

test('prefers the default out/ build when it matches', () => {
  const root = fakeRoot({ 'out': ABI, [`out/node-${MAJOR}`]: ABI });
  assert.equal(picked(root), path.join('out', 'threader.node'));
});

test('finds other out folders that carry an addon.json (Electron builds)', () => {
  const root = fakeRoot({ 'out': OTHER, 'out/electron-36': ABI });
  assert.equal(picked(root), path.join('out', 'electron-36', 'threader.node'));
});

test('a default build without addon.json is the last resort', () => {
  const root = fakeRoot({ 'out': null, 'out/node-1': OTHER });
  assert.equal(picked(root), path.join('out', 'threader.node'));
});

test('nothing for this ABI: ERR_THREADER_ADDON_MISSING naming the command', () => {
  const root = fakeRoot({ 'out': OTHER });
  let message;
  assert.throws(() => withoutEnv(() => loadAddon(root)), (err) => {
    message = err.message;
    return err.code === 'ERR_THREADER_ADDON_MISSING';
  });
  assert.match(message, new RegExp(
    `^No Threader addon built for Node ${process.versions.node.replace(/\./g, '\\.')} ` +
    `\\(ABI ${ABI}\\): run \`tools/build --node ${MAJOR}\``));
  assert.match(message, new RegExp(`Built: out/threader\\.node \\(Node [0-9.]+, ABI ${OTHER}\\)`));
});

test('an empty package root says what to build', () => {
  const root = tempRoot();
  assert.throws(() => withoutEnv(() => loadAddon(root)), (err) =>
    err.code === 'ERR_THREADER_ADDON_MISSING' &&
    err.message.includes(`tools/build --node ${MAJOR}`) && !err.message.includes('Built:'));
});

test(`${ENV_VAR} wins over the out/ folders`, () => {
  const root = fakeRoot({ 'out': ABI, 'elsewhere': ABI });
  process.env[ENV_VAR] = 'elsewhere/threader.node';
  try {
    assert.throws(() => loadAddon(root), (err) =>
      err.code === 'ERR_THREADER_ADDON_LOAD' &&
      err.message.includes(path.join('elsewhere', 'threader.node')));
  } finally {
    delete process.env[ENV_VAR];
  }
});

test(`${ENV_VAR} naming a build for another ABI is refused before dlopen`, () => {
  const root = fakeRoot({ 'other': OTHER });
  process.env[ENV_VAR] = path.join(root, 'other', 'threader.node');
  try {
    assert.throws(() => loadAddon(root), (err) =>
      err.code === 'ERR_THREADER_ADDON_LOAD' && !err.cause &&
      err.message.includes(`ABI ${OTHER}`) && err.message.includes(`(ABI ${ABI})`));
  } finally {
    delete process.env[ENV_VAR];
  }
});

test(`${ENV_VAR} naming a missing file`, () => {
  const root = fakeRoot({});
  process.env[ENV_VAR] = 'nope/threader.node';
  try {
    assert.throws(() => loadAddon(root), { code: 'ERR_THREADER_ADDON_MISSING' });
  } finally {
    delete process.env[ENV_VAR];
  }
});

test('listAddons orders out/, then out/node-<N> by N, then the rest', () => {
  const root = fakeRoot({
    'out': 115, 'out/node-24': 137, 'out/node-100': 1, 'out/node-22': 127,
    'out/electron-36': 133, 'out/asan': null,
  });
  assert.deepEqual(listAddons(root).map((a) => path.relative(root, a.dir)),
    ['out', 'out/node-22', 'out/node-24', 'out/node-100', 'out/electron-36']);
});
