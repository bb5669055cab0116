//! The HTTP edge: how the service takes connections, before any request reaches an
//! operation. hyper's HTTP/1.1 server, served by hand rather than through poem's `Server`
//! because poem exposes none of the limits below.
//!
//! - At most `max_connections` at once: past it, connections wait in the kernel's accept
//!   queue, unserved, until one closes.
//! - Each head judged before hyper sees it (`guard`, `head`): 64 KiB of headers (431), an
//!   8 KiB target (414), malformed heads (400), all in the JSON error shape.
//! - Header read, body read and keep-alive idle timeouts; none while a response is in
//!   flight, so event streams live as long as their run.
//! - Shutdown: stop accepting, let requests in flight finish (2 s), then drop the rest.

mod conn;
mod guard;
mod head;

use std::{future::Future, io, sync::Arc, time::Duration};

use poem::{Response, endpoint::BoxEndpoint};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::acceptor::Acceptor;

pub use conn::Peer;
pub use guard::GuardTimeouts;

/// Limits of the HTTP edge.
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// How long connections still open at shutdown may finish their request.
const DRAIN: Duration = Duration::from_secs(2);

/// Serves `endpoint` on `listener` until `shutdown` resolves; then stops accepting, lets
/// open requests finish within [`DRAIN`] and returns.
///
/// # Errors
/// None today: accept errors are logged and retried. The result keeps the shape of
/// poem's `Server::run`.
pub async fn serve(
    endpoint: BoxEndpoint<'static, Response>,
    listener: TcpListener,
    limits: EdgeLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let shared = Arc::new(conn::Shared {
        endpoint,
        timeouts: GuardTimeouts {
            header_read: limits.header_read_timeout,
            idle: limits.idle_timeout,
        },
        body_read: limits.body_read_timeout,
    });
    let mut acceptor = Acceptor::new(listener, limits.max_connections);
    let tracker = TaskTracker::new();
    let graceful = CancellationToken::new();
    let force = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = acceptor.accept() => accepted,
        };
        let (stream, peer, permit) = accepted;
        let shared = shared.clone();
        let (graceful, force) = (graceful.clone(), force.clone());
        tracker.spawn(async move {
            conn::serve(stream, peer, shared, graceful, force).await;
            drop(permit);
        });
    }
    drop(acceptor);
    tracker.close();
    graceful.cancel();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::info!(
            open = tracker.len(),
            "closing connections still open after shutdown"
        );
        force.cancel();
        tracker.wait().await;
    }
    Ok(())
}
