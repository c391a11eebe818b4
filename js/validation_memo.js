'use strict';
// A record on disk of the function sources that passed validation, so that a
// process that starts again with the same task functions (an Electron app, a
// service, a CLI run many times) validates them without loading acorn.
//
// Loading acorn and parsing the first function is most of a cold start:
// ~14 ms on this 2-core machine (~8 ms to compile acorn's 250 KB, ~5 ms of
// lazy compilation in its first parse), against ~0.3 ms to read this file.
// A V8 code cache for acorn was measured first and saves only ~2 ms: its
// deserialisation costs nearly what compiling does.
//
//   const memo = createMemo(file);   // file: from cache_dir.js, or null
//   validate.setMemo(memo);          // js/validate.js asks it on a miss
//
// What is recorded: for a source text that validated, the analysis
// js/validate.js made of it ({ free, source, name, kind, inert }: its free
// names with their positions, which opts.with / config({ with }) may allow,
// the text shipped to workers, and whether it is inert, which lets workers
// skip their integrity check after its tasks).  Rejections are not recorded (they are errors
// the programmer fixes, not a start-up path), nor methods, whose analysis
// depends on a name hint besides the text.  An entry is found by the whole
// source text, never by a hash of it.
//
// The file's name is keyed (cache_dir.js's cacheKey) on the package version
// and the size and mtime of validate.js and acorn.js, so a validator that
// changes reads and writes another file.  The file is JSON:
//
//   { "format": 1, "entries": [[sourceText, { free, source, name, kind, inert }], ...] }
//
// oldest first, at most MAX_ENTRIES entries and MAX_FILE_CHARS characters.
// A file that does not parse or has one malformed entry is ignored whole
// (and replaced at the next write).
//
// Trust: the file is in the user's cache directory (mode 0700, the file
// 0600), beside the worker snapshot, which holds code the workers run; who
// can write one can write the other.  Validation is the first of two
// guards: whatever a forged entry lets through still meets the locked-down
// worker context (no host objects, frozen intrinsics), as with
// threader.config({ enableValidation: false }).  A forged `inert` can let a
// task's change to a sealed prototype reach the next task on that worker,
// as a forged snapshot could; it reaches nothing outside the workers.
//
// Threads: everything here runs on the JS thread that loaded the package.
// New entries are written once, WRITE_DELAY_MS after the first one or at
// process 'exit', whichever comes first, merged with what another process
// may have written meanwhile (last writer wins on a race: entries can be
// lost, never corrupted, as writes are atomic renames).  Nothing here
// throws: a file that cannot be read or written costs a parse, nothing more.

const fs = require('node:fs');
const { writeAtomic } = require('./cache_dir.js');

const FORMAT = 1;
const MAX_ENTRIES = 1024;
const MAX_FILE_CHARS = 512 * 1024;
const MAX_SOURCE_CHARS = 16 * 1024;  // longer sources are not recorded
const WRITE_DELAY_MS = 1000;

function isCount(n) {
  return Number.isInteger(n) && n >= 0;
}

// A copy of a recorded analysis, or null if it is malformed.
function readEntry(value) {
  if (value === null || typeof value !== 'object') return null;
  const { free, source, name, kind, inert } = value;
  if (typeof source !== 'string' || typeof name !== 'string' ||
      typeof inert !== 'boolean' ||
      (kind !== 'arrow' && kind !== 'function') || !Array.isArray(free)) {
    return null;
  }
  const names = [];
  for (const f of free) {
    if (f === null || typeof f !== 'object' || typeof f.name !== 'string' ||
        !isCount(f.start) || !isCount(f.line) || !isCount(f.column)) {
      return null;
    }
    names.push({ name: f.name, start: f.start, line: f.line, column: f.column });
  }
  return { free: names, source, name, kind, inert };
}

// The entries in `file` as a Map (source text -> analysis), oldest first;
// empty if there is no such file or it is malformed.
function readFile(file) {
  const out = new Map();
  let data;
  try {
    const text = fs.readFileSync(file, 'utf8');
    if (text.length > MAX_FILE_CHARS * 2) return out;
    data = JSON.parse(text);
  } catch {
    return out;
  }
  if (data === null || typeof data !== 'object' || data.format !== FORMAT ||
      !Array.isArray(data.entries)) {
    return out;
  }
  for (const pair of data.entries) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
      out.clear();
      return out;
    }
    const entry = readEntry(pair[1]);
    if (entry === null) {
      out.clear();
      return out;
    }
    out.set(pair[0], entry);
  }
  return out;
}

// The newest entries of `entries` that fit the limits, as file text.
function fileText(entries) {
  const kept = [];
  let chars = 0;
  const list = [...entries];
  for (let i = list.length - 1; i >= 0 && kept.length < MAX_ENTRIES; i--) {
    const text = JSON.stringify(list[i]);
    if (chars + text.length > MAX_FILE_CHARS) break;
    chars += text.length;
    kept.push(text);
  }
  kept.reverse();
  return `{"format":${FORMAT},"entries":[\n${kept.join(',\n')}\n]}\n`;
}

// A memo over `file`; null (no memo) when `file` is null.
function createMemo(file) {
  if (file === null) return null;
  let known = null;  // Map, read at the first get()
  let added = new Map();  // recorded by this process, not yet written
  let timer = null;
  const counters = { hits: 0, misses: 0, written: 0 };

  function flush() {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
      process.removeListener('exit', flush);
    }
    if (added.size === 0) return;
    const merged = readFile(file);
    for (const [text, entry] of added) {
      merged.delete(text);
      merged.set(text, entry);
    }
    added = new Map();
    if (writeAtomic(file, fileText(merged))) counters.written++;
  }

  return {
    // The recorded analysis of `sourceText` (a fresh object the caller may
    // extend), or undefined.
    get(sourceText) {
      if (known === null) known = readFile(file);
      const entry = known.get(sourceText);
      if (entry === undefined) {
        counters.misses++;
        return undefined;
      }
      counters.hits++;
      return { error: null, free: entry.free.map((f) => ({ ...f })),
        source: entry.source, name: entry.name, kind: entry.kind,
        inert: entry.inert };
    },
    // Records the analysis of a source that validated.
    add(sourceText, analysis) {
      if (sourceText.length > MAX_SOURCE_CHARS) return;
      const entry = readEntry(analysis);
      if (entry === null) return;
      if (known !== null) known.set(sourceText, entry);
      added.set(sourceText, entry);
      if (timer === null) {
        timer = setTimeout(flush, WRITE_DELAY_MS);
        timer.unref();
        process.on('exit', flush);
      }
    },
    flush,
    stats() {
      return { ...counters, file };
    },
  };
}

module.exports = { createMemo, MAX_ENTRIES, MAX_SOURCE_CHARS };
