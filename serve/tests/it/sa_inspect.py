"""SQLAlchemy's inspector over `connaudit serve`, as Superset reflects a database: prints JSON
with what each call answered, or its error. argv: the SQLAlchemy URL, then table names."""
import json
import sys

import sqlalchemy as sa

url, tables = sys.argv[1], sys.argv[2:]
inspector = sa.inspect(sa.create_engine(url))


def call(f, *args):
    try:
        return f(*args)
    except Exception as e:  # the test shows which call failed and why
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}


out = {
    "schemas": call(inspector.get_schema_names),
    "tables": call(inspector.get_table_names, "public"),
    "views": call(inspector.get_view_names, "public"),
    "warehouse_tables": call(inspector.get_table_names, "warehouse"),
    "view_definition": call(inspector.get_view_definition, "region_failure_rates", "public"),
    "columns": {},
    "pk_constraint": {},
    "indexes": {},
    "unique_constraints": {},
    "foreign_keys": {},
    "check_constraints": {},
    "table_comment": {},
}
for table in tables:
    columns = call(inspector.get_columns, table, "public")
    if isinstance(columns, list):
        columns = [
            {"name": c["name"], "type": str(c["type"]), "nullable": c["nullable"], "comment": c.get("comment")}
            for c in columns
        ]
    out["columns"][table] = columns
    out["pk_constraint"][table] = call(inspector.get_pk_constraint, table, "public")
    out["indexes"][table] = call(inspector.get_indexes, table, "public")
    out["unique_constraints"][table] = call(inspector.get_unique_constraints, table, "public")
    out["foreign_keys"][table] = call(inspector.get_foreign_keys, table, "public")
    out["check_constraints"][table] = call(inspector.get_check_constraints, table, "public")
    out["table_comment"][table] = call(inspector.get_table_comment, table, "public")
print(json.dumps(out))
