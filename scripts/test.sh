#!/usr/bin/env bash
# `npm test`: installs the Debian packages the suite needs when some are missing (it says
# which), then runs the whole suite. Extra arguments go to `bun test` (CI adds its reporter).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
exec bun test --timeout 60000 "$@"
