#!/usr/bin/env bash
# Every test, in one command (the README's test command; CI runs it through .ci/run):
# the Rust workspace (nothing but Rust needed), then the TypeScript client's unit tests, its
# integration tests against the real local stack and the demo page in Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo test --workspace

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cargo build -p statecast-local
(cd clients/typescript && npm ci --no-audit --no-fund && npm run test:all)
