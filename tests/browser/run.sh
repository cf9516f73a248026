#!/usr/bin/env bash
# Runs the dashboard's browser tests in Debian's headless Chromium (no browser download).
#
# Needs the binaries built first:
#   cargo build -p mission-examples --features full --example dashboard_agent --example store_fixture -p mission-ctl
# and finds them through MISSION_DASHBOARD_AGENT, MISSION_CTL and MISSION_STORE_FIXTURE, which
# default to ${CARGO_TARGET_DIR:-target}/debug/... Screenshots and figures go to tests/browser/out/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

if [ ! -x /usr/bin/chromium ]; then
  echo "browser tests: installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq chromium >/dev/null
fi

export MISSION_DASHBOARD_AGENT="${MISSION_DASHBOARD_AGENT:-$target/debug/examples/dashboard_agent}"
export MISSION_STORE_FIXTURE="${MISSION_STORE_FIXTURE:-$target/debug/examples/store_fixture}"
export MISSION_CTL="${MISSION_CTL:-$target/debug/mission-ctl}"
for bin in "$MISSION_DASHBOARD_AGENT" "$MISSION_STORE_FIXTURE" "$MISSION_CTL"; do
  if [ ! -x "$bin" ]; then
    echo "browser tests: $bin is missing; build it with" >&2
    echo "  cargo build -p mission-examples --features full --example dashboard_agent --example store_fixture -p mission-ctl" >&2
    exit 1
  fi
done

cd "$here"
npm ci --silent --no-audit --no-fund
rm -rf out && mkdir -p out

status=0
node --test --test-concurrency=1 --test-reporter=spec ./*.test.js 2>&1 | tee out/test-output.txt || status=$?

echo
echo "browser tests summary:"
grep -E '^ℹ (tests|pass|fail|cancelled|skipped|duration_ms)' out/test-output.txt | sed 's/^ℹ /  /' || true
for f in out/latency.json out/page-load.json; do
  [ -f "$f" ] && { echo "--- $f"; cat "$f"; }
done
echo "screenshots: $(ls out/*.png 2>/dev/null | wc -l) in $here/out/"
exit "$status"
