//! The `connaudit serve` command line. Every flag also reads a `CONNAUDIT_*` variable; the
//! password only comes from the environment (`CONNAUDIT_PG_PASSWORD`, a Secret in deploy/), so
//! it never shows in a process listing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use connaudit_warehouse::{parse_size, WarehouseFlag};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Example:\n  CONNAUDIT_PG_PASSWORD=... connaudit serve --warehouse s3://audit/warehouse \\\n    \
     --pg-listen 0.0.0.0:5432 --http-listen 0.0.0.0:8082\n\nThen add a PostgreSQL data source in \
     Grafana, Metabase or Superset: host:5432, database connaudit, user connaudit."
)]
pub struct ServeArgs {
    #[command(flatten)]
    pub warehouse: WarehouseFlag,
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
    /// Logged-in connections served at once; more are refused with "too many clients"
    #[arg(long, env = "CONNAUDIT_PG_MAX_CONNECTIONS", value_name = "N", default_value_t = 64)]
    pub pg_max_connections: usize,
    /// Connections still logging in, in all; more are refused at once (their own cap, so
    /// sockets that never log in cannot take the users' places)
    #[arg(long, env = "CONNAUDIT_PG_MAX_PENDING_LOGINS", value_name = "N", default_value_t = 32)]
    pub pg_max_pending_logins: usize,
    /// Connections still logging in from one client address
    #[arg(long, env = "CONNAUDIT_PG_MAX_PENDING_LOGINS_PER_ADDRESS", value_name = "N", default_value_t = 8)]
    pub pg_max_pending_logins_per_address: usize,
    /// Longest a connection may take from its first byte to a successful login
    #[arg(long, env = "CONNAUDIT_PG_LOGIN_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub pg_login_timeout: Duration,
    /// Largest message a logged-in client may send (a query, a Bind with its parameters);
    /// before the login, 10,000 bytes as in PostgreSQL
    #[arg(long, env = "CONNAUDIT_PG_MAX_MESSAGE_BYTES", value_name = "SIZE", default_value = "1M")]
    pub pg_max_message_bytes: String,
    /// Memory all queries together may hold (one pool for the server): sorts, joins and
    /// aggregations spill to disk past their share, then fail (e.g. 512M, 2G)
    #[arg(long, env = "CONNAUDIT_MEMORY_LIMIT", value_name = "SIZE", default_value = "1G")]
    pub memory_limit: String,
    /// One query's share of --memory-limit; also the most one function call may build (an
    /// array of range(), a repeat() string) [default: a quarter of --memory-limit]
    #[arg(long, env = "CONNAUDIT_QUERY_MEMORY_LIMIT", value_name = "SIZE")]
    pub query_memory_limit: Option<String>,
    /// Directory for spill files [default: the system's temporary directory]
    #[arg(long, env = "CONNAUDIT_SPILL_DIR", value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Spill files all queries together may hold; a query that needs more fails (keep it under
    /// the spill volume's size)
    #[arg(long, env = "CONNAUDIT_SPILL_LIMIT", value_name = "SIZE", default_value = "10G")]
    pub spill_limit: String,
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
    pub max_pending_logins: usize,
    pub max_pending_logins_per_address: usize,
    pub conn: crate::conn::Limits,
    pub memory_limit: usize,
    pub query_memory_limit: usize,
    pub spill_dir: Option<PathBuf>,
    pub spill_limit: u64,
    pub query_timeout: Duration,
    pub shutdown_timeout: Duration,
}

impl ServeConfig {
    pub fn memory(&self) -> crate::session::Memory {
        crate::session::Memory {
            server: self.memory_limit,
            query: self.query_memory_limit,
            spill_limit: self.spill_limit,
        }
    }
}

impl ServeArgs {
    /// The flags' defaults with this warehouse and these addresses (for `connaudit demo`).
    pub fn local(warehouse: &str, pg_listen: SocketAddr, http_listen: SocketAddr) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            args: ServeArgs,
        }
        let (pg, http) = (pg_listen.to_string(), http_listen.to_string());
        let argv = ["serve", "--warehouse", warehouse, "--pg-listen", &pg, "--http-listen", &http];
        Defaults::parse_from(argv).args
    }

    pub fn into_config(self) -> Result<ServeConfig> {
        let password = std::env::var("CONNAUDIT_PG_PASSWORD").ok().filter(|p| !p.is_empty());
        self.into_config_with(password)
    }

    /// [`ServeArgs::into_config`] with the password given rather than read from the environment.
    pub fn into_config_with(self, password: Option<String>) -> Result<ServeConfig> {
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
        for (flag, n) in [
            ("--pg-max-connections", self.pg_max_connections),
            ("--pg-max-pending-logins", self.pg_max_pending_logins),
            ("--pg-max-pending-logins-per-address", self.pg_max_pending_logins_per_address),
        ] {
            if n == 0 {
                return Err(Error::Config(format!("{flag} must be at least 1")));
            }
        }
        if self.pg_login_timeout.is_zero() {
            return Err(Error::Config("--pg-login-timeout must be longer than 0, e.g. 10s".into()));
        }
        let size = |text: &str, flag: &str| parse_size(text, flag, 1 << 20).map(|b| b as usize).map_err(Error::Config);
        let memory_limit = size(&self.memory_limit, "--memory-limit")?;
        let query_memory_limit = match &self.query_memory_limit {
            Some(text) => size(text, "--query-memory-limit")?,
            None => memory_limit / 4,
        };
        if query_memory_limit > memory_limit {
            return Err(Error::Config(format!(
                "--query-memory-limit {} is more than --memory-limit {}; a query's share must fit in the server's pool",
                self.query_memory_limit.as_deref().unwrap_or_default(),
                self.memory_limit
            )));
        }
        let max_message_bytes =
            parse_size(&self.pg_max_message_bytes, "--pg-max-message-bytes", 1).map_err(Error::Config)? as usize;
        if max_message_bytes < crate::capped::STARTUP_BYTES {
            return Err(Error::Config(format!(
                "--pg-max-message-bytes {} is under 10000 bytes; clients' queries would not fit",
                self.pg_max_message_bytes
            )));
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
            warehouse: self.warehouse.location().to_string(),
            pg_listen: self.pg_listen,
            http_listen: self.http_listen,
            login,
            tls: self.pg_tls_cert.zip(self.pg_tls_key),
            max_pending_logins: self.pg_max_pending_logins,
            max_pending_logins_per_address: self.pg_max_pending_logins_per_address,
            conn: crate::conn::Limits {
                login_timeout: self.pg_login_timeout,
                max_message_bytes,
                max_connections: self.pg_max_connections,
            },
            memory_limit,
            query_memory_limit,
            spill_dir: self.spill_dir,
            spill_limit: size(&self.spill_limit, "--spill-limit")? as u64,
            query_timeout: self.query_timeout,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
        })
    }
}
