'use strict';
// Threader, loaded from the repository root (../..). Each tiny task is its own
// `thread.all(threader(fn, x))` call, as the issue specifies; the pool size is
// set with `threader.config({ maxWorkers })` before the first task.
const fs = require('node:fs');
const path = require('node:path');
const { tiny, cpu } = require('../workloads.js');

const ROOT = path.resolve(__dirname, '..', '..');
const ADDON = path.join(ROOT, 'out', 'threader.node');

module.exports = {
  name: 'threader',
  version() {
    try { return require(path.join(ROOT, 'package.json')).version; } catch { return '?'; }
  },
  available() {
    try { require('../..'); } catch (e) {
      if (e && e.code === 'ERR_THREADER_ADDON_MISSING' ||
          (e && e.code === 'MODULE_NOT_FOUND' && !fs.existsSync(ADDON))) {
        return { ok: false, reason: 'not built (run tools/build)' };
      }
      const msg = String(e && e.cause && e.cause.message || e && e.message || e).split('\n')[0];
      return { ok: false, reason: `cannot load (${msg.slice(0, 160)})` };
    }
    return { ok: true };
  },
  // `workers` null: Threader's default (one per core).
  async load() { return require('../..'); },
  async create({ workers } = {}, { threader, thread }) {
    if (workers != null && workers !== undefined) threader.config({ maxWorkers: workers });
    return {
      workers: workers || (threader.config ? threader.config().maxWorkers : null),
      tiny: x => thread.all(threader(tiny, x)),
      cpu: n => thread.all(threader(cpu, n)),
      unwrap: r => r[0],
      // Workers that have run at least one task, when stats are available.
      startedWorkers() {
        if (typeof threader.stats !== 'function') return null;
        const s = threader.stats();
        const list = Array.isArray(s) ? s : (s && Array.isArray(s.workers) ? s.workers : null);
        if (!list) return null;
        return list.filter(w => w && (w.tasksRun > 0)).length;
      },
      async close() { if (typeof threader.shutdown === 'function') await threader.shutdown(); },
    };
  },
};
