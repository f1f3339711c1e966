#!/usr/bin/env bash
# The whole test suite: installs the test dependencies, then runs every test
# (unit, property, real-process and real-client tests). CI runs exactly this.
#   KEEPER_LONG_TESTS=1 tools/test.sh   also runs the long modes (soak, many crash cycles)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-test-deps.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
