"""Apache Superset against `connaudit serve`, driven through its REST API as its web UI calls
it: log in, test the connection, add the database, list its schemas and tables, read a
table's columns, create datasets on `events` and `region_failure_rates`, ask a chart's data
(a metric grouped by region over a time range) and run a query in SQL Lab. Prints JSON with
each answer. argv: Superset's base URL, the SQLAlchemy URI of serve, the time range."""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

base, uri, time_range = sys.argv[1], sys.argv[2], sys.argv[3]
token = None


def call(method, path, body=None):
    request = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return {"status": response.status, "body": json.loads(response.read() or b"null")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode(errors="replace")[:4000]}


def rison(value):
    return urllib.parse.quote(value)


out = {}
login = call("POST", "/api/v1/security/login", {"username": "admin", "password": "admin", "provider": "db", "refresh": True})
token = login["body"]["access_token"]
out["test_connection"] = call(
    "POST", "/api/v1/database/test_connection/", {"database_name": "connaudit", "sqlalchemy_uri": uri, "engine": "postgresql"}
)
created = call("POST", "/api/v1/database/", {"database_name": "connaudit", "sqlalchemy_uri": uri, "expose_in_sqllab": True})
out["database"] = created
db = created["body"]["id"]
out["schemas"] = call("GET", f"/api/v1/database/{db}/schemas/")
out["tables"] = call("GET", f"/api/v1/database/{db}/tables/?q=" + rison("(schema_name:public)"))
out["table_metadata"] = call("GET", f"/api/v1/database/{db}/table_metadata/?name=events&schema=public")
datasets = {}
for table in ["events", "region_failure_rates"]:
    made = call("POST", "/api/v1/dataset/", {"database": db, "schema": "public", "table_name": table})
    out[f"dataset_{table}"] = made
    if made["status"] == 201:
        datasets[table] = made["body"]["id"]
        out[f"dataset_{table}_columns"] = call("GET", f"/api/v1/dataset/{made['body']['id']}")
if "region_failure_rates" in datasets:
    # The UI's bar chart: SUM(failed_connacks) by region over the range, on the time column.
    query_context = {
        "datasource": {"id": datasets["region_failure_rates"], "type": "table"},
        "force": True,
        "queries": [
            {
                "columns": ["region"],
                "metrics": [
                    {
                        "expressionType": "SIMPLE",
                        "column": {"column_name": "failed_connacks"},
                        "aggregate": "SUM",
                        "label": "failed",
                    },
                    {"expressionType": "SIMPLE", "column": {"column_name": "connacks"}, "aggregate": "SUM", "label": "connacks"},
                ],
                "filters": [{"col": "minute", "op": "TEMPORAL_RANGE", "val": time_range}],
                "orderby": [["region", True]],
                "row_limit": 1000,
            }
        ],
        "result_format": "json",
        "result_type": "full",
    }
    out["chart_data"] = call("POST", "/api/v1/chart/data", query_context)
if "events" in datasets:
    query_context = {
        "datasource": {"id": datasets["events"], "type": "table"},
        "force": True,
        "queries": [
            {
                "columns": ["event"],
                "metrics": ["count"],
                "filters": [{"col": "ts", "op": "TEMPORAL_RANGE", "val": time_range}],
                "orderby": [["event", True]],
                "row_limit": 1000,
            }
        ],
        "result_format": "json",
        "result_type": "full",
    }
    out["events_chart_data"] = call("POST", "/api/v1/chart/data", query_context)
out["sqllab"] = call(
    "POST",
    "/api/v1/sqllab/execute/",
    {
        "database_id": db,
        "sql": "SELECT region, sum(failed_connacks) AS failed FROM region_failures GROUP BY region ORDER BY region",
        "runAsync": False,
        "schema": "public",
        "tab": "connaudit",
        "select_as_cta": False,
    },
)
print(json.dumps(out))
