#!/usr/bin/env bash
# Ingest throughput on this machine, next to peers in the same run:
# A. N events are queued in a persistent MQTT session while nobody reads, then drained
#   1. by mosquitto_sub (QoS 1, receive maximum 1000): the broker's own delivery ceiling;
#   2. by `connaudit ingest` (release build) into tansu, acks only after Kafka confirmed, over
#      CONNECTIONS MQTT connections (`--mqtt-connections`, sessions of one shared
#      subscription: each has the broker's window of 1000; a session was queued for each).
# B. N events published live (mosquitto_pub, QoS 1) while the reader runs, Mosquitto at its
#    default in-flight window (20), its queue unlimited:
#   1. mosquitto_sub alone: the MQTT ceiling;
#   2. the pipe a user would script, `mosquitto_sub -q 1 | a librdkafka producer reading lines`
#      (tests/examples/lines_to_kafka.rs: ingest's librdkafka and producer settings; Debian's
#      kcat links a librdkafka that cannot talk to tansu);
#   3. `connaudit ingest`, over CONNECTIONS connections of a shared subscription.
# CPU seconds from /proc (ingest) and GNU time (the peers); BENCH_OUT=file adds the rows to
# bench/run's table.
# Usage: scripts/bench-ingest.sh [EVENTS] [CONNECTIONS]   (default 100000 4)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
CONNECTIONS="${2:-4}"
source scripts/bench-lib.sh
build lines_to_kafka

MQTT_PORT=$(port); HTTP_PORT=$(port)
user=""; [ "$(id -u)" = 0 ] && user="user root"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 1000\n%s\n' \
  "$MQTT_PORT" "$user" >"$WORK/mosquitto.conf"
# The live stream's broker at Mosquitto's default in-flight window (20 per connection). Its
# default queue (1000 per session) drops what a reader slower than the publisher leaves
# behind, even mosquitto_sub's: the queue is unlimited here so each reader's rate is measured,
# not where it starts losing events (deploy/README.md sizes that).
LIVE_PORT=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n%s\n' "$LIVE_PORT" "$user" >"$WORK/live.conf"
mosquitto -c "$WORK/live.conf" >"$WORK/live.log" 2>&1 & PIDS+=($!)
wait_port "$LIVE_PORT"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 & PIDS+=($!)
wait_port "$MQTT_PORT"
start_tansu 3

echo "==> Generating $N EMQX-shaped events"
python3 - "$N" >"$WORK/events.jsonl" <<'PY'
import json, sys
reasons = ["success"] * 8 + ["not_authorized", "server_busy"]
for i in range(int(sys.argv[1])):
    c = f"device-{i % 5000:05d}"
    base = {"clientid": c, "username": "fleet", "peername": f"10.{i % 200}.{i % 250}.7:{40000 + i % 2000}",
            "proto_name": "MQTT", "proto_ver": 5, "timestamp": 1763700000000 + i, "node": "emqx@10.0.0.1"}
    kind = i % 3
    if kind == 0:
        e = dict(base, event="client.connack", reason_code=reasons[i % 10], keepalive=60, clean_start=True,
                 expiry_interval=0, conn_props={}, sockname="0.0.0.0:1883", connected_at=base["timestamp"])
    elif kind == 1:
        e = dict(base, event="client.connected", keepalive=60, clean_start=True, expiry_interval=0,
                 is_bridge=False, receive_maximum=32, mountpoint="undefined", connected_at=base["timestamp"],
                 client_attrs={}, conn_props={}, sockname="0.0.0.0:1883")
    else:
        e = dict(base, event="client.disconnected", reason="keepalive_timeout", connected_at=base["timestamp"] - 60000,
                 disconnected_at=base["timestamp"], disconn_props={}, client_attrs={}, sockname="0.0.0.0:1883")
    print(json.dumps(e, separators=(",", ":")))
PY
BYTES=$(wc -c <"$WORK/events.jsonl")
# mosquitto_pub -l drops what is still unacknowledged when stdin ends (Debian's 2.0.11), so
# stdin stays open a little longer than the publishing takes.
publish() { (cat "$WORK/events.jsonl"; sleep $((N / 40000 + 3))) | mosquitto_pub -p "$MQTT_PORT" -V mqttv5 -q 1 -t client_connack -l; }

echo "==> Peer: mosquitto_sub drains the queued session"
SUB=(mosquitto_sub -p "$MQTT_PORT" -V mqttv5 -q 1 -c -i bench-sub -x 3600 -t client_connack -D connect receive-maximum 1000)
"${SUB[@]}" -E
publish
t0=$(now); timed "$WORK/sub.time" timeout 600 "${SUB[@]}" -C "$N" >/dev/null || { echo "mosquitto_sub got fewer than $N" >&2; exit 1; }; t1=$(now)
SUB_SECS=$(awk "BEGIN {print $t1 - $t0}")
read -r _ SUB_CPU SUB_RSS <"$WORK/sub.time"

echo "==> connaudit ingest drains the queued session into Kafka"
run_ingest() {
  CONNAUDIT_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" CONNAUDIT_MQTT_CLIENT_ID=bench-ingest \
  CONNAUDIT_MQTT_TOPICS='$share/bench/client_connack' CONNAUDIT_MQTT_CONNECTIONS="$CONNECTIONS" \
  CONNAUDIT_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" \
  CONNAUDIT_HTTP_LISTEN="127.0.0.1:$HTTP_PORT" RUST_LOG=warn "$BIN" ingest >>"$WORK/ingest.log" 2>&1 &
  INGEST=$!; PIDS+=($INGEST)
}
produced() {
  local text; text=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" || true)
  awk '/^connaudit_events_produced_total/ {s+=$2} END {print s+0}' <<<"$text"
}
run_ingest
until curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null; do sleep 0.1; done
kill -TERM "$INGEST"; wait "$INGEST" || true
publish
t0=$(now); run_ingest
deadline=$((SECONDS + 600))
until [ "$(produced)" -ge "$N" ]; do
  [ $SECONDS -lt $deadline ] || { echo "ingest produced $(produced) of $N in 600 s; see $WORK/ingest.log" >&2; exit 1; }
  sleep 0.05
done
t1=$(now)
INGEST_CPU=$(cpu_s "$INGEST"); INGEST_RSS=$(rss_mib "$INGEST")
kill -TERM "$INGEST"; wait "$INGEST" || true
INGEST_SECS=$(awk "BEGIN {print $t1 - $t0}")

echo "==> Live stream: $N events at QoS 1, Mosquitto's default window"
"$TANSU" topic create --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions 3 pipe >/dev/null
live_publish() { (cat "$WORK/events.jsonl"; sleep $((N / 10000 + 3))) | mosquitto_pub -p "$LIVE_PORT" -V mqttv5 -q 1 -t live -l; }
LIVE_SUB=(mosquitto_sub -p "$LIVE_PORT" -V mqttv5 -q 1 -t live -C "$N")
# 1. The ceiling.
( timed "$WORK/ceiling.time" "${LIVE_SUB[@]}" -i bench-ceiling >/dev/null ) & CEIL=$!
sleep 1; t0=$(now); live_publish & PUB=$!; PIDS+=($PUB)
wait "$CEIL"; t1=$(now); kill "$PUB" 2>/dev/null || true
CEIL_SECS=$(awk "BEGIN {print $t1 - $t0}"); read -r _ CEIL_CPU CEIL_RSS <"$WORK/ceiling.time"
# 2. The scripted pipe: done when its producer has delivered everything and exits.
( timed "$WORK/pipe-sub.time" "${LIVE_SUB[@]}" -i bench-pipe \
    | timed "$WORK/pipe-producer.time" "$TARGET/examples/lines_to_kafka" "127.0.0.1:$KAFKA_PORT" pipe 2>/dev/null ) & PIPE=$!
sleep 1; t0=$(now); live_publish & PUB=$!; PIDS+=($PUB)
wait "$PIPE"; t1=$(now); kill "$PUB" 2>/dev/null || true
PIPE_SECS=$(awk "BEGIN {print $t1 - $t0}")
read -r _ PS_CPU PS_RSS <"$WORK/pipe-sub.time"; read -r _ PK_CPU PK_RSS <"$WORK/pipe-producer.time"
PIPE_CPU=$(awk "BEGIN {print $PS_CPU + $PK_CPU}"); PIPE_RSS=$((PS_RSS + PK_RSS))
# 3. connaudit ingest, subscribed before the stream starts.
: >"$WORK/ingest.log"
CONNAUDIT_MQTT_URL="mqtt://127.0.0.1:$LIVE_PORT" CONNAUDIT_MQTT_CLIENT_ID=bench-live \
  CONNAUDIT_MQTT_TOPICS='$share/bench/live' CONNAUDIT_MQTT_CONNECTIONS="$CONNECTIONS" \
  CONNAUDIT_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" CONNAUDIT_KAFKA_TOPIC=live-events \
  CONNAUDIT_HTTP_LISTEN="127.0.0.1:$HTTP_PORT" RUST_LOG=warn "$BIN" ingest >>"$WORK/ingest.log" 2>&1 &
INGEST=$!; PIDS+=($INGEST)
"$TANSU" topic create --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions 3 live-events >/dev/null
until curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null; do sleep 0.1; done
base=$(produced); t0=$(now); live_publish & PUB=$!; PIDS+=($PUB)
deadline=$((SECONDS + 600))
until [ "$(($(produced) - base))" -ge "$N" ]; do
  [ $SECONDS -lt $deadline ] || { echo "live ingest produced $(($(produced) - base)) of $N; see $WORK/ingest.log" >&2; exit 1; }
  sleep 0.05
done
t1=$(now); kill "$PUB" 2>/dev/null || true
LIVE_CPU=$(cpu_s "$INGEST"); LIVE_RSS=$(rss_mib "$INGEST")
kill -TERM "$INGEST"; wait "$INGEST" || true
LIVE_SECS=$(awk "BEGIN {print $t1 - $t0}")

rate() { awk "BEGIN {printf \"%d\", $N / $1}"; }
printf '\n%-58s %10s %9s %10s\n' "path ($((BYTES / N)) bytes/event, $(nproc) cores)" events seconds events/s
printf '%-58s %10d %9.2f %10d\n' "mosquitto -> mosquitto_sub (QoS 1, persistent session)" "$N" "$SUB_SECS" "$(rate "$SUB_SECS")"
printf '%-58s %10d %9.2f %10d\n' "mosquitto -> connaudit ingest ($CONNECTIONS conn.) -> tansu (acks=all, lz4)" "$N" "$INGEST_SECS" "$(rate "$INGEST_SECS")"
printf '%-58s %10d %9.2f %10d\n' "live: mosquitto -> mosquitto_sub (the MQTT ceiling)" "$N" "$CEIL_SECS" "$(rate "$CEIL_SECS")"
printf '%-58s %10d %9.2f %10d\n' "live: mosquitto_sub -q 1 | librdkafka producer -> tansu" "$N" "$PIPE_SECS" "$(rate "$PIPE_SECS")"
printf '%-58s %10d %9.2f %10d\n' "live: mosquitto -> connaudit ingest ($CONNECTIONS conn.) -> tansu" "$N" "$LIVE_SECS" "$(rate "$LIVE_SECS")"
row bench=ingest "name=drain queued sessions into Kafka ($CONNECTIONS connections) vs mosquitto_sub (1)" unit=events/s \
  ours="$(rate "$INGEST_SECS")" peer="$(rate "$SUB_SECS")" peer_name=mosquitto_sub events="$N" \
  cpu="$INGEST_CPU" peer_cpu="$SUB_CPU" rss="$INGEST_RSS" peer_rss="$SUB_RSS" "target=>= 0.9x"
row bench=ingest "name=live stream into Kafka ($CONNECTIONS connections) vs the scripted pipe" unit=events/s \
  ours="$(rate "$LIVE_SECS")" peer="$(rate "$PIPE_SECS")" "peer_name=mosquitto_sub | librdkafka lines" events="$N" \
  cpu="$LIVE_CPU" peer_cpu="$PIPE_CPU" rss="$LIVE_RSS" peer_rss="$PIPE_RSS" "target=>= 1.2x, <= 0.5x CPU"
row bench=ingest "name=live stream into Kafka ($CONNECTIONS connections) vs the MQTT ceiling" unit=events/s \
  ours="$(rate "$LIVE_SECS")" peer="$(rate "$CEIL_SECS")" "peer_name=mosquitto_sub alone" events="$N" \
  cpu="$LIVE_CPU" peer_cpu="$CEIL_CPU" rss="$LIVE_RSS" peer_rss="$CEIL_RSS"
