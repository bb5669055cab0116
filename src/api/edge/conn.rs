//! One connection: hyper's HTTP/1.1 server over the guarded socket, each request handed
//! to the poem endpoint with the body read timeout applied, each response counted in
//! flight until its body is written.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::{Stream, StreamExt};
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use poem::{
    Body, Endpoint, Request, Response,
    endpoint::BoxEndpoint,
    http::{HeaderValue, header, uri::Scheme},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{net::TcpStream, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    guard::{ConnState, GuardTimeouts, Guarded, InFlight},
    head::{self, Refusal},
};

/// Carries a refusal from the guard to the service inside a stand-in request.
pub const REFUSAL_HEADER: &str = "x-edge-refusal";

/// What every connection shares.
pub struct Shared {
    pub endpoint: BoxEndpoint<'static, Response>,
    pub timeouts: GuardTimeouts,
    pub body_read: Duration,
}

/// The addresses of one connection.
pub struct Peer {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Serves `stream` until the client leaves, a timeout closes it, or shutdown: on
/// `graceful` the request in flight finishes first, on `force` the connection drops.
pub async fn serve(
    stream: TcpStream,
    peer: Peer,
    shared: Arc<Shared>,
    graceful: CancellationToken,
    force: CancellationToken,
) {
    let state = Arc::new(ConnState::new());
    let io = Guarded::new(stream, state.clone(), shared.timeouts);
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        let state = state.clone();
        let (local, remote) = (peer.local, peer.remote);
        async move { Ok::<_, Infallible>(respond(req, &shared, state, local, remote).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        // The guard judges heads and runs the header timeout; these stay as a backstop.
        .header_read_timeout(None)
        .max_headers(head::MAX_HEADERS)
        .max_header_size(head::MAX_HEAD_BYTES);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        res = conn.as_mut() => Some(res),
        () = graceful.cancelled() => None,
        () = force.cancelled() => return,
    };
    let res = match ended {
        Some(res) => res,
        None => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                res = conn.as_mut() => res,
                () = force.cancelled() => return,
            }
        }
    };
    if let Err(e) = res {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

type ResBody = Tracked<BoxBody<Bytes, io::Error>>;

async fn respond(
    req: hyper::Request<Incoming>,
    shared: &Shared,
    state: Arc<ConnState>,
    local: SocketAddr,
    remote: SocketAddr,
) -> hyper::Response<ResBody> {
    let in_flight = InFlight::enter(&state);
    let response = match refusal_of(&req, &state) {
        Some(refusal) => refusal_response(refusal),
        None => {
            let mut req = Request::from((
                req,
                LocalAddr(local.into()),
                RemoteAddr(remote.into()),
                Scheme::HTTP,
            ));
            if has_body(&req) {
                let body = req.take_body();
                req.set_body(with_deadline(body, Instant::now() + shared.body_read));
            }
            let mut response = shared.endpoint.get_response(req).await;
            if state.close_after() {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    };
    let response: hyper::Response<BoxBody<Bytes, io::Error>> = response.into();
    response.map(|body| Tracked {
        body,
        _in_flight: in_flight,
    })
}

/// The refusal a stand-in request carries, when it is one of this connection's.
fn refusal_of(req: &hyper::Request<Incoming>, state: &ConnState) -> Option<Refusal> {
    let value = req.headers().get(REFUSAL_HEADER)?.as_bytes();
    let (tag, token) = value.split_last()?;
    (token == state.token.as_bytes())
        .then(|| Refusal::from_tag(*tag))
        .flatten()
}

fn refusal_response(refusal: Refusal) -> Response {
    let mut response =
        crate::api::middleware::json_error(refusal.status(), refusal.code(), &refusal.message());
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn has_body(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// The request body, failing with `TimedOut` once `deadline` passes before its end: a
/// client trickling a body cannot hold a request (and its memory) forever.
fn with_deadline(body: Body, deadline: Instant) -> Body {
    let chunks = body.into_bytes_stream();
    Body::from_bytes_stream(Deadline {
        inner: Box::pin(chunks),
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
        done: false,
    })
}

struct Deadline<S> {
    inner: Pin<Box<S>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl<S: Stream<Item = io::Result<Bytes>>> Stream for Deadline<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.inner.poll_next_unpin(cx) {
            self.done = item.is_none();
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            ))));
        }
        Poll::Pending
    }
}

/// A response body that keeps its response counted in flight until it is dropped.
pub struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
