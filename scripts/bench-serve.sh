#!/usr/bin/env bash
# The Grafana dashboard's queries (deploy/grafana/connaudit.json, macros expanded the way
# Grafana expands them) on a warehouse of EVENTS events over DAYS days, three ways in the same
# run, best of 5 each:
#   - over `connaudit serve` with psycopg (a statement's whole round trip: the newest Delta
#     versions read, planned, run, every row sent), a BI tool's view;
#   - `connaudit query` (the statement time it prints: planning and running, on a snapshot it
#     loaded at start);
#   - DuckDB on the same Parquet files (compacted, so its glob sees only live files).
# BENCH_OUT=file adds each panel's serve and DuckDB times to bench/run's table.
# Usage: scripts/bench-serve.sh [EVENTS] [DEVICES] [DAYS]   (default 10000000 100000 30)
#        WAREHOUSE=dir scripts/bench-serve.sh   reuses a warehouse (KEEP=1 keeps the one built)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000000}"
DEVICES="${2:-100000}"
DAYS="${3:-30}"
source scripts/bench-lib.sh
build fleet_to_kafka

build_warehouse "$N" "$DEVICES" "$DAYS"
ROWS=$("$BIN" query --warehouse "$WAREHOUSE" --format csv "SELECT count(*) FROM events" 2>/dev/null | tail -1)
END=$("$BIN" query --warehouse "$WAREHOUSE" --format csv "SELECT max(ts) FROM events" 2>/dev/null | tail -1)

PG_PORT=$(port); SERVE_HTTP=$(port)
CONNAUDIT_PG_PASSWORD=bench RUST_LOG=warn "$BIN" serve --warehouse "$WAREHOUSE" \
  --pg-listen "127.0.0.1:$PG_PORT" --http-listen "127.0.0.1:$SERVE_HTTP" >"$WORK/serve.log" 2>&1 & PIDS+=($!)
wait_port "$PG_PORT"

echo "==> $ROWS events, newest $END; Grafana's time range: the last 24 hours and the last 7 days"
"$PY" - "$WAREHOUSE" "$BIN" "host=127.0.0.1 port=$PG_PORT dbname=connaudit user=connaudit password=bench" \
  "$END" deploy/grafana/connaudit.json "${BENCH_OUT:-}" <<'PY'
import datetime, json, os, re, subprocess, sys, time
import duckdb, psycopg
sys.path.insert(0, "bench")
import report

warehouse, binary, dsn, end, dashboard, bench_out = sys.argv[1:]
end = datetime.datetime.fromisoformat(end.replace("Z", "+00:00")) + datetime.timedelta(seconds=1)

def expand(sql, start, stop):
    """Grafana's PostgreSQL macros (pkg/tsdb/grafana-postgresql-datasource/macros.go)."""
    f, t = (x.strftime("%Y-%m-%dT%H:%M:%SZ") for x in (start, stop))
    def group(args):
        n, unit = re.match(r"(\d+)([smhd])", args[1].strip("'")).groups()
        s = int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        return f"floor(extract(epoch from {args[0]})/{s})*{s}"
    def one(m):
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",") if a.strip()]
        return {
            "timeFilter": lambda: f"{args[0]} BETWEEN '{f}' AND '{t}'",
            "timeFrom": lambda: f"'{f}'",
            "timeTo": lambda: f"'{t}'",
            "timeGroup": lambda: group(args),
            "timeGroupAlias": lambda: group(args) + ' AS "time"',
        }[name]()
    return re.sub(r"\$__(\w+)\(([^)]*)\)", one, sql)

def best(fn, n):
    times, rows = [], None
    for _ in range(n):
        t = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - t)
    return min(times), rows

duck = duckdb.connect()
duck.sql("SET TimeZone = 'UTC'")
for table in ["events", "sessions", "online_hours", "connack_reasons", "disconnect_reasons", "region_failures", "alerts"]:
    duck.sql(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{warehouse}/{table}/date=*/*.parquet', "
             "hive_partitioning = true, hive_types = {'date': DATE}, union_by_name = true)")
# What connaudit's session adds, in DuckDB's words: attr(), arrow_cast() (a no-op here) and
# the open part of online_spans (connects of the last 7 days no session names).
duck.sql("CREATE MACRO attr(a, k) AS json_extract_string(a, '$.' || k)")
duck.sql("CREATE MACRO arrow_cast(x, t) AS x")
# The "What changed" panel's: `warehouse.events`, make_array, attr_entries and net_prefix (the
# /24 of an IPv4 address, the /48 of an IPv6 one written as Rust writes it: zeros from the 4th
# group on are "::").
duck.sql("CREATE SCHEMA warehouse")
duck.sql("CREATE VIEW warehouse.events AS SELECT * FROM main.events")
for macro in [
    "make_array(a, b, c, d, e, f, g) AS list_value(a, b, c, d, e, f, g)",
    "attr_entries(a, p) AS list_transform(json_keys(a), k -> p || k || '=' || json_extract_string(a, '$.\"' || k || '\"'))",
    "v6_side(s) AS CASE WHEN s = '' THEN [] ELSE string_split(s, ':') END",
    "v6_groups(ip) AS CASE WHEN contains(ip, '::') THEN list_concat(v6_side(split_part(ip, '::', 1)), "
    "list_transform(range(8 - len(v6_side(split_part(ip, '::', 1))) - len(v6_side(split_part(ip, '::', 2)))), x -> '0'), "
    "v6_side(split_part(ip, '::', 2))) ELSE string_split(ip, ':') END",
    "v6_group(g) AS coalesce(nullif(ltrim(lower(g), '0'), ''), '0')",
    "v6_48(s0, s1, s2) AS CASE WHEN s2 <> '0' THEN s0 || ':' || s1 || ':' || s2 || '::' "
    "WHEN s1 <> '0' THEN s0 || ':' || s1 || '::' WHEN s0 <> '0' THEN s0 || '::' ELSE '::' END",
    "net_prefix(ip) AS CASE WHEN regexp_full_match(ip, '\\d+\\.\\d+\\.\\d+\\.\\d+') "
    "THEN regexp_replace(ip, '\\.\\d+$', '.0/24') WHEN contains(ip, ':') "
    "THEN v6_48(v6_group(v6_groups(ip)[1]), v6_group(v6_groups(ip)[2]), v6_group(v6_groups(ip)[3])) || '/48' END",
]:
    duck.sql("CREATE MACRO " + macro)
duck.sql("""CREATE VIEW online_spans AS
  SELECT clientid, region, node, ts AS online_from, CAST(NULL AS TIMESTAMPTZ) AS online_until FROM events AS c
  WHERE event = 'client.connected' AND ts >= now() - INTERVAL 7 DAY AND NOT EXISTS (
    SELECT 1 FROM sessions AS s WHERE s.kafka_partition = c.kafka_partition AND s.connect_offset = c.kafka_offset
      AND s.ended_at >= now() - INTERVAL 7 DAY)""")
# The dashboard's variables at their defaults, as Grafana interpolates them.
variables = {v["name"]: v["query"] for v in json.load(open(dashboard)).get("templating", {}).get("list", [])}

def cli(sql):
    # After `--`: a panel's SQL may start with a comment ("-- What changed ...").
    out = subprocess.run([binary, "query", "--warehouse", warehouse, "--format", "csv", "--", sql],
                         capture_output=True, text=True, env=dict(os.environ, RUST_LOG="warn"), check=True)
    m = re.search(r"(\d+) rows? in ([\d.]+) s", out.stderr)
    return float(m.group(2)), int(m.group(1))

panels = json.load(open(dashboard))["panels"]
print(f"\n{'panel, range (' + str(os.cpu_count()) + ' cores)':<44} {'rows':>6} {'serve ms':>9} {'query ms':>9} {'DuckDB ms':>10} {'serve/DuckDB':>13}")
with psycopg.connect(dsn, autocommit=True) as conn:
    for days in (1, 7):
        start = end - datetime.timedelta(days=days)
        for p in panels:
            sql = p["targets"][0]["rawSql"]
            for name, value in variables.items():
                sql = sql.replace("${" + name + "}", value).replace("$" + name, value)
            sql = expand(sql, start, end)
            t_serve, rows = best(lambda: conn.execute(sql).fetchall(), 5)
            t_cli = min(cli(sql)[0] for _ in range(3))
            t_duck, drows = best(lambda: duck.execute(sql).to_arrow_table().num_rows, 5)
            if drows != len(rows):
                print(f"  rows differ: serve {len(rows)}, DuckDB {drows}", file=sys.stderr)
            label = f"{p['title']}, {days} d"
            print(f"{label:<44} {len(rows):>6} {t_serve*1000:>9.1f} {t_cli*1000:>9.1f} {t_duck*1000:>10.1f} {t_serve/t_duck:>13.2f}")
            if bench_out:
                report.add(bench_out, "grafana", f"{label} (over serve, psycopg)", "ms", round(t_serve * 1000, 1),
                           round(t_duck * 1000, 1), "DuckDB, same files", lower_is_better=True, target="< 100 ms")
PY
