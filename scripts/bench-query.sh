#!/usr/bin/env bash
# Query times on a warehouse of EVENTS events over DAYS days, next to DuckDB running the same
# SQL on the same files in the same run:
#   1. builds the warehouse with the real pipeline: tansu -> `connaudit transform` (release)
#      -> `connaudit compact` (what the hourly CronJob leaves);
#   2. times a one-day and a one-week window of a failure breakdown and of one client's
#      timeline, in `connaudit query` (DataFusion) and in DuckDB, best of 3 each;
#   3. times `connaudit audit client` over the whole history next to a full scan of the same
#      SQL (a predicate no statistics, bloom filter or page index can serve);
#   4. (when it builds the warehouse) the 7-day failure breakdown before and after compaction.
# Cold = the first run of a fresh process (OS page cache warm), hot = best of 3.
# BENCH_OUT=file adds the rows to bench/run's table.
# Usage: scripts/bench-query.sh [EVENTS] [DEVICES] [DAYS]   (default 10000000 100000 14)
#        WAREHOUSE=dir scripts/bench-query.sh   reuses a warehouse (KEEP=1 keeps the one built)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000000}"
DEVICES="${2:-100000}"
DAYS="${3:-14}"
source scripts/bench-lib.sh
build fleet_to_kafka

# The queries' windows end at the newest event; a client id from the middle of the fleet.
define_queries() {
END=$("$BIN" query --warehouse "$WAREHOUSE" --format csv "SELECT max(ts) FROM events" 2>/dev/null | tail -1)
CLIENT=$(printf 'dev-%05d' $((DEVICES / 2 + 7)))
UNTIL=$(date -u -d "$END + 1 second" +%FT%TZ)
DAY=$(window "$(date -u -d "$END - 1 day" +%FT%TZ)" "$UNTIL")
WEEK=$(window "$(date -u -d "$END - 7 days" +%FT%TZ)" "$UNTIL")
QUERIES=("$(failures "$DAY")" "$(failures "$WEEK")" "$(client "$DAY")" "$(client "$WEEK")" "$(client "$ALL")")
}
UNCOMPACTED=""
before_compact() {
  define_queries
  read -r _ UNCOMPACTED _ <<<"$(ours "${QUERIES[1]}")"
  UNCOMPACTED_FILES=$(find "$WAREHOUSE/events" -name '*.parquet' -not -path '*/_delta_log/*' | wc -l)
}
window() { # since until -> the condition connaudit's --since/--until adds
  echo "ts >= '$(date -u -d "$1" +%FT%T.000Z)' AND ts < '$(date -u -d "$2" +%FT%T.000Z)' AND date >= '$(date -u -d "$1" +%F)' AND date <= '$(date -u -d "$2" +%F)'"
}
failures() { echo "SELECT region, reason, count(*) AS failures, count(DISTINCT clientid) AS clients FROM events WHERE $1 AND event = 'client.connack' AND is_failure GROUP BY region, reason ORDER BY failures DESC, region, reason"; }
client() { echo "SELECT ts, event, reason, category, peer_ip, node FROM events WHERE $1 AND clientid = '$CLIENT' ORDER BY ts, kafka_partition, kafka_offset"; }
ALL="ts IS NOT NULL"
NAMES=("failures by region and reason, 1 day" "failures by region and reason, 7 days" "client timeline, 1 day" "client timeline, 7 days" "client timeline, all $DAYS days")

ours() { # SQL -> the first (cold) and best of 3 (hot) statement times (as printed on stderr), rows
  local best=999 rows=0 t first=""
  for _ in 1 2 3; do
    "$BIN" query --warehouse "$WAREHOUSE" --format csv "$1" >"$WORK/out.csv" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    t=$(awk '/rows? in/ {print $(NF-1)}' "$WORK/err"); rows=$(awk '/rows? in/ {print $1}' "$WORK/err")
    first=${first:-$t}
    best=$(awk "BEGIN {print ($t < $best) ? $t : $best}")
  done
  echo "$first $best $rows"
}
theirs() { # SQL -> the first (cold) and best of 3 (hot) in DuckDB, a fresh connection each time
  "$PY" - "$WAREHOUSE" "$1" <<'PY'
import sys, time, duckdb
best, rows, first = 1e9, 0, None
for _ in range(3):
    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    con.sql(f"CREATE VIEW events AS SELECT * FROM read_parquet('{sys.argv[1]}/events/date=*/*.parquet', hive_partitioning = true, "
            "hive_types = {'date': DATE})")
    t = time.perf_counter()
    rows = con.execute(sys.argv[2]).to_arrow_table().num_rows
    took = time.perf_counter() - t
    first = took if first is None else first
    best = min(best, took)
    con.close()
print(f"{first:.3f} {best:.3f} {rows}")
PY
}

build_warehouse "$N" "$DEVICES" "$DAYS"
FILES=$(find "$WAREHOUSE/events" -name '*.parquet' -not -path '*/_delta_log/*' | wc -l)
BYTES=$(du -sb --exclude=_delta_log "$WAREHOUSE/events" | cut -f1)
ROWS=$("$BIN" query --warehouse "$WAREHOUSE" --format csv "SELECT count(*) FROM events" 2>/dev/null | tail -1)
define_queries
echo "==> $ROWS events in $FILES files ($((BYTES / 1048576)) MB), newest $END; client $CLIENT"
printf '\n%-40s %8s %14s %12s %10s %14s %12s\n' "query ($(nproc) cores)" rows "connaudit hot" "DuckDB hot" "hot ratio" "connaudit cold" "DuckDB cold"
for i in "${!QUERIES[@]}"; do
  read -r c1 t1 r1 <<<"$(ours "${QUERIES[$i]}")"
  read -r c2 t2 r2 <<<"$(theirs "${QUERIES[$i]}")"
  [ "$r1" = "$r2" ] || echo "  rows differ: connaudit $r1, DuckDB $r2" >&2
  printf '%-40s %8s %14s %12s %10s %14s %12s\n' "${NAMES[$i]}" "$r1" "$t1" "$t2" "$(awk "BEGIN {printf \"%.2f\", $t1 / $t2}")" "$c1" "$c2"
  row bench=query "name=${NAMES[$i]}, hot" unit=s lower_is_better=1 ours="$t1" peer="$t2" peer_name="DuckDB, same files" "target=<= DuckDB"
  row bench=query "name=${NAMES[$i]}, cold" unit=s lower_is_better=1 ours="$c1" peer="$c2" peer_name="DuckDB, same files"
done
if [ -n "$UNCOMPACTED" ]; then
  read -r _ COMPACTED _ <<<"$(ours "${QUERIES[1]}")"
  echo "failures 7 days: compacted ($FILES files) $COMPACTED s, before compaction ($UNCOMPACTED_FILES files) $UNCOMPACTED s"
  row bench=query "name=failures 7 days, compacted ($FILES files) vs as written ($UNCOMPACTED_FILES files)" unit=s \
    lower_is_better=1 ours="$COMPACTED" peer="$UNCOMPACTED" "peer_name=same warehouse before compaction"
fi

echo "==> Bytes per event of the closed days of events, as compaction left them, next to DuckDB"
# The same rows (every column, the fingerprints compaction kept included), sorted the same way,
# one file per day: the encodings are the only difference.
read -r OUR_B DUCK_B CLOSED KEPT <<<"$("$PY" - "$WAREHOUSE" "$WORK/duck-events" <<'PY'
import glob, os, sys, datetime, duckdb
wh, out = sys.argv[1], sys.argv[2]
today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
files = [f for f in glob.glob(f"{wh}/events/date=*/*.parquet") if f"date={today}" not in f]
con = duckdb.connect()
con.sql("SET TimeZone = 'UTC'")
con.sql(f"CREATE VIEW e AS SELECT * FROM read_parquet({files!r}, hive_partitioning = true, hive_types = {{'date': VARCHAR}})")
rows, kept = con.sql("SELECT count(*), count(fingerprint) FROM e").fetchone()
con.sql(f"COPY (SELECT * FROM e ORDER BY clientid, ts, kafka_partition, kafka_offset) TO '{out}' "
        "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date))")
theirs = sum(os.path.getsize(f) for f in glob.glob(f"{out}/**/*.parquet", recursive=True))
ours = sum(os.path.getsize(f) for f in files)
print(f"{ours / rows:.2f} {theirs / rows:.2f} {rows} {kept}")
PY
)"
echo "    $CLOSED events of closed days ($KEPT with a fingerprint still kept): connaudit $OUR_B, DuckDB $DUCK_B bytes/event"
row bench=compaction "name=events bytes/event, closed days as compacted ($KEPT of $CLOSED keep a fingerprint) vs DuckDB COPY of the same rows" \
  unit=bytes/event lower_is_better=1 ours="$OUR_B" peer="$DUCK_B" "peer_name=DuckDB COPY, same rows, sorted, zstd" "target=<= DuckDB"

echo
echo "==> connaudit audit client $CLIENT over all history, next to full scans of the same SQL"
# The full scan asks the same with concat(clientid, '') = '...': no statistics, bloom filter or
# page index can serve it, so every row's clientid is read. (DataFusion's PRUNING and
# ENABLE_PAGE_INDEX switches leave page-index pruning on, so they do not make a full scan.)
"$BIN" audit client "$CLIENT" --show-sql >"$WORK/audit.sql"
sed "s/WHERE clientid = /WHERE concat(clientid, '') = /" "$WORK/audit.sql" >"$WORK/full.sql"
grep -q "concat(clientid, '')" "$WORK/full.sql" || { echo "the audit SQL changed shape" >&2; exit 1; }
best_of_3() { # command... -> the best statement time it printed
  local best=999 t
  for _ in 1 2 3; do
    "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    t=$(awk '/rows? in/ {print $(NF-1)}' "$WORK/err")
    best=$(awk "BEGIN {print ($t < $best) ? $t : $best}")
  done
  echo "$best"
}
q() { env RUST_LOG=warn "$@" "$BIN" query --warehouse "$WAREHOUSE" --format csv -f "$WORK/full.sql"; }
ON=$(best_of_3 env RUST_LOG=warn "$BIN" audit client "$CLIENT" --warehouse "$WAREHOUSE" --format csv)
FULL=$(best_of_3 q X=1)
FULL_ALL=$(best_of_3 q DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS=false)
FLOOR=$(read -r t _ <<<"$(ours "SELECT count(*) FROM events WHERE clientid = 'none'")"; echo "$t")
printf '%-58s %8s\n' "audit client (statistics, bloom filter, page index)" "$ON s" \
  "full scan, late materialization (reads every clientid)" "$FULL s" \
  "full scan, every projected column of every row" "$FULL_ALL s" \
  "floor: list and open every file, read no row" "$FLOOR s"
echo "audit / full scan = $(awk "BEGIN {printf \"%.3f\", $ON / $FULL}") and $(awk "BEGIN {printf \"%.3f\", $ON / $FULL_ALL}")"
