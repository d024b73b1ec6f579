#!/usr/bin/env bash
# Installs the Debian packages qvl builds and tests with, if any is missing (Debian 12 / Ubuntu 22.04+).
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libhwy-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev libcli11-dev
  libpng-dev libjpeg62-turbo-dev libwebp-dev libgif-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev  # video decoding
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev libcurl4-openssl-dev  # qvl serve (HTTP, remote images)
  python3-numpy  # tools/check_golden.py (make golden, ctest golden_check); the Python package's tests
  pybind11-dev python3-dev python3-pytest python3-pil  # the Python package (python/) and its tests
  python3-setuptools python3-wheel python3-pip python3-venv  # pip install . (README: Python)
  chromium       # tests/server_js: the chat page in headless Chromium
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# tests/server_js (openai, puppeteer-core): Debian's Node.js and npm unless a node is on PATH already.
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
