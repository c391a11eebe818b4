'use strict';
// The plain serial loop: the workload called directly on the main thread.
// "workers" is always 1; calls are synchronous (no promise, no queue), so its
// tiny-task numbers are the cost of the function itself, the floor that any
// pool's dispatch overhead is added to.
const { tiny, cpu } = require('../workloads.js');

module.exports = {
  name: 'serial',
  sync: true,
  version() { return process.version; },
  available() { return { ok: true }; },
  async load() { return null; },
  async create() {
    return {
      workers: 1,
      tiny,
      cpu,
      unwrap: r => r,
      async close() {},
    };
  },
};
