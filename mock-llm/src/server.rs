//! The HTTP side: one endpoint for every path, recording each request, refusing one whose
//! history breaks a rule a real provider enforces (400, naming the rule), and otherwise
//! answering with the next queued script (or the default answer) in the format the path
//! asks for.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use poem::listener::TcpAcceptor;
use poem::{Endpoint, Request, Response, Server, http::StatusCode};
use serde_json::Value;

use crate::history::{self, Violation};
use crate::render::{OpenGuard, Protocol, respond};
use crate::script::{DefaultAnswer, Script};

/// One request the mock received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers with lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The history rule the request broke; it was answered 400 instead of a script.
    pub violation: Option<Violation>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Script>>,
    /// Scripts for requests whose body contains a marker, checked before the queue.
    routes: Mutex<Vec<(String, Script)>>,
    requests: Mutex<Vec<RecordedRequest>>,
    default: Mutex<DefaultAnswer>,
    open_bodies: Arc<AtomicUsize>,
    /// Set by [`MockLlm::accept_any_history`]: no history check.
    lenient: AtomicBool,
}

/// A panic in a test thread must not turn every later lock into a second panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct MockEndpoint(Arc<Shared>);

impl Endpoint for MockEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = req.take_body().into_bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = String::from_utf8_lossy(&bytes);
        let protocol = if path.ends_with("/chat/completions") {
            Some(Protocol::OpenAi)
        } else if path.ends_with("/messages") {
            Some(Protocol::Anthropic)
        } else {
            None
        };
        let violation = protocol
            .filter(|_| !self.0.lenient.load(Ordering::SeqCst))
            .and_then(|protocol| history::check(protocol, &body).err());
        lock(&self.0.requests).push(RecordedRequest {
            path,
            headers,
            body: body.clone(),
            violation: violation.clone(),
        });
        let Some(protocol) = protocol else {
            return Ok(Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body("mock-llm serves POST …/chat/completions and …/messages"));
        };
        if let Some(violation) = violation {
            // Refused before any script is taken, as the provider would refuse it before
            // answering: the queue stays as the test wrote it.
            let refusal = Script::invalid_request(&violation.to_string());
            let guard = OpenGuard::new(&self.0.open_bodies);
            return Ok(respond(refusal, protocol, &body, guard));
        }
        let routed = {
            let mut routes = lock(&self.0.routes);
            routes
                .iter()
                .position(|(marker, _)| text.contains(marker.as_str()))
                .map(|at| routes.remove(at).1)
        };
        let next = routed.or_else(|| lock(&self.0.queue).pop_front());
        let script = next.unwrap_or_else(|| lock(&self.0.default).script());
        Ok(respond(
            script,
            protocol,
            &body,
            OpenGuard::new(&self.0.open_bodies),
        ))
    }
}

/// A running mock server; it stops accepting connections when dropped.
pub struct MockLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl MockLlm {
    /// Starts on `127.0.0.1:0` with the default answer.
    ///
    /// # Panics
    /// When loopback cannot be bound: a test cannot go on without its server.
    pub async fn start() -> Self {
        match Self::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            DefaultAnswer::default(),
        )
        .await
        {
            Ok(mock) => mock,
            Err(e) => panic!("mock-llm: cannot bind 127.0.0.1:0: {e}"),
        }
    }

    /// Starts on `addr`, answering `default` whenever the queue is empty.
    pub async fn bind(addr: SocketAddr, default: DefaultAnswer) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let shared = Arc::new(Shared {
            default: Mutex::new(default),
            ..Shared::default()
        });
        let endpoint = MockEndpoint(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            // Serving only ends on an accept error, with nobody left to report it to but
            // the test, which sees its requests fail.
            let _ = Server::new_with_acceptor(acceptor).run(endpoint).await;
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// `http://ADDR/v1`: usable as both `OPENAI_BASE_URL` and `ANTHROPIC_BASE_URL`, since
    /// the adapters append `/chat/completions` or `/messages`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues the answer to a future request (first in, first out, for both protocols).
    pub fn push(&self, script: Script) {
        lock(&self.shared.queue).push_back(script);
    }

    /// Queues the answer to the next request whose raw body contains `marker` (e.g. a
    /// word of one agent's system prompt), so concurrent agents each get their own script
    /// whatever order their requests arrive in. Routed scripts are served before the
    /// queue, first pushed first, each once.
    pub fn push_when(&self, marker: &str, script: Script) {
        lock(&self.shared.routes).push((marker.to_owned(), script));
    }

    /// Replaces the answer served when the queue is empty.
    pub fn set_default(&self, default: DefaultAnswer) {
        *lock(&self.shared.default) = default;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The history rules broken by the requests received so far, in order (each such
    /// request was answered 400). Empty when every request was a history a real provider
    /// accepts.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.shared.requests)
            .iter()
            .filter_map(|r| r.violation.clone())
            .collect()
    }

    /// Stops checking histories on this instance, for tests that send odd histories to an
    /// adapter on purpose (mapping tests); every request is answered as scripted.
    pub fn accept_any_history(&self) {
        self.shared.lenient.store(true, Ordering::SeqCst);
    }

    /// Response bodies still being sent. A body is released when it is complete or when
    /// the client closed the connection, so tests can check that dropping a stream aborts
    /// the request.
    pub fn open_streams(&self) -> usize {
        self.shared.open_bodies.load(Ordering::SeqCst)
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}
