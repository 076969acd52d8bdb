# Sourced by infra/moto.sh and infra/dynamodb-local.sh: start and stop one background server of this checkout, its pid
# and port kept in .local/. The sourcing script sets ROOT, NAME (for messages and file names), PORT and TRIES (half
# seconds to wait), and defines run (exec the server in the foreground), ready PORT (true once it answers) and
# prepare (what start does before launching it, e.g. install).
PIDFILE="$ROOT/.local/$NAME.pid"
PORTFILE="$ROOT/.local/$NAME.port"
LOG="$ROOT/.local/$NAME.log"

# start launches "$0 run" in the background unless the one started before still runs, waits until it answers and
# prints its endpoint, the only line on stdout.
start() {
  if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "http://127.0.0.1:$(cat "$PORTFILE")"
    return
  fi
  prepare
  if ready "$PORT"; then # another server's answers would pass for this one's
    echo "$NAME: 127.0.0.1:$PORT is already served by another process; choose another port" >&2
    exit 1
  fi
  mkdir -p "$ROOT/.local"
  nohup "$0" run >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  echo "$PORT" >"$PORTFILE"
  for _ in $(seq 1 "$TRIES"); do
    if ready "$PORT"; then
      echo "http://127.0.0.1:$PORT"
      return
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || {
      echo "$NAME: exited; see $LOG" >&2; tail -n 20 "$LOG" >&2; rm -f "$PIDFILE" "$PORTFILE"; exit 1
    }
    sleep 0.5
  done
  echo "$NAME: not ready after $((TRIES / 2))s; see $LOG" >&2
  exit 1
}

# stop ends the server start started, if it still runs, waiting up to 5 s for it to go.
stop() {
  [[ -f "$PIDFILE" ]] || return 0
  local pid
  pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE" "$PORTFILE"
}
