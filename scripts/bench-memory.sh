#!/usr/bin/env bash
# What bounds each service's memory, measured (peak RSS from /proc):
#   1. transform, by `--batch-max-events` and the partitions it owns: each owned partition
#      holds one open batch, and one batch is written at a time (see transform/src/background.rs);
#   2. ingest during a Kafka outage, by `--max-in-flight`: it takes no more events from the
#      broker than that while Kafka confirms none, so the broker keeps the backlog.
# Usage: scripts/bench-memory.sh [EVENTS]   (default 400000: four full 100,000-event batches)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-400000}"
source scripts/bench-lib.sh
build fleet_to_kafka
start_tansu 1
"$TANSU" topic create --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions 4 events4 >/dev/null
printf 'cidr,region\n10.1.0.0/16,eu-west\n10.2.0.0/16,us-east\n2001:db8::/32,ap-south\n' >"$WORK/regions.csv"
echo "==> Producing $N events into a 1-partition and a 4-partition topic"
"$TARGET/examples/fleet_to_kafka" "127.0.0.1:$KAFKA_PORT" mqtt.client-events "$N" 100000 - >/dev/null
"$TARGET/examples/fleet_to_kafka" "127.0.0.1:$KAFKA_PORT" events4 "$N" 100000 - >/dev/null

echo "==> transform: peak RSS by batch size and owned partitions"
printf '%-12s %-11s %12s %14s\n' partitions batch "open events" "peak RSS MiB"
SMALLEST=""
for topic in mqtt.client-events:1 events4:4; do
  for batch in 10000 100000; do
    http=$(port); rm -rf "$WORK/wh"
    RUST_LOG=warn "$BIN" transform --kafka-brokers "127.0.0.1:$KAFKA_PORT" --kafka-topic "${topic%:*}" \
      --group "mem-${topic%:*}-$batch" --warehouse "$WORK/wh" --regions "$WORK/regions.csv" \
      --http-listen "127.0.0.1:$http" --batch-max-events "$batch" --batch-idle-secs 1 >"$WORK/transform.log" 2>&1 &
    t=$!; PIDS+=($t)
    until [ "$(written "$http")" -ge "$N" ]; do
      kill -0 "$t" 2>/dev/null || { echo "transform stopped; see $WORK/transform.log" >&2; tail -5 "$WORK/transform.log" >&2; exit 1; }
      sleep 0.2
    done
    rss=$(rss_mib "$t"); kill -TERM "$t"; wait "$t" || true
    open=$((batch * ${topic#*:})); [ "$open" -gt "$N" ] && open=$N
    printf '%-12s %-11s %12d %14d\n' "${topic#*:}" "$batch" "$open" "$rss"
    SMALLEST=${SMALLEST:-$rss}
    row bench=memory "name=transform peak RSS, ${topic#*:} partition(s) x $batch-event batches" unit=MiB \
      lower_is_better=1 ours="$rss" peer="$SMALLEST" "peer_name=1 partition x 10000 (smallest)" \
      "target=bounded by configuration"
  done
done

echo "==> ingest: RSS while Kafka is down, by --max-in-flight"
MQTT_PORT=$(port)
user=""; [ "$(id -u)" = 0 ] && user="user root"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\n%s\n' \
  "$MQTT_PORT" "$user" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 & PIDS+=($!)
wait_port "$MQTT_PORT"
OUTAGE=200000
python3 - "$OUTAGE" >"$WORK/outage.jsonl" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"event": "client.connected", "clientid": f"device-{i % 50000:05d}", "username": "fleet",
                      "peername": f"10.1.{i % 250}.7:40000", "node": "emqx@10.0.0.1", "timestamp": 1763700000000 + i}))
PY
printf '%-15s %16s %18s\n' max-in-flight "RSS before MiB" "RSS in outage MiB"
kill "$TANSU_PID"; wait "$TANSU_PID" 2>/dev/null || true
for m in 100 1000 10000; do
  http=$(port)
  # Kafka is down (nothing listens on KAFKA_PORT): every event stays unconfirmed.
  CONNAUDIT_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" CONNAUDIT_MQTT_CLIENT_ID="mem-$m" CONNAUDIT_MQTT_TOPICS="outage/$m" \
    CONNAUDIT_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" CONNAUDIT_HTTP_LISTEN="127.0.0.1:$http" \
    RUST_LOG=error "$BIN" ingest --max-in-flight "$m" >"$WORK/ingest.log" 2>&1 &
  i=$!; PIDS+=($i)
  until curl -sf "http://127.0.0.1:$http/healthz" >/dev/null; do
    kill -0 "$i" 2>/dev/null || { echo "ingest stopped; see $WORK/ingest.log" >&2; tail -5 "$WORK/ingest.log" >&2; exit 1; }
    sleep 0.1
  done
  sleep 2; before=$(awk '/^VmRSS/ {printf "%d", $2 / 1024}' "/proc/$i/status")
  (cat "$WORK/outage.jsonl"; sleep 3) | mosquitto_pub -p "$MQTT_PORT" -V mqttv5 -q 1 -t "outage/$m" -l
  sleep 5; during=$(rss_mib "$i")
  kill -TERM "$i"; wait "$i" || true
  printf '%-15s %16d %18d\n' "$m" "$before" "$during"
  row bench=memory "name=ingest peak RSS, Kafka down, $OUTAGE events published, --max-in-flight $m" unit=MiB \
    lower_is_better=1 ours="$during" peer="$before" "peer_name=its RSS before the outage" "target=bounded by --max-in-flight"
done
