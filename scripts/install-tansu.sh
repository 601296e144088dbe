#!/usr/bin/env bash
# The tansu Kafka-protocol broker the tests run, from crates.io, cached in the tool cache
# (18 to 30 minutes on a fresh 2-core machine while the workspace builds beside it). Its own target
# directory, so it can build while the workspace does (scripts/test.sh runs both at once)
# without waiting on the workspace's lock.
set -euo pipefail
CACHE="${CONNAUDIT_CACHE:-$HOME/.cache/connaudit}"
TANSU_VERSION="0.6.0"
tansu="$CACHE/tools/bin/tansu"
if ! "$tansu" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "==> Building tansu $TANSU_VERSION (18 to 30 minutes on 2 cores beside the workspace; cached in $CACHE/tools)"
  CARGO_TARGET_DIR="$CACHE/tansu-build" \
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore --root "$CACHE/tools"
  rm -rf "$CACHE/tansu-build"
fi
