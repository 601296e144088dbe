# Sourced by the scripts/bench-*.sh: the tool cache, a scratch directory whose background
# processes die with the script, free ports, and a tansu broker with the pipeline's topics.
export CONNAUDIT_CACHE="${CONNAUDIT_CACHE:-$HOME/.cache/connaudit}"
scripts/install-deps.sh >/dev/null
TANSU="$CONNAUDIT_CACHE/tools/bin/tansu"
PY="$CONNAUDIT_CACHE/venv/bin/python"
TARGET="${CARGO_TARGET_DIR:-target}/release"
# CONNAUDIT_BIN measures another build (e.g. an earlier release) with the same script.
BIN="${CONNAUDIT_BIN:-$TARGET/connaudit}"

# build [EXAMPLE...]: the release binary and the named examples of connaudit-tests.
build() {
  echo "==> Building connaudit${1:+ and $*} (release)"
  cargo build --release --quiet --bin connaudit
  [ $# -eq 0 ] || cargo build --release --quiet -p connaudit-tests $(printf -- '--example %s ' "$@")
}

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
wait_port() { for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# start_tansu PARTITIONS: tansu in memory on KAFKA_PORT, with the events topic (PARTITIONS),
# its DLQ and alerts topics.
start_tansu() {
  KAFKA_PORT=$(port)
  "$TANSU" broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" >"$WORK/tansu.log" 2>&1 & TANSU_PID=$!; PIDS+=($!)
  wait_port "$KAFKA_PORT"
  for t in "mqtt.client-events:$1" mqtt.client-events.dlq:1 mqtt.client-events.alerts:1; do
    "$TANSU" topic create --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions "${t#*:}" "${t%:*}" >/dev/null
  done
}

# written HTTP_PORT: events the transformer has written, from its /metrics.
written() {
  local text; text=$(curl -sf "http://127.0.0.1:$1/metrics" || true)
  awk '/^connaudit_transform_records_total\{outcome="written"\}/ {s+=$2} END {print s+0}' <<<"$text"
}

# build_warehouse EVENTS DEVICES DAYS: sets WAREHOUSE, unless given, to a warehouse the real
# pipeline wrote (tansu -> `connaudit transform`, release) and `connaudit compact` compacted,
# as the hourly CronJob leaves it (replaced files deleted now, so DuckDB's glob sees only live
# ones). KEEP=1 keeps it in ./bench-warehouse.
build_warehouse() {
  [ -n "${WAREHOUSE:-}" ] && return 0
  WAREHOUSE="$WORK/wh"
  [ "${KEEP:-0}" = 1 ] && WAREHOUSE="$(pwd)/bench-warehouse" && rm -rf "$WAREHOUSE"
  local http; http=$(port)
  start_tansu 4
  printf 'cidr,region\n10.1.0.0/16,eu-west\n10.2.0.0/16,us-east\n2001:db8::/32,ap-south\n' >"$WORK/regions.csv"
  echo "==> connaudit transform, reading as the fleet is produced"
  RUST_LOG=warn "$BIN" transform --kafka-brokers "127.0.0.1:$KAFKA_PORT" --warehouse "$WAREHOUSE" \
    --regions "$WORK/regions.csv" --http-listen "127.0.0.1:$http" --batch-idle-secs 2 \
    >"$WORK/transform.log" 2>&1 &
  local transform=$!; PIDS+=($transform)
  echo "==> Producing $1 events of $2 devices over $3 days into tansu"
  local t0; t0=$(now)
  "$TARGET/examples/fleet_to_kafka" "127.0.0.1:$KAFKA_PORT" mqtt.client-events "$1" "$2" - "$(($3 * 24))"
  until [ "$(written "$http")" -ge "$1" ]; do sleep 1; done
  echo "    warehouse written in $(awk "BEGIN {printf \"%.0f\", $(now) - $t0}") s"
  kill -TERM "$transform"; wait "$transform" || true
  # A script may measure the warehouse as transform left it, before compaction.
  if declare -F before_compact >/dev/null; then before_compact; fi
  echo "==> connaudit compact (every closed day into one file; replaced files deleted now)"
  RUST_LOG=warn "$BIN" compact --warehouse "$WAREHOUSE" --older-than-hours 0 --retain 0s
}

# cpu_s PID: user + system CPU seconds a live process has used (from /proc).
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
# threads PID: CPU seconds of a live process's busiest threads (name seconds), busiest first.
threads() {
  local hz; hz=$(getconf CLK_TCK)
  for f in /proc/"$1"/task/*/stat; do sed 's/.*(\(.*\)) [A-Z] /\1 /' "$f" | awk -v hz="$hz" '{print $1, ($12 + $13) / hz}'; done \
    | sort -k2 -g -r | head -"${2:-4}" | awk '{printf "%s%s %.2fs", (NR > 1 ? ", " : ""), $1, $2} END {print ""}'
}
# rss_mib PID: the peak resident set of a live process (VmHWM).
rss_mib() { awk '/^VmHWM/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }
# timed OUT COMMAND...: runs it under GNU time; OUT gets "elapsed cpu_seconds peak_rss_mib".
timed() {
  local out=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.raw" "$@"
  awk '{printf "%s %.2f %d\n", $1, $2 + $3, $4 / 1024}' "$WORK/time.raw" >"$out"
}
# row key=value...: one row of bench/run's table (see bench/report.py), when BENCH_OUT is set.
row() { [ -z "${BENCH_OUT:-}" ] || python3 bench/report.py add "$BENCH_OUT" "$@"; }
