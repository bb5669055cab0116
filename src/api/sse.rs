//! The SSE response body of run and events operations (spec 04, notes §7).
//!
//! Frames are written straight from the domain [`EventEnvelope`] with serde (no per-event
//! DTO conversion): `event: <event_type>`, `id: <event_id>`, `data: <envelope JSON>`. The
//! document describes the body in the one shape every client generator and schemathesis
//! accept: no `type`, a description, `format: event-stream` and `items` pointing at
//! `RunEvent` (which also keeps the event schemas from being pruned). A test checks that
//! every `data:` parses back as a `RunEvent`.

use std::{
    fmt,
    future::Future,
    io::Write,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::{Stream, StreamExt, stream::BoxStream};
use poem::{Body, IntoResponse, Response};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};
use ports::EventEnvelope;
use tokio::time::{Instant, Sleep};
use tokio_util::bytes::Bytes;

use super::ag_ui::AgUiEncoder;
use super::dto::events::RunEvent;

/// A `text/event-stream` response of run events.
///
/// Events that are ready together are written as one body chunk, so a consumer that falls
/// behind catches up in few large writes instead of one write (and one flush) per event;
/// a run's log paces its readers, so the deltas of a streaming answer are ready a few at a
/// time.
pub struct Sse {
    events: BoxStream<'static, Arc<EventEnvelope>>,
    keep_alive: Duration,
    /// Set: each frame's data is an AG-UI event instead of our envelope.
    ag_ui: Option<AgUiEncoder>,
}

impl Sse {
    /// Streams the envelopes as SSE frames, with a keep-alive comment after `keep_alive`
    /// of silence. The response ends when the stream does.
    pub fn new(
        stream: impl Stream<Item = Arc<EventEnvelope>> + Send + 'static,
        keep_alive: Duration,
    ) -> Self {
        Self {
            events: stream.boxed(),
            keep_alive,
            ag_ui: None,
        }
    }

    /// Encodes the events as AG-UI events (`?encoding=ag-ui`).
    #[must_use]
    pub fn encoded(mut self, encoding: Option<EventEncoding>) -> Self {
        if encoding == Some(EventEncoding::AgUi) {
            self.ag_ui = Some(AgUiEncoder::default());
        }
        self
    }

    /// Encodes the events as AG-UI events naming the client's thread and run.
    #[must_use]
    pub fn ag_ui(mut self, encoder: AgUiEncoder) -> Self {
        self.ag_ui = Some(encoder);
        self
    }
}

/// How an event stream's frames carry the events.
#[derive(poem_openapi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "kebab-case")]
pub enum EventEncoding {
    /// Our event envelope (the default).
    Native,
    /// AG-UI events (`RUN_STARTED`, `TEXT_MESSAGE_CONTENT`, … and `CUSTOM` for the rest),
    /// for agent UIs that speak AG-UI.
    AgUi,
}

/// Appends the AG-UI frames of one event (`id: <event_id>` kept, so a client can resume).
fn write_ag_ui_frames(buf: &mut Vec<u8>, event: &EventEnvelope, encoder: &mut AgUiEncoder) {
    for value in encoder.encode(event) {
        let _ = write!(buf, "id: {}\ndata: {value}\n\n", event.event_id);
    }
}

impl fmt::Debug for Sse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sse").finish_non_exhaustive()
    }
}

/// Appends the SSE frame of one event: `id: <event_id>`, `event: <event_type>`,
/// `data: <envelope JSON>` (compact JSON, so always a single line).
pub fn write_frame(buf: &mut Vec<u8>, event: &EventEnvelope) {
    let event_type = event.payload.event_type();
    let start = buf.len();
    // Writing into a Vec cannot fail.
    let _ = write!(buf, "id: {}\nevent: {event_type}\ndata: ", event.event_id);
    if let Err(err) = serde_json::to_writer(&mut *buf, event) {
        // Cannot happen for these types; send the envelope without its payload rather
        // than break the stream.
        tracing::error!(
            session_id = %event.session_id,
            event_id = event.event_id,
            event_type,
            error = %err,
            "could not serialise an event"
        );
        buf.truncate(start);
        let _ = write!(
            buf,
            "id: {}\nevent: {event_type}\ndata: {}",
            event.event_id,
            minimal_data(event)
        );
    }
    buf.extend_from_slice(b"\n\n");
}

/// Opens every body: how long a browser's `EventSource` waits before it reconnects (with
/// `Last-Event-ID`) after losing the stream.
const RETRY: &[u8] = b"retry: 3000\n\n";

/// Events written into one body chunk at most: a consumer far behind still gets bounded
/// chunks.
const MAX_EVENTS_PER_CHUNK: usize = 256;

/// The body: the events ready together as one chunk, a `:` comment after `keep_alive` of
/// silence. Frames are written straight into the chunk as events are taken from the
/// stream: no batch vector is built per chunk (under load that allocation, repeated per
/// stream every few milliseconds, made the allocator map fresh pages each time).
struct Frames {
    events: BoxStream<'static, Arc<EventEnvelope>>,
    keep_alive: Duration,
    /// When the last chunk or comment went out.
    last_write: Instant,
    /// Fires at or before the keep-alive comment is due; re-armed only when it fires, so
    /// writing a chunk costs no timer work.
    idle: Pin<Box<Sleep>>,
    /// The stream ended after the events of the last chunk.
    ended: bool,
    /// [`RETRY`] went out (with the first chunk).
    opened: bool,
    ag_ui: Option<AgUiEncoder>,
}

impl Frames {
    /// Writes the events that are ready, up to [`MAX_EVENTS_PER_CHUNK`]; `None` when none
    /// was. Sets `ended` when the stream ends.
    fn ready_frames(&mut self, cx: &mut Context<'_>) -> Option<Vec<u8>> {
        let mut buf: Option<Vec<u8>> = None;
        for _ in 0..MAX_EVENTS_PER_CHUNK {
            match self.events.poll_next_unpin(cx) {
                Poll::Ready(Some(event)) => {
                    let chunk = buf.get_or_insert_with(|| new_chunk(&mut self.opened));
                    match &mut self.ag_ui {
                        Some(encoder) => write_ag_ui_frames(chunk, &event, encoder),
                        None => write_frame(chunk, &event),
                    }
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        buf
    }

    /// Ready when a keep-alive comment is due (`keep_alive` after the last write).
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.idle.as_mut().poll(cx).is_ready() {
            let due = self.last_write + self.keep_alive;
            if Instant::now() >= due {
                return Poll::Ready(());
            }
            self.idle.as_mut().reset(due);
        }
        Poll::Pending
    }
}

impl Stream for Frames {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match this.ready_frames(cx) {
            Some(buf) => {
                this.last_write = Instant::now();
                Poll::Ready(Some(Ok(Bytes::from(buf))))
            }
            None if this.ended => Poll::Ready(None),
            None => match this.poll_keep_alive(cx) {
                Poll::Ready(()) => {
                    let now = Instant::now();
                    this.last_write = now;
                    this.idle.as_mut().reset(now + this.keep_alive);
                    let mut comment = new_chunk(&mut this.opened);
                    comment.extend_from_slice(b":\n\n");
                    Poll::Ready(Some(Ok(Bytes::from(comment))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// An empty chunk, opened by [`RETRY`] if it is the body's first (`opened` says whether
/// one went out already).
fn new_chunk(opened: &mut bool) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1024);
    if !*opened {
        *opened = true;
        buf.extend_from_slice(RETRY);
    }
    buf
}

fn minimal_data(event: &EventEnvelope) -> String {
    let mut map = serde_json::Map::new();
    map.insert("event_id".into(), event.event_id.into());
    map.insert("event_type".into(), event.payload.event_type().into());
    map.insert("session_id".into(), event.session_id.clone().into());
    map.insert("agent_id".into(), event.agent_id.clone().into());
    map.insert(
        "timestamp".into(),
        event
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .into(),
    );
    serde_json::Value::Object(map).to_string()
}

impl Payload for Sse {
    const CONTENT_TYPE: &'static str = "text/event-stream";

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some(
                "Server-sent events: each `data:` is one JSON RunEvent; `event:` = event_type, \
                 `id:` = event_id",
            ),
            format: Some("event-stream"),
            items: Some(Box::new(RunEvent::schema_ref())),
            ..MetaSchema::ANY
        }))
    }

    fn register(registry: &mut Registry) {
        RunEvent::register(registry);
    }
}

impl IntoResponse for Sse {
    fn into_response(self) -> Response {
        let frames = Frames {
            events: self.events,
            keep_alive: self.keep_alive,
            last_write: Instant::now(),
            idle: Box::pin(tokio::time::sleep(self.keep_alive)),
            ended: false,
            opened: false,
            ag_ui: self.ag_ui,
        };
        Response::builder()
            .content_type("text/event-stream")
            .header("X-Accel-Buffering", "no")
            .header("Cache-Control", "no-cache")
            .body(Body::from_bytes_stream(frames))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use futures::stream;
    use poem::{Endpoint, Request, http::StatusCode};
    use poem_openapi::types::ParseFromJSON;
    use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService, payload::Json};
    use ports::EventPayload;

    use super::*;
    use crate::api::dto::events::tests::{envelope, payloads};

    #[derive(Object, Debug)]
    struct TestAccepted {
        session_id: String,
    }

    /// The sse-or-202 shape of the run operations.
    #[derive(ApiResponse, Debug)]
    enum TestRunResponse {
        /// The run's events.
        #[oai(status = 200)]
        Events(Sse),
        /// Started; events go to the bus.
        #[oai(status = 202)]
        Accepted(Json<TestAccepted>),
    }

    struct TestApi;

    #[OpenApi]
    impl TestApi {
        #[oai(path = "/run", method = "post", operation_id = "test_run")]
        async fn run(&self, accepted: poem_openapi::param::Query<bool>) -> TestRunResponse {
            if accepted.0 {
                TestRunResponse::Accepted(Json(TestAccepted {
                    session_id: "s1".into(),
                }))
            } else {
                TestRunResponse::Events(Sse::new(
                    stream::iter(three_events()).map(Arc::new),
                    Duration::from_secs(3600),
                ))
            }
        }
    }

    fn three_events() -> Vec<EventEnvelope> {
        let all = payloads(true);
        let pick = |ty: &str| all.iter().find(|p| p.event_type() == ty).cloned().unwrap();
        vec![
            envelope(1, pick("run_started")),
            envelope(2, pick("content_delta")),
            envelope(3, pick("run_completed")),
        ]
    }

    /// Splits an SSE body into frames of (field, value) lines, skipping comments.
    fn parse_frames(body: &str) -> Vec<Vec<(String, String)>> {
        body.split("\n\n")
            .filter(|f| !f.trim().is_empty())
            .map(|f| {
                f.lines()
                    .filter(|l| !l.starts_with(':'))
                    .map(|l| {
                        let (k, v) = l.split_once(':').unwrap();
                        (k.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned())
                    })
                    .collect()
            })
            .collect()
    }

    fn check_frames(body: &str) {
        let mut frames = parse_frames(body);
        assert_eq!(
            frames.remove(0),
            [("retry".to_owned(), "3000".to_owned())],
            "the body opens with the reconnect delay: {body}"
        );
        let events = three_events();
        assert_eq!(frames.len(), events.len(), "{body}");
        for (lines, ev) in frames.iter().zip(&events) {
            let get = |k: &str| {
                let v: Vec<&String> = lines
                    .iter()
                    .filter(|(f, _)| f == k)
                    .map(|(_, v)| v)
                    .collect();
                assert_eq!(v.len(), 1, "{k} in {lines:?}");
                v[0].clone()
            };
            assert_eq!(get("event"), ev.payload.event_type());
            assert_eq!(get("id"), ev.event_id.to_string());
            let data: serde_json::Value = serde_json::from_str(&get("data")).unwrap();
            assert_eq!(data, serde_json::to_value(ev).unwrap());
            let parsed = RunEvent::parse_from_json(Some(data))
                .unwrap_or_else(|e| panic!("{}", e.into_message()));
            assert_eq!(parsed, RunEvent::from(ev.clone()));
        }
    }

    #[tokio::test]
    async fn frames_carry_type_id_and_a_parsable_envelope() {
        let sse = Sse::new(
            stream::iter(three_events()).map(Arc::new),
            Duration::from_secs(3600),
        );
        let resp = sse.into_response();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let body = resp.into_body().into_string().await.unwrap();
        check_frames(&body);
    }

    #[tokio::test(start_paused = true)]
    async fn silence_gets_a_keep_alive_comment_and_events_reset_the_clock() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Arc<EventEnvelope>>();
        let keep_alive = Duration::from_secs(15);
        let mut body = Sse::new(rx, keep_alive)
            .into_response()
            .into_body()
            .into_bytes_stream();
        let started = tokio::time::Instant::now();
        assert_eq!(
            &body.next().await.unwrap().unwrap()[..],
            b"retry: 3000\n\n:\n\n",
            "the body opens with the reconnect delay"
        );
        assert!(started.elapsed() >= keep_alive);
        let event = three_events().remove(0);
        tx.unbounded_send(Arc::new(event)).unwrap();
        let chunk = body.next().await.unwrap().unwrap();
        assert!(
            chunk.starts_with(b"id: 1\nevent: run_started\ndata: {"),
            "{chunk:?}"
        );
        drop(tx);
        assert!(body.next().await.is_none(), "the body ends with the events");
    }

    #[test]
    fn every_event_type_frames_as_one_data_line() {
        for full in [true, false] {
            for (i, p) in payloads(full).into_iter().enumerate() {
                let ev = envelope(i as u64 + 1, p);
                let mut buf = Vec::new();
                write_frame(&mut buf, &ev);
                let text = String::from_utf8(buf).unwrap();
                let data: Vec<&str> = text.lines().filter(|l| l.starts_with("data:")).collect();
                assert_eq!(data.len(), 1, "{text}");
                let json: serde_json::Value =
                    serde_json::from_str(data[0].trim_start_matches("data:").trim()).unwrap();
                assert!(RunEvent::parse_from_json(Some(json)).is_ok(), "{text}");
            }
        }
    }

    #[test]
    fn minimal_data_is_the_envelope_without_payload() {
        let ev = envelope(
            9,
            EventPayload::MessageEnd(ports::MessageEnd {
                message_id: "m".into(),
            }),
        );
        let mut full = serde_json::to_value(&ev).unwrap();
        full.as_object_mut().unwrap().remove("payload");
        let minimal: serde_json::Value = serde_json::from_str(&minimal_data(&ev)).unwrap();
        assert_eq!(minimal, full);
    }

    fn service() -> OpenApiService<TestApi, ()> {
        OpenApiService::new(TestApi, "t", "1")
    }

    #[tokio::test]
    async fn run_response_serves_sse_or_202() {
        let ep = poem::Route::new().nest("/", service());
        let call = |accepted: bool| {
            ep.get_response(
                Request::builder()
                    .method(poem::http::Method::POST)
                    .uri(format!("/run?accepted={accepted}").parse().unwrap())
                    .finish(),
            )
        };
        let resp = call(false).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.content_type(), Some("text/event-stream"));
        let body = resp.into_body().into_string().await.unwrap();
        check_frames(&body);

        let resp = call(true).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let body = resp.into_body().into_string().await.unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"session_id": "s1"})
        );
    }

    #[test]
    fn document_describes_the_stream_and_keeps_every_event_schema() {
        let spec: serde_json::Value = serde_json::from_str(&service().spec()).unwrap();
        let responses = &spec["paths"]["/run"]["post"]["responses"];
        let schema = &responses["200"]["content"]["text/event-stream"]["schema"];
        assert!(schema.get("type").is_none(), "{schema}");
        assert_eq!(schema["format"], "event-stream");
        assert_eq!(schema["items"]["$ref"], "#/components/schemas/RunEvent");
        assert!(schema["description"].as_str().unwrap().contains("RunEvent"));
        assert!(
            responses["202"]["content"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("application/json"))
        );

        let schemas: BTreeSet<&str> = spec["components"]["schemas"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let union = &spec["components"]["schemas"]["RunEvent"];
        assert_eq!(union["discriminator"]["propertyName"], "event_type");
        let mapping = union["discriminator"]["mapping"].as_object().unwrap();
        assert_eq!(mapping.len(), RunEvent::EVENT_TYPES.len());
        for target in mapping.values() {
            let name = target
                .as_str()
                .unwrap()
                .trim_start_matches("#/components/schemas/");
            assert!(schemas.contains(name), "{name}");
            let envelope = name.trim_start_matches("RunEvent_");
            assert!(schemas.contains(envelope), "{envelope}");
            let payload = spec["components"]["schemas"][envelope]["properties"]["payload"]["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/components/schemas/");
            assert!(schemas.contains(payload), "{payload}");
        }
    }
}
