//! A WITH query a statement reads more than once is computed once, as PostgreSQL does: over
//! psql (the simple protocol) and psycopg (the extended one, parameters too) the answer is the
//! one of the statement reading it once; past its memory budget (a quarter of the query's
//! share) it is planned at each reference instead, with the same answer.

use anyhow::Result;
use connaudit_tests::fixture::warehouse;
use serde_json::json;

use crate::harness::{psql, psycopg, Serve, PASSWORD};

/// Each client's CONNACKs, read twice.
const TWICE: &str =
    "WITH c AS (SELECT clientid, count(*) AS n FROM events WHERE event = 'client.connack' GROUP BY clientid) \
     SELECT a.clientid, a.n, b.n AS m FROM c AS a JOIN c AS b ON a.clientid = b.clientid \
     ORDER BY a.n DESC, a.clientid LIMIT 5";
const ONCE: &str = "SELECT clientid, count(*) AS n, count(*) AS m FROM events WHERE event = 'client.connack' \
     GROUP BY clientid ORDER BY n DESC, clientid LIMIT 5";
/// Every event's columns, read twice: 864 KB of rows, over the budget of a 2M share.
const WIDE: &str = "WITH e AS (SELECT * FROM events) \
     SELECT count(*) FROM e AS a JOIN e AS b ON a.kafka_partition = b.kafka_partition AND a.kafka_offset = b.kafka_offset";

const LOG: (&str, &str) = ("RUST_LOG", "info,connaudit_query=debug");

fn computed(serve: &Serve) -> usize {
    serve.log().matches("is computed once").count()
}

#[tokio::test]
async fn a_with_query_read_twice_answers_as_read_once_over_both_protocols() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start_with(&wh, &[], &[("CONNAUDIT_PG_PASSWORD", PASSWORD), LOG]).await?;
    let (code, simple, err) = psql(&serve.dsn(), TWICE)?;
    assert_eq!(code, 0, "{err}");
    let (_, once, _) = psql(&serve.dsn(), ONCE)?;
    assert_eq!(simple, once);
    assert_eq!(simple.lines().count(), 6, "{simple}");
    assert_eq!(computed(&serve), 1, "{}", serve.log());

    let with_parameter = TWICE.replace("ORDER BY", "WHERE a.n >= %s ORDER BY");
    let answers = psycopg(
        &serve.dsn(),
        &json!([{ "sql": TWICE }, { "sql": ONCE }, { "sql": with_parameter, "params": [1] }, { "sql": TWICE, "prepare": true }]),
    )?;
    assert!(answers[0]["rows"].as_array().is_some_and(|rows| rows.len() == 5), "{answers:?}");
    for answer in &answers[1..] {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(computed(&serve), 4, "{}", serve.log());
    assert_eq!(serve.metric("connaudit_serve_with_queries_total{outcome=\"computed\"}").await?, 4.0);
    Ok(())
}

#[tokio::test]
async fn past_its_budget_a_with_query_is_planned_at_each_reference() -> Result<()> {
    let wh = warehouse()?;
    let limits = ["--query-memory-limit", "2M"];
    let serve = Serve::start_with(&wh, &limits, &[("CONNAUDIT_PG_PASSWORD", PASSWORD), LOG]).await?;
    let (_, events, _) = psql(&serve.dsn(), "SELECT count(*) FROM events")?;
    let (code, out, err) = psql(&serve.dsn(), WIDE)?;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, events);
    assert_eq!(computed(&serve), 0, "{}", serve.log());
    assert!(serve.log().contains("left to each reference"), "{}", serve.log());
    assert_eq!(serve.metric("connaudit_serve_with_queries_total{outcome=\"each_reference\"}").await?, 1.0);
    Ok(())
}
