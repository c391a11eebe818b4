'use strict';
// tinypool (ESM-only, loaded with import()): fixed-size pool on
// worker_threads, same worker file and call shape as piscina.
const path = require('node:path');
const { resolvable, pkgVersion } = require('./util.js');

const FILE = path.join(__dirname, '..', 'workers', 'pool-worker.js');

module.exports = {
  name: 'tinypool',
  version() { return pkgVersion('tinypool'); },
  available() { return resolvable('tinypool/package.json'); },
  async load() { return import('tinypool'); },
  async create({ workers }, { Tinypool }) {
    const pool = new Tinypool({
      filename: FILE, minThreads: workers, maxThreads: workers, idleTimeout: 2 ** 31 - 1,
    });
    const cpuOpts = { name: 'cpu' };
    return {
      workers,
      tiny: x => pool.run(x),
      cpu: n => pool.run(n, cpuOpts),
      unwrap: r => r,
      startedWorkers: () => pool.threads.length,
      close: () => pool.destroy(),
    };
  },
};
