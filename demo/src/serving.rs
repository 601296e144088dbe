//! `connaudit demo --serve`: after the report, the demo's warehouse over the PostgreSQL
//! protocol on loopback, with a password made for this run, until Ctrl-C: what a newcomer
//! points psql, Grafana or Superset at in one step.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use connaudit_serve::ServeArgs;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::embedded;
use crate::error::{Error, Result};

/// Serves `warehouse` on `pg_listen` (or a free loopback port) until `stop`.
pub async fn serve(warehouse: PathBuf, pg_listen: Option<SocketAddr>, stop: CancellationToken) -> Result<()> {
    let pg = match pg_listen {
        Some(addr) => addr,
        None => embedded::free_addr()?,
    };
    let http = embedded::free_addr()?;
    let password: String = {
        let mut rng = rand::rng();
        (0..24).map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.random_range(0..32)])).collect()
    };
    let user = "connaudit";
    let cfg = ServeArgs::local(&warehouse.display().to_string(), pg, http).into_config_with(Some(password.clone()))?;
    let task = tokio::spawn(connaudit_serve::run(cfg, stop.clone()));
    if let Err(e) = crate::embedded::wait_ready(&format!("http://{http}/readyz"), Duration::from_secs(30)).await {
        stop.cancel();
        return match task.await {
            Ok(Err(serve)) => Err(serve.into()),
            _ => Err(e),
        };
    }
    let (host, port) = (pg.ip(), pg.port());
    println!(
        "\nThe warehouse is served over the PostgreSQL protocol until Ctrl-C (a password for this run only):\n  \
         psql:     PGPASSWORD={password} psql \"host={host} port={port} dbname=connaudit user={user}\"\n  \
         URI:      postgresql://{user}:{password}@{host}:{port}/connaudit\n  \
         Grafana:  Connections -> Data sources -> PostgreSQL: Host URL {host}:{port}, Database name connaudit,\n            \
         Username {user}, Password {password}, TLS/SSL Mode disable; then import deploy/grafana/connaudit.json\n  \
         Superset: Settings -> Database Connections -> + Database -> PostgreSQL, SQLAlchemy URI\n            \
         postgresql+psycopg2://{user}:{password}@{host}:{port}/connaudit\n  \
         Metrics:  http://{http}/metrics"
    );
    task.await.map_err(|e| Error::Embedded(format!("serve: {e}")))??;
    Ok(())
}
