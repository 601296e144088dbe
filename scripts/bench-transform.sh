#!/usr/bin/env bash
# Transform throughput and Parquet size on this machine, next to a peer in the same run:
#   1. `connaudit transform` (release build) reads N events from tansu and writes the warehouse
#      (Delta tables: events sorted with bloom filters, the aggregate tables, each batch one
#      commit per table with its Kafka position), committing offsets;
#   2. DuckDB converts the same events from a JSON-lines file into Hive-partitioned, sorted,
#      zstd Parquet: no Kafka, no aggregates, so a floor for "JSON in, Parquet out";
#   3. a plain parse loop (serde_json into a Value per line, nothing kept) over the same file;
#   4. librdkafka alone reading the same topic with transform's consumer settings, nothing done
#      per record: the Kafka side's ceiling (tansu holds every fetch to fetch.wait.max.ms).
# CPU seconds come from /proc (transform) and GNU time (the peers); BENCH_OUT=file adds the rows
# to bench/run's table.
# Usage: scripts/bench-transform.sh [EVENTS] [DEVICES]   (default 1000000 100000)
#        PERF=1 scripts/bench-transform.sh ...   also profiles the transformer (linux-perf;
#        PERF_OUT=file keeps the profile)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
DEVICES="${2:-100000}"
source scripts/bench-lib.sh
build fleet_to_kafka parse_loop drain_kafka
HTTP_PORT=$(port)
start_tansu 4

echo "==> Producing $N events of $DEVICES devices into tansu"
"$TARGET/examples/fleet_to_kafka" "127.0.0.1:$KAFKA_PORT" mqtt.client-events "$N" "$DEVICES" "$WORK/events.jsonl"
BYTES=$(wc -c <"$WORK/events.jsonl")
# The regions of the fleet's peer addresses (tests/src/fleet.rs).
printf 'cidr,region\n10.1.0.0/16,eu-west\n10.2.0.0/16,us-east\n2001:db8::/32,ap-south\n' >"$WORK/regions.csv"

echo "==> connaudit transform: Kafka in, warehouse out"
t0=$(now); K0=$(cpu_s "$TANSU_PID")
PROFILE=()
[ "${PERF:-0}" = 1 ] && PROFILE=(perf record -F 300 --call-graph dwarf,8192 -o "$WORK/perf.data" --)
RUST_LOG="${TRANSFORM_LOG:-warn}" "${PROFILE[@]}" "$BIN" transform --kafka-brokers "127.0.0.1:$KAFKA_PORT" \
  --warehouse "$WORK/wh" --regions "$WORK/regions.csv" --http-listen "127.0.0.1:$HTTP_PORT" --batch-idle-secs 1 ${TRANSFORM_ARGS:-} \
  >"${TRANSFORM_LOG_FILE:-$WORK/transform.log}" 2>&1 &
TRANSFORM=$!; PIDS+=($TRANSFORM)
deadline=$((SECONDS + 1200))
until [ "$(written "$HTTP_PORT")" -ge "$N" ]; do
  [ $SECONDS -lt $deadline ] || { echo "transform wrote $(written "$HTTP_PORT") of $N; see $WORK/transform.log" >&2; exit 1; }
  sleep 0.1
done
t1=$(now)
T_CPU=$(cpu_s "$TRANSFORM"); T_RSS=$(rss_mib "$TRANSFORM")
echo "    busiest threads: $(threads "$TRANSFORM"); tansu $(awk "BEGIN {printf \"%.2f\", $(cpu_s "$TANSU_PID") - $K0}")s"
# How much of the wall time went to writing batches (prepare + commit), the rest to reading.
curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^connaudit_transform_batch_seconds_(sum|count)/ {v[$1]=$2}
  END {printf "    %d batches written in %.2f s of the run\n", v["connaudit_transform_batch_seconds_count"], v["connaudit_transform_batch_seconds_sum"]}' || true
kill -TERM "$TRANSFORM"; wait "$TRANSFORM" || true
T_SECS=$(awk "BEGIN {print $t1 - $t0}")
# Data files only; the Delta logs (a JSON commit per batch and table) are counted apart.
EV_BYTES=$(du -sb --exclude=_delta_log "$WORK/wh/events" | cut -f1)
ALL_BYTES=$(du -sb --exclude=_delta_log "$WORK/wh" | cut -f1)
SESS_BYTES=$(du -sb --exclude=_delta_log "$WORK/wh/sessions" | cut -f1)
LOG_BYTES=$(( $(du -sb "$WORK/wh" | cut -f1) - ALL_BYTES ))
FILES=$(find "$WORK/wh/events" -name '*.parquet' -not -path '*/_delta_log/*' | wc -l)

echo "==> Peer: DuckDB, JSON lines to partitioned, sorted, zstd Parquet"
t0=$(now)
timed "$WORK/duck.time" "$PY" - "$WORK/events.jsonl" "$WORK/peer" <<'PY'
import sys, duckdb
con = duckdb.connect()
con.sql("SET TimeZone = 'UTC'")
con.sql(f"""
COPY (
  SELECT event, make_timestamp(timestamp * 1000) AS ts, clientid, username, peername, node, proto_name, proto_ver,
         CAST(reason_code AS VARCHAR) AS reason_code, reason, keepalive, clean_start, expiry_interval,
         connected_at, disconnected_at,
         strftime(make_timestamp(timestamp * 1000), '%Y-%m-%d') AS date, hour(make_timestamp(timestamp * 1000)) AS hour
  FROM read_json('{sys.argv[1]}', format = 'newline_delimited', sample_size = -1)
  ORDER BY clientid, ts
) TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date, hour))
""")
PY
t1=$(now)
P_SECS=$(awk "BEGIN {print $t1 - $t0}")
P_BYTES=$(du -sb "$WORK/peer" | cut -f1)
read -r _ P_CPU P_RSS <"$WORK/duck.time"

echo "==> Peer: librdkafka alone reading the topic (transform's consumer settings)"
timed "$WORK/drain.time" "$TARGET/examples/drain_kafka" "127.0.0.1:$KAFKA_PORT" mqtt.client-events "$N" \
  group.id=bench-drain ${DRAIN_ARGS:-} >"$WORK/drain.out"
D_RATE=$(awk '{print int($NF == "records/s" ? $(NF-1) : 0)}' "$WORK/drain.out")
read -r _ D_CPU D_RSS <"$WORK/drain.time"

echo "==> Peer: a plain parse loop (serde_json::Value per line)"
timed "$WORK/parse.time" "$TARGET/examples/parse_loop" "$WORK/events.jsonl" >"$WORK/parse.out"
read -r _ L_SECS _ <"$WORK/parse.out"; read -r _ L_CPU L_RSS <"$WORK/parse.time"

if [ "${PERF:-0}" = 1 ]; then
  sleep 1
  echo "==> Where the transformer's time went (self time, top 25)"
  perf report --no-inline -i "$WORK/perf.data" --no-children --stdio --percent-limit 1 2>/dev/null | grep -E '^ +[0-9]' | head -25
  [ -z "${PERF_OUT:-}" ] || cp "$WORK/perf.data" "$PERF_OUT"
  echo "==> connaudit's own functions, with what they call (top 30)"
  perf report --no-inline -i "$WORK/perf.data" --children --stdio -g none --percent-limit 2 2>/dev/null \
    | grep -E '^ +[0-9].*connaudit_' | head -30 || true
fi

rate() { awk "BEGIN {printf \"%d\", $N / $1}"; }
per() { awk "BEGIN {printf \"%.1f\", $1 / $N}"; }
printf '\n%-62s %9s %9s %10s %12s\n' "path ($((BYTES / N)) JSON bytes/event, $(nproc) cores)" events seconds events/s "bytes/event"
printf '%-62s %9d %9.2f %10d %12s\n' "tansu -> connaudit transform -> events/ ($FILES files)" "$N" "$T_SECS" "$(rate "$T_SECS")" "$(per "$EV_BYTES")"
printf '%-62s %9s %9s %10s %12s\n' "  sessions/ (per event, not per session)" "" "" "" "$(per "$SESS_BYTES")"
printf '%-62s %9s %9s %10s %12s\n' "  whole warehouse (events + sessions + aggregates + alerts)" "" "" "" "$(per "$ALL_BYTES")"
printf '%-62s %9s %9s %10s %12s\n' "  Delta logs of every table" "" "" "" "$(per "$LOG_BYTES")"
printf '%-62s %9d %9.2f %10d %12s\n' "JSON lines -> DuckDB COPY (sorted, zstd, date/hour)" "$N" "$P_SECS" "$(rate "$P_SECS")" "$(per "$P_BYTES")"
printf '%-62s %9d %9.2f %10d\n' "JSON lines -> serde_json::Value, nothing kept" "$N" "$L_SECS" "$(rate "$L_SECS")"
printf '%-62s %9d %9s %10d\n' "tansu -> librdkafka consumer, nothing done (from the first)" "$N" "" "$D_RATE"
echo "CPU seconds per million events: transform $(awk "BEGIN {printf \"%.1f\", $T_CPU / $N * 1e6}"), DuckDB $(awk "BEGIN {printf \"%.1f\", $P_CPU / $N * 1e6}"), parse loop $(awk "BEGIN {printf \"%.1f\", $L_CPU / $N * 1e6}")"
row bench=transform "name=Kafka -> warehouse (all tables) vs JSON -> sorted Parquet" unit=events/s \
  ours="$(rate "$T_SECS")" peer="$(rate "$P_SECS")" peer_name="DuckDB COPY" events="$N" \
  cpu="$T_CPU" peer_cpu="$P_CPU" rss="$T_RSS" peer_rss="$P_RSS" "target=>= 1x, <= 2 CPU s/M"
row bench=transform "name=Kafka -> warehouse vs a plain parse loop" unit=events/s \
  ours="$(rate "$T_SECS")" peer="$(rate "$L_SECS")" "peer_name=serde_json::Value loop" events="$N" \
  cpu="$T_CPU" peer_cpu="$L_CPU" rss="$T_RSS" peer_rss="$L_RSS"
row bench=transform "name=Kafka -> warehouse vs librdkafka alone reading the topic" unit=events/s \
  ours="$(rate "$T_SECS")" peer="$D_RATE" "peer_name=librdkafka consumer, nothing done" events="$N" \
  cpu="$T_CPU" peer_cpu="$D_CPU" rss="$T_RSS" peer_rss="$D_RSS"
row bench=transform "name=events bytes/event on disk, as written" unit=bytes/event lower_is_better=1 \
  ours="$(per "$EV_BYTES")" peer="$(per "$P_BYTES")" peer_name="DuckDB COPY" "target=<= 2x DuckDB"
