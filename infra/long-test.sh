#!/usr/bin/env bash
# Runs one long Go test (the scale harness, a soak) verbosely, keeps its output in out/NAME.log and ends with the lines
# that sum it up, so its figures are the last thing on screen:
#
#   infra/long-test.sh NAME TIMEOUT TEST PACKAGE PATTERN...
#
# For each PATTERN (grep -o) the last matching line of the log is printed, in order; when none matches it says so. The
# runtime emulator's access-log lines are left out. The exit status is the test's.
set -uo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 5 ]] || { echo "usage: $0 NAME TIMEOUT TEST PACKAGE PATTERN..." >&2; exit 2; }
name=$1 timeout=$2 test=$3 pkg=$4
shift 4
GO=${GO:-go}
log=out/$name.log
mkdir -p out
$GO test -count=1 -timeout "$timeout" -run "^$test\$" -v "$pkg" 2>&1 | grep --line-buffered -v '" [0-9][0-9]* -$' | tee "$log"
status=${PIPESTATUS[0]}
echo
found=
for pat in "$@"; do
  line=$(grep -o "$pat" "$log" | tail -n1)
  if [[ -n "$line" ]]; then
    echo "$line"
    found=1
  fi
done
[[ -n "$found" ]] || echo "$name: no summary (skipped or failed; see $log)"
exit "$status"
