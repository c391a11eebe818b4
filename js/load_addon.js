'use strict';
// Finds and loads the native addon built for the running Node.
//
//   const { loadAddon } = require('./js/load_addon.js');
//   const binding = loadAddon(packageRoot);
//
// Each build of the addon is for one Node ABI (NODE_MODULE_VERSION, which is
// `process.versions.modules`: 115 = Node 20, 127 = Node 22, 137 = Node 24).
// tools/build writes `addon.json` next to every threader.node it builds:
//
//   {"modules": 127, "node": "22.23.3", "v8": "12.4.254.21-node.57", ...}
//
// Candidates, first match on `modules` wins:
//   1. $THREADER_ADDON: an explicit path to a threader.node (relative paths are
//      taken from the package root).  Used as is; only refused when an
//      addon.json next to it names another ABI.
//   2. out/threader.node           the default `tools/build` (machine's Node)
//   3. out/node-<major>/threader.node  `tools/build --node <major>`
//   4. any other out/<dir>/ holding threader.node + addon.json (e.g. an
//      Electron build made with `gn gen out/electron-36 --args=node_dir=...`)
// A default build without addon.json (built before addon.json existed) is
// tried last, as the build for the machine's Node.
//
// Errors (err.code):
//   ERR_THREADER_ADDON_MISSING  nothing built for this ABI; the message names
//                               the command that builds it.
//   ERR_THREADER_ADDON_LOAD     a matching file exists but could not be loaded
//                               (err.cause holds Node's error).

const fs = require('node:fs');
const path = require('node:path');

const ENV_VAR = 'THREADER_ADDON';
const ADDON_FILE = 'threader.node';
const INFO_FILE = 'addon.json';

// NODE_MODULE_VERSION of the Node majors we build and test (checked with
// each official binary: `node -p process.versions.modules`).
const KNOWN_ABIS = Object.freeze({ 115: 20, 127: 22, 137: 24 });

function readInfo(dir) {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(dir, INFO_FILE), 'utf8'));
    return info && typeof info === 'object' ? info : null;
  } catch {
    return null;
  }
}

function isFile(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

// Every built addon under <root>/out, in preference order:
// [{ file, dir, info|null }].
function listAddons(packageRoot) {
  const out = path.join(packageRoot, 'out');
  const found = [];
  const add = (dir) => {
    const file = path.join(dir, ADDON_FILE);
    if (isFile(file)) found.push({ file, dir, info: readInfo(dir) });
  };
  add(out);
  let entries = [];
  try {
    entries = fs.readdirSync(out, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    // No out/ at all.
  }
  const nodeDirs = entries.filter((n) => /^node-\d+$/.test(n))
    .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  for (const name of nodeDirs) add(path.join(out, name));
  for (const name of entries.filter((n) => !/^node-\d+$/.test(n)).sort()) {
    const dir = path.join(out, name);
    if (isFile(path.join(dir, INFO_FILE))) add(dir);
  }
  return found;
}

function runtimeName() {
  const v = process.versions;
  return v.electron ? `Electron ${v.electron} (Node ${v.node})` : `Node ${v.node}`;
}

function describe(addon, packageRoot) {
  const rel = path.relative(packageRoot, addon.file) || addon.file;
  if (!addon.info) return `${rel} (ABI unknown: no ${INFO_FILE})`;
  return `${rel} (Node ${addon.info.node}, ABI ${addon.info.modules})`;
}

// The command that builds the addon for the running Node.
function buildHint() {
  const major = Number(process.versions.node.split('.')[0]);
  if (process.versions.electron) {
    return 'build it against Electron\'s headers: see "Electron" in ' +
      'docs/PORTABILITY.md (`gn gen out/electron-' +
      `${process.versions.electron.split('.')[0]} --args='node_dir="<electron headers>"'\`)`;
  }
  return `run \`tools/build --node ${major}\``;
}

function loadError(code, message, cause) {
  const err = cause === undefined ? new Error(message) : new Error(message, { cause });
  err.code = code;
  return err;
}

let loadedFile = null;  // the file of the addon loadAddon returned last

function requireAddon(addon, packageRoot) {
  try {
    const binding = require(addon.file);
    loadedFile = addon.file;
    return binding;
  } catch (cause) {
    const abi = process.versions.modules;
    throw loadError('ERR_THREADER_ADDON_LOAD',
      `Threader addon ${describe(addon, packageRoot)} could not be loaded into ` +
      `${runtimeName()} (ABI ${abi}): ` +
      `${String(cause && cause.message).replace(/\.$/, '')}. ` +
      `Rebuild it: ${buildHint()}.`, cause);
  }
}

function loadAddon(packageRoot) {
  if (typeof packageRoot !== 'string' || packageRoot === '') {
    throw new TypeError('loadAddon(packageRoot): packageRoot must be a path');
  }
  const abi = Number(process.versions.modules);

  const explicit = process.env[ENV_VAR];
  if (explicit) {
    const file = path.resolve(packageRoot, explicit);
    const dir = path.dirname(file);
    const addon = { file, dir, info: readInfo(dir) };
    if (!isFile(file)) {
      throw loadError('ERR_THREADER_ADDON_MISSING',
        `${ENV_VAR}=${explicit}: no such file ${file}.`);
    }
    if (addon.info && Number(addon.info.modules) !== abi) {
      throw loadError('ERR_THREADER_ADDON_LOAD',
        `${ENV_VAR}=${explicit} was built for Node ${addon.info.node} ` +
        `(ABI ${addon.info.modules}), not for ${runtimeName()} (ABI ${abi}).`);
    }
    return requireAddon(addon, packageRoot);
  }

  // The usual case first, without listing out/ (each candidate costs a
  // stat and a read: ~2 ms of start-up in a build tree): the default build,
  // then out/node-<this major>.
  const major = process.versions.node.split('.')[0];
  for (const dir of [path.join(packageRoot, 'out'), path.join(packageRoot, 'out', `node-${major}`)]) {
    const file = path.join(dir, ADDON_FILE);
    const info = readInfo(dir);
    if (info && Number(info.modules) === abi && isFile(file)) {
      return requireAddon({ file, dir, info }, packageRoot);
    }
  }

  const addons = listAddons(packageRoot);
  const match = addons.find((a) => a.info && Number(a.info.modules) === abi);
  if (match) return requireAddon(match, packageRoot);

  // A default build that predates addon.json: assume it is for this Node.
  const legacy = addons.find((a) => !a.info);
  if (legacy) return requireAddon(legacy, packageRoot);

  const built = addons.length ?
    ` Built: ${addons.map((a) => describe(a, packageRoot)).join(', ')}.` : '';
  throw loadError('ERR_THREADER_ADDON_MISSING',
    `No Threader addon built for ${runtimeName()} (ABI ${abi}): ` +
    `${buildHint()} in ${packageRoot}.${built}`);
}

// The path of the addon file loadAddon loaded (null before): its bytes are
// part of what the worker snapshot depends on (js/prestart.js).
function loadedAddonFile() {
  return loadedFile;
}

module.exports = { loadAddon, loadedAddonFile, listAddons, KNOWN_ABIS, ENV_VAR };
