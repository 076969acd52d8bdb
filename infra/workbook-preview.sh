#!/usr/bin/env bash
# Renders an audit workbook as a person would see it printed: LibreOffice → PDF → one PNG a page, in out/preview/.
# With no argument it plays `billing-audit demo` (twelve weeks of history on the simulator) into out/preview/demo and
# renders the workbook of its last run; with a path it renders that workbook. Needs LibreOffice and poppler-utils
# (infra/deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
out=out/preview
book=${1:-}
if [[ -z "$book" ]]; then
  rm -rf "$out/demo"
  $GO run ./cmd/billing-audit demo --out "$out/demo" >"$out.demo.log" 2>&1 || { tail -n 30 "$out.demo.log"; exit 1; }
  book=$(ls -t "$out"/demo/billing-audit-*.xlsx | head -n1)
fi
command -v soffice >/dev/null && command -v pdftoppm >/dev/null || bash infra/deps.sh
mkdir -p "$out"
rm -f "$out"/page-*.png "$out"/*.pdf
soffice --headless --convert-to pdf --outdir "$out" "$book" >/dev/null 2>&1
pdf="$out/$(basename "${book%.xlsx}").pdf"
pdftoppm -r 70 -png "$pdf" "$out/page"
echo "workbook: $book"
echo "pdf:      $pdf ($(pdfinfo "$pdf" | awk '/^Pages:/ {print $2}') pages)"
echo "pages:    $(ls "$out"/page-*.png | tr '\n' ' ')"
