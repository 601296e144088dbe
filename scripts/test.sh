#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs every test of the workspace
# against real Mosquitto and tansu brokers started on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

export CONNAUDIT_CACHE="${CONNAUDIT_CACHE:-$HOME/.cache/connaudit}"
scripts/install-deps.sh
export TANSU_BIN="$CONNAUDIT_CACHE/tools/bin/tansu"

# The end-to-end tests run the built binary. Built with every test target, so the binary and
# the tests share one feature set of the dependencies (a plain `cargo build --bin connaudit`
# leaves out the dev-dependencies' features and DataFusion would be compiled twice).
cargo build --workspace --all-targets

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
