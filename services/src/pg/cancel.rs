//! Cancel requests by connection. pgwire's own cancel stops a statement
//! only until its answer starts streaming, while most of a query's work is
//! done as its rows are pulled: these reach the row stream too.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use datafusion_postgres::pgwire::messages::cancel::CancelRequest;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::sync::watch;

/// Fires when the client asks to cancel the running statement.
pub(super) type Cancelled = Shared<BoxFuture<'static, ()>>;

#[derive(Default)]
pub(super) struct Cancels(std::sync::Mutex<HashMap<CancelKey, Arc<watch::Sender<u64>>>>);

/// A connection's process id and secret key, as its cancel requests give them.
type CancelKey = (i32, Bytes);

impl Cancels {
    /// Fires on a cancel request for `client`'s connection made after now.
    pub(super) fn signal(self: &Arc<Self>, client: &(dyn ClientInfo + Send + Sync)) -> Cancelled {
        let (pid, secret) = client.pid_and_secret_key();
        let registered = client
            .session_extensions()
            .get_or_insert_with(|| self.register(pid, secret.to_bytes()));
        let mut requests = registered.sender.subscribe();
        let before = *requests.borrow_and_update();
        async move {
            if requests.wait_for(|n| *n > before).await.is_err() {
                futures::future::pending::<()>().await;
            }
        }
        .boxed()
        .shared()
    }

    fn register(self: &Arc<Self>, pid: i32, secret: Bytes) -> Registered {
        let sender = Arc::new(watch::channel(0).0);
        if let Ok(mut map) = self.0.lock() {
            map.insert((pid, secret.clone()), sender.clone());
        }
        Registered {
            cancels: self.clone(),
            key: (pid, secret),
            sender,
        }
    }

    fn request(&self, pid: i32, secret: Bytes) {
        let sender = self.0.lock().ok().and_then(|map| map.get(&(pid, secret)).cloned());
        if let Some(sender) = sender {
            sender.send_modify(|n| *n += 1);
        }
    }
}

/// A connection's entry in [`Cancels`], removed when the connection ends.
struct Registered {
    cancels: Arc<Cancels>,
    key: CancelKey,
    sender: Arc<watch::Sender<u64>>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut map) = self.cancels.0.lock() {
            map.remove(&self.key);
        }
    }
}

/// Passes a cancel request to pgwire and to the connection's row stream.
pub(super) struct Cancel {
    pub(super) cancels: Arc<Cancels>,
    pub(super) pgwire: DefaultCancelHandler,
}

#[async_trait]
impl CancelHandler for Cancel {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.cancels.request(request.pid, request.secret_key.to_bytes());
        self.pgwire.on_cancel_request(request).await;
    }
}
