//! The metrics of `connaudit serve`, all prefixed `connaudit_serve_`.

/// Gauge: client connections open now.
pub const CONNECTIONS: &str = "connaudit_serve_connections";
/// Counter: connections by `outcome`: `accepted` (logged in), `refused` past
/// --pg-max-connections, `pending_full` past --pg-max-pending-logins (in all or from one
/// address), `login_failed`, `login_timeout`, `protocol_violation` (a message other than the
/// login's before it, or a broken one), `too_large` (a message over its cap before the login).
pub const CONNECTIONS_TOTAL: &str = "connaudit_serve_connections_total";
/// Counter: logged-in connections closed for breaking the protocol, by `kind`
/// (`too_large` past --pg-max-message-bytes, `protocol_violation`).
pub const PROTOCOL_ERRORS: &str = "connaudit_serve_protocol_errors_total";
/// Counter: statements by `outcome` (`ok`, `error`, `refused` by the read-only guard, `timeout`,
/// `cancelled` by the client's cancel request, `dropped` with its connection).
pub const QUERIES: &str = "connaudit_serve_queries_total";
/// Histogram: a statement from its arrival to its last row sent.
pub const QUERY_SECONDS: &str = "connaudit_serve_query_seconds";
/// Counter: WITH queries a statement reads more than once, by `outcome`: `computed` once, or
/// `each_reference` (past the budget of a quarter of --query-memory-limit, or failing alone).
pub const WITH_QUERIES: &str = "connaudit_serve_with_queries_total";
/// Counter: failed reads of the tables' newest versions.
pub const REFRESH_ERRORS: &str = "connaudit_serve_refresh_errors_total";

pub fn describe() {
    metrics::describe_gauge!(CONNECTIONS, "PostgreSQL client connections open now.");
    metrics::describe_counter!(
        CONNECTIONS_TOTAL,
        "PostgreSQL connections, by outcome (accepted, refused, pending_full, login_failed, login_timeout, \
         protocol_violation, too_large)."
    );
    metrics::describe_counter!(PROTOCOL_ERRORS, "Logged-in connections closed for breaking the protocol, by kind.");
    metrics::describe_counter!(QUERIES, "Statements, by outcome (ok, error, refused, timeout, cancelled, dropped).");
    metrics::describe_histogram!(QUERY_SECONDS, metrics::Unit::Seconds, "Statement latency to the last row sent.");
    metrics::describe_counter!(
        WITH_QUERIES,
        "WITH queries read more than once, by outcome (computed once, or planned at each_reference)."
    );
    metrics::describe_counter!(REFRESH_ERRORS, "Failed reads of the warehouse tables' newest versions.");
}
