//! The floor under the benchmark's CPU-per-run figure: the least a service on this stack
//! (tokio, poem, reqwest, eventsource-stream) must do for one run of the concurrent load.
//! It answers the benchmark's calls like the service does, but a run only relays the
//! model's stream: each upstream event becomes one SSE frame, frames ready within the run
//! log's pace (20 ms; `RELAY_PACE_MS`) are written together as the service writes them, and nothing is
//! stored, parsed into messages or forwarded.
//!
//! `cargo build --release --example relay_floor`, then
//! `AGENT_RUNTIME_BIN=target/release/examples/relay_floor target/release/examples/bench
//! --concurrent=200 --load-only --local-only`: its "service CPU per concurrent run" is what
//! the machine's network stack and scheduler cost per run before any of the runtime's work.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a measuring tool")]

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt, stream};
use poem::{
    Body, EndpointExt, Response, Route, Server, get, handler, listener::TcpListener, post,
    web::Data,
};
use tokio::time::Instant;

/// The run log's pace (`RunLog` in the runtime): what streams meanwhile goes in one write.
/// `RELAY_PACE_MS` changes it, to see what a slower pace would save.
fn pace() -> Duration {
    let ms = std::env::var("RELAY_PACE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(20);
    Duration::from_millis(ms)
}

#[handler]
fn ok() -> &'static str {
    "{}"
}

#[handler]
async fn run(Data(upstream): Data<&Upstream>) -> Response {
    let events = upstream.open().await;
    Response::builder()
        .content_type("text/event-stream")
        .body(Body::from_bytes_stream(paced(events)))
}

#[derive(Clone)]
struct Upstream {
    client: reqwest::Client,
    url: String,
}

impl Upstream {
    /// The model's answer as SSE `data` payloads.
    async fn open(&self) -> impl Stream<Item = String> + Send + 'static {
        let response = self
            .client
            .post(&self.url)
            .bearer_auth("sk-bench")
            .json(&serde_json::json!({"model": "bench", "stream": true,
                   "messages": [{"role": "user", "content": "go"}]}))
            .send()
            .await
            .expect("the mock LLM answers");
        response
            .bytes_stream()
            .eventsource()
            .filter_map(|e| async move { e.ok().map(|e| e.data) })
    }
}

/// Frames of the events, those ready within the pace of the first written together, then
/// the terminal frame.
fn paced(
    events: impl Stream<Item = String> + Send + 'static,
) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let pace = pace();
    let events = Box::pin(events.fuse());
    stream::unfold(Some((events, 0u64)), move |state| async move {
        let (mut events, mut id) = state?;
        let mut chunk = Vec::with_capacity(1024);
        let Some(first) = events.next().await else {
            id += 1;
            chunk.extend_from_slice(
                format!("id: {id}\nevent: run_completed\ndata: {{}}\n\n").as_bytes(),
            );
            return Some((Ok(chunk), None));
        };
        let due = Instant::now() + pace;
        let mut data = Some(first);
        while let Some(d) = data {
            id += 1;
            chunk.extend_from_slice(
                format!("id: {id}\nevent: content_delta\ndata: {d}\n\n").as_bytes(),
            );
            data = tokio::time::timeout_at(due, events.next())
                .await
                .ok()
                .flatten();
        }
        Some((Ok(chunk), Some((events, id))))
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let base = std::env::var("OPENAI_BASE_URL").expect("OPENAI_BASE_URL names the mock LLM");
    let upstream = Upstream {
        client: reqwest::Client::new(),
        url: format!("{base}/chat/completions"),
    };
    let app = Route::new()
        .at("/api/health", get(ok))
        .at("/api/presets/create", post(ok))
        .at("/api/conversations/run/stream", post(run))
        .data(upstream);
    Server::new(TcpListener::bind(format!("127.0.0.1:{port}")))
        .run(app)
        .await
}
