//! The streaming half both protocols share: reading the SSE body with an idle timeout,
//! decoding events into deltas, and turning every way a body can end early into a
//! `StreamCut` item, so a truncated answer is never mistaken for a complete one.
//!
//! Nothing is spawned: the returned stream owns the response, so dropping it closes the
//! connection and aborts the request, as the port requires.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::stream::{self, BoxStream, Stream, StreamExt};
use ports::{ModelDelta, ModelError, ModelStream};
use tokio::time::{Instant, Sleep};

use super::http_error::{describe, from_response, send_error};

/// The per-protocol part: what each event means.
pub(crate) trait Decoder: Send + 'static {
    /// Handles one event, appending its deltas. `Ok(true)` means the response is complete
    /// (`[DONE]`, `message_stop`) and nothing after it is read.
    fn event(&mut self, event: &Event, out: &mut Vec<ModelDelta>) -> Result<bool, ModelError>;

    /// The closing deltas of a complete response: usage (when reported), then finish.
    fn finish(&mut self, out: &mut Vec<ModelDelta>);

    /// The body ended without the terminator. `Ok` when what arrived is complete anyway
    /// (then [`Decoder::finish`] runs), otherwise the error to report.
    fn eof(&mut self) -> Result<(), ModelError>;
}

/// Sends `request` and waits for a 2xx response's headers, at most `idle`. Anything else
/// becomes the matching error before a stream exists, so it can be retried as a whole.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    idle: Duration,
) -> Result<reqwest::Response, ModelError> {
    let response = match tokio::time::timeout(idle, request.send()).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return Err(send_error(&e)),
        Err(_) => {
            return Err(ModelError::Network(format!(
                "no response from the provider within {idle:?}"
            )));
        }
    };
    if !response.status().is_success() {
        return Err(from_response(response, idle).await);
    }
    match non_stream_type(&response) {
        None => Ok(response),
        Some(content_type) => Err(not_a_stream(response, content_type, idle).await),
    }
}

/// The content type of a 2xx answer that is not an event stream: a proxy's HTML page, or a
/// server that ignored `stream: true` and answered JSON. A missing content type is let
/// through, as some servers send none.
fn non_stream_type(response: &reqwest::Response) -> Option<String> {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)?
        .to_str()
        .unwrap_or("(not text)")
        .to_owned();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    (!essence.eq_ignore_ascii_case("text/event-stream")).then_some(content_type)
}

/// The error of an answer that is not an event stream, with what it said (an error
/// object's message, or the start of the text). Retrying would get the same answer.
async fn not_a_stream(
    response: reqwest::Response,
    content_type: String,
    idle: Duration,
) -> ModelError {
    let status = response.status().as_u16();
    let body = match tokio::time::timeout(idle, response.text()).await {
        Ok(Ok(text)) => text,
        Ok(Err(_)) | Err(_) => String::new(),
    };
    let said = match super::http_error::provider_message(&body) {
        (_, Some(message)) => format!(": {message}"),
        (_, None) => String::new(),
    };
    ModelError::InvalidRequest {
        status,
        message: format!(
            "the provider answered {content_type} instead of an event stream (text/event-stream){said}"
        ),
    }
}

/// A failure reading the body, as the SSE parser's transport error.
#[derive(Debug)]
enum BodyError {
    Transport(String),
    Idle(Duration),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "{e}"),
            Self::Idle(d) => write!(f, "no data from the provider for {d:?}"),
        }
    }
}

/// The body's chunks, failing with `Idle` when none arrives within `idle`. Timing raw
/// chunks rather than events lets SSE comments and pings count as signs of life.
fn guarded_body<S, B, E>(body: S, idle: Duration) -> impl Stream<Item = Result<B, BodyError>> + Send
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: Send + 'static,
    E: std::error::Error + 'static,
{
    Guarded {
        body: Some(body.boxed()),
        idle,
        deadline: Instant::now() + idle,
        timer: Box::pin(tokio::time::sleep(idle)),
    }
}

/// A body with an idle deadline. A chunk only moves the deadline; the timer is re-armed when
/// it fires early, so a fast stream costs no timer work per chunk.
struct Guarded<B, E> {
    /// `None` once the body ended or failed.
    body: Option<BoxStream<'static, Result<B, E>>>,
    idle: Duration,
    /// `idle` after the last chunk.
    deadline: Instant,
    /// Fires at or before `deadline`.
    timer: Pin<Box<Sleep>>,
}

impl<B, E: std::error::Error + 'static> Stream for Guarded<B, E> {
    type Item = Result<B, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        match body.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.deadline = Instant::now() + this.idle;
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(Some(Err(e))) => {
                this.body = None;
                return Poll::Ready(Some(Err(BodyError::Transport(describe(&e)))));
            }
            Poll::Ready(None) => {
                this.body = None;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= this.deadline {
                this.body = None;
                return Poll::Ready(Some(Err(BodyError::Idle(this.idle))));
            }
            let deadline = this.deadline;
            this.timer.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

struct State<S, D> {
    events: S,
    decoder: D,
    /// What the decoder made of the last event; kept to reuse its buffer.
    out: Vec<ModelDelta>,
    pending: VecDeque<Result<ModelDelta, ModelError>>,
    done: bool,
}

/// The deltas of a 200 streaming `response`, decoded by `decoder`.
pub(crate) fn deltas<D: Decoder>(
    response: reqwest::Response,
    decoder: D,
    idle: Duration,
) -> ModelStream {
    let state = State {
        events: guarded_body(response.bytes_stream(), idle)
            .eventsource()
            .boxed(),
        decoder,
        out: Vec::new(),
        pending: VecDeque::new(),
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            let mut failure = None;
            match st.events.next().await {
                Some(Ok(event)) => match st.decoder.event(&event, &mut st.out) {
                    Ok(false) => {}
                    Ok(true) => {
                        st.decoder.finish(&mut st.out);
                        st.done = true;
                    }
                    Err(e) => failure = Some(e),
                },
                Some(Err(e)) => failure = Some(ModelError::StreamCut(read_error(e))),
                None => match st.decoder.eof() {
                    Ok(()) => {
                        st.decoder.finish(&mut st.out);
                        st.done = true;
                    }
                    Err(e) => failure = Some(e),
                },
            }
            st.pending.extend(st.out.drain(..).map(Ok));
            if let Some(e) = failure {
                st.pending.push_back(Err(e));
                st.done = true;
            }
        }
    })
    .boxed()
}

fn read_error(e: EventStreamError<BodyError>) -> String {
    match e {
        EventStreamError::Transport(e) => e.to_string(),
        EventStreamError::Utf8(e) => format!("response is not UTF-8: {e}"),
        EventStreamError::Parser(e) => format!("malformed event stream: {e}"),
    }
}

/// Parses an event's JSON payload; a payload we cannot read means we cannot trust the
/// rest of the answer either, so it ends the stream as cut.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, ModelError> {
    serde_json::from_str(&event.data).map_err(|e| {
        let data: String = event.data.chars().take(200).collect();
        ModelError::StreamCut(format!("unreadable event ({e}): {data}"))
    })
}
