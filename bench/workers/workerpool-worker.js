'use strict';
// Worker file for workerpool: registered methods, called with
// `pool.exec('tiny', [x])` (workerpool's recommended dedicated-worker path).
const workerpool = require('workerpool');
const { tiny, cpu } = require('../workloads.js');

workerpool.worker({ tiny, cpu });
