#!/usr/bin/env bash
# Installs the Debian packages qvl builds with, if any is missing (Debian 12 / Ubuntu 22.04+).
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libhwy-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev libcli11-dev
  libpng-dev libjpeg62-turbo-dev libwebp-dev libgif-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev libcurl4-openssl-dev  # qvl serve (HTTP, remote images)
  python3-numpy  # tools/check_golden.py (make golden, ctest golden_check)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# (An if, not an early exit: the block after it runs either way.)
if [ ${#missing[@]} -gt 0 ]; then
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Test clients of qvl serve (tests/server_js, issue #12): Debian's chromium for the web-page test, and
# Node.js with npm when no node is on PATH, for the openai / puppeteer-core tests. Idempotent like the above.
extra=()
dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" || extra+=(chromium)
command -v node >/dev/null 2>&1 || extra+=(nodejs npm)
if [ ${#extra[@]} -gt 0 ]; then
  echo "installing: ${extra[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${extra[@]}"
fi
