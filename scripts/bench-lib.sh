# Sourced by the scripts/bench-*.sh: the tool cache, a scratch directory whose background
# processes die with the script, free ports, and a tansu broker with the pipeline's topics.
export CONNAUDIT_CACHE="${CONNAUDIT_CACHE:-$HOME/.cache/connaudit}"
scripts/install-deps.sh >/dev/null
TANSU="$CONNAUDIT_CACHE/tools/bin/tansu"
PY="$CONNAUDIT_CACHE/venv/bin/python"
TARGET="${CARGO_TARGET_DIR:-target}/release"
# CONNAUDIT_BIN measures another build (e.g. an earlier release) with the same script.
BIN="${CONNAUDIT_BIN:-$TARGET/connaudit}"

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
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" >"$WORK/tansu.log" 2>&1 & PIDS+=($!)
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
