#!/usr/bin/env bash
# Local stack: moto_server on loopback with the real template.yaml deployed into it (no Docker, no SAM CLI).
#   infra/local-stack.sh up     start moto (pid in .local/moto.pid), deploy the template, write .local/stack.env
#   infra/local-stack.sh down   stop the moto this script started
#   infra/local-stack.sh env    print the stack's variables as export lines: eval "$(infra/local-stack.sh env)"
# MOTO_PORT (default 5055) and STACK_NAME (default billing-audit-local) can be set; extra arguments to `up` go to
# cmd/localstack (e.g. -param SourceSheetIds=1,2 -secret SmartsheetTokenSecret=<token>).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${MOTO_PORT:-5055}"
ENDPOINT="http://127.0.0.1:${PORT}"
STATE=.local
PIDFILE="$STATE/moto.pid"
LOG="$STATE/moto.log"
ENVFILE="$STATE/stack.env"
GO="${GO:-go}"

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

up() {
  mkdir -p "$STATE"
  if running; then
    if [[ -f "$ENVFILE" ]]; then
      echo "local stack already up (moto pid $(cat "$PIDFILE") on $ENDPOINT); variables in $ENVFILE"
      return 0
    fi
  else
    command -v moto_server >/dev/null || { echo "moto_server not found: pip install 'moto[server]'" >&2; exit 1; }
    rm -f "$ENVFILE"
    moto_server -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    echo "moto_server pid $(cat "$PIDFILE") on $ENDPOINT (log $LOG)"
  fi
  # cmd/localstack waits for moto to answer, deploys, and writes the env file.
  if ! "$GO" run ./cmd/localstack -endpoint "$ENDPOINT" -stack "${STACK_NAME:-billing-audit-local}" -env-file "$ENVFILE" "$@"; then
    echo "deployment failed; moto log: $LOG" >&2
    down
    exit 1
  fi
}

down() {
  if running; then
    pid="$(cat "$PIDFILE")"
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "moto_server pid $pid stopped"
  else
    echo "local stack not running"
  fi
  rm -f "$PIDFILE" "$ENVFILE"
}

env_() {
  [[ -f "$ENVFILE" ]] || { echo "no $ENVFILE: run infra/local-stack.sh up" >&2; exit 1; }
  grep -v '^#' "$ENVFILE" | sed 's/^/export /'
}

cmd="${1:-}"
shift || true
case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  env) env_ ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
