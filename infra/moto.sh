#!/usr/bin/env bash
# moto (a Python AWS emulator) for the store's integration tests and local runs.
#
#   infra/moto.sh start   start moto_server in the background on 127.0.0.1:$MOTO_PORT (default 5055),
#                         wait until it answers, print the endpoint (the only line on stdout)
#   infra/moto.sh stop    stop the one `start` started (pid file .local/moto.pid)
#   infra/moto.sh run     exec moto_server in the foreground (what the Go tests use)
#
# moto_server is the pip package moto 5.x with its server extra; infra/deps.sh installs it when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NAME=moto
PORT="${MOTO_PORT:-5055}"
TRIES=60
source "$ROOT/infra/daemon.sh"

need_moto() {
  command -v moto_server >/dev/null || { echo "moto: moto_server not found (pip install 'moto[server]')" >&2; exit 3; }
}

run() {
  need_moto
  exec moto_server -H 127.0.0.1 -p "$PORT"
}

prepare() { need_moto; }

ready() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$1/moto-api/"; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  run) run ;;
  *) echo "usage: $0 start|stop|run" >&2; exit 2 ;;
esac
