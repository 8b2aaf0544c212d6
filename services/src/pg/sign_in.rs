//! Password sign-in on the Postgres wire: the user name is a principal's
//! name and the password its token (the same tokens as HTTP) or, for an
//! `oidc:` user, a JWT. A token's principal signs in with SCRAM-SHA-256,
//! which never sends the token; a JWT cannot be known beforehand, so it
//! travels as a cleartext password message, as with PostgreSQL's
//! `password` method. With a certificate the server takes no connection
//! without TLS. A failed sign-in is audited and answered after a pause, so
//! that guessing is slow.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::auth::sasl::scram::ScramAuth;
use datafusion_postgres::pgwire::api::auth::sasl::{SASLState, SCRAM_SHA_256_METHOD};
use datafusion_postgres::pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler, finish_authentication,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::{
    ClientInfo, ConnectionManager, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::startup::PasswordMessageFamily;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::{Sink, SinkExt};
use tokio::sync::Mutex;

use crate::access::audit::AuditRecord;
use crate::access::oidc::NAME_PREFIX;
use crate::access::tokens::TokenStore;
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
    pub scram: ScramAuth,
}

/// The SCRAM-SHA-256 verifiers of token principals.
pub(super) struct Verifiers(pub TokenStore);

impl Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifiers")
    }
}

#[async_trait]
impl AuthSource for Verifiers {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        let (salt, salted) = self
            .0
            .scram_verifier(user)
            .await
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?
            .ok_or_else(|| PgWireError::InvalidPassword(user.to_string()))?;
        Ok(Password::new(Some(salt), salted))
    }
}

/// A connection's place in the SCRAM exchange (SCRAM-signing-in ones only).
struct ScramState(Mutex<SASLState>);

impl SignIn {
    /// Audits a failed sign-in and answers it after the pause.
    async fn failed(&self, peer: std::net::SocketAddr, user: String) -> PgWireError {
        let peer = format!("postgres wire from {peer}");
        let mut record = AuditRecord::new(None, "sign_in_failed", &peer, "28P01");
        record.detail = Some(format!(
            "user {user:?}: token unknown, revoked, expired or not this user's"
        ));
        if let Err(e) = self.access.audit.append(&record).await {
            return PgWireError::ApiError(Box::new(e));
        }
        tokio::time::sleep(FAILED_SIGN_IN_PAUSE).await;
        PgWireError::InvalidPassword(user)
    }

    /// Lets `principal` in on this connection.
    async fn signed_in<C>(&self, client: &mut C, principal: Principal) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.session_extensions().insert(SignedIn(principal));
        let (pid, secret_key) = self.pids.generate(client);
        client.set_pid_and_secret_key(pid, secret_key.clone());
        let (handle, guard) = self.connections.register(pid, secret_key);
        client.session_extensions().insert(handle);
        client.session_extensions().insert(guard);
        finish_authentication(client, &self.parameters).await
    }

    /// One step of a SCRAM exchange; the principal once it is complete.
    async fn scram_step<C>(
        &self,
        client: &mut C,
        state: &ScramState,
        message: PasswordMessageFamily,
    ) -> PgWireResult<Option<Principal>>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut state = state.0.lock().await;
        let message = match *state {
            SASLState::Initial => {
                let first = message.into_sasl_initial_response()?;
                if first.auth_method != SCRAM_SHA_256_METHOD {
                    return Err(PgWireError::UnsupportedSASLAuthMethod(first.auth_method));
                }
                *state = SASLState::ScramClientFirstReceived;
                PasswordMessageFamily::SASLInitialResponse(first)
            }
            _ => PasswordMessageFamily::SASLResponse(message.into_sasl_response()?),
        };
        let (answer, next) = self.scram.process_scram_message(client, message, &state).await?;
        client.send(PgWireBackendMessage::Authentication(answer)).await?;
        *state = next;
        if !matches!(*state, SASLState::Finished) {
            return Ok(None);
        }
        // The proof held: the token is the principal's. Is it still valid?
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        self.access
            .tokens
            .find(&user)
            .await
            .map_err(|e| PgWireError::ApiError(Box::new(e)))
            .map(|p| p.filter(|p| p.valid_at(chrono::Utc::now())))
    }
}

#[async_trait]
impl StartupHandler for SignIn {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
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
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let scram = !user.starts_with(NAME_PREFIX);
                let method = if scram {
                    client
                        .session_extensions()
                        .insert(ScramState(Mutex::new(SASLState::Initial)));
                    Authentication::SASL(vec![SCRAM_SHA_256_METHOD.to_string()])
                } else {
                    Authentication::CleartextPassword
                };
                client.send(PgWireBackendMessage::Authentication(method)).await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let principal = match client.session_extensions().get::<ScramState>() {
                    Some(state) => match self.scram_step(client, &state, message).await {
                        Ok(None) => return Ok(()),
                        Ok(Some(principal)) => Some(principal),
                        Err(PgWireError::ApiError(e)) => return Err(PgWireError::ApiError(e)),
                        Err(_) => None,
                    },
                    None => {
                        let password = message.into_password()?.password;
                        self.access
                            .authenticate(&password)
                            .await
                            .map_err(|e| PgWireError::ApiError(Box::new(e)))?
                            .filter(|p| p.name == user)
                    }
                };
                match principal {
                    Some(principal) => self.signed_in(client, principal).await?,
                    None => return Err(self.failed(client.socket_addr(), user).await),
                }
            }
            _ => {}
        }
        Ok(())
    }
}
