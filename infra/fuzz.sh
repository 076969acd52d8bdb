#!/usr/bin/env bash
# Runs each fuzz target (pkg:Target) for FUZZTIME. With a time limit, Go's fuzzer can end a
# clean run with "context deadline exceeded" when a worker is still busy as
# the time runs out (no crasher, no failing input written): such a run is
# tried again (up to three runs); a real failure (a failing input) fails at once.
# Each target ends with a line "fuzz <Target>: <inputs> inputs in <seconds> s" (inputs as the fuzzer
# counts them, without the seed corpus it runs first; seconds from start to end, build included) and
# the run with "fuzz summary: …", the figures `make fuzz-long` records in BENCHMARKS.md.
set -uo pipefail
fuzztime="${FUZZTIME:-50000x}"
go="${GO:-go}"
total_inputs=0
start_all=$(date +%s)
for pt in "$@"; do
  pkg=${pt%%:*}; t=${pt##*:}
  start=$(date +%s)
  inputs=0
  for try in 1 2 3; do
    echo "fuzz $t ($fuzztime)"
    out=$("$go" test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" "./$pkg" 2>&1); rc=$?
    echo "$out" | grep -v '^fuzz: elapsed'
    # The fuzzer's last progress line counts the inputs run: "fuzz: elapsed: 1m2s, execs: 1000000 (…".
    n=$(grep -o '^fuzz: elapsed: [^,]*, execs: [0-9]*' <<<"$out" | tail -n1 | grep -o '[0-9]*$')
    inputs=$((inputs + ${n:-0}))
    [ $rc -eq 0 ] && break
    if [ $try -lt 3 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
      echo "fuzz $t: the fuzzer timed out a busy worker without a failing input; running it again"
      continue
    fi
    echo "fuzz $t: FAILED after $inputs inputs in $(($(date +%s) - start)) s"
    exit $rc
  done
  secs=$(($(date +%s) - start))
  echo "fuzz $t: $inputs inputs in $secs s"
  total_inputs=$((total_inputs + inputs))
done
secs=$(($(date +%s) - start_all))
printf 'fuzz summary: %d targets, %d inputs in %d s (%dm%02ds), no failing input\n' "$#" "$total_inputs" "$secs" $((secs / 60)) $((secs % 60))
