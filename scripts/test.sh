#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs every test of the workspace
# against real Mosquitto and tansu brokers started on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

export CONNAUDIT_CACHE="${CONNAUDIT_CACHE:-$HOME/.cache/connaudit}"
scripts/install-deps.sh --no-tansu
export TANSU_BIN="$CONNAUDIT_CACHE/tools/bin/tansu"

# tansu builds beside the workspace: on 2 cores each build leaves a core idle for minutes
# (long single crates, C libraries, links), and a fresh machine saves that time.
tansu_log="$(mktemp)"
scripts/install-tansu.sh >"$tansu_log" 2>&1 &
tansu_pid=$!
trap 'pkill -TERM -P "$tansu_pid" 2>/dev/null || true; kill "$tansu_pid" 2>/dev/null || true' EXIT

# The end-to-end tests run the built binary. Built with every test target, so the binary and
# the tests share one feature set of the dependencies (a plain `cargo build --bin connaudit`
# leaves out the dev-dependencies' features and DataFusion would be compiled twice).
cargo build --workspace --all-targets

if ! wait "$tansu_pid"; then
  tail -n 40 "$tansu_log"
  echo "error: building tansu failed (log above); run scripts/install-tansu.sh to retry" >&2
  exit 1
fi
cat "$tansu_log"
rm -f "$tansu_log"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
