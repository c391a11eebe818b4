'use strict';
// Small helpers shared by the JS tests.  The task functions here are plain
// source-level functions: they run inside workers, so they may only use
// their parameters and ECMAScript built-ins.

// Busy-waits `ms` milliseconds in the worker and returns `ms`.
function busy(ms) {
  const end = Date.now() + ms;
  let spins = 0;
  while (Date.now() < end) spins++;
  return ms;
}

// Never returns: for timeouts and cancelling running tasks.
function spin() {
  for (;;) {
    // Runs until the worker is terminated.
  }
}

// Resolves to {status, value|reason} like Promise.allSettled's items.
function settled(promise) {
  return promise.then(
    (value) => ({ status: 'fulfilled', value }),
    (reason) => ({ status: 'rejected', reason }));
}

// Rejects if `promise` takes longer than `ms`.
function within(promise, ms, what = 'the operation') {
  let timer;
  const limit = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Polls `predicate` every few ms until it is true or `ms` have passed.
async function waitFor(predicate, ms = 5000, what = 'the condition') {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(2);
  }
}

module.exports = { busy, spin, settled, within, delay, waitFor };
