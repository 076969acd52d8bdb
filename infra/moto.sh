#!/usr/bin/env bash
# moto (a Python AWS emulator) for the store's integration tests and local runs.
#
#   infra/moto.sh start   start moto_server in the background on 127.0.0.1:$MOTO_PORT (default 5055),
#                         wait until it answers, print the endpoint (the only line on stdout)
#   infra/moto.sh stop    stop the one `start` started (pid file .local/moto.pid)
#   infra/moto.sh run     exec moto_server in the foreground (what the Go tests use)
#
# moto_server comes with the machine (pip package moto 5.x, with its server extra); PyPI is not
# reachable from here, so this script does not install it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PIDFILE="$ROOT/.local/moto.pid"
PORTFILE="$ROOT/.local/moto.port"
LOG="$ROOT/.local/moto.log"
PORT="${MOTO_PORT:-5055}"

need_moto() {
  command -v moto_server >/dev/null || { echo "moto: moto_server not found (pip install 'moto[server]')" >&2; exit 3; }
}

run() {
  need_moto
  exec moto_server -H 127.0.0.1 -p "$PORT"
}

start() {
  if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "http://127.0.0.1:$(cat "$PORTFILE")"
    return
  fi
  need_moto
  mkdir -p "$ROOT/.local"
  nohup "$0" run >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  echo "$PORT" >"$PORTFILE"
  for _ in $(seq 1 60); do
    if curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/moto-api/"; then
      echo "http://127.0.0.1:$PORT"
      return
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { echo "moto: exited; see $LOG" >&2; tail -n 20 "$LOG" >&2; rm -f "$PIDFILE" "$PORTFILE"; exit 1; }
    sleep 0.5
  done
  echo "moto: not ready after 30s; see $LOG" >&2
  exit 1
}

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

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  run) run ;;
  *) echo "usage: $0 start|stop|run" >&2; exit 2 ;;
esac
