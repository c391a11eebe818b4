'use strict';
// Error classes thrown to users.  Each has a stable `code` (DESIGN.md, "JS API
// contract"); messages may change, codes may not.  Shared by the Node addon
// and the CLI shell, so this file uses nothing but ECMAScript.

class ThreaderError extends Error {
  constructor(message, code, options) {
    super(message, options);
    Object.defineProperty(this, 'name', {
      value: new.target.name, writable: true, configurable: true,
    });
    this.code = code;
  }
}

// threader(fn) refused the function.  `identifier`, `line` and `column` (both
// 1-based, relative to the function's own source) say what and where.
class ThreaderValidationError extends ThreaderError {
  constructor(message, details = {}) {
    super(message, 'ERR_THREADER_VALIDATION');
    if (details.identifier !== undefined) this.identifier = details.identifier;
    if (details.line !== undefined) this.line = details.line;
    if (details.column !== undefined) this.column = details.column;
  }
}

class ThreaderTimeoutError extends ThreaderError {
  constructor(message, timeout) {
    super(message, 'ERR_THREADER_TIMEOUT');
    this.timeout = timeout;
  }
}

// Data or a result that cannot be serialized.  `path` names the offending
// value, e.g. "data.items[3].cb".
class ThreaderCloneError extends ThreaderError {
  constructor(message, path) {
    super(message, 'ERR_THREADER_CLONE');
    if (path !== undefined) this.path = path;
  }
}

// The worker's isolate was lost (heap limit); the task may be retried.
class ThreaderWorkerError extends ThreaderError {
  constructor(message) {
    super(message, 'ERR_THREADER_WORKER');
  }
}

// Cancellation, as the web platform names it.
class AbortError extends Error {
  constructor(message = 'The operation was aborted', options) {
    super(message, options);
    Object.defineProperty(this, 'name', {
      value: 'AbortError', writable: true, configurable: true,
    });
    this.code = 'ABORT_ERR';
  }
}

module.exports = {
  ThreaderError,
  ThreaderValidationError,
  ThreaderTimeoutError,
  ThreaderCloneError,
  ThreaderWorkerError,
  AbortError,
};
