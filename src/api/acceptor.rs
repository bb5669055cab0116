//! Taking connections: at most a fixed number at once, with Nagle's algorithm off.
//!
//! The cap is a semaphore whose permit each connection holds until it closes; at the cap,
//! nothing is accepted, so further connections wait in the kernel's accept queue instead
//! of costing a descriptor and memory each.
//!
//! An event stream writes a burst, pauses (a tool runs, the session commits), then writes a
//! small frame such as the terminal event. With Nagle on, that small frame waits for the
//! ACK of the burst, which the client delays by up to 40 ms: every run would end 40 ms late.

use std::{sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};

use super::edge::Peer;

/// The listener with its connection cap.
pub struct Acceptor {
    listener: TcpListener,
    permits: Arc<Semaphore>,
}

impl Acceptor {
    pub fn new(listener: TcpListener, max_connections: usize) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(max_connections)),
        }
    }

    /// The next connection, once one of the permitted slots is free.
    pub async fn accept(&mut self) -> (TcpStream, Peer, OwnedSemaphorePermit) {
        loop {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                // The semaphore is never closed; wait rather than spin if it were.
                std::future::pending::<()>().await;
                continue;
            };
            match self.listener.accept().await {
                Ok((stream, remote)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                    let local = stream.local_addr().unwrap_or_else(|_| {
                        self.listener
                            .local_addr()
                            .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into())
                    });
                    return (stream, Peer { local, remote }, permit);
                }
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was taken: wait
                    // a moment instead of spinning on the error.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    drop(permit);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}
