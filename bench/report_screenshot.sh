#!/usr/bin/env bash
# Open a ddlvad report.html in headless Chromium (from disk, no server) and save a screenshot.
#   bench/report_screenshot.sh RUN_DIR/report.html [OUT.png] [WIDTHxHEIGHT]
# Needs Debian's chromium package: apt-get install -y chromium
# Exits non-zero when Chromium fails or writes no image. Prints the PNG path and its size.
set -euo pipefail

html=${1:?usage: $0 REPORT.html [OUT.png] [WIDTHxHEIGHT]}
out=${2:-/tmp/report_screenshot.png}
size=${3:-1400x3000}

[[ -f $html ]] || { echo "$html: no such report" >&2; exit 2; }
command -v chromium >/dev/null || { echo "chromium not found: apt-get install -y chromium" >&2; exit 2; }

abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out"

timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
  --screenshot="$out" --window-size="${size/x/,}" "file://$abs" >/dev/null 2>&1 || true

[[ -s $out ]] || { echo "$out: chromium wrote no screenshot of $abs" >&2; exit 1; }
echo "$out $(stat -c %s "$out") bytes"
