//! Who may connect: SCRAM-SHA-256 against the one configured user (the password is never
//! sent, only proved), or anyone when `--pg-allow-anonymous` says so; with TLS configured, a
//! connection without it is refused before authentication.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::auth::noop::NoopStartupHandler;
use datafusion_postgres::pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth, SCRAM_ITERATIONS};
use datafusion_postgres::pgwire::api::auth::sasl::SASLAuthStartupHandler;
use datafusion_postgres::pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use datafusion_postgres::pgwire::api::{ClientInfo, ConnectionManager};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::Sink;

use crate::args::Login;

/// The one user and its salted password, as SCRAM needs them.
#[derive(Debug)]
struct Secret {
    user: String,
    salt: Vec<u8>,
    salted: Vec<u8>,
    /// For any other user: a password nobody knows, so the proof fails the same way.
    decoy: Vec<u8>,
}

#[async_trait]
impl AuthSource for Secret {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let salted = if login.user() == Some(self.user.as_str()) { &self.salted } else { &self.decoy };
        Ok(Password::new(Some(self.salt.clone()), salted.clone()))
    }
}

/// Builds each connection's startup handler (SCRAM keeps per-connection state).
pub struct Gate {
    secret: Option<Arc<Secret>>,
    tls_required: bool,
    parameters: Arc<DefaultServerParameterProvider>,
    connections: Arc<ConnectionManager>,
}

impl Gate {
    pub fn new(login: &Login, tls_required: bool, connections: Arc<ConnectionManager>) -> Self {
        let secret = match login {
            Login::Password { user, password } => {
                let salt: [u8; 16] = rand::random();
                let decoy = format!("{:x?}", rand::random::<[u8; 32]>());
                Some(Arc::new(Secret {
                    user: user.clone(),
                    salted: gen_salted_password(password, &salt, SCRAM_ITERATIONS),
                    decoy: gen_salted_password(&decoy, &salt, SCRAM_ITERATIONS),
                    salt: salt.to_vec(),
                }))
            }
            Login::Anonymous => None,
        };
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;
        parameters.server_version = crate::functions::SERVER_VERSION.to_string();
        Gate { secret, tls_required, parameters: Arc::new(parameters), connections }
    }

    pub fn startup(&self) -> Startup {
        let kind = match &self.secret {
            Some(secret) => Kind::Scram(Box::new(
                SASLAuthStartupHandler::new(self.parameters.clone())
                    .with_scram(ScramAuth::new(secret.clone()))
                    .with_connection_manager(self.connections.clone()),
            )),
            None => Kind::Anonymous(Anonymous(self.connections.clone())),
        };
        Startup { kind, tls_required: self.tls_required }
    }
}

pub struct Startup {
    kind: Kind,
    tls_required: bool,
}

enum Kind {
    Scram(Box<SASLAuthStartupHandler<DefaultServerParameterProvider>>),
    Anonymous(Anonymous),
}

pub struct Anonymous(Arc<ConnectionManager>);

impl NoopStartupHandler for Anonymous {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.0.clone())
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.tls_required && !client.is_secure() && matches!(message, PgWireFrontendMessage::Startup(_)) {
            let message = "connaudit serve requires TLS: connect with sslmode=require (or verify-full)";
            return Err(PgWireError::UserError(Box::new(crate::error::fatal("28000", message))));
        }
        match &self.kind {
            Kind::Scram(h) => h.on_startup(client, message).await,
            Kind::Anonymous(h) => h.on_startup(client, message).await,
        }
    }
}
