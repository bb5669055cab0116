//! Turns a [`Script`] into an HTTP response for the protocol of the endpoint hit: status,
//! headers and a body stream that pauses, cuts, resets or hangs as scripted.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::stream::{self, BoxStream, StreamExt};
use poem::{Body, Response, http::StatusCode};
use serde_json::Value;

use crate::script::{Content, End, Script, Step, Tokens};
use crate::{anthropic, openai};

/// The frames of a rendered answer; `content_end` is the frame count up to the last
/// content delta, where [`Script::cut`] and friends stop.
pub(crate) struct Rendered {
    pub frames: Vec<String>,
    pub content_end: usize,
}

/// Which wire format to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    OpenAi,
    Anthropic,
}

/// Counts a response body as open from creation until the server drops it (when it is
/// finished or the client went away).
pub(crate) struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    pub(crate) fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counter))
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The response `script` stands for, given the parsed request body.
pub(crate) fn respond(
    script: Script,
    protocol: Protocol,
    request: &Value,
    guard: OpenGuard,
) -> Response {
    let (status, headers, frames, content_end) = match script.content {
        Content::Error {
            status,
            message,
            retry_after,
        } => return error_response(protocol, status, &message, retry_after),
        Content::Raw {
            status,
            headers,
            chunks,
        } => {
            let n = chunks.len();
            (status, headers, chunks, n)
        }
        Content::Stream {
            steps,
            tokens,
            finish,
        } => {
            let (frames, content_end) = stream_frames(protocol, request, &steps, tokens, finish);
            let headers = vec![
                ("content-type".to_owned(), "text/event-stream".to_owned()),
                ("cache-control".to_owned(), "no-cache".to_owned()),
            ];
            (200, headers, frames, content_end)
        }
    };
    let mut builder = Response::builder().status(status_code(status));
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let stream = body(frames, content_end, script.end, script.delay).map(move |item| {
        let _ = &guard;
        item
    });
    builder.body(Body::from_bytes_stream(stream))
}

/// A provider error in the protocol's own shape.
fn error_response(
    protocol: Protocol,
    status: u16,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let body = match protocol {
        Protocol::OpenAi => openai::error_body(status, message),
        Protocol::Anthropic => anthropic::error_body(status, message),
    };
    let mut builder = Response::builder()
        .status(status_code(status))
        .content_type("application/json");
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    builder.body(body.to_string())
}

/// The SSE frames of a streamed answer, and how many of them carry content.
fn stream_frames(
    protocol: Protocol,
    request: &Value,
    steps: &[Step],
    tokens: Option<Tokens>,
    finish: Option<String>,
) -> (Vec<Vec<u8>>, usize) {
    let tokens = tokens.unwrap_or(Tokens {
        input: 10,
        output: u64::try_from(steps.len()).unwrap_or(u64::MAX).max(1),
        cache_read: 0,
        cache_write: 0,
    });
    let finish = finish.unwrap_or_else(|| {
        let calls = steps.iter().any(|s| matches!(s, Step::ToolStart { .. }));
        (if calls { "tool_calls" } else { "stop" }).to_owned()
    });
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock");
    let rendered = match protocol {
        Protocol::OpenAi => {
            let usage = request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            openai::render(steps, tokens, &finish, model, usage)
        }
        Protocol::Anthropic => anthropic::render(steps, tokens, &finish, model),
    };
    let frames = rendered
        .frames
        .into_iter()
        .map(String::into_bytes)
        .collect();
    (frames, rendered.content_end)
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The frames to send, paced by `delay`, followed by what `end` asks for.
fn body(
    frames: Vec<Vec<u8>>,
    content_end: usize,
    end: End,
    delay: std::time::Duration,
) -> BoxStream<'static, io::Result<Vec<u8>>> {
    let count = match end {
        End::Complete => frames.len(),
        End::Cut(n) | End::Abort(n) | End::Hang(n) => n.unwrap_or(content_end),
    };
    // Frames are due on a fixed schedule from the first one, so timer granularity does not
    // add up: 1,000 frames 1 ms apart take about 1 s, not 1,000 rounded-up sleeps.
    let t0 = tokio::time::Instant::now();
    let sent = stream::iter(frames.into_iter().take(count).enumerate()).then(
        move |(i, frame)| async move {
            let due = u32::try_from(i)
                .ok()
                .and_then(|i| delay.checked_mul(i))
                .and_then(|offset| t0.checked_add(offset));
            if let Some(due) = due.filter(|_| !delay.is_zero()) {
                tokio::time::sleep_until(due).await;
            }
            Ok(frame)
        },
    );
    let tail = match end {
        End::Complete | End::Cut(_) => stream::empty().boxed(),
        End::Abort(_) => stream::once(async {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "mock-llm: scripted connection reset",
            ))
        })
        .boxed(),
        End::Hang(_) => stream::pending().boxed(),
    };
    sent.chain(tail).boxed()
}
