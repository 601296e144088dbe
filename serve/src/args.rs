//! The `connaudit serve` command line. Every flag also reads a `CONNAUDIT_*` variable; the
//! password only comes from the environment (`CONNAUDIT_PG_PASSWORD`, a Secret in deploy/), so
//! it never shows in a process listing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Example:\n  CONNAUDIT_PG_PASSWORD=... connaudit serve --warehouse s3://audit/warehouse \\\n    \
     --pg-listen 0.0.0.0:5432 --http-listen 0.0.0.0:8082\n\nThen add a PostgreSQL data source in \
     Grafana, Metabase or Superset: host:5432, database connaudit, user connaudit."
)]
pub struct ServeArgs {
    /// The warehouse `connaudit transform` writes: a directory or s3://bucket/prefix
    #[arg(long, env = "CONNAUDIT_WAREHOUSE", value_name = "DIR|URL")]
    pub warehouse: String,
    /// Address of the PostgreSQL endpoint
    #[arg(long, env = "CONNAUDIT_PG_LISTEN", value_name = "ADDR", default_value = "0.0.0.0:5432")]
    pub pg_listen: SocketAddr,
    /// Address of /healthz, /readyz and /metrics
    #[arg(long, env = "CONNAUDIT_HTTP_LISTEN", value_name = "ADDR", default_value = "0.0.0.0:8082")]
    pub http_listen: SocketAddr,
    /// The user clients log in as (the password is CONNAUDIT_PG_PASSWORD)
    #[arg(long, env = "CONNAUDIT_PG_USER", value_name = "NAME", default_value = "connaudit")]
    pub pg_user: String,
    /// Accept any user without a password (only on a trusted network)
    #[arg(long, env = "CONNAUDIT_PG_ALLOW_ANONYMOUS")]
    pub pg_allow_anonymous: bool,
    /// Server certificate (PEM); with --pg-tls-key, clients must connect with TLS
    #[arg(long, env = "CONNAUDIT_PG_TLS_CERT", value_name = "FILE", requires = "pg_tls_key")]
    pub pg_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --pg-tls-cert
    #[arg(long, env = "CONNAUDIT_PG_TLS_KEY", value_name = "FILE", requires = "pg_tls_cert")]
    pub pg_tls_key: Option<PathBuf>,
    /// Connections served at once; more are refused with "too many connections"
    #[arg(long, env = "CONNAUDIT_PG_MAX_CONNECTIONS", value_name = "N", default_value_t = 64)]
    pub pg_max_connections: usize,
    /// Memory one query may hold before sorts and aggregations spill to disk and, past that,
    /// the query fails (e.g. 512M, 2G)
    #[arg(long, env = "CONNAUDIT_MEMORY_LIMIT", value_name = "SIZE", default_value = "1G")]
    pub memory_limit: String,
    /// Directory for spill files [default: the system's temporary directory]
    #[arg(long, env = "CONNAUDIT_SPILL_DIR", value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Longest a query may run, planning and sending its rows included (a client's
    /// `SET statement_timeout` can only shorten it)
    #[arg(long, env = "CONNAUDIT_QUERY_TIMEOUT", value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub query_timeout: Duration,
    /// Seconds a SIGTERM waits for running statements before closing their connections
    #[arg(long, env = "CONNAUDIT_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
}

/// How clients prove who they are.
#[derive(Debug, Clone)]
pub enum Login {
    /// SCRAM-SHA-256 with this user and password.
    Password {
        user: String,
        password: String,
    },
    Anonymous,
}

/// Everything `serve` runs with, checked.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub warehouse: String,
    pub pg_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub login: Login,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_connections: usize,
    pub memory_limit: usize,
    pub spill_dir: Option<PathBuf>,
    pub query_timeout: Duration,
    pub shutdown_timeout: Duration,
}

impl ServeArgs {
    pub fn into_config(self) -> Result<ServeConfig> {
        let password = std::env::var("CONNAUDIT_PG_PASSWORD").ok().filter(|p| !p.is_empty());
        let login = match (password, self.pg_allow_anonymous) {
            (Some(_), true) => {
                return Err(Error::Config(
                    "CONNAUDIT_PG_PASSWORD is set and --pg-allow-anonymous is given; drop one of them".into(),
                ))
            }
            (Some(password), false) => Login::Password { user: self.pg_user, password },
            (None, true) => Login::Anonymous,
            (None, false) => {
                return Err(Error::Config(
                    "no password for the PostgreSQL endpoint: set CONNAUDIT_PG_PASSWORD (a Secret in Kubernetes), \
                     or pass --pg-allow-anonymous to let anyone who reaches the port in"
                        .into(),
                ))
            }
        };
        if self.pg_max_connections == 0 {
            return Err(Error::Config("--pg-max-connections must be at least 1".into()));
        }
        if self.query_timeout.is_zero() {
            return Err(Error::Config("--query-timeout must be longer than 0, e.g. 5m".into()));
        }
        if let Some(dir) = &self.spill_dir {
            if !dir.is_dir() {
                return Err(Error::Config(format!(
                    "--spill-dir {} is not a directory; create it or pick another",
                    dir.display()
                )));
            }
        }
        Ok(ServeConfig {
            warehouse: self.warehouse,
            pg_listen: self.pg_listen,
            http_listen: self.http_listen,
            login,
            tls: self.pg_tls_cert.zip(self.pg_tls_key),
            max_connections: self.pg_max_connections,
            memory_limit: connaudit_query::parse_size(&self.memory_limit)?,
            spill_dir: self.spill_dir,
            query_timeout: self.query_timeout,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
        })
    }
}
