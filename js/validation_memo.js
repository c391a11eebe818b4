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
// js/analyze.js made of it ({ free, source, name, kind, inert }: its free
// names with their positions, which opts.with / config({ with }) may allow,
// the text shipped to workers, and whether it is inert, which lets workers
// skip their integrity check after its tasks).  Rejections are not recorded (they are errors
// the programmer fixes, not a start-up path), nor methods, whose analysis
// depends on a name hint besides the text.  An entry is found by the whole
// source text, never by a hash of it.
//
// The file's name is keyed (cache_dir.js's cacheKey) on the package version
// and the size and mtime of analyze.js and acorn.js, so an analysis that
// changes reads and writes another file.  The file is text, one entry per
// line after a header line, oldest first:
//
//   {"format":2}
//   <hash>\t["<sourceText>",{"free":[...],"name":...,"kind":...,"inert":...}]
//
// ("source", the text shipped to workers, only where it is not the source
// text itself, as for a function whose text is not an expression.)
// <hash> is cache_dir.js's hashText of the source text (16 hex digits): a
// lookup reads the file and parses only the lines whose hash matches
// (JSON.stringify escapes line feeds, so an entry is always one line), then
// compares the whole source text.  So the first threader(fn) costs the
// same with 1 entry or with 1,000: parsing and checking every entry of a
// 50 KB record was ~1 ms of cold code on this machine.  At most MAX_ENTRIES
// entries and MAX_FILE_CHARS characters are kept.  A file without the
// header is ignored whole; a malformed line is a miss, and is dropped at the
// next write.
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
// This file is the reading side, loaded with the package (index.js) and
// compiled with it, for the first threader(fn); writing the record
// (js/validation_memo_write.js) is loaded only when there is something new
// to write, after a source that was not in the record.
//
// Threads: everything here runs on the JS thread that loaded the package.
// New entries are written once, WRITE_DELAY_MS after the first one or at
// process 'exit', whichever comes first, merged with what another process
// may have written meanwhile (last writer wins on a race: entries can be
// lost, never corrupted, as writes are atomic renames).  Nothing here
// throws: a file that cannot be read or written costs a parse, nothing more.

// The reading path is written as parenthesized function expressions,
// compiled with this file (see "parenthesized" in js/api.js).

const fs = require('node:fs');
const { hashText } = require('./cache_dir.js');

const FORMAT = 2;
const MAX_ENTRIES = 1024;
const MAX_FILE_CHARS = 512 * 1024;
const MAX_SOURCE_CHARS = 16 * 1024;  // longer sources are not recorded
const WRITE_DELAY_MS = 1000;
const KEPT_FILES = 8;  // records of other keys kept in the directory

function isCount(n) {
  return Number.isInteger(n) && n >= 0;
}

// A copy of a recorded analysis, or null if it is malformed.
const readEntry = (function readEntry(value) {
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
});

const HEADER = `{"format":${FORMAT}}\n`;
const HASH_CHARS = 16;  // hashText's output

// The file's text if it has this format's header, else ''.  (Searching
// the bytes instead, undecoded, measured slower at the first threader(fn):
// Buffer's search is JavaScript that is compiled at its first call, where
// String's is built into V8.)
const readText = (function readText(file) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.length <= MAX_FILE_CHARS * 2 && text.startsWith(HEADER) ? text : '';
  } catch {
    return '';
  }
});

// [sourceText, entry] from a line's JSON, or null if it is malformed.
const parsePair = (function parsePair(json) {
  let pair;
  try {
    pair = JSON.parse(json);
  } catch {
    return null;
  }
  if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' ||
      pair[1] === null || typeof pair[1] !== 'object') {
    return null;
  }
  // `source` is left out where it is the source text itself
  // (validation_memo_write.js's lineOf).
  if (!('source' in pair[1])) pair[1].source = pair[0];
  const entry = readEntry(pair[1]);
  return entry === null ? null : [pair[0], entry];
});

// The entry recorded for `sourceText` in the file text `text`, or
// undefined.
const find = (function find(text, sourceText) {
  const tag = `\n${hashText(sourceText)}\t`;
  for (let at = text.indexOf(tag); at !== -1; at = text.indexOf(tag, at + 1)) {
    const start = at + tag.length;
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const pair = parsePair(text.slice(start, end));
    if (pair !== null && pair[0] === sourceText) return pair[1];
  }
  return undefined;
});

// A memo over `file`; null (no memo) when `file` is null.
const createMemo = (function createMemo(file) {
  if (file === null) return null;
  let text = null;  // the file's text, read at the first get()
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
    const entries = added;
    added = new Map();
    text = null;  // a later get() reads what was just written
    if (require('./validation_memo_write.js').writeRecord(file, entries)) {
      counters.written++;
    }
  }

  return {
    // The recorded analysis of `sourceText` (a fresh object the caller may
    // extend), or undefined.
    get(sourceText) {
      if (text === null) text = readText(file);
      const entry = added.has(sourceText) ? added.get(sourceText) : find(text, sourceText);
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
});

module.exports = {
  createMemo,
  MAX_ENTRIES,
  MAX_SOURCE_CHARS,
  // For js/validation_memo_write.js:
  HEADER,
  HASH_CHARS,
  MAX_FILE_CHARS,
  KEPT_FILES,
  readText,
  parsePair,
};
