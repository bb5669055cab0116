//! Turns one streamed model response into events and an assistant message. Content blocks
//! keep their arrival order; tool calls are assembled from fragments by index.

use std::collections::BTreeMap;

use futures::StreamExt;
use ports::{
    AssistantPart, ContentDelta, ContentDone, ContentKind, EventPayload, MessageEnd, MessageStart,
    ModelDelta, ModelError, ModelStream, ToolCallArgsDelta, ToolCallStart, Usage,
};

use crate::core::run::{EventSink, RunControl};

/// How a response stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    Finished,
    Interrupted,
    Failed(ModelError),
}

/// What one response produced.
#[derive(Debug)]
pub struct Reply {
    /// Text, thinking and tool-call parts in order (tool calls last, by index).
    pub parts: Vec<AssistantPart>,
    pub usage: Usage,
    pub end: StreamEnd,
    /// Whether any event reached the sink: after that a retry would duplicate content.
    pub emitted: bool,
}

impl Reply {
    /// Whether the model answered at all (completely, or until a cut or an interrupt).
    pub fn answered(&self) -> bool {
        self.emitted || matches!(self.end, StreamEnd::Finished)
    }

    /// The tool calls of the reply.
    pub fn tool_calls(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.parts.iter().filter_map(|p| match p {
            AssistantPart::ToolCall {
                id,
                name,
                arguments,
            } => Some((id.as_str(), name.as_str(), arguments.as_str())),
            _ => None,
        })
    }
}

enum Open {
    None,
    Text(String),
    Thinking(String, Option<String>),
}

struct Call {
    id: String,
    name: String,
    arguments: String,
}

/// Accumulates deltas and emits the matching events.
struct Assembler<'a> {
    sink: &'a dyn EventSink,
    agent_id: &'a str,
    message_id: Option<String>,
    parts: Vec<AssistantPart>,
    open: Open,
    calls: BTreeMap<u32, Call>,
    usage: Usage,
}

impl<'a> Assembler<'a> {
    fn emit(&mut self, payload: EventPayload) {
        if self.message_id.is_none() {
            let id = uuid::Uuid::now_v7().to_string();
            self.sink.emit(
                self.agent_id,
                EventPayload::MessageStart(MessageStart {
                    message_id: id.clone(),
                }),
            );
            self.message_id = Some(id);
        }
        self.sink.emit(self.agent_id, payload);
    }

    fn close_block(&mut self) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Text(text) => {
                self.emit(EventPayload::ContentDone(ContentDone {
                    kind: ContentKind::Text,
                    text: text.clone(),
                }));
                self.parts.push(AssistantPart::Text { text });
            }
            Open::Thinking(text, signature) => {
                self.emit(EventPayload::ContentDone(ContentDone {
                    kind: ContentKind::Thinking,
                    text: text.clone(),
                }));
                self.parts.push(AssistantPart::Thinking { text, signature });
            }
        }
    }

    fn content(&mut self, kind: ContentKind, delta: String) {
        let continues = matches!(
            (&self.open, kind),
            (Open::Text(_), ContentKind::Text) | (Open::Thinking(..), ContentKind::Thinking)
        );
        if !continues {
            self.close_block();
            self.open = match kind {
                ContentKind::Text => Open::Text(String::new()),
                ContentKind::Thinking => Open::Thinking(String::new(), None),
            };
        }
        match &mut self.open {
            Open::Text(t) | Open::Thinking(t, _) => t.push_str(&delta),
            Open::None => {}
        }
        self.emit(EventPayload::ContentDelta(ContentDelta { kind, delta }));
    }

    fn apply(&mut self, delta: ModelDelta) -> bool {
        match delta {
            ModelDelta::Text(t) => self.content(ContentKind::Text, t),
            ModelDelta::Thinking(t) => self.content(ContentKind::Thinking, t),
            ModelDelta::ThinkingSignature(sig) => match &mut self.open {
                Open::Thinking(_, signature) => *signature = Some(sig),
                _ => {
                    if let Some(AssistantPart::Thinking { signature, .. }) = self
                        .parts
                        .iter_mut()
                        .rev()
                        .find(|p| matches!(p, AssistantPart::Thinking { .. }))
                    {
                        *signature = Some(sig);
                    }
                }
            },
            ModelDelta::RedactedThinking(data) => {
                self.close_block();
                self.parts.push(AssistantPart::RedactedThinking { data });
            }
            ModelDelta::ToolCallStart { index, id, name } => {
                self.close_block();
                self.emit(EventPayload::ToolCallStart(ToolCallStart {
                    tool_call_id: id.clone(),
                    tool_name: name.clone(),
                }));
                self.calls.insert(
                    index,
                    Call {
                        id,
                        name,
                        arguments: String::new(),
                    },
                );
            }
            ModelDelta::ToolCallArgs { index, fragment } => {
                let Some(call) = self.calls.get_mut(&index) else {
                    tracing::warn!(index, "arguments for a tool call that never started");
                    return false;
                };
                call.arguments.push_str(&fragment);
                let id = call.id.clone();
                self.emit(EventPayload::ToolCallArgsDelta(ToolCallArgsDelta {
                    tool_call_id: id,
                    delta: fragment,
                }));
            }
            ModelDelta::Usage(usage) => self.usage = usage,
            ModelDelta::Finish { .. } => return true,
        }
        false
    }

    /// Closes open blocks; keeps tool calls only when the response completed, because a
    /// half-streamed call must never be executed or replayed.
    fn finish(mut self, end: StreamEnd) -> Reply {
        self.close_block();
        if matches!(end, StreamEnd::Finished) {
            for call in std::mem::take(&mut self.calls).into_values() {
                self.parts.push(AssistantPart::ToolCall {
                    id: call.id,
                    name: call.name,
                    arguments: call.arguments,
                });
            }
        }
        let emitted = self.message_id.is_some();
        if let Some(message_id) = self.message_id.take() {
            self.sink.emit(
                self.agent_id,
                EventPayload::MessageEnd(MessageEnd { message_id }),
            );
        }
        self.usage.model_requests = self.usage.model_requests.max(1);
        Reply {
            parts: self.parts,
            usage: self.usage,
            end,
            emitted,
        }
    }
}

/// Reads a response to its end, an error or an interrupt, whichever comes first.
pub async fn consume(
    mut stream: ModelStream,
    control: &RunControl,
    sink: &dyn EventSink,
    agent_id: &str,
) -> Reply {
    let mut asm = Assembler {
        sink,
        agent_id,
        message_id: None,
        parts: Vec::new(),
        open: Open::None,
        calls: BTreeMap::new(),
        usage: Usage::default(),
    };
    let mut finished = false;
    // One wait for the interrupt across the whole response, not a new one per delta.
    let interrupted = control.interrupted();
    tokio::pin!(interrupted);
    let end = loop {
        let next = tokio::select! {
            biased;
            () = &mut interrupted => break StreamEnd::Interrupted,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(delta)) => finished |= asm.apply(delta),
            Some(Err(e)) => break StreamEnd::Failed(e),
            None if finished => break StreamEnd::Finished,
            None => {
                break StreamEnd::Failed(ModelError::StreamCut(
                    "the response ended before it was complete".into(),
                ));
            }
        }
    };
    drop(stream);
    asm.finish(end)
}
