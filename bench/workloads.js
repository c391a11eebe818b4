'use strict';
// The two workloads every peer runs, as plain functions. Worker files and the
// isolated-vm adapter use these same objects (or their source text), so every
// peer executes byte-identical code.

// Tiny task: measures pure dispatch overhead.
const tiny = x => x + 1;

// CPU-bound task: an FNV-1a-style integer hash loop over `n` steps. Pure
// ECMAScript (only Math.imul), no allocation, cannot be constant-folded away
// because the result depends on every step. The orchestrator calibrates `n`
// so that one call takes about 0.3 s on the machine it runs on.
const cpu = n => {
  let h = 2166136261 | 0;
  for (let i = 0; i < n; i++) {
    h ^= i & 0xff;
    h = Math.imul(h, 16777619);
    h ^= h >>> 13;
  }
  return h >>> 0;
};

module.exports = { tiny, cpu };
