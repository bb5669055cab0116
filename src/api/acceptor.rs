//! The TCP acceptor of the HTTP server, with Nagle's algorithm off on every connection.
//!
//! An event stream writes a burst, pauses (a tool runs, the session commits), then writes a
//! small frame such as the terminal event. With Nagle on, that small frame waits for the
//! ACK of the burst, which the client delays by up to 40 ms: every run would end 40 ms late.

use std::io::Result;

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::net::TcpStream;

/// [`TcpAcceptor`] with `TCP_NODELAY` set on each accepted connection.
pub struct NoDelayAcceptor(pub TcpAcceptor);

impl Acceptor for NoDelayAcceptor {
    type Io = TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.0.accept().await?;
        if let Err(e) = io.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        Ok((io, local, remote, scheme))
    }
}
