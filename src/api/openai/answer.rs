//! A run's events as a chat completion: the main agent's text is the answer (its messages
//! joined by a blank line, streamed as it comes), its thinking and every agent's tool
//! activity are `reasoning_content` when asked for, a run waiting for approval says so in
//! the answer. The answer is what the client sends back next time, so it is also what the
//! chat's chain remembers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use poem::web::Json;
use poem::web::sse::{Event, SSE};
use poem::{IntoResponse, Response};
use ports::{ContentKind, EventEnvelope, EventPayload, MAIN_AGENT, StopReason, Usage};
use serde_json::{Value, json};

use super::wire::{WireUsage, error_body};
use crate::api::ApiState;
use crate::core::chat::ChatRun;

/// Frames buffered between the run's log and the client. The run never waits for a slow
/// client (its log keeps every event); this reader does.
const FRAMES: usize = 256;
/// Characters of a tool result shown in `reasoning_content`.
const RESULT_PREVIEW: usize = 300;

/// What the request asked of the answer.
pub struct Options {
    pub model: String,
    pub show_tools: bool,
    pub include_usage: bool,
}

/// One change an event makes to the answer.
enum Piece {
    Content(String),
    Reasoning(String),
}

/// The answer so far, built from the run's events.
#[derive(Default)]
struct Answer {
    content: String,
    /// A main-agent message started after some text: the next text is set apart.
    separate: bool,
    usage: Usage,
    terminal: Option<EventPayload>,
}

impl Answer {
    /// Takes in `event`; returns what it adds to the answer.
    fn see(&mut self, event: &EventEnvelope, show_tools: bool) -> Option<Piece> {
        let main = event.agent_id == MAIN_AGENT;
        match &event.payload {
            EventPayload::MessageStart(_) if main => {
                self.separate = !self.content.is_empty();
                None
            }
            EventPayload::ContentDelta(d) if main && d.kind == ContentKind::Text => {
                let mut text = String::new();
                if std::mem::take(&mut self.separate) {
                    text.push_str("\n\n");
                }
                text.push_str(&d.delta);
                self.content.push_str(&text);
                Some(Piece::Content(text))
            }
            EventPayload::ContentDelta(d) if main && show_tools => {
                Some(Piece::Reasoning(d.delta.clone()))
            }
            EventPayload::ToolCallStart(t) if show_tools => Some(Piece::Reasoning(format!(
                "\n[{}] calls {}\n",
                event.agent_id, t.tool_name
            ))),
            EventPayload::ToolCallResult(r) if show_tools => {
                let preview: String = r.output.chars().take(RESULT_PREVIEW).collect();
                let outcome = if r.is_error { "failed" } else { "returned" };
                Some(Piece::Reasoning(format!(
                    "{} {outcome}: {preview}\n",
                    r.tool_name
                )))
            }
            EventPayload::UsageSnapshot(u) if main => {
                self.usage = u.usage;
                None
            }
            payload if payload.is_terminal() => {
                self.terminal = Some(payload.clone());
                self.waiting_note().map(Piece::Content)
            }
            _ => None,
        }
    }

    /// For a run stopped on calls waiting for a human: what waits and where to approve it
    /// (added to the answer, so a chat client shows it).
    fn waiting_note(&mut self) -> Option<String> {
        let Some(EventPayload::RunCompleted(done)) = &self.terminal else {
            return None;
        };
        if done.pending_tool_calls.is_empty() {
            return None;
        }
        let tools: Vec<&str> = done
            .pending_tool_calls
            .iter()
            .map(|c| c.tool_name.as_str())
            .collect();
        let note = format!(
            "{}Waiting for approval: {}. Approve or deny in the web UI, or with \
             POST /api/conversations/{{id}}/run and user_interactions.",
            if self.content.is_empty() { "" } else { "\n\n" },
            tools.join(", ")
        );
        self.content.push_str(&note);
        Some(note)
    }

    fn finish_reason(&self) -> &'static str {
        match &self.terminal {
            Some(EventPayload::RunCompleted(done))
                if done.stop_reason == StopReason::LimitReached =>
            {
                "length"
            }
            _ => "stop",
        }
    }

    fn failure(&self) -> Option<(&str, &str)> {
        match &self.terminal {
            Some(EventPayload::RunFailed(failed)) => Some((&failed.code, &failed.message)),
            _ => None,
        }
    }
}

/// The id and creation time every object of one answer shares.
struct Envelope {
    id: String,
    created: i64,
    model: String,
}

impl Envelope {
    fn of(run: &ChatRun, model: &str) -> Self {
        Self {
            id: format!("chatcmpl-{}", run.started.session_id),
            created: ports::now().timestamp(),
            model: model.to_owned(),
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
               "model": self.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})
    }
}

/// The whole answer once the run has ended.
pub async fn whole(state: &Arc<ApiState>, run: ChatRun, options: Options) -> Response {
    let envelope = Envelope::of(&run, &options.model);
    let mut events = run.started.log.subscribe(0);
    let mut answer = Answer::default();
    let mut reasoning = String::new();
    while let Some(event) = events.next().await {
        if let Some(Piece::Reasoning(text)) = answer.see(&event, options.show_tools) {
            reasoning.push_str(&text);
        }
    }
    if let Some((code, message)) = answer.failure() {
        let body = error_body(&format!("the run failed: {message}"), "server_error", code);
        return (poem::http::StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    let mut message = json!({"role": "assistant", "content": answer.content});
    if options.show_tools {
        message["reasoning_content"] = json!(reasoning);
    }
    let body = json!({
        "id": envelope.id, "object": "chat.completion", "created": envelope.created,
        "model": envelope.model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason()}],
        "usage": WireUsage::from(answer.usage),
    });
    state.chat.finish(run, &answer.content).await;
    Json(body).into_response()
}

/// The answer as `chat.completion.chunk` frames, then `[DONE]`. The run is read to its end
/// whether the client stays or not, so the chain is remembered either way.
pub fn stream(state: Arc<ApiState>, run: ChatRun, options: Options) -> Response {
    let (frames, mut received) = tokio::sync::mpsc::channel::<Event>(FRAMES);
    tokio::spawn(async move {
        let envelope = Envelope::of(&run, &options.model);
        let send = async |frame: Value| {
            // A client that left is no reason to stop reading the run.
            let _ = frames.send(Event::message(frame.to_string())).await;
        };
        send(envelope.chunk(json!({"role": "assistant", "content": ""}), None)).await;
        let mut events = run.started.log.subscribe(0);
        let mut answer = Answer::default();
        while let Some(event) = events.next().await {
            match answer.see(&event, options.show_tools) {
                Some(Piece::Content(text)) => {
                    send(envelope.chunk(json!({"content": text}), None)).await;
                }
                Some(Piece::Reasoning(text)) => {
                    send(envelope.chunk(json!({"reasoning_content": text}), None)).await;
                }
                None => {}
            }
        }
        match answer.failure() {
            Some((code, message)) => {
                send(error_body(
                    &format!("the run failed: {message}"),
                    "server_error",
                    code,
                ))
                .await;
            }
            None => send(envelope.chunk(json!({}), Some(answer.finish_reason()))).await,
        }
        if options.include_usage {
            let mut last = envelope.chunk(json!({}), None);
            last["choices"] = json!([]);
            last["usage"] = json!(WireUsage::from(answer.usage));
            send(last).await;
        }
        let _ = frames.send(Event::message("[DONE]")).await;
        drop(frames);
        state.chat.finish(run, &answer.content).await;
    });
    let body = futures::stream::poll_fn(move |cx| received.poll_recv(cx));
    SSE::new(body)
        .keep_alive(Duration::from_secs(15))
        .into_response()
}
