#!/usr/bin/env bash
# Runs CLI shell scripts under Valgrind memcheck and fails on definite leaks
# or memory errors (exit 9 from Valgrind).  V8 itself keeps caches alive to
# the end and reports "possibly lost" blocks; only definite leaks count.
#
#   tests/load/valgrind_shell.sh                        tests/shell/fault_leakcheck.js
#   tests/load/valgrind_shell.sh tests/shell/x.js ...   those scripts
#   THREADER_SHELL=/tmp/b/threader tests/load/valgrind_shell.sh
#
# Needs valgrind (apt-get install valgrind).  Slow: a small script takes a
# minute or more.  Logs go to $TMPDIR/threader-valgrind-<script>.log.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SHELL_BIN="${THREADER_SHELL:-out/threader}"
if ! command -v valgrind >/dev/null; then
  echo "valgrind_shell: valgrind is not installed" >&2
  exit 2
fi
if [ ! -x "$SHELL_BIN" ]; then
  echo "valgrind_shell: $SHELL_BIN not built (tools/build)" >&2
  exit 2
fi
scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(tests/shell/fault_leakcheck.js)

status=0
for script in "${scripts[@]}"; do
  log="${TMPDIR:-/tmp}/threader-valgrind-$(basename "$script" .js).log"
  start=$SECONDS
  # Two workers keep it short; V8's JIT needs --smc-check for code it
  # patches in place.
  THREADER_MAX_WORKERS="${THREADER_MAX_WORKERS:-2}" \
  valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --error-exitcode=9 --smc-check=all-non-file \
    --num-callers=30 --log-file="$log" "$SHELL_BIN" "$script"
  rc=$?
  summary="$(grep -E 'definitely lost:|indirectly lost:|possibly lost:|ERROR SUMMARY' "$log" | sed 's/^==[0-9]*== *//' | tr '\n' ';')"
  if [ "$rc" = 0 ]; then
    echo "ok   $script ($((SECONDS - start)) s) $summary"
  else
    echo "FAIL $script: exit $rc ($((SECONDS - start)) s) $summary (log: $log)"
    status=1
  fi
done
exit $status
