#!/usr/bin/env bash
# What compiling connaudit needs from Debian's packages beyond a Rust toolchain: a C toolchain
# and the headers librdkafka builds against (OpenSSL, zlib). Used by scripts/install-deps.sh
# (tests, CI) and by deploy/Dockerfile, so both build the same way.
set -euo pipefail
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v perl >/dev/null 2>&1 || missing+=(perl)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
[ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> Installing ${missing[*]} from Debian's packages"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
