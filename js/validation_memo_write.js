'use strict';
// Writing the validation record (format: js/validation_memo.js).  Loaded
// only when a process has validated a source that was not in the record:
// a start whose sources are all recorded never compiles this file.
//
// Threads: the JS thread that loaded the package (a timer or 'exit').

const fs = require('node:fs');
const { hashText, pruneOld, writeAtomic } = require('./cache_dir.js');
const {
  HEADER, HASH_CHARS, MAX_ENTRIES, MAX_FILE_CHARS, KEPT_FILES, readText, parsePair,
} = require('./validation_memo.js');

function lineOf(sourceText, entry) {
  const { free, source, name, kind, inert } = entry;
  const stored = source === sourceText ? { free, name, kind, inert } :
    { free, source, name, kind, inert };
  return `${hashText(sourceText)}\t${JSON.stringify([sourceText, stored])}`;
}

// The well-formed entry lines of the file text `text` (without their line
// feeds), oldest first, less those of the source texts in `replaced`.
function keptLines(text, replaced) {
  const out = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {  // lines[0]: the header
    const line = lines[i];
    if (line.charAt(HASH_CHARS) !== '\t') continue;
    const pair = parsePair(line.slice(HASH_CHARS + 1));
    if (pair === null || replaced.has(pair[0]) ||
        hashText(pair[0]) !== line.slice(0, HASH_CHARS)) {
      continue;
    }
    out.push(line);
  }
  return out;
}

// The newest of `lines` that fit the limits, as file text.
function fileText(lines) {
  const kept = [];
  let chars = HEADER.length;
  for (let i = lines.length - 1; i >= 0 && kept.length < MAX_ENTRIES; i--) {
    if (chars + lines[i].length + 1 > MAX_FILE_CHARS) break;
    chars += lines[i].length + 1;
    kept.push(lines[i]);
  }
  kept.reverse();
  return HEADER + kept.map((line) => `${line}\n`).join('');
}

// Writes `entries` (source text -> entry) into the record `file`, merged
// with the entries another process may have written meanwhile (last writer
// wins on a race: entries can be lost, never corrupted, as the write is an
// atomic rename).  Returns whether the file was written.
function writeRecord(file, entries) {
  const created = !fs.existsSync(file);
  const lines = keptLines(readText(file), entries);
  for (const [sourceText, entry] of entries) lines.push(lineOf(sourceText, entry));
  if (!writeAtomic(file, fileText(lines))) return false;
  // A new key's record: the records of other keys (other Node binaries,
  // flag sets, package versions) beyond the newest KEPT_FILES go.
  if (created) pruneOld(file, 'validated-', '.json', KEPT_FILES);
  return true;
}

module.exports = { writeRecord };
