#!/usr/bin/env bash
# Runs the fault tests (tests/e2e/faults: processes killed, brokers restarted, Kafka down,
# object-store writes failing, compaction killed, a rolling restart) and writes the figures
# of this run into the table of docs/RELIABILITY.md. Every row comes from a test that fails
# when an event is lost or duplicated.
set -euo pipefail
cd "$(dirname "$0")/.."

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# One test at a time: the recovery times are not shared with a neighbour's load.
CONNAUDIT_RELIABILITY_OUT="$out" scripts/test.sh -E 'test(/^faults::/)' --test-threads 1 "$@"

"${CONNAUDIT_CACHE:-$HOME/.cache/connaudit}/venv/bin/python" - "$out" docs/RELIABILITY.md <<'PY'
import json, sys, datetime, platform, os
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
order = ["ingest SIGKILLed", "MQTT broker", "Kafka down", "transform SIGKILLed", "10% of object-store", "compaction killed", "rolling restart"]
rows.sort(key=lambda r: next((i for i, o in enumerate(order) if r["fault"].startswith(o)), 99))
table = ["| fault | load | events lost | duplicated in the warehouse | copies dropped | recovery | drain | notes |",
         "|---|---|---|---|---|---|---|---|"]
for r in rows:
    load = f'{r["events"]:,} events at {r["rate"]}/s ({r["in_kafka"]:,} records in Kafka)'
    table.append(f'| {r["fault"]} | {load} | {r["lost"]} | {r["duplicated"]} | {r["dropped"]} | '
                 f'{r["recovery_s"]:.1f} s | {r["drain_s"]:.1f} s | {r["note"]} |')
path = sys.argv[2]
text = open(path).read()
start, end = "<!-- figures -->", "<!-- /figures -->"
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
cpus = os.cpu_count()
body = "\n".join(table) + f"\n\nMeasured {when} by `scripts/reliability.sh` on {cpus} cores ({platform.machine()}), debug build.\n"
open(path, "w").write(head + start + "\n" + body + end + tail)
print("\n".join(table))
PY
