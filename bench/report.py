#!/usr/bin/env python3
"""The benchmark's table: `add` appends one measured row to a JSON-lines file; `render` prints
the rows as one table and writes them as JSON and Markdown, with the machine they ran on.

Each row is connaudit and a peer doing the same work in the same run. `ratio` is connaudit's
speed over the peer's (above 1: connaudit is faster); CPU is user+system seconds per million
events (from /proc or GNU time), RSS the peak resident set in MiB.
"""
import datetime
import json
import os
import platform
import subprocess
import sys


def add(path, bench, name, unit, ours, peer, peer_name, events=None, cpu=None, peer_cpu=None, rss=None,
        peer_rss=None, lower_is_better=False, target=None):
    ours, peer = float(ours), float(peer)
    ratio = (peer / ours if lower_is_better else ours / peer) if ours > 0 and peer > 0 else None
    per_m = lambda c: round(float(c) / int(events) * 1e6, 2) if c not in (None, "") and events else None
    row = {
        "bench": bench, "row": name, "unit": unit, "connaudit": ours, "peer": peer, "peer_name": peer_name,
        "ratio": round(ratio, 3) if ratio else None, "events": int(events) if events else None,
        "cpu_s_per_million": per_m(cpu), "peer_cpu_s_per_million": per_m(peer_cpu),
        "rss_mib": int(float(rss)) if rss not in (None, "") else None,
        "peer_rss_mib": int(float(peer_rss)) if peer_rss not in (None, "") else None,
        "target": target,
    }
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "os": platform.platform(),
            "commit": commit, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float) and v >= 1000:
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.3g}" if v < 10 else f"{v:.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def table(rows):
    head = ["bench", "row", "unit", "connaudit", "peer", "peer value", "ratio", "target",
            "CPU s/M", "peer CPU s/M", "RSS MiB", "peer RSS MiB"]
    body = [[r["bench"], r["row"], r["unit"], fmt(r["connaudit"]), r["peer_name"], fmt(r["peer"]),
             f'{r["ratio"]:.2f}x' if r["ratio"] else "-", r.get("target") or "-",
             fmt(r["cpu_s_per_million"]), fmt(r["peer_cpu_s_per_million"]), fmt(r["rss_mib"]),
             fmt(r["peer_rss_mib"])] for r in rows]
    return head, body


def render(path, out_dir):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    m = machine()
    head, body = table(rows)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))
    print(line(head))
    for b in body:
        print(line(b))
    md = [f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, commit {m['commit']}.",
          "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(str(c).replace("|", "\\|") for c in b) + " |" for b in body]
    os.makedirs(out_dir, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for name in (stamp, "latest"):
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            json.dump({"machine": m, "rows": rows}, f, indent=1)
        with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
            f.write("\n".join(md) + "\n")
    print(f"\nwritten: {out_dir}/{stamp}.json, {out_dir}/{stamp}.md (and latest.*)")


if __name__ == "__main__":
    if sys.argv[1] == "add":
        kv = dict(a.split("=", 1) for a in sys.argv[3:])
        kv["lower_is_better"] = kv.get("lower_is_better") == "1"
        add(sys.argv[2], **kv)
    elif sys.argv[1] == "render":
        render(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"usage: {sys.argv[0]} add FILE key=value... | render FILE OUT_DIR")
