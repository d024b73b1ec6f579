#!/bin/sh
# Runs one test file with node after checking what it needs, so that a missing tool is a failure that says
# what to install (CI installs them) rather than a skipped or passing test. Usage: run.sh TEST.mjs ARGS...
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "server_js: 'node' not found: install Node.js 18+ (apt-get install nodejs npm, or tools/install_deps.sh)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "server_js: node $(node --version) is too old: Node.js 18 or newer is needed" >&2
  exit 1
fi
stamp="$here/node_modules/.qvl-lock.sha256"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)" ]; then
  echo "server_js: test clients not installed from package-lock.json: run $here/setup.sh (ctest runs it as server_js_setup)" >&2
  exit 1
fi
test_file=$1
shift
# The default (spec/TAP) reporter prints each case; a failing case makes node exit non-zero.
exec node "$here/$test_file" "$@"
