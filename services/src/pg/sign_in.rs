//! Password sign-in on the Postgres wire: the user name is a principal's
//! name and the password its token (the same tokens as HTTP). The token
//! travels as a cleartext password message, as with PostgreSQL's
//! `password` method: use TLS or loopback. With a certificate the server
//! refuses to ask for it over a connection without TLS. A failed sign-in
//! is audited and answered after a pause, so that guessing is slow.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::{
    ClientInfo, ConnectionManager, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::{Sink, SinkExt};

use crate::access::audit::AuditRecord;
use crate::access::{Access, Principal};

/// How long a failed sign-in waits before it is answered.
const FAILED_SIGN_IN_PAUSE: Duration = Duration::from_millis(250);

/// The principal a connection signed in as, kept where the client cannot
/// set it (unlike startup parameters).
#[derive(Clone, Debug)]
pub(super) struct SignedIn(pub Principal);

pub(super) struct SignIn {
    pub access: Access,
    pub connections: Arc<ConnectionManager>,
    pub pids: RandomPidSecretKeyGenerator,
    pub parameters: DefaultServerParameterProvider,
    /// Whether the endpoint has TLS, so that clients must use it.
    pub require_tls: bool,
}

#[async_trait]
impl StartupHandler for SignIn {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(_) if self.require_tls && !client.is_secure() => {
                // invalid_authorization_specification, before any password is sent
                return Err(super::error(
                    "28000",
                    "this endpoint takes connections over TLS only (sslmode=require)".into(),
                ));
            }
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::CleartextPassword))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let password = password.into_password()?.password;
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let principal = self
                    .access
                    .authenticate(&password)
                    .await
                    .map_err(|e| PgWireError::ApiError(Box::new(e)))?
                    .filter(|p| p.name == user);
                let Some(principal) = principal else {
                    let peer = format!("postgres wire from {}", client.socket_addr());
                    let mut record = AuditRecord::new(None, "sign_in_failed", &peer, "28P01");
                    record.detail = Some(format!(
                        "user {user:?}: token unknown, revoked, expired or not this user's"
                    ));
                    self.access
                        .audit
                        .append(&record)
                        .await
                        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
                    tokio::time::sleep(FAILED_SIGN_IN_PAUSE).await;
                    return Err(PgWireError::InvalidPassword(user));
                };
                client.session_extensions().insert(SignedIn(principal));
                let (pid, secret_key) = self.pids.generate(client);
                client.set_pid_and_secret_key(pid, secret_key.clone());
                let (handle, guard) = self.connections.register(pid, secret_key);
                client.session_extensions().insert(handle);
                client.session_extensions().insert(guard);
                finish_authentication(client, &self.parameters).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
