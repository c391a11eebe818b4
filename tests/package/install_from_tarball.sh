#!/usr/bin/env bash
# What a stranger does: `npm pack` this checkout, `npm install` the tarball
# into a new project (which runs the package's install script: tools/build
# on the files package.json ships, without tests/), then use it from that
# project.  Fails if the tarball lacks a file the build needs, if the
# install's build fails, or if the installed package cannot run tasks.
# Run by tools/test; takes about 30 s on 2 cores (one build of the addon
# and the shell).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/threader-package.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cd "$ROOT"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "packed $tarball ($(tar tzf "$work/$tarball" | wc -l) files)"
if tar tzf "$work/$tarball" | grep -q '^package/\(tests\|third_party\|out\|node_modules\)/'; then
  echo "the tarball holds build outputs or tests:" >&2
  tar tzf "$work/$tarball" | grep '^package/\(tests\|third_party\|out\|node_modules\)/' | head >&2
  exit 1
fi

mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
if ! npm install --no-audit --no-fund "$work/$tarball" >"$work/install.log" 2>&1; then
  cat "$work/install.log"; exit 1
fi
echo "installed; the install script built: $(cd node_modules/threader/out && ls threader threader.node | tr '\n' ' ')"

# The README's first example, an error with its code, and the shell.
cat > use.js <<'JS'
const assert = require('node:assert/strict');
const { threader, thread } = require('threader');
(async () => {
  assert.deepEqual(await thread.all([1, 2, 3, 4].map((n) => threader((x) => x * x, n))), [1, 4, 9, 16]);
  assert.throws(() => threader(() => console.log('x')), { code: 'ERR_THREADER_VALIDATION' });
  await threader.shutdown();
  console.log('the installed package runs tasks');
})().catch((err) => { console.error(err); process.exit(1); });
JS
node use.js
echo 'thread.all(threader((x) => x + 1, 41)).then((r) => { if (r[0] !== 42) throw new Error("shell: " + r); console.log("the installed shell runs tasks"); });' > shell.js
node_modules/threader/out/threader shell.js
