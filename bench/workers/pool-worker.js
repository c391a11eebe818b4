'use strict';
// Worker file for piscina and tinypool: the default export is the tiny task
// (so `pool.run(x)` takes the fast path with no options), and `cpu` is a named
// export reached with `pool.run(n, { name: 'cpu' })`.
const { tiny, cpu } = require('../workloads.js');

module.exports = tiny;
module.exports.cpu = cpu;
