#!/usr/bin/env bash
# Measures the Lambda functions: bootstrap sizes for linux/arm64 as `sam build` makes them (make build-<Function>),
# then, under aws-lambda-rie on a local moto stack (shared/local/localchain benchmarks), each function's cold start
# (emulator process start to first answer), warm latency and peak RSS, and the analyze function on a batch of
# 500 changed rows (changes/s, ms/batch, peak RSS). Needs Go and moto_server; installs aws-lambda-rie if missing.
#   infra/measure-lambdas.sh            (BENCHTIME=3x by default)
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "bootstrap sizes (linux/arm64, -tags lambda.norpc -trimpath -s -w, as make build-<Function>):"
for f in Scan Analyze Report Webhook; do
  if make -s "build-${f}Function" ARTIFACTS_DIR="$tmp/$f" >"$tmp/$f.log" 2>&1; then
    printf '  %-16s %6.1f MiB (%d bytes)\n' "${f}Function" "$(awk -v b="$(stat -c %s "$tmp/$f/bootstrap")" 'BEGIN{print b/1048576}')" "$(stat -c %s "$tmp/$f/bootstrap")"
  else
    echo "  ${f}Function      build failed (skipped): $(tail -1 "$tmp/$f.log")"
  fi
done

command -v aws-lambda-rie >/dev/null || [ -x "$("$GO" env GOPATH)/bin/aws-lambda-rie" ] ||
  "$GO" install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d
echo
echo "under aws-lambda-rie ($("$GO" env GOOS)/$("$GO" env GOARCH), $(nproc) cores):"
"$GO" test -run '^$' -bench 'BenchmarkColdStart|BenchmarkAnalyze500' -benchtime "${BENCHTIME:-3x}" ./shared/local/localchain 2>&1 |
  grep -E '^(Benchmark|goos|goarch|cpu|ok|FAIL|---)'
