//! The Grafana dashboard in deploy/grafana: each panel's query, with its macros expanded the
//! way Grafana's PostgreSQL data source expands them, answers over psycopg with rows, and with
//! the numbers `connaudit query` gives for the same SQL.

use std::path::Path;

use anyhow::{bail, Context, Result};
use connaudit_tests::fixture::warehouse;
use serde_json::{json, Value};

use crate::harness::{cli, psycopg, same_numbers, Serve};
use connaudit_query::explain;

const FROM: &str = "2026-11-20T00:00:00Z";
const TO: &str = "2026-11-22T06:00:00Z";

#[tokio::test]
async fn every_dashboard_query_answers_with_the_cli_numbers() -> Result<()> {
    let deploy = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
        .join("../deploy/grafana");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(deploy.join("connaudit.json"))?)?;
    let source = std::fs::read_to_string(deploy.join("datasource.yaml"))?;
    assert!(source.contains("uid: connaudit") && source.contains("type: grafana-postgresql-datasource"));
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let panels = dashboard["panels"].as_array().context("no panels")?;
    assert!(panels.len() >= 5);
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        assert_eq!(panel["datasource"]["uid"], "connaudit", "{title}");
        let raw = panel["targets"][0]["rawSql"].as_str().context("no rawSql")?;
        // The explain panel is the audit's own SQL, over a range with a day of data before it.
        let range = if raw.starts_with("-- What changed") {
            assert_eq!(
                raw,
                explain::grafana(explain::Metric::Connects, 10),
                "{title}: regenerate it from explain::grafana"
            );
            ("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z")
        } else {
            (FROM, TO)
        };
        let sql = expand(&variables(&dashboard, raw), range)?;
        let answer = &psycopg(&serve.dsn(), &json!([{ "sql": sql }]))?[0];
        assert!(answer.get("error").is_none(), "{title}: {answer}\n{sql}");
        let want = cli(&wh, &sql)?;
        assert!(!want.is_empty(), "{title}: no rows on the fixture\n{sql}");
        same_numbers(answer, &want).map_err(|e| anyhow::anyhow!("{title}: {e}"))?;
        if panel["targets"][0]["format"] == "time_series" {
            assert_eq!(answer["columns"][0], "time", "{title}");
        }
    }
    Ok(())
}

/// What Grafana's PostgreSQL data source asks (postgresMetaQuery.ts): its version check, the
/// schemas, the tables (with the search path read through `current_setting`), one schema's
/// tables, and a table's columns.
fn grafana_metadata_queries(table: &str) -> [String; 5] {
    let search_path = "quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )";
    let excluded = "('information_schema', 'pg_catalog', '_timescaledb_cache', '_timescaledb_catalog', \
                    '_timescaledb_internal', '_timescaledb_config', 'timescaledb_information', 'timescaledb_experimental')";
    [
        "SELECT current_setting('server_version_num')::int/100 as version".to_string(),
        format!("SELECT schema_name AS \"name\" FROM information_schema.schemata WHERE schema_name NOT IN {excluded} ORDER BY schema_name"),
        format!(
            "SELECT CASE WHEN {search_path} THEN quote_ident(table_name) \
               ELSE quote_ident(table_schema) || '.' || quote_ident(table_name) END AS \"table\" \
             FROM information_schema.tables WHERE quote_ident(table_schema) NOT IN {excluded} \
             ORDER BY CASE WHEN {search_path} THEN 0 ELSE 1 END, 1"
        ),
        "SELECT quote_ident(table_name) AS \"table\" FROM information_schema.tables \
         WHERE quote_ident(table_schema) = 'public' ORDER BY 1"
            .to_string(),
        format!(
            "SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\" FROM information_schema.columns \
             WHERE CASE WHEN array_length(parse_ident('{table}'),1) = 2 \
               THEN quote_ident(table_schema) = (parse_ident('{table}'))[1] \
                 AND quote_ident(table_name) = (parse_ident('{table}'))[2] \
               ELSE quote_ident(table_name) = '{table}' AND {search_path} END"
        ),
    ]
}

#[tokio::test]
async fn grafanas_metadata_queries_list_the_schemas_tables_and_columns() -> Result<()> {
    let serve = Serve::start(&warehouse()?, &[]).await?;
    let mut requests: Vec<Value> =
        grafana_metadata_queries("public.region_failures").iter().map(|sql| json!({ "sql": sql })).collect();
    // The query builder asks for a table's columns by the name it listed: unqualified when
    // the table's schema is on the search path.
    requests.push(json!({ "sql": grafana_metadata_queries("region_failure_rates")[4] }));
    requests.push(json!({ "sql": grafana_metadata_queries("events")[4] }));
    let answers = psycopg(&serve.dsn(), &Value::Array(requests))?;
    let column = |i: usize, c: usize| -> Result<Vec<String>> {
        let rows = answers[i]["rows"].as_array().with_context(|| answers[i].to_string())?;
        Ok(rows.iter().map(|r| r[c].as_str().map_or(r[c].to_string(), str::to_string)).collect())
    };
    assert_eq!(column(0, 0)?, ["1600"]);
    assert_eq!(column(1, 0)?, ["public", "warehouse"]);
    // `public` is the search path: its tables and views unqualified and first, then the others.
    let tables = column(2, 0)?;
    let unqualified = tables.iter().take_while(|t| !t.contains('.')).count();
    assert!(tables[unqualified..].iter().all(|t| t.starts_with("warehouse.")), "{tables:?}");
    for table in ["region_failures", "region_failure_rates", "events", "warehouse.events"] {
        assert!(tables.iter().any(|t| t == table), "{table} not in {tables:?}");
    }
    assert!(column(3, 0)?.iter().any(|t| t == "region_failure_rates"), "{:?}", column(3, 0)?);
    // Columns with PostgreSQL's type names, by which Grafana finds the time column.
    for i in [4, 5] {
        let (names, types) = (column(i, 0)?, column(i, 1)?);
        let typed: Vec<(&str, &str)> = names.iter().map(String::as_str).zip(types.iter().map(String::as_str)).collect();
        for want in [
            ("minute", "timestamp with time zone"),
            ("region", "text"),
            ("failed_connacks", "bigint"),
            ("date", "date"),
        ] {
            assert!(typed.contains(&want), "{want:?} not in {typed:?}");
        }
    }
    let typed: Vec<(String, String)> = column(6, 0)?.into_iter().zip(column(6, 1)?).collect();
    assert!(typed.contains(&("ts".into(), "timestamp with time zone".into())), "{typed:?}");
    assert!(typed.contains(&("proto_ver".into(), "integer".into())), "{typed:?}");
    assert!(typed.contains(&("is_failure".into(), "boolean".into())), "{typed:?}");
    Ok(())
}

/// The SQL of the dashboard's panel `title`, its variables at their defaults.
pub fn panel_sql(title: &str) -> Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/connaudit.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let panels = dashboard["panels"].as_array().context("no panels")?;
    let panel = panels.iter().find(|p| p["title"] == title).with_context(|| format!("no panel {title}"))?;
    Ok(variables(&dashboard, panel["targets"][0]["rawSql"].as_str().context("no rawSql")?))
}

/// The dashboard's variables (`$name`) at their defaults, as Grafana interpolates them.
pub fn variables(dashboard: &Value, sql: &str) -> String {
    let mut out = sql.to_string();
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        let (name, value) = (v["name"].as_str().unwrap_or_default(), v["query"].as_str().unwrap_or_default());
        out = out.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
    }
    out
}

/// Grafana's macros (pkg/tsdb/grafana-postgresql-datasource/macros.go) for the range FROM..TO.
pub fn expand(sql: &str, (from, to): (&str, &str)) -> Result<String> {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find("$__") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let open = after.find('(').context("a macro without arguments")?;
        let close = after.find(')').context("an unclosed macro")?;
        let (name, args) = (&after[..open], &after[open + 1..close]);
        let args: Vec<&str> = args.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
        let group = |args: &[&str]| -> Result<String> {
            let seconds = interval(args.get(1).context("no interval")?.trim_matches('\''))?;
            Ok(format!("floor(extract(epoch from {})/{seconds})*{seconds}", args[0]))
        };
        out.push_str(&match name {
            "timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", args[0]),
            "timeFrom" => format!("'{from}'"),
            "timeTo" => format!("'{to}'"),
            "time" => format!("{} AS \"time\"", args[0]),
            "timeGroup" => group(&args)?,
            "timeGroupAlias" => format!("{} AS \"time\"", group(&args)?),
            other => bail!("macro $__{other} is not expanded by this test"),
        });
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn interval(text: &str) -> Result<u64> {
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = n.parse()?;
    Ok(n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("interval `{text}`"),
    })
}

#[test]
fn macros_expand_like_grafana() {
    let sql = expand(
        "SELECT $__timeGroupAlias(minute, '5m'), x FROM t WHERE $__timeFilter(minute) AND d < $__timeTo()",
        (FROM, TO),
    )
    .unwrap();
    assert_eq!(
        sql,
        "SELECT floor(extract(epoch from minute)/300)*300 AS \"time\", x FROM t \
         WHERE minute BETWEEN '2026-11-20T00:00:00Z' AND '2026-11-22T06:00:00Z' AND d < '2026-11-22T06:00:00Z'"
    );
}
