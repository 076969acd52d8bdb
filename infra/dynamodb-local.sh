#!/usr/bin/env bash
# DynamoDB Local (AWS's own engine) for the store's integration tests and local runs.
#
#   infra/dynamodb-local.sh install   fetch it into .local/dynamodb-local/ if missing (npm pack, no npm install)
#   infra/dynamodb-local.sh start     start it in the background on 127.0.0.1:$DYNAMODB_LOCAL_PORT (default 8055),
#                                     wait until it answers, print the endpoint (the only line on stdout)
#   infra/dynamodb-local.sh stop      stop the one `start` started (pid file .local/dynamodb-local.pid)
#   infra/dynamodb-local.sh run       install if missing, then exec it in the foreground (what the Go tests use)
#
# The jar ships inside the npm package amplify-dynamodb-simulator (emulator/DynamoDBLocal.jar and
# emulator/DynamoDBLocal_lib/, with the sqlite4java native libraries). It needs Java 11+.
# DynamoDB Local has no flag for the listening address (it binds every interface); it is started through
# infra/DynamoDBLocalLoopback.java, which binds its Jetty connector to 127.0.0.1 only. Data is in memory.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PKG="amplify-dynamodb-simulator@2.9.30"
CACHE="$ROOT/.local/dynamodb-local"
EMU="$CACHE/package/emulator"
LAUNCHER="$CACHE/launcher"
NAME=dynamodb-local
PORT="${DYNAMODB_LOCAL_PORT:-8055}"
TRIES=120
source "$ROOT/infra/daemon.sh"

need_java() {
  command -v java >/dev/null || { echo "dynamodb-local: java not found (Java 11+ needed: apt-get install openjdk-17-jre-headless)" >&2; exit 3; }
}

install() {
  if [[ ! -f "$EMU/DynamoDBLocal.jar" ]]; then
    command -v npm >/dev/null || { echo "dynamodb-local: npm not found" >&2; exit 3; }
    mkdir -p "$CACHE"
    echo "dynamodb-local: fetching $PKG into $CACHE" >&2
    tgz="$(cd "$CACHE" && npm pack --silent "$PKG" | tail -n1)"
    tar -xzf "$CACHE/$tgz" -C "$CACHE" package/emulator
    rm -f "$CACHE/$tgz"
    [[ -f "$EMU/DynamoDBLocal.jar" ]] || { echo "dynamodb-local: no DynamoDBLocal.jar in $PKG" >&2; exit 1; }
  fi
  local src="$ROOT/infra/DynamoDBLocalLoopback.java"
  if [[ ! -f "$LAUNCHER/DynamoDBLocalLoopback.class" || "$src" -nt "$LAUNCHER/DynamoDBLocalLoopback.class" ]]; then
    need_java
    command -v javac >/dev/null || { echo "dynamodb-local: javac not found (apt-get install openjdk-17-jdk-headless)" >&2; exit 3; }
    mkdir -p "$LAUNCHER"
    javac -nowarn -cp "$EMU/DynamoDBLocal.jar:$EMU/DynamoDBLocal_lib/*" -d "$LAUNCHER" "$src"
  fi
}

run() {
  install
  need_java
  # Telemetry off twice over (the flag, and the variable the engine reads); it writes its
  # dynamodb-local-metadata.json into the working directory, so run from the cache.
  export DDB_LOCAL_TELEMETRY=0
  cd "$CACHE"
  exec java -Djava.library.path="$EMU/DynamoDBLocal_lib" -Dddblocal.host=127.0.0.1 \
    -cp "$LAUNCHER:$EMU/DynamoDBLocal.jar:$EMU/DynamoDBLocal_lib/*" DynamoDBLocalLoopback \
    -inMemory -sharedDb -disableTelemetry -port "$PORT"
}

prepare() { install; }

ready() { # any DynamoDB answer (even an auth error) means it is serving
  curl -s -o /dev/null -m 2 -X POST -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Content-Type: application/x-amz-json-1.0' -d '{}' "http://127.0.0.1:$1/"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  run) run ;;
  *) echo "usage: $0 install|start|stop|run" >&2; exit 2 ;;
esac
