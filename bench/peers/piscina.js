'use strict';
// piscina: fixed-size pool (minThreads = maxThreads = workers, no idle
// shutdown), default Atomics fast path, tiny task as the worker's default
// export so `pool.run(x)` takes no options object.
const path = require('node:path');
const { resolvable, pkgVersion } = require('./util.js');

const FILE = path.join(__dirname, '..', 'workers', 'pool-worker.js');

module.exports = {
  name: 'piscina',
  version() { return pkgVersion('piscina'); },
  available() { return resolvable('piscina'); },
  async load() { return require('piscina'); },
  async create({ workers }, mod) {
    const Piscina = mod.Piscina || mod.default || mod;
    const pool = new Piscina({
      filename: FILE, minThreads: workers, maxThreads: workers, idleTimeout: Infinity,
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
