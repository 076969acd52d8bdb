#!/usr/bin/env bash
# The local run at fleet scale: the simulator (its own process) with SHEETS × ROWS billing rows, `billing-audit setup`,
# a first run (every row baselined), then an idle run (nothing changed), whose peak RSS and wall time are printed.
# make bench-idle runs it with 68 × 3,000 (204,000 rows); SHEETS=6 ROWS=300 for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."
SHEETS=${SHEETS:-68}
ROWS=${ROWS:-3000}
GO=${GO:-go}
work=$(mktemp -d)
sim=
cleanup() { [ -n "$sim" ] && kill "$sim" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$GO" build -o "$work/smartsim" ./cmd/smartsim
"$GO" build -o "$work/billing-audit" ./cmd/billing-audit
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The rate limit stays on: the client paces itself to 300 calls a minute, as against Smartsheet.
"$work/smartsim" -addr "127.0.0.1:$port" -sheets "$SHEETS" -rows "$ROWS" -weeks 6 2>"$work/smartsim.log" >"$work/smartsim.out" &
sim=$!
for _ in $(seq 1 600); do
  grep -q folderId "$work/smartsim.log" 2>/dev/null && curl -sf -o /dev/null -H 'Authorization: Bearer x' "http://127.0.0.1:$port/2.0/users/me" && break
  sleep 0.5
done
folder=$(grep -o '"folderId":[0-9]*' "$work/smartsim.log" | head -1 | cut -d: -f2)
export SMARTSHEET_BASE_URL="http://127.0.0.1:$port/2.0" SMARTSHEET_API_TOKEN=measure SOURCE_FOLDER_IDS="$folder" \
  STATE_DIR="$work/state" OUTPUT_DIR="$work/out" LOG_LEVEL=WARN
audit=$("$work/billing-audit" setup 2>"$work/setup.log" | grep -o 'AUDIT_SHEET_ID=[0-9]*' | cut -d= -f2 || true)
[ -n "$audit" ] || { echo "setup failed:"; cat "$work/setup.log"; exit 1; }
export AUDIT_SHEET_ID="$audit"
start=$(date +%s.%N)
/usr/bin/time -f '%M %e' -o "$work/first.time" "$work/billing-audit" run >"$work/first.log" 2>&1 || { tail -20 "$work/first.log"; exit 1; }
/usr/bin/time -f '%M %e' -o "$work/idle.time" "$work/billing-audit" run >"$work/idle.log" 2>&1 || { tail -20 "$work/idle.log"; exit 1; }
read -r first_kb first_s <"$work/first.time"
read -r idle_kb idle_s <"$work/idle.time"
db_mb=$(du -m "$work/state/billing-audit.db" | cut -f1)
[ -n "${VERBOSE:-}" ] && { cat "$work/first.log"; cat "$work/idle.log"; }
echo "idle: sheets=$SHEETS rows=$((SHEETS * ROWS)) first_run_s=$first_s first_run_peak_rss_mb=$((first_kb / 1024)) idle_run_s=$idle_s idle_peak_rss_mb=$((idle_kb / 1024)) state_db_mb=$db_mb"
