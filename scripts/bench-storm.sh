#!/usr/bin/env bash
# A reconnect storm at the broker's default limits: how fast one `connaudit ingest` takes a
# burst without the broker dropping events, next to mosquitto_sub (QoS 1) on the same burst.
# Mosquitto runs with its defaults: 20 unacknowledged messages per connection, 1000 queued per
# session, the rest dropped (EMQX: 32 and 1000). A paced publisher sends STEP_SECONDS at each
# rate of RATES (events/s); a rate is sustained when the reader got every event of it.
# Ingest acknowledges an event only after Kafka confirmed it, so one connection carries at
# most about window / Kafka latency events per second; deploy/README.md sizes replicas from it.
# Usage: scripts/bench-storm.sh [RATES] [STEP_SECONDS]   (default "10000 20000 40000 60000 90000" 4)
set -euo pipefail
cd "$(dirname "$0")/.."
RATES="${1:-10000 20000 40000 60000 90000}"
STEP="${2:-4}"
source scripts/bench-lib.sh
build

MQTT_PORT=$(port); HTTP_PORT=$(port)
user=""; [ "$(id -u)" = 0 ] && user="user root"
# Mosquitto's defaults (max_inflight_messages 20, max_queued_messages 1000): nothing raised.
printf 'listener %s 127.0.0.1\nallow_anonymous true\n%s\n' "$MQTT_PORT" "$user" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 & PIDS+=($!)
wait_port "$MQTT_PORT"
start_tansu 3

# paced RATE SECONDS: EMQX-shaped connect/disconnect lines at RATE per second, in 10 ms steps.
paced() {
  python3 - "$1" "$2" <<'PY'
import json, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
per_tick, n, start = max(1, rate // 100), int(rate * secs), time.monotonic()
out = sys.stdout
for i in range(n):
    kind = "client.connected" if i % 2 else "client.disconnected"
    out.write(json.dumps({"event": kind, "clientid": f"device-{i % 50000:05d}", "username": "fleet",
                          "peername": f"10.1.{i % 250}.7:40000", "node": "emqx@10.0.0.1",
                          "timestamp": 1763700000000 + i, "reason": "keepalive_timeout"}) + "\n")
    if i % per_tick == per_tick - 1:
        out.flush()
        ahead = start + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
out.flush()
time.sleep(2)  # mosquitto_pub -l drops what is unacknowledged when stdin ends
PY
}
# burst RATE: STEP seconds at RATE, split over publishers of at most 30,000 events/s each (one
# mosquitto_pub tops out near 57,000 here); sets SENT_RATE to the rate actually published.
pubs() { echo $(( ($1 + 29999) / 30000 )); }
# expected RATE: the events a burst at RATE publishes.
expected() { local p; p=$(pubs "$1"); echo $(( $1 / p * p * STEP )); }
burst() {
  local pubs t0 pids=()
  pubs=$(pubs "$1")
  t0=$(now)
  for _ in $(seq "$pubs"); do
    paced $(($1 / pubs)) "$STEP" | mosquitto_pub -p "$MQTT_PORT" -V mqttv5 -q 1 -t storm -l & pids+=($!)
  done
  wait "${pids[@]}"
  # The publishers linger 2 s after their last line (see paced).
  SENT_RATE=$(awk "BEGIN {printf \"%d\", $(expected "$1") / ($(now) - $t0 - 2)}")
}

produced() {
  local text; text=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" || true)
  awk '/^connaudit_events_produced_total/ {s+=$2} END {print s+0}' <<<"$text"
}

echo "==> connaudit ingest"
CONNAUDIT_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" CONNAUDIT_MQTT_CLIENT_ID=bench-storm \
  CONNAUDIT_MQTT_TOPICS=storm CONNAUDIT_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" \
  CONNAUDIT_HTTP_LISTEN="127.0.0.1:$HTTP_PORT" RUST_LOG=warn "$BIN" ingest >"$WORK/ingest.log" 2>&1 &
INGEST=$!; PIDS+=($INGEST)
until curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null; do sleep 0.1; done
declare -A OURS PEER SENT PEER_SENT
for r in $RATES; do
  before=$(produced)
  burst "$r"
  # Settled when nothing more arrives for a second.
  last=-1; now_=$(produced)
  while [ "$now_" != "$last" ]; do last=$now_; sleep 1; now_=$(produced); done
  OURS[$r]=$((now_ - before)); SENT[$r]=$SENT_RATE
  echo "    $r events/s for ${STEP}s (published at $SENT_RATE/s): ingest took ${OURS[$r]} of $(expected "$r")"
done
INGEST_CPU=$(cpu_s "$INGEST"); INGEST_RSS=$(rss_mib "$INGEST")
kill -TERM "$INGEST"; wait "$INGEST" || true

echo "==> Peer: mosquitto_sub -q 1 on the same bursts"
for r in $RATES; do
  mosquitto_sub -p "$MQTT_PORT" -V mqttv5 -q 1 -t storm -i bench-storm-sub >"$WORK/sub.out" & SUB=$!
  sleep 0.5
  burst "$r"; sleep 1
  kill "$SUB"; wait "$SUB" 2>/dev/null || true
  PEER[$r]=$(wc -l <"$WORK/sub.out"); PEER_SENT[$r]=$SENT_RATE
  echo "    $r events/s for ${STEP}s (published at $SENT_RATE/s): mosquitto_sub took ${PEER[$r]} of $(expected "$r")"
done

# The highest rate (as published) a reader took whole (0 if none).
sustained() {
  local -n got=$1 sent=$2; local best=0
  for r in $RATES; do [ "${got[$r]}" -ge "$(expected "$r")" ] && [ "${sent[$r]}" -gt "$best" ] && best=${sent[$r]}; done
  echo "$best"
}
S_OURS=$(sustained OURS SENT); S_PEER=$(sustained PEER PEER_SENT)
printf '\n%-10s %22s %22s\n' "asked/s" "ingest took (sent/s)" "mosquitto_sub (sent/s)"
for r in $RATES; do
  printf '%-10s %14d%% %6d %14d%% %6d\n' "$r" $((OURS[$r] * 100 / $(expected "$r"))) "${SENT[$r]}" $((PEER[$r] * 100 / $(expected "$r"))) "${PEER_SENT[$r]}"
done
echo "Highest rate taken whole at Mosquitto's defaults: ingest $S_OURS, mosquitto_sub $S_PEER events/s"
row bench=storm "name=burst rate taken whole at the broker's default limits (20 in flight, 1000 queued)" \
  unit=events/s ours="$S_OURS" peer="$S_PEER" peer_name="mosquitto_sub -q 1" rss="$INGEST_RSS" \
  "target=measure; deploy/README.md sizes replicas"
