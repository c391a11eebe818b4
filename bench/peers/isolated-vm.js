'use strict';
// isolated-vm: one Isolate (with one Context) per worker, each function
// compiled once per isolate and kept as a Reference; calls go round-robin over
// the isolates with the async `reference.apply()` (primitives are
// transferable, so no copy options are needed). Node 20 needs the child to
// run with --no-node-snapshot (see isolated-vm's README); run.js passes it.
const { resolvable, pkgVersion } = require('./util.js');
const workloads = require('../workloads.js');

module.exports = {
  name: 'isolated-vm',
  nodeFlags: ['--no-node-snapshot'],
  version() { return pkgVersion('isolated-vm'); },
  available() {
    const r = resolvable('isolated-vm');
    if (!r.ok) return r;
    try { require('isolated-vm'); } catch (e) {
      return { ok: false, reason: `cannot load: ${String(e.message).split('\n')[0]}` };
    }
    return { ok: true };
  },
  async load() { return require('isolated-vm'); },
  async create({ workers }, ivm) {
    const isolates = [];
    const tinyRefs = [];
    const cpuRefs = [];
    for (let i = 0; i < workers; i++) {
      const isolate = new ivm.Isolate({ memoryLimit: 128 });
      const context = await isolate.createContext();
      tinyRefs.push(await context.eval(`(${workloads.tiny})`, { reference: true }));
      cpuRefs.push(await context.eval(`(${workloads.cpu})`, { reference: true }));
      isolates.push(isolate);
    }
    let next = 0;
    return {
      workers,
      tiny(x) {
        const i = next; next = next + 1 === workers ? 0 : next + 1;
        return tinyRefs[i].apply(undefined, [x]);
      },
      cpu(n) {
        const i = next; next = next + 1 === workers ? 0 : next + 1;
        return cpuRefs[i].apply(undefined, [n]);
      },
      unwrap: r => r,
      startedWorkers: () => isolates.length,
      async close() { for (const iso of isolates) iso.dispose(); },
    };
  },
};
