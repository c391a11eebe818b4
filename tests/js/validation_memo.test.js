'use strict';
// The on-disk record of validated sources (js/validation_memo.js): the memo
// object itself over a temporary file, then fresh `node` processes that load
// the package with their own THREADER_CACHE_DIR and check that a second run
// validates without loading acorn and with the same results and errors.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..');
const { createMemo, MAX_ENTRIES, MAX_SOURCE_CHARS } = require(path.join(root, 'js', 'validation_memo.js'));
const { hashText } = require(path.join(root, 'js', 'cache_dir.js'));
const { load } = require('./helpers/load.js');
const hasAddon = !load().isMock;

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'threader-memo-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const ARROW = { error: null, free: [], source: '(x) => x + 1', name: '', kind: 'arrow', inert: true };
const WITH_FREE = {
  error: null,
  free: [{ name: 'clamp', start: 7, line: 1, column: 8 }],
  source: '(x) => clamp(x)', name: '', kind: 'arrow', inert: false,
};

test('no file, no memo', () => {
  assert.equal(createMemo(null), null);
});

test('what one memo records, a later one reads back as fresh copies', (t) => {
  const file = path.join(tempDir(t), 'memo.json');
  const a = createMemo(file);
  assert.equal(a.get('(x) => x + 1'), undefined);
  a.add('(x) => x + 1', ARROW);
  a.add('(x) => clamp(x)', WITH_FREE);
  a.flush();
  assert.equal(a.stats().written, 1);

  const b = createMemo(file);
  const got = b.get('(x) => clamp(x)');
  assert.deepEqual(got, WITH_FREE);
  got.free[0].line = 99;
  got.result = 'extended by the caller';
  assert.deepEqual(b.get('(x) => clamp(x)'), WITH_FREE);
  assert.deepEqual(b.get('(x) => x + 1'), ARROW);
  assert.equal(b.get('(x) => x + 2'), undefined);
  assert.deepEqual(b.stats(), { hits: 2 + 1, misses: 1, written: 0, file });
});

// The file's lines as a test writes them (js/validation_memo.js, format 2).
const HEADER = '{"format":2}\n';
// What is stored of an analysis: all but `error` (always null there).
// What is stored of an analysis: all but `error` (always null there) and
// `source` where it is the source text.
const stored = (sourceText, { error, source, ...rest }) => source === sourceText ?
  { free: rest.free, name: rest.name, kind: rest.kind, inert: rest.inert } :
  { free: rest.free, source, name: rest.name, kind: rest.kind, inert: rest.inert };
const line = (sourceText, entry) => `${hashText(sourceText)}\t${JSON.stringify([sourceText, stored(sourceText, entry)])}\n`;

test('a file of another format is ignored whole, and replaced at the next write', (t) => {
  const dir = tempDir(t);
  const good = HEADER + line('(x) => x + 1', ARROW);
  const cases = {
    garbage: '\u0000\u0001not json',
    noHeader: good.slice(HEADER.length),
    formatOne: JSON.stringify({ format: 1, entries: [['(x) => x + 1', ARROW]] }),
    otherHeader: good.replace('"format":2', '"format":3'),
  };
  for (const [name, text] of Object.entries(cases)) {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, text);
    const memo = createMemo(file);
    assert.equal(memo.get('(x) => x + 1'), undefined, name);
    memo.add('(y) => y', { ...ARROW, source: '(y) => y' });
    memo.flush();
    assert.equal(fs.readFileSync(file, 'utf8'), HEADER + line('(y) => y', { ...ARROW, source: '(y) => y' }), name);
  }
});

test('a malformed line is a miss, its neighbours are not, and the next write drops it', (t) => {
  const file = path.join(tempDir(t), 'memo.json');
  const bad = {
    '(x) => 1': line('(x) => 1', { ...ARROW, kind: 'method' }),
    '(x) => 2': line('(x) => 2', { ...ARROW, free: [{ name: 'y', start: -1, line: 1, column: 1 }] }),
    '(x) => 3': `${hashText('(x) => 3')}\t["(x) => 3"]\n`,
    '(x) => 4': line('(x) => 4', ARROW).slice(0, -9) + '\n',  // truncated
    '(x) => 5': line('(x) => 5', ARROW).replace('(x) => 5', '(x) => 6'),  // another text under its hash
  };
  fs.writeFileSync(file, HEADER + line('(x) => x + 1', ARROW) + Object.values(bad).join('') +
    line('(x) => clamp(x)', WITH_FREE));
  const memo = createMemo(file);
  for (const sourceText of Object.keys(bad)) assert.equal(memo.get(sourceText), undefined, sourceText);
  assert.equal(memo.get('(x) => 6'), undefined);  // found under the wrong hash only
  assert.deepEqual(memo.get('(x) => x + 1'), ARROW);
  assert.deepEqual(memo.get('(x) => clamp(x)'), WITH_FREE);
  memo.add('(y) => y', { ...ARROW, source: '(y) => y' });
  memo.flush();
  assert.equal(fs.readFileSync(file, 'utf8'), HEADER + line('(x) => x + 1', ARROW) +
    line('(x) => clamp(x)', WITH_FREE) + line('(y) => y', { ...ARROW, source: '(y) => y' }));
});

test('sources whose hashes collide are told apart by their text', (t) => {
  const file = path.join(tempDir(t), 'memo.json');
  const tag = hashText('(x) => x + 1');
  // Two lines under one hash: only the one whose text matches is found.
  fs.writeFileSync(file, HEADER +
    `${tag}\t${JSON.stringify(['(x) => x - 1', { ...ARROW, source: '(x) => x - 1' }])}\n` +
    line('(x) => x + 1', ARROW));
  const memo = createMemo(file);
  assert.deepEqual(memo.get('(x) => x + 1'), ARROW);
  assert.equal(memo.get('(x) => x - 1'), undefined);
});

test('a source text with line feeds and tabs stays on one line', (t) => {
  const file = path.join(tempDir(t), 'memo.json');
  const text = '(x) => {\n\treturn x +\r\n 1;\u2028}';
  const entry = { ...ARROW, source: text };
  const a = createMemo(file);
  a.add(text, entry);
  a.flush();
  assert.equal(fs.readFileSync(file, 'utf8').split('\n').length, 3);  // header, entry, ''
  assert.deepEqual(createMemo(file).get(text), entry);
});

test('rejections, methods, malformed analyses and very long sources are not recorded', (t) => {
  const file = path.join(tempDir(t), 'memo.json');
  const memo = createMemo(file);
  memo.add('m() {}', { ...ARROW, kind: 'method' });
  memo.add('(x) => y', { error: { message: 'no' }, free: [] });
  const long = `(x) => x + ${'1 + '.repeat(MAX_SOURCE_CHARS / 4)}1`;
  memo.add(long, { ...ARROW, source: long });
  memo.flush();
  assert.equal(fs.existsSync(file), false);
});

test('the file keeps the newest MAX_ENTRIES entries', (t) => {
  const file = path.join(tempDir(t), 'memo.json');
  const memo = createMemo(file);
  const n = MAX_ENTRIES + 10;
  for (let i = 0; i < n; i++) memo.add(`(x) => x + ${i}`, { ...ARROW, source: `(x) => x + ${i}` });
  memo.flush();
  const again = createMemo(file);
  assert.equal(again.get('(x) => x + 0'), undefined);
  assert.equal(again.get('(x) => x + 9'), undefined);
  assert.equal(again.get('(x) => x + 10').source, '(x) => x + 10');
  assert.equal(again.get(`(x) => x + ${n - 1}`).source, `(x) => x + ${n - 1}`);
});

test('two processes writing one file: each write merges what is there', (t) => {
  const file = path.join(tempDir(t), 'memo.json');
  const a = createMemo(file);
  const b = createMemo(file);
  a.get('(x) => 1');  // a read the (empty) file before b wrote
  b.add('(x) => 2', { ...ARROW, source: '(x) => 2' });
  b.flush();
  a.add('(x) => 1', { ...ARROW, source: '(x) => 1' });
  a.flush();
  const c = createMemo(file);
  assert.equal(c.get('(x) => 1').source, '(x) => 1');
  assert.equal(c.get('(x) => 2').source, '(x) => 2');
});

test('a new record prunes the records of other keys beyond the newest 8', (t) => {
  const dir = tempDir(t);
  const ageFile = (name, secondsAgo) => {
    const at = Date.now() / 1000 - secondsAgo;
    fs.utimesSync(path.join(dir, name), at, at);
  };
  for (let i = 1; i <= 10; i++) {
    fs.writeFileSync(path.join(dir, `validated-old${String(i).padStart(2, '0')}.json`), 'x');
    ageFile(`validated-old${String(i).padStart(2, '0')}.json`, 600 * i);
  }
  fs.writeFileSync(path.join(dir, 'snapshot-x.bin'), 'x');
  ageFile('snapshot-x.bin', 100000);
  const memo = createMemo(path.join(dir, 'validated-new.json'));
  memo.add('(x) => x + 1', ARROW);
  memo.flush();
  const records = () => fs.readdirSync(dir).filter((f) => f.startsWith('validated-')).sort();
  assert.deepEqual(records(), [
    'validated-new.json',
    ...['01', '02', '03', '04', '05', '06', '07'].map((i) => `validated-old${i}.json`),
  ]);
  assert.ok(fs.existsSync(path.join(dir, 'snapshot-x.bin')));
  // Rewriting an existing record prunes nothing.
  fs.writeFileSync(path.join(dir, 'validated-older.json'), 'x');
  ageFile('validated-older.json', 100000);
  memo.add('(x) => x + 2', { ...ARROW, source: '(x) => x + 2' });
  memo.flush();
  assert.ok(fs.existsSync(path.join(dir, 'validated-older.json')));
});

// --- through the package, in fresh processes -------------------------------

const CHILD = `
const path = require('node:path');
const root = process.env.THREADER_ROOT;
const { threader, thread } = require(root);
const out = {};
const acornLoaded = () => Object.keys(require.cache).some((f) => f.endsWith(path.join('vendor', 'acorn.js')));
const analyzerLoaded = () => Object.keys(require.cache).some((f) => f.endsWith(path.join('js', 'analyze.js')));
const clamp = (v) => Math.min(Math.max(v, 0), 10);
const run = async () => {
  out.results = await thread.all(
    threader((x) => x * 2, 21),
    threader((x) => clamp(x), 42, { with: { clamp } }),
  );
  out.acornAfterTasks = acornLoaded();
  out.analyzerAfterTasks = analyzerLoaded();
  try {
    threader((x) => clamp(x) + console.log(x), 1);
  } catch (e) {
    out.error = { code: e.code, message: e.message, identifier: e.identifier };
  }
  out.acornLoaded = acornLoaded();
  // The code that writes the record (nothing new to write in a second run).
  out.writerLoaded = Object.keys(require.cache).some((f) => f.endsWith('validation_memo_write.js'));
  await threader.shutdown();
  console.log(JSON.stringify(out));
};
run();
`;

function child(cacheDir) {
  const r = spawnSync(process.execPath, ['-e', CHILD], {
    env: { ...process.env, THREADER_ROOT: root, THREADER_CACHE_DIR: cacheDir },
    encoding: 'utf8', timeout: 60000,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

test('a second process validates the same functions without loading acorn', { skip: !hasAddon && 'needs the addon' }, (t) => {
  // A cache directory that does not exist yet: the first write makes it,
  // private to this user (js/cache_dir.js, v8c/snapshot.cc).
  const dir = path.join(tempDir(t), 'not', 'yet');
  const first = child(dir);
  assert.equal(first.acornLoaded, true);
  assert.equal(first.analyzerAfterTasks, true);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.dirname(dir)).mode & 0o777, 0o700);
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('validated-'));
  assert.equal(files.length, 1, String(fs.readdirSync(dir)));
  for (const f of fs.readdirSync(dir)) {
    assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
  }

  const second = child(dir);
  assert.deepEqual(second.results, [42, 10]);
  assert.equal(second.acornAfterTasks, false);
  assert.equal(second.writerLoaded, false);
  // Not even the scope analysis is compiled (js/analyze.js).
  assert.equal(second.analyzerAfterTasks, false);
  // The free names of a source are recorded with their positions, so the
  // rejection of `clamp` without opts.with comes from the record too.
  assert.equal(second.acornLoaded, false);
  assert.deepEqual(second.error, first.error);
  assert.equal(second.error.code, 'ERR_THREADER_VALIDATION');
  assert.equal(second.error.identifier, 'clamp');
});

test('a recorded free name is still rejected without opts.with, at the same place', { skip: !hasAddon && 'needs the addon' }, (t) => {
  const dir = tempDir(t);
  const script = (withClamp) => `
    const { threader } = require(process.env.THREADER_ROOT);
    const clamp = (v) => v;
    const f = (x) =>
      clamp(x);
    const out = {};
    threader(clamp, 1);  // opts.with validates clamp too: record it in run 1
    try { threader(f, 1${withClamp ? ', { with: { clamp } }' : ''}); out.ok = true; } catch (e) { out.message = e.message; }
    out.acornLoaded = Object.keys(require.cache).some((k) => k.endsWith('acorn.js'));
    console.log(JSON.stringify(out));
    process.exit(0);
  `;
  const run = (withClamp) => {
    const r = spawnSync(process.execPath, ['-e', script(withClamp)], {
      env: { ...process.env, THREADER_ROOT: root, THREADER_CACHE_DIR: dir }, encoding: 'utf8', timeout: 60000,
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  };
  const parsed = run(false);        // a parse, recorded with its free names
  assert.equal(parsed.acornLoaded, true);
  const allowed = run(true);        // from the record: clamp is allowed
  assert.equal(allowed.ok, true);
  assert.equal(allowed.acornLoaded, false);
  const fromMemo = run(false);      // from the record: rejected again
  assert.equal(fromMemo.acornLoaded, false);
  assert.equal(fromMemo.message, parsed.message);
  assert.match(fromMemo.message, /clamp.*2:7/s);
});

test('with THREADER_CACHE_DIR=off nothing is written or read', { skip: !hasAddon && 'needs the addon' }, () => {
  const out = child('off');
  assert.deepEqual(out.results, [42, 10]);
  assert.equal(out.acornLoaded, true);
});
