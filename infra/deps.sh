#!/usr/bin/env bash
# Installs the tools the tests use when they are missing. Best effort: a tool
# that cannot be installed here makes its tests skip with a message saying so.
set -uo pipefail
say() { echo "deps: $*"; }
have() { command -v "$1" >/dev/null 2>&1; }
apt_updated=""
apt_install() {
  have apt-get || return 1
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null 2>&1; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

# LibreOffice: the workbook must convert cleanly to PDF (a guard against files Excel would "repair").
if ! have soffice; then
  say "installing LibreOffice Calc (Debian libreoffice-calc)"
  apt_install libreoffice-calc || say "LibreOffice could not be installed: its conversion test will skip"
fi
# poppler-utils turns that PDF into one PNG a page for `make workbook-preview`.
if ! have pdftoppm; then
  say "installing poppler-utils (Debian poppler-utils)"
  apt_install poppler-utils || say "poppler-utils could not be installed: make workbook-preview cannot render pages"
fi
# Java 17 runs DynamoDB Local.
if ! have java; then
  say "installing Java 17 (Debian openjdk-17-jre-headless)"
  apt_install openjdk-17-jre-headless || say "Java could not be installed: DynamoDB Local tests will skip"
fi
# moto (AWS emulator) and cfn-lint come from PyPI.
for pkg in "moto_server:moto[server]" "cfn-lint:cfn-lint"; do
  cmd=${pkg%%:*}; spec=${pkg#*:}
  if ! have "$cmd"; then
    say "installing $spec (pip)"
    pip install --quiet "$spec" >/dev/null 2>&1 || say "$spec could not be installed: its tests will skip"
  fi
done
# The Lambda runtime interface emulator runs the real bootstrap binaries.
gobin="$(go env GOPATH)/bin"
if ! have aws-lambda-rie && [ ! -x "$gobin/aws-lambda-rie" ]; then
  say "installing aws-lambda-rie (go install)"
  go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d \
    || say "aws-lambda-rie could not be installed: the Lambda chain tests will skip"
fi
exit 0
