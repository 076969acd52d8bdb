#!/usr/bin/env bash
# Runs each fuzz target (pkg:Target) for FUZZTIME. With a time limit, Go's fuzzer can end a
# clean run with "context deadline exceeded" when a worker is still busy as
# the time runs out (no crasher, no failing input written): such a run is
# tried again (up to three runs); a real failure (a failing input) fails at once.
set -uo pipefail
fuzztime="${FUZZTIME:-50000x}"
go="${GO:-go}"
for pt in "$@"; do
  pkg=${pt%%:*}; t=${pt##*:}
  for try in 1 2 3; do
    echo "fuzz $t ($fuzztime)"
    out=$("$go" test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" "./$pkg" 2>&1); rc=$?
    echo "$out" | grep -v '^fuzz: elapsed'
    [ $rc -eq 0 ] && break
    if [ $try -lt 3 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
      echo "fuzz $t: the fuzzer timed out a busy worker without a failing input; running it again"
      continue
    fi
    exit $rc
  done
done
