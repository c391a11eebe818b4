'use strict';
// workerpool: dedicated worker script with registered methods, worker_threads
// ('thread'), fixed size (minWorkers = maxWorkers = workers).
const path = require('node:path');
const { resolvable, pkgVersion } = require('./util.js');

const FILE = path.join(__dirname, '..', 'workers', 'workerpool-worker.js');

module.exports = {
  name: 'workerpool',
  version() { return pkgVersion('workerpool'); },
  available() { return resolvable('workerpool'); },
  async load() { return require('workerpool'); },
  async create({ workers }, workerpool) {
    const pool = workerpool.pool(FILE, {
      minWorkers: workers, maxWorkers: workers, workerType: 'thread',
    });
    return {
      workers,
      tiny: x => pool.exec('tiny', [x]),
      cpu: n => pool.exec('cpu', [n]),
      unwrap: r => r,
      startedWorkers: () => pool.stats().totalWorkers,
      close: () => pool.terminate(),
    };
  },
};
