#!/bin/sh
# Installs the pinned test clients (package-lock.json: openai, puppeteer-core) into ./node_modules, which git
# ignores. Skipped when node_modules was installed from this same lock (a stamp holds the lock's hash).
# Needs node and npm (Debian: apt-get install nodejs npm, or tools/install_deps.sh) and the npm registry.
set -eu
cd "$(dirname "$0")"
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "server_js setup: '$tool' not found: install Node.js 18+ and npm (apt-get install nodejs npm, or tools/install_deps.sh)" >&2
    exit 1
  fi
done
stamp=node_modules/.qvl-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "server_js setup: node_modules up to date"
  exit 0
fi
# No download of a browser: puppeteer-core never fetches one (the tests drive Debian's chromium).
npm ci --no-audit --no-fund
echo "$want" > "$stamp"
echo "server_js setup: installed $(node -p "Object.entries(require('./package.json').dependencies).map(e => e.join('@')).join(', ')")"
